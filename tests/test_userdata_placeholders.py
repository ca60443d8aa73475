"""Worker user-data placeholders that would stay unfilled (issue 25, item 9): a misspelt
``%tokn%``, a ``%token%`` with no value, an address that cannot be detected.  A worker booted
with one could never join, so the adapter refuses to be built with it: ``elastiq run`` does not
start and ``elastiq config check`` says which placeholder and what to set, exit 2."""
from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
import yaml

from elastiq.adapters.base import ConfigError
from elastiq.adapters.ec2.config import Settings as EC2Section
from elastiq.adapters.userdata import prepare_user_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIifQ.c2lnbmF0dXJlLXZhbHVl"
WORKER = "#!/bin/bash\nMASTER_ADDRESS='%ipv4%'\nWORKER_TOKEN='{token}'\ndate +%Y%m%d%H%M\n"


def _section(text: str) -> EC2Section:
    return EC2Section(user_data_b64=base64.b64encode(text.encode()).decode())


def test_a_misspelt_placeholder_is_refused_with_the_name_it_resembles():
    with pytest.raises(ConfigError) as err:
        prepare_user_data(_section(WORKER.format(token="%tokn%")),
                          configured={"ipv4": "10.0.0.1", "token": TOKEN})
    assert "%tokn%" in str(err.value) and "did you mean %token%?" in str(err.value)
    assert err.value.key == "ec2.user_data_b64"
    assert TOKEN not in str(err.value)


def test_a_placeholder_without_a_value_is_refused_naming_the_setting():
    with pytest.raises(ConfigError) as err:
        prepare_user_data(_section(WORKER.format(token="%token%")),
                          configured={"ipv4": "10.0.0.1"})
    assert err.value.key == "substitute.token"
    assert "%token% with no value: set substitute.token" in str(err.value)


def test_an_address_that_cannot_be_detected_is_refused_not_sent():
    with pytest.raises(ConfigError) as err:
        prepare_user_data(_section(WORKER.format(token="%token%")),
                          configured={"token": TOKEN}, detect=lambda names: {})
    assert err.value.key == "substitute.ipv4" and "cannot be detected here" in str(err.value)


def test_filled_user_data_and_shell_percent_signs_pass():
    out = prepare_user_data(_section(WORKER.format(token="%token%") + "printf '%s%s' a b\n"),
                            configured={"ipv4": "10.0.0.1", "token": TOKEN})
    assert b"MASTER_ADDRESS='10.0.0.1'" in out and f"WORKER_TOKEN='{TOKEN}'".encode() in out
    assert b"date +%Y%m%d%H%M" in out and b"printf '%s%s'" in out


def _check(tmp_path, worker: str, substitute: dict) -> subprocess.CompletedProcess:
    (tmp_path / "worker.sh").write_text(worker)
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({
        "elastiq": {"cluster_name": "placeholders"},
        "ec2": {"api_url": "http://127.0.0.1:9", "region": "us-east-1", "image_id": "ami-12345678",
                "flavour": "m1.large", "aws_access_key_id": "AKIAPLACEHOLDERS0000",
                "aws_secret_access_key": "placeholder-secret", "user_data_file":
                str(tmp_path / "worker.sh")},
        "substitute": substitute}))
    return subprocess.run([sys.executable, "-m", "elastiq", "config", "check", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env=dict(os.environ, PYTHONPATH=ROOT))


@pytest.mark.parametrize("token, substitute, words", [
    ("%tokn%", {"ipv4": "10.0.0.1", "token": TOKEN}, "did you mean %token%?"),
    ("%token%", {"ipv4": "10.0.0.1", "token": ""}, "set substitute.token"),
])
def test_config_check_refuses_what_run_would_send_unfilled(tmp_path, token, substitute, words):
    done = _check(tmp_path, WORKER.format(token=token), substitute)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr and "worker" not in done.stdout
    assert TOKEN not in done.stderr


def test_config_check_passes_the_filled_worker(tmp_path):
    done = _check(tmp_path, WORKER.format(token="%token%"), {"ipv4": "10.0.0.1", "token": TOKEN})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK ")
