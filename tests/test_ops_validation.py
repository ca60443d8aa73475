"""`elastiq config check` accepts exactly what `elastiq run` accepts (issue 11): both go through
``daemon.prepare``; a corpus of good and bad files, each given to both commands."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
from tests.support.ec2_server import REGION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: name -> (settings merged over a good configuration, or raw file bytes; key in the error or
#: None for a good file).
CORPUS = {
    "good": ({}, None),
    "security_groups_as_a_string": ({"ec2": {"security_groups": "default"}}, None),
    "user_data_file_present": ({"ec2": {"user_data_file": "{tmp}/worker.sh"}}, None),
    "user_data_file_missing": ({"ec2": {"user_data_file": "{tmp}/absent.sh"}},
                               "ec2.user_data_file"),
    "user_data_b64_invalid": ({"ec2": {"user_data_b64": "!!not base64!!"}}, "ec2.user_data_b64"),
    "api_url_not_a_url": ({"ec2": {"api_url": "not a url"}}, "ec2.api_url"),
    "nan": ({"elastiq": {"idle_timeout_max_s": float("nan")}}, "elastiq.idle_timeout_max_s"),
    "inf": ({"elastiq": {"waiting_jobs_time_s": float("inf")}}, "elastiq.waiting_jobs_time_s"),
    "max_vms_10e26": ({"quota": {"max_vms": 10 ** 26}}, "quota.max_vms"),
    "duplicate_key": (b"quota:\n  max_vms: 3\n  max_vms: 300\n", "line 3"),
    "empty_file": (b"", "empty"),
    "binary_file": (b"\xff\xfe\x00\x01binary", "UTF-8"),
}


def _write(tmp_path, moto_url, content) -> str:
    path = tmp_path / "elastiq.yaml"
    (tmp_path / "worker.sh").write_text("#!/bin/sh\necho worker\n")
    if isinstance(content, bytes):
        path.write_bytes(content)
        return str(path)
    data = {"elastiq": {"cluster_name": "agree", "state_dir": str(tmp_path / "state"),
                        "log_file": str(tmp_path / "state" / "elastiq.log"),
                        "batch_plugin": "tests.support.world:IdleBatch"},
            "ec2": {"api_url": moto_url, "region": REGION, "aws_access_key_id": ACCESS_KEY,
                    "aws_secret_access_key": SECRET_KEY, "image_id": "ami-12345678"}}
    for section, values in content.items():
        data.setdefault(section, {}).update(
            {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in values.items()})
    text = yaml.safe_dump(data)
    path.write_text(text)
    return str(path)


def elastiq(*args):
    return subprocess.run([sys.executable, "-m", "elastiq", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))


@pytest.mark.parametrize("name", CORPUS)
def test_config_check_and_run_agree(name, tmp_path, moto):
    content, key = CORPUS[name]
    path = _write(tmp_path, moto.url, content)
    check = elastiq("config", "check", path)
    run = elastiq("run", "--once", "--log-stderr", "--config", path)
    if key is None:
        assert check.returncode == 0, check.stderr
        assert run.returncode == 0, run.stderr
        return
    assert check.returncode == 2 and run.returncode == 2, (check.stderr, run.stderr)
    assert check.stderr.startswith(f"elastiq: configuration error: {path}"), check.stderr
    assert key in check.stderr, check.stderr
    # the same words: run's message is check's message
    assert check.stderr.strip().splitlines()[-1] in run.stderr, (check.stderr, run.stderr)
    assert "unexpected error" not in check.stderr + run.stderr


def test_config_check_calls_the_function_run_calls(monkeypatch, tmp_path):
    """One validation function: replacing the factory's prepare changes what check says."""
    from elastiq import cli, config
    from elastiq.runtime import factory

    def refuse(cfg):
        raise config.InvalidConfig(cfg.source, "probe.key", "refused by prepare")

    monkeypatch.setattr(factory, "prepare", refuse)
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"quota": {"max_vms": 2}}))
    assert cli.main(["config", "check", str(path)]) == 2
