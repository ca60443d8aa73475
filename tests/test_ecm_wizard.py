"""The ecm wizard end to end: a real terminal (pexpect) against a moto EC2 server on 127.0.0.1,
and the non-interactive runs, with the failures a user meets (bad answers, Ctrl-C, bad ecm.conf,
bad credentials, no terminal)."""
from __future__ import annotations

import base64
import datetime
import gzip
import io
import os
import re
import socket
import stat
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import pexpect
import pytest
import yaml

from ecm import render, wizard
from tests.support.ec2_server import MotoServer
from tests.support.ecm_wheel import own_wheel

ROOT = Path(__file__).resolve().parent.parent
ECM = str(ROOT / "ecm.py")
DOWN, ENTER, KILL_LINE, CTRL_C = "\x1b[B", "\r", "\x15", "\x03"
ALMA = "AlmaLinux OS 9.4.20240805 x86_64"
NOBLE = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801"
CONF = "FLAVOR_VMS=m1.large\nMAX_VMS=5\nMIN_VMS=0\nJOBS_PER_VM=2\nIDLE_TIME=900\nKEY_NAME=lab key\n"
#: Image names as the publishers spell them (AWS and OpenStack styles), plus releases that must
#: not be offered for the supported systems.
IMAGE_NAMES = (
    "AlmaLinux OS 9.4.20240805 x86_64",
    "AlmaLinux OS 8.10.20240819 x86_64",
    "Rocky-9-EC2-Base-9.4-20240509.0.x86_64",
    "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240801",
    NOBLE,
    "debian-12-amd64-20240717-1811",
    "debian-11-amd64-20240717-1811",
)


@dataclass
class EcmCloud:
    """The session's moto server (``tests/support``), emptied, with ``IMAGE_NAMES`` registered."""

    url: str
    images: Dict[str, str]  # name -> image id


@pytest.fixture
def ecm_moto(moto: MotoServer) -> EcmCloud:
    client = moto.client()
    client.create_key_pair(KeyName="lab key")
    images = {name: client.register_image(Name=name, RootDeviceName="/dev/sda1",
                                          Architecture="x86_64",
                                          VirtualizationType="hvm")["ImageId"]
              for name in IMAGE_NAMES}
    return EcmCloud(moto.url, images)


def _moto_auth(url: str, enforced: bool) -> None:
    """moto's own switch: with it on, unknown access keys get AuthFailure."""
    request = urllib.request.Request(f"{url}/moto-api/reset-auth",
                                     data=b"0" if enforced else b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture
def failing_credentials(ecm_moto: EcmCloud) -> Iterator[EcmCloud]:
    """The cloud refuses every access key while the test runs (the server is shared: the switch
    is turned off again however the test ends)."""
    _moto_auth(ecm_moto.url, True)
    try:
        yield ecm_moto
    finally:
        _moto_auth(ecm_moto.url, False)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "ecm.conf").write_text(CONF)
    return tmp_path


def environment(moto, **extra):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
           "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "EC2_URL": moto.url,
           "S3_URL": moto.url, "EC2_ACCESS_KEY": "testing", "EC2_SECRET_KEY": "testing-secret",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    env.update(extra)
    return env


def spawn(moto, cwd, *args, **env):
    """ecm in a terminal, pointed at the wheel built once (the default path builds it each run:
    tests/test_ecm_source.py covers that)."""
    args = ("--elastiq-source", str(own_wheel().path), *args)
    return pexpect.spawn(sys.executable, [ECM, *args], cwd=str(cwd), env=environment(moto, **env),
                         encoding="utf-8", timeout=30, dimensions=(50, 200))


