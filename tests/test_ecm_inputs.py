"""Inputs that reach the cloud or a shell (part 3 of issue 12): values elastiq fills into the
worker user-data are quoted at substitution time and the rendered script, run by bash, keeps
them literal; ``config check`` refuses substitute values that cannot be valid; the wizard checks
the key pair and the flavour against the cloud, bounds the numbers, checks the output first and
never replaces anything but a regular file."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ecm import render
from elastiq.adapters.base import ConfigError
from elastiq.adapters.userdata import prepare_user_data
from elastiq.adapters.ec2.config import Settings as EC2Section
from tests.test_ecm_render import TOKEN, answers
from tests.test_ecm_wizard import (CONF, ecm_moto, failing_credentials, run,  # noqa: F401
                                   workdir, written)

ROOT = Path(__file__).resolve().parent.parent
ROCKY = "Rocky-9-EC2-Base-9.4-20240509.0.x86_64"


def _head(worker: str) -> str:
    """The rendered worker script up to the end of its values, its functions and the check that
    the placeholders were filled (everything before the first package installation)."""
    return worker[:worker.index("\n", worker.index("esac\n")) + 1]


@pytest.mark.parametrize("field", ["ipv4", "token"])
def test_a_value_holding_a_quote_stays_one_literal_word(tmp_path, field):
    canary = tmp_path / "pwned"
    hostile = f"10.0.0.1'; touch {canary}; '"
    values = {"ipv4": "10.0.0.1", "token": TOKEN, field: hostile}
    worker = prepare_user_data(EC2Section(), render.render_worker(answers("debian12")),
                               runtime=values).decode()
    script = tmp_path / "worker.sh"
    script.write_text(_head(worker) + 'printf "%s\\n%s" "$MASTER_ADDRESS" "$WORKER_TOKEN"\n')
    shown = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"{values['ipv4']}\n{values['token']}"
    assert not canary.exists()


def test_the_unquoted_template_would_have_run_the_value(tmp_path):
    """The same check against plain text replacement (the old behaviour) does create the file:
    the test above can fail."""
    canary = tmp_path / "pwned"
    worker = render.render_worker(answers("debian12")).replace(
        "%ipv4%", f"10.0.0.1'; touch {canary}; '").replace("%token%", TOKEN)
    (tmp_path / "w.sh").write_text(_head(worker))
    subprocess.run(["bash", str(tmp_path / "w.sh")], cwd=tmp_path, capture_output=True)
    assert canary.exists()


def test_a_value_that_needs_quoting_outside_a_quoted_word_is_refused():
    ec2 = EC2Section()
    with pytest.raises(ConfigError) as err:
        prepare_user_data(ec2, '#!/bin/sh\necho "master is %site%"\n',
                          configured={"site": "a$(reboot)"})
    assert err.value.key == "substitute.site" and "reboot" not in str(err.value)
    assert prepare_user_data(ec2, "#!/bin/sh\nX=%site%\n", configured={"site": "lab-1.x"}) == \
        b"#!/bin/sh\nX=lab-1.x\n"


@pytest.mark.parametrize("name, value, words", [
    ("ipv4", "10.0.0.1'; touch /tmp/pwned; '", "expected an IPv4 address"),
    ("ipv4", "10.0.0.256", "expected an IPv4 address"),
    ("ipv6", "10.0.0.1", "expected an IPv6 address"),
    ("fqdn", "master; reboot", "expected a host name"),
    ("token", "not-a-token'$(reboot)'", "expected an IDTOKEN"),
    ("site", "two\nlines", "control characters"),
])
def test_config_check_refuses_substitute_values_that_cannot_be_valid(tmp_path, name, value, words):
    path = tmp_path / "elastiq.yaml"
    import yaml
    path.write_text(yaml.safe_dump({"substitute": {name: value}}))
    result = subprocess.run([sys.executable, "-m", "elastiq", "config", "check", str(path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and f"substitute.{name}" in result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    if name == "token":
        assert "reboot" not in result.stderr  # the token is never quoted back


def test_config_check_accepts_what_the_master_writes(tmp_path):
    path = tmp_path / "elastiq.yaml"
    # the substitute values the master's boot writes, in a configuration run would accept
    path.write_text(f'ec2:\n  region: us-east-1\n'
                    f'substitute:\n  ipv4: "10.1.2.3"\n  token: "{TOKEN}"\n')
    result = subprocess.run([sys.executable, "-m", "elastiq", "config", "check", str(path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("change, words", [
    (("KEY_NAME=lab key", "KEY_NAME=nobody's key"), "KEY_NAME: no key pair"),
    (("FLAVOR_VMS=m1.large", "FLAVOR_VMS=m9.huge"), "FLAVOR_VMS: no flavour"),
])
def test_key_pair_and_flavour_are_checked_against_the_cloud(ecm_moto, workdir, change, words):
    (workdir / "ecm.conf").write_text(CONF.replace(*change))
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY])
    assert result.returncode == 2 and words in result.stderr and "ecm.conf" in result.stderr
    assert not written(workdir) and "Traceback" not in result.stderr


@pytest.mark.parametrize("line, words", [
    ("MAX_VMS=100000000000000000000000000", "MAX_VMS: must be <= 10000"),
    ("MAX_VMS=" + "9" * 5000, "MAX_VMS: must be <= 10000"),
    ("JOBS_PER_VM=5000", "JOBS_PER_VM: must be <= 1024"),
    ("IDLE_TIME=99999999", "IDLE_TIME: must be <= 2592000"),
])
def test_numbers_are_bounded(ecm_moto, workdir, line, words):
    key = line.split("=")[0]
    (workdir / "ecm.conf").write_text(re.sub(rf"^{key}=.*$", line, CONF, flags=re.M))
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789abcdef0")
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_render_bounds_the_numbers_given_as_answers():
    for changes, field in (({"max_vms": 10**26}, "max_vms"),
                           ({"master_lost_shutdown_s": 10**9}, "master_lost_shutdown_s"),
                           ({"worker_join_limit_s": 59}, "worker_join_limit_s")):
        with pytest.raises(render.RenderError) as err:
            render.render_master(answers(**changes))
        assert err.value.field == field


def test_an_existing_output_is_refused_before_the_cloud_is_asked(failing_credentials, workdir):
    (workdir / "taken").write_text("keep me")
    result = run(failing_credentials, workdir, "--yes", "--os", "rocky9", "--image",
                 "ami-0123456789abcdef0", "-o", "taken")
    assert result.returncode == 2 and "taken exists" in result.stderr
    assert "rejected our credentials" not in result.stderr
    assert (workdir / "taken").read_text() == "keep me"


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_force_never_replaces_what_is_not_a_regular_file(ecm_moto, workdir, kind):
    target = workdir / "out"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        (workdir / "real").write_text("keep me")
        target.symlink_to(workdir / "real")
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "out", "--force")
    assert result.returncode == 2 and "not a regular file" in result.stderr
    assert os.path.lexists(target) and not target.is_file() or target.is_symlink()
    assert kind != "symlink" or (workdir / "real").read_text() == "keep me"


def test_force_replaces_a_regular_file(ecm_moto, workdir):
    (workdir / "out").write_text("old")
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "out", "--force")
    assert result.returncode == 0, result.stderr
    assert (workdir / "out").read_bytes().startswith(b"#!/bin/bash\n")
