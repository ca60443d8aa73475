"""etc/: the commented YAML example and the legacy INI example pass `elastiq config check`."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from elastiq import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = [os.path.join(ROOT, "etc", name) for name in ("elastiq.yaml", "elastiq.conf")]


def _check(path, *extra):
    return subprocess.run([sys.executable, "-m", "elastiq", "config", "check", path, *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_passes_config_check(path, tmp_path):
    # the YAML example names the master's worker user-data file, as the master writes it
    user_data = tmp_path / "worker-user-data.sh"
    user_data.write_text("#!/bin/sh\n")
    extra = ["--set", f"ec2.user_data_file={user_data}"] if path.endswith(".yaml") else []
    done = _check(path, *extra)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"OK {path}: cluster 'elastiq': 0-3 VMs")


def test_config_check_names_a_missing_user_data_file_as_run_would():
    done = _check(EXAMPLES[0])
    assert done.returncode == 2
    assert "ec2.user_data_file" in done.stderr and "/etc/elastiq/worker-user-data.sh" in done.stderr


def test_the_yaml_example_documents_every_key():
    text = Path(EXAMPLES[0]).read_text(encoding="utf-8")
    for section, cls in config.section_classes(config.Config()).items():
        assert re.search(rf"^{section}:", text, re.M), section
        for field in dataclasses.fields(cls):
            assert re.search(rf"^\s*#?\s*{field.name}:", text, re.M), f"{section}.{field.name}"


def test_the_yaml_example_shows_the_defaults_it_claims():
    example = config.load(EXAMPLES[0])
    defaults = config.Config()
    for section in ("elastiq", "quota", "vm", "debug", "batch"):
        assert getattr(example, section) == getattr(defaults, section), section


def test_the_legacy_example_uses_only_the_original_sections():
    cfg = config.load(EXAMPLES[1])
    assert cfg.elastiq.n_jobs_per_vm == 4 and cfg.elastiq.log_level == "INFO"
    assert cfg.cloud.key_name is None and cfg.cloud.user_data_b64
    sections = re.findall(r"^\[(\w+)\]", Path(EXAMPLES[1]).read_text(encoding="utf-8"), re.M)
    assert sections == ["elastiq", "debug", "quota", "ec2"]