def run(moto, cwd, *args, built=True, **env):
    """ecm without a terminal; ``built``: pointed at the wheel built once, unless the test
    gives its own --elastiq-source."""
    if built and "--elastiq-source" not in args:
        args = ("--elastiq-source", str(own_wheel().path), *args)
    return subprocess.run([sys.executable, ECM, *args], cwd=str(cwd), env=environment(moto, **env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def answer(child, text):
    """Replace the prompt's text and press Enter, once the terminal shows what was typed (so the
    screen is redrawn between two answers and a refusal's reason appears in full)."""
    child.send(KILL_LINE + text)
    child.expect_exact(text[-5:])
    child.send(ENTER)


def written(cwd):
    files = [p for p in Path(cwd).iterdir() if p.name.startswith("master-")]
    return files


def master_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")


def embedded_config(text: str) -> dict:
    start = text.index("<<'ELASTIQ_YAML'\n") + len("<<'ELASTIQ_YAML'\n")
    return yaml.safe_load(text[start:text.index("\nELASTIQ_YAML\n")])


def test_interactive_happy_path(ecm_moto, workdir):
    child = spawn(ecm_moto, workdir)
    child.expect("Operating system of the master and the workers")
    child.send(DOWN * 3 + ENTER)                       # Ubuntu 24.04
    child.expect("Image for the Ubuntu 24.04")
    child.expect("ubuntu-noble-24.04")
    child.send(ENTER)                                  # the one matching image
    child.expect("Cluster name:")
    answer(child, "bad name!")
    child.expect("1-63 letters")                       # refused, with the reason: asked again
    answer(child, "physics-2024")
    child.expect(r"Embed the cloud credentials")
    child.send("y")
    child.expect("WARNING: the cloud credentials are embedded")
    child.expect(r"Write master-ubuntu2404-\S+\?")
    child.send("y")
    child.expect("Wrote master-ubuntu2404-")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    [path] = written(workdir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = embedded_config(master_text(path))
    assert cfg["ec2"]["image_id"] == ecm_moto.images[NOBLE]
    assert cfg["elastiq"]["cluster_name"] == "physics-2024"
    assert (cfg["ec2"]["key_name"], cfg["ec2"]["flavour"], cfg["quota"]) == \
        ("lab key", "m1.large", {"min_vms": 0, "max_vms": 5})
    assert (cfg["ec2"]["aws_access_key_id"], cfg["ec2"]["aws_secret_access_key"]) == \
        ("testing", "testing-secret")
    worker = base64.b64decode(cfg["ec2"]["user_data_b64"]).decode()
    assert worker == render.render_worker(render.Answers(
        os_id="ubuntu2404", image_id=ecm_moto.images[NOBLE], cluster_name="physics-2024",
        flavour="m1.large", min_vms=0, max_vms=5, jobs_per_vm=2, idle_time_s=900,
        key_name="lab key", signing_key="unused-by-the-worker-" * 3))


def test_other_image_is_validated_and_asked_again(ecm_moto, workdir):
    child = spawn(ecm_moto, workdir)
    child.expect("Operating system")
    child.send(ENTER)                                  # AlmaLinux 9
    child.expect("Image for the AlmaLinux 9")
    child.expect("Other image")
    child.send(DOWN + ENTER)                           # past the one AlmaLinux 9 image
    child.expect("Image id:")
    answer(child, "ami-nothex")
    child.expect("an image id looks like ami-0123abcd")
    answer(child, "ami-0123456789abcdef0")
    child.expect("no such available image")
    answer(child, ecm_moto.images[ALMA])
    child.expect("Cluster name:")
    child.send(ENTER)                                  # the default, from the date
    child.expect("Embed the cloud credentials")
    child.send("n")
    child.expect("instance role")
    child.expect(r"Write master-almalinux9-")
    child.send("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    [path] = written(workdir)
    cfg = embedded_config(master_text(path))
    assert cfg["ec2"]["image_id"] == ecm_moto.images[ALMA]
    assert cfg["elastiq"]["cluster_name"].startswith("elastiq-")
    assert "aws_secret_access_key" not in cfg["ec2"]


def test_the_cloud_is_asked_when_openstack_credentials_are_there(ecm_moto, workdir, tmp_path):
    """OS_CLOUD next to EC2 keys: the wizard asks which cloud (EC2 the default answer); an
    OpenStack answer goes to that cloud (here an entry no clouds.yaml has: refused, named)."""
    child = spawn(ecm_moto, workdir, OS_CLOUD="physics-lab",
                  OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"))
    child.expect("Cloud API of the master and the workers")
    child.send(ENTER)                                  # EC2: its keys are in the environment
    child.expect("Operating system")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    child = spawn(ecm_moto, workdir, OS_CLOUD="physics-lab",
                  OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"))
    child.expect("Cloud API of the master and the workers")
    child.send("\x1b[A" + ENTER)                      # up: OpenStack
    child.expect("physics-lab")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2  # credentials to fix: bad input (issue 25, item 12)
    assert sorted(p.name for p in workdir.iterdir()) == ["ecm.conf"]


def test_a_slurm_cluster_is_offered_only_the_operating_systems_it_runs_on(ecm_moto, workdir):
    """--batch slurm: the one OS whose Slurm the workers can join, labelled with that Slurm
    (not with the HTCondor the same OS would install), is the only choice."""
    child = spawn(ecm_moto, workdir, "--batch", "slurm")
    child.logfile_read = screen = io.StringIO()
    child.expect("Operating system of the master and the workers")
    child.expect("Debian 13 \\(trixie\\), Slurm 24.11 from Debian")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)
    child.close()
    shown = screen.getvalue()
    assert child.exitstatus == 130
    assert "Slurm 24.11" in shown
    assert not re.search("AlmaLinux|Rocky|Ubuntu|Debian 12|HTCondor", shown), shown


def test_an_os_a_slurm_cluster_cannot_run_on_is_refused_before_the_cloud(ecm_moto, workdir):
    done = run(ecm_moto, workdir, "--yes", "--batch", "slurm", "--os", "rocky9", "--image",
               ecm_moto.images[ALMA], EC2_URL="http://127.0.0.1:9")  # no cloud listens there
    assert done.returncode == 2, done.stderr
    assert "--os rocky9: --batch slurm runs on debian13 only" in done.stderr, done.stderr
    assert "127.0.0.1:9" not in done.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["ecm.conf"]


def test_choose_cloud_asks_only_when_openstack_credentials_are_there():
    class Asked:
        def cloud(self, default):
            self.default = default
            return "openstack"

    asked = Asked()
    assert wizard.choose_cloud(asked, {"EC2_ACCESS_KEY": "k"}) == "ec2"
    assert wizard.choose_cloud(None, {"OS_CLOUD": "lab"}) == "ec2"  # --yes: never asked
    assert wizard.choose_cloud(asked, {"OS_AUTH_URL": "https://k:5000"}) == "openstack"
    assert asked.default == "openstack"
    assert wizard.choose_cloud(asked, {"OS_CLOUD": "lab", "EC2_URL": "https://e"}) == "openstack"
    assert asked.default == "ec2"


def test_ctrl_c_leaves_nothing_written(ecm_moto, workdir):
    child = spawn(ecm_moto, workdir)
    child.expect("Operating system")
    child.send(ENTER)
    child.expect("Image for the AlmaLinux 9")
    child.send(ENTER)
    child.expect("Cluster name:")
    child.send(ENTER)
    child.expect("Embed the cloud credentials")
    child.send("n")
    child.expect("Write master-")
    child.send(CTRL_C)
    child.expect("interrupted: nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert sorted(p.name for p in workdir.iterdir()) == ["ecm.conf"]


def test_without_a_terminal_it_says_how_to_run_non_interactively(ecm_moto, workdir):
    result = run(ecm_moto, workdir)
    assert result.returncode == 2
    assert "not a terminal" in result.stderr and "--yes --os" in result.stderr
    assert "--image ami-0123abcd" in result.stderr
    assert "Traceback" not in result.stderr and not written(workdir)
    on_openstack = run(ecm_moto, workdir, "--cloud", "openstack")
    assert on_openstack.returncode == 2 and "--cloud openstack" in on_openstack.stderr
    assert "ami-" not in on_openstack.stderr  # a Glance id, not an AMI, as the example


def test_non_interactive_run_writes_the_file(ecm_moto, workdir):
    image = ecm_moto.images["Rocky-9-EC2-Base-9.4-20240509.0.x86_64"]
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", image,
                 "--cluster-name", "batch-1", "--output", "master.ud", "--embed-credentials",
                 "--htcondor-series", "25.x")
    assert result.returncode == 0, result.stderr
    path = workdir / "master.ud"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "Wrote master.ud" in result.stdout and "--user-data master.ud" in result.stdout
    assert "--image Rocky-9-EC2-Base-9.4-20240509.0.x86_64" in result.stdout  # Glance name
    assert f"--image-id {image}" in result.stdout                             # EC2 id
    text = master_text(path)
    assert "HTCONDOR_SERIES=25.x" in text and "ELASTIQ_SOURCE='elastiq @ http" in text
    assert path.read_bytes().startswith(b"#!/bin/bash\n")  # not AWS: Nova's limit, plain text
    cfg = embedded_config(text)
    assert (cfg["ec2"]["image_id"], cfg["elastiq"]["cluster_name"]) == (image, "batch-1")
    assert "testing-secret" not in result.stdout + result.stderr


def test_a_master_over_the_limit_is_written_gzip_compressed(ecm_moto, workdir):
    image = ecm_moto.images["debian-12-amd64-20240717-1811"]
    result = run(ecm_moto, workdir, "--yes", "--os", "debian12", "--image", image, "-o", "m.gz",
                 "--embed-credentials", "--user-data-limit", "16384")
    assert result.returncode == 0, result.stderr
    data = (workdir / "m.gz").read_bytes()
    assert data[:2] == b"\x1f\x8b" and len(data) <= 16384
    assert "gzip-compressed" in result.stdout
    assert embedded_config(master_text(workdir / "m.gz"))["ec2"]["image_id"] == image


@pytest.mark.parametrize("args, words", [
    (["--yes", "--os", "rocky9"], "--yes needs --image"),
    (["--yes", "--os", "rocky9", "--image", "ami-0123456789abcdef0"], "no such available image"),
    (["--yes", "--os", "rocky9", "--image", "x", "--cluster-name", "a b"], "--cluster-name"),
    (["--yes", "--os", "rocky9", "--image", "x", "--ca-bundle", "/nonexistent"], "--ca-bundle"),
])
def test_non_interactive_errors(ecm_moto, workdir, args, words):
    result = run(ecm_moto, workdir, *args)
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr and not written(workdir)


def test_bad_ecm_conf_names_line_and_key(ecm_moto, workdir):
    (workdir / "other.conf").write_text(CONF.replace("MIN_VMS=0", "MIN_VMS=many"))
    result = run(ecm_moto, workdir, "--conf", "other.conf", "--yes", "--os", "rocky9",
                 "--image", "ami-0123456789abcdef0")
    assert result.returncode == 2
    assert "other.conf, line 3, MIN_VMS: expected a whole number" in result.stderr


def test_bad_credentials_give_a_clear_message(failing_credentials, workdir):
    result = run(failing_credentials, workdir, "--yes", "--os", "rocky9",
                 "--image", "ami-0123456789ab", EC2_SECRET_KEY="wrong-secret-value")
    assert result.returncode == 2  # refused credentials: input to fix (issue 25, item 12)
    assert "rejected our credentials" in result.stderr and "EC2_SECRET_KEY" in result.stderr
    assert failing_credentials.url in result.stderr
    assert "wrong-secret-value" not in result.stderr and "Traceback" not in result.stderr


def test_no_credentials_anywhere_says_where_to_put_them(ecm_moto, workdir):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789ab",
                 EC2_ACCESS_KEY="", EC2_SECRET_KEY="")
    assert result.returncode == 2  # missing credentials: input to fix (issue 25, item 12)
    assert "no cloud credentials: source your ec2rc.sh" in result.stderr


def test_unreachable_endpoint_gives_a_clear_message(ecm_moto, workdir):
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789ab",
                 EC2_URL=f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot reach the EC2 endpoint" in result.stderr and "EC2_URL" in result.stderr


def test_write_private_is_atomic_and_0600(tmp_path):
    target = tmp_path / "master-x"
    wizard.write_private(str(target), b"#!/bin/bash\n")
    assert target.read_bytes() == b"#!/bin/bash\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    (blocked / "inside").write_text("x")
    with pytest.raises(OSError):  # rename onto a non-empty directory fails: no debris left
        wizard.write_private(str(blocked), b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory", "master-x"]


def test_two_runs_in_the_same_minute_name_two_clusters():
    """Issue 25, item 7: the name is the cluster's tag on the cloud and its staged wheel's
    folder; two default names of one minute used to be the same."""
    from ecm.wizard import default_cluster_name
    from ecm.answers import CLUSTER_NAME
    at = datetime.datetime(2026, 12, 5, 15, 40)
    names = {default_cluster_name(at) for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert CLUSTER_NAME.fullmatch(name) and re.fullmatch(r"elastiq-20261205-1540-[0-9a-f]{4}", name)


FAMILY_CONF = CONF.replace("FLAVOR_VMS=m1.large", "FLAVOR_VMS=c5.2xlarge").replace(
    "JOBS_PER_VM=2", "JOBS_PER_VM=0")


@pytest.mark.parametrize("flag, flavour", [
    ((), "c5.2xlarge"),  # --yes: FLAVOR_VMS alone, and a note on the flag
    (("--flavour-family",), ["c5.2xlarge", "c5.xlarge", "c5.large"]),
    (("--one-flavour",), "c5.2xlarge"),
])
def test_the_flavour_family_is_listed_with_consent_only(ecm_moto, workdir, flag, flavour):
    """moto describes EC2's c5 sizes: c5.xlarge (4 cpus, 8 GiB) and c5.large (2, 4 GiB) are
    the smaller sizes of c5.2xlarge (8, 16 GiB), largest first; the written configuration
    loads in elastiq as a list of flavours."""
    (workdir / "ecm.conf").write_text(FAMILY_CONF)
    image = ecm_moto.images["Rocky-9-EC2-Base-9.4-20240509.0.x86_64"]
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", image,
                 "--output", "master.ud", "--embed-credentials", *flag)
    assert result.returncode == 0, result.stderr
    cfg = embedded_config(master_text(workdir / "master.ud"))
    assert cfg["ec2"]["flavour"] == flavour
    assert ("--flavour-family lets elastiq launch them" in result.stderr) == (not flag)
    from elastiq.config.loader import from_dict
    loaded = from_dict(cfg, "master.ud")
    assert loaded.cloud.flavour == (tuple(flavour) if isinstance(flavour, list) else flavour)


def test_the_family_question_is_asked_when_the_cloud_offers_one(ecm_moto, workdir):
    (workdir / "ecm.conf").write_text(FAMILY_CONF)
    child = spawn(ecm_moto, workdir, "--os", "rocky9", "--image",
                  ecm_moto.images["Rocky-9-EC2-Base-9.4-20240509.0.x86_64"],
                  "--cluster-name", "fam-1", "--no-embed-credentials")
    child.expect(r"smaller sizes of c5.2xlarge: c5.xlarge \(4 cpus, 8 GiB\), c5.large "
                 r"\(2 cpus, 4 GiB\)")
    child.send("y")
    child.expect(r"workers of c5.2xlarge, c5.xlarge, c5.large")
    child.expect(r"Write master-rocky9-\S+\?")
    child.send("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    [path] = written(workdir)
    assert embedded_config(master_text(path))["ec2"]["flavour"] == \
        ["c5.2xlarge", "c5.xlarge", "c5.large"]
