"""The README's by-hand install ("Run and operate elastiq") run in order in a scratch root, as
root (issue 25, item 3): `tools/install-service.sh` makes the user, /opt/elastiq, the example
configuration (0640 root:elastiq) and the unit; the configuration, edited as `sudoedit` would,
passes `config check --online` run as the elastiq user against the moto server and a real
pool; the unit's ExecStart names the linked program.  Before, the README's commands failed:
no /etc/elastiq, a 0600 root-owned file the unit's user cannot read, no /usr/local/bin/elastiq,
no elastiq user."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.support import tools
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
from tests.support.ec2_server import REGION

ROOT_DIR = Path(__file__).resolve().parent.parent
BASE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: the README block's commands, in order, as this test runs them
SEQUENCE = ["sudo sh tools/install-service.sh", "sudoedit /etc/elastiq/elastiq.yaml",
            "sudo -u elastiq elastiq config check --online",
            "sudo systemctl enable --now elastiq"]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the install runs as root")


def readme_commands():
    text = (ROOT_DIR / "README.md").read_text()
    section = text[text.index("## Run and operate elastiq"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture
def scratch():
    """An empty root holding only root's user and group, readable by other users."""
    root = Path(tempfile.mkdtemp(prefix="elastiq-install-", dir="/var/tmp"))
    root.chmod(0o755)
    (root / "etc").mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        lines = Path("/etc", name).read_text().splitlines() if Path("/etc", name).exists() else []
        (root / "etc" / name).write_text("".join(f"{l}\n" for l in lines if l.startswith("root:")))
    try:
        yield root
    finally:
        shutil.rmtree(root)


def install(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "tools/install-service.sh"], cwd=ROOT_DIR, capture_output=True,
                          text=True, timeout=600, env={"PATH": BASE_PATH, "ROOT": str(root),
                                                       "HOME": "/root"})


def account(root: Path, name: str):
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3]), fields[5], fields[6]
    return None


@needs_root
def test_the_readme_by_hand_install_in_order(scratch, moto, ec2_world, condor_pool):
    assert readme_commands()[:len(SEQUENCE)] == SEQUENCE  # the README says what runs here
    # 1. sudo sh tools/install-service.sh
    done = install(scratch)
    assert done.returncode == 0, done.stderr
    uid, gid, home, shell = account(scratch, "elastiq")
    assert (home, shell) == ("/var/lib/elastiq", "/usr/sbin/nologin") and 0 < uid < 1000
    config = scratch / "etc/elastiq/elastiq.yaml"
    info = config.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, gid)
    assert config.read_text() == (ROOT_DIR / "etc/elastiq.yaml").read_text()
    unit = (scratch / "etc/systemd/system/elastiq.service").read_text()
    assert unit == (ROOT_DIR / "systemd/elastiq.service").read_text()
    program = re.search(r"^ExecStart=(\S+)", unit, re.M).group(1)
    assert os.readlink(scratch / program.lstrip("/")) == "/opt/elastiq/bin/elastiq"
    elastiq = scratch / "opt/elastiq/bin/elastiq"
    version = subprocess.run([str(elastiq), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("elastiq "), version

    # 2. sudoedit /etc/elastiq/elastiq.yaml: the cloud and the workers' user-data, as an
    # administrator would fill them in
    worker = scratch / "etc/elastiq/worker-user-data.sh"
    worker.write_text("#!/bin/sh\necho 'join %ipv4% with %token%'\n")
    os.chown(worker, 0, gid)
    worker.chmod(0o640)
    data = yaml.safe_load(config.read_text())
    data["substitute"] = {"ipv4": "127.0.0.1", "token": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}
    data["elastiq"].update(cluster_name="by-hand")
    data["ec2"].update(api_url=moto.url, region=REGION, aws_access_key_id=ACCESS_KEY,
                       aws_secret_access_key=SECRET_KEY, image_id=ec2_world.image_id,
                       flavour="t3.micro", key_name=ec2_world.key_name,
                       user_data_file=str(worker))
    config.write_text(yaml.safe_dump(data))  # sudoedit keeps the file's owner and mode

    # 3. sudo -u elastiq elastiq config check --online
    def as_elastiq():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    check = subprocess.run([str(elastiq), "config", "check", "--online", "--config", str(config)],
                           capture_output=True, text=True, timeout=120, preexec_fn=as_elastiq,
                           cwd="/", env=condor_pool.env({"PATH": BASE_PATH}))
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"ok       ec2.image_id {ec2_world.image_id}: " in check.stdout
    assert "ok       queue: 0 idle job(s), 0 running" in check.stdout
    # 4. sudo systemctl enable --now elastiq: not in a scratch root; tests/test_systemd.py
    # verifies the unit itself

    # the script again: nothing made twice, the edited configuration kept
    again = install(scratch)
    assert again.returncode == 0, again.stderr
    assert "user elastiq exists" in again.stderr and "kept the existing" in again.stderr
    assert yaml.safe_load(config.read_text())["elastiq"]["cluster_name"] == "by-hand"
    users = [line.split(":")[0] for line in (scratch / "etc/passwd").read_text().splitlines()]
    assert users == ["root", "elastiq"]


@needs_root
def test_the_script_refuses_to_run_as_another_user():
    done = subprocess.run(["sh", "tools/install-service.sh"], cwd=ROOT_DIR, capture_output=True,
                          text=True, env={"PATH": BASE_PATH, "ROOT": "/nonexistent"},
                          preexec_fn=lambda: os.setuid(65534))
    assert done.returncode == 1 and "run as root (sudo sh tools/install-service.sh)" in done.stderr


def test_the_shell_scripts_of_tools_and_ci_pass_shellcheck():
    scripts = sorted(str(p) for p in [*ROOT_DIR.glob("tools/*.sh"), *ROOT_DIR.glob(".ci/*.sh"),
                                      ROOT_DIR / ".ci/run"])
    assert "tools/install-service.sh" in " ".join(scripts)
    shellcheck = tools.require("shellcheck", tools.SHELLCHECK_HINT)
    done = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
