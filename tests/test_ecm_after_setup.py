"""The README's "Create a cluster" commands right after set-up step 1 alone (issue 25, items 1
and 2): ``sh tools/venv.sh .`` (a regular install, no test extras: no ``wheel`` package), then
the section's commands as written, against the moto server.  Both ways the README names give
the master this very elastiq: ``.venv/bin/ecm`` (no source tree: the installed files are packed
back into their wheel) and ``.venv/bin/python ecm.py`` (from the checkout: pip builds it, with a
build backend from its index when the one installed cannot make wheels).  A build that fails
shows pip's cause.

Needs: pip's configured index (``sh tools/venv.sh .`` installs the dependencies from it, and
the checkout build fetches setuptools there, as step 1 itself does), ~40 s for the venv."""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.local  # builds a venv and runs pip, ecm and python as processes

from elastiq import __version__ as OWN_VERSION
from tests.test_ecm_source import answer_values, install, installed_version, s3
from tests.test_ecm_wizard import CONF, ecm_moto, master_text  # noqa: F401 fixture
from tests.test_ops_setup import README, _copy_of_the_repository, setup_commands

ROCKY = "Rocky-9-EC2-Base-9.4-20240509.0.x86_64"


def create_lines():
    """The lines of the section's sh block: ``(command, comment)``."""
    block = README[README.index("## Create a cluster"):]
    block = block[block.index("```sh\n") + 6:]
    return [tuple(part.strip() for part in (line.split("  #", 1) + [""])[:2])
            for line in block[:block.index("```")].splitlines() if line.strip()]


@pytest.fixture(scope="module")
def step1_clone(tmp_path_factory):
    """A copy of the repository after set-up step 1's install (``sh tools/venv.sh .``)."""
    clone = _copy_of_the_repository(tmp_path_factory.mktemp("step1") / "clone")
    install_part = setup_commands()[0].split("&&")[0].strip()
    assert install_part == "sh tools/venv.sh ."
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    done = subprocess.run(["sh", "-c", install_part], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([str(clone / ".venv/bin/python"), "-m", "pip", "list"],
                            capture_output=True, text=True, check=True).stdout
    assert not re.search(r"^wheel ", listed, re.M), "step 1 must not bring the wheel package"
    return clone


def _run_readme(clone: Path, moto, output: str, cluster: str, ecm_line: int = 2):
    """The section's commands in order: the editor writes our ecm.conf, ec2rc.sh points at the
    moto server; the ecm command gets the answers as flags (``ecm_line``: which way)."""
    lines = create_lines()
    commands = [command for command, _ in lines]
    assert commands[0] == "cp etc/ecm.conf.example ecm.conf && ${EDITOR:-vi} ecm.conf"
    assert commands[1] == ". ./ec2rc.sh" and "S3_URL" in lines[1][1]
    (clone / "ec2rc.sh").write_text(
        f"export EC2_URL={moto.url} S3_URL={moto.url}\n"
        "export EC2_ACCESS_KEY=testing EC2_SECRET_KEY=testing-secret\n")
    editor = clone / "editor.sh"
    editor.write_text(f"#!/bin/sh\nprintf '%s' {shlex.quote(CONF)} > \"$1\"\n")
    editor.chmod(0o755)
    ecm = commands[2] if ecm_line == 2 else re.search(r"the same: ([^)]+)\)", lines[2][1]).group(1)
    assert ecm in (".venv/bin/ecm", ".venv/bin/python ecm.py")
    flags = (f" --yes --os rocky9 --image {moto.images[ROCKY]} -o {output} "
             f"--cluster-name {cluster}")
    script = " && ".join([commands[0], commands[1], ecm + flags])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(clone), "LANG": "C.UTF-8",
           "EDITOR": str(editor), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    return subprocess.run(["sh", "-c", script], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=600)


def _staged_wheel(moto, cluster: str) -> bytes:
    name = f"elastiq-{OWN_VERSION}-py3-none-any.whl"
    client = s3(moto.url)
    for bucket in client.list_buckets()["Buckets"]:
        try:
            return client.get_object(Bucket=bucket["Name"], Key=f"{cluster}/{name}")["Body"].read()
        except client.exceptions.NoSuchKey:
            continue
    raise AssertionError(f"no staged {name} for {cluster}")


def _check_master_gets_this_elastiq(clone, moto, cluster, output, tmp_path):
    master = master_text(clone / output)
    spec = answer_values(master)["ELASTIQ_SOURCE"]
    staged = _staged_wheel(moto, cluster)
    assert spec.endswith("#sha256=" + hashlib.sha256(staged).hexdigest())
    (tmp_path / "staged.whl").write_bytes(staged)
    with zipfile.ZipFile(tmp_path / "staged.whl") as archive:
        names = set(archive.namelist())
        for path in (clone / "elastiq").rglob("*.py"):
            relative = path.relative_to(clone).as_posix()
            assert archive.read(relative) == path.read_bytes(), relative
    assert "ecm/slave_files/rocky9.sh.j2" in names and "elastiq/systemd/elastiq.service" in names
    done = install(master, tmp_path, PIP_NO_INDEX="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed_version(tmp_path) == OWN_VERSION


@pytest.mark.timeout(900)
def test_readme_ecm_after_step1_gives_the_master_this_elastiq(step1_clone, ecm_moto, tmp_path):
    done = _run_readme(step1_clone, ecm_moto, "master-a.ud", "after-step1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Uploaded elastiq-{OWN_VERSION}-py3-none-any.whl" in done.stdout
    assert re.search(r"Boot the master before \d{4}-\d\d-\d\d", done.stdout)
    _check_master_gets_this_elastiq(step1_clone, ecm_moto, "after-step1", "master-a.ud",
                                    tmp_path)


@pytest.mark.timeout(900)
def test_readme_ecm_py_from_the_checkout_after_step1(step1_clone, ecm_moto, tmp_path):
    done = _run_readme(step1_clone, ecm_moto, "master-b.ud", "after-step1-py", ecm_line=3)
    assert done.returncode == 0, done.stdout + done.stderr
    _check_master_gets_this_elastiq(step1_clone, ecm_moto, "after-step1-py", "master-b.ud",
                                    tmp_path)


def test_a_failed_build_shows_pips_cause(tmp_path):
    from ecm import wheel

    tree = tmp_path / "src"
    (tree / "elastiq").mkdir(parents=True)
    (tree / "elastiq" / "__init__.py").write_text("")
    (tree / "pyproject.toml").write_text("[project\nname = 'elastiq'\n")  # not TOML
    with pytest.raises(wheel.WheelError) as err:
        wheel.build(tmp_path / "out", root=tree)
    text = str(err.value)
    assert "pip said:" in text and "Expected ']' at the end of a table declaration" in text
    assert "See above" not in text and "Traceback" not in text


def test_openstack_without_its_extra_names_the_extra(step1_clone):
    """Step 1 installs no OpenStack SDK (the ``openstack`` extra): ecm says which extra."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(step1_clone), "OS_CLOUD": "lab"}
    done = subprocess.run([str(step1_clone / ".venv/bin/ecm"), "--cloud", "openstack", "--yes",
                           "--conf", "etc/ecm.conf.example", "--os", "rocky9", "--image",
                           "some-image", "--elastiq-source",
                           f"elastiq=={OWN_VERSION}"], cwd=step1_clone, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--cloud openstack needs the" in done.stderr
    assert "pip install 'elastiq[openstack]'" in done.stderr
    assert "unexpected error" not in done.stderr and "ModuleNotFoundError" not in done.stderr
