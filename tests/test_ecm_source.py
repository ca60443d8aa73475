"""The master installs exactly the elastiq of the ecm that wrote it, on every path (part 1 of
issue 12): the wizard's default (this ecm's wheel, built and staged in the object store of the
moto server, installed from a presigned URL pinned by sha256), a wheel file to stage, a pin
checked against an index (a PEP 503 index on 127.0.0.1), and a VCS URL pinned to a commit.
The master's own ``install-elastiq`` unit runs here with bash into a fresh virtualenv (pip with
``--no-deps``: the dependencies are PyPI's business, the version is ours)."""
from __future__ import annotations

import hashlib
import http.server
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from ecm import render, source
from elastiq import __version__ as OWN_VERSION
from tests.support.ecm_wheel import own_wheel
from tests.test_ecm_wizard import (ecm_moto, master_text, run, workdir,  # noqa: F401 fixtures
                                   written)

ROCKY = "Rocky-9-EC2-Base-9.4-20240509.0.x86_64"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def answer_values(master: str) -> dict:
    block = re.search(r"^# --- answers \(ecm\) ---\n(.*?)^# --- end of answers ---\n", master,
                      re.S | re.M).group(1)
    out = subprocess.run(["bash", "-euc", block + "\ndeclare -p ELASTIQ_SOURCE PIP_INDEX"],
                         capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r'declare -- (\w+)="(.*)"', out))


def install(master: str, tmp_path: Path, version: str = OWN_VERSION,
            **env) -> subprocess.CompletedProcess:
    """Run the master's functions + install-elastiq units with bash, into tmp_path/venv."""
    units = render.units(master)
    values = answer_values(master)
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    pip_conf = tmp_path / "pip.conf"  # the master's /etc/pip.conf, written by its pip-config unit
    pip_conf.write_text("")
    (stub / "sleep").write_text("#!/bin/sh\nexit 0\n")  # retry's pauses: no real sleeping
    (stub / "sleep").chmod(0o755)
    script = (f"ELASTIQ_VENV={shlex.quote(str(tmp_path / 'venv'))}\nHTCONDOR_SERIES=25.0\n"
              f"ELASTIQ_VERSION={shlex.quote(version)}\n"
              f"ELASTIQ_SOURCE={shlex.quote(values['ELASTIQ_SOURCE'])}\n"
              f"PIP_INDEX={shlex.quote(values['PIP_INDEX'])}\n"
              f"PIP_CONF={shlex.quote(str(pip_conf))}\n"
              + units["functions"] + units["pip-config"] + units["install-elastiq"])
    base = {"PATH": f"{stub}:/usr/bin:/bin:{Path(sys.executable).parent}",
            "HOME": str(tmp_path), "PIP_CONFIG_FILE": str(pip_conf), "PIP_NO_DEPS": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(["bash", "-euc", script], capture_output=True, text=True,
                          env={**base, **env}, timeout=300)


def installed_version(tmp_path: Path) -> str:
    return subprocess.run([str(tmp_path / "venv/bin/python3"), "-c",
                           "import importlib.metadata as m; print(m.version('elastiq'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def s3(moto_url: str):
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret")


def test_default_path_stages_this_ecms_wheel_and_the_master_installs_exactly_it(
        ecm_moto, workdir, tmp_path):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "m.ud", "--cluster-name", "c1", built=False)
    assert result.returncode == 0, result.stderr
    master = master_text(workdir / "m.ud")
    spec = answer_values(master)["ELASTIQ_SOURCE"]
    assert spec.startswith("elastiq @ http://127.0.0.1:") and "X-Amz-Signature=" in spec
    name = f"elastiq-{OWN_VERSION}-py3-none-any.whl"
    [bucket] = [b["Name"] for b in s3(ecm_moto.url).list_buckets()["Buckets"]
                if b["Name"].startswith("elastiq-stage-")]
    staged = s3(ecm_moto.url).get_object(Bucket=bucket, Key=f"c1/{name}")["Body"].read()
    assert spec.endswith("#sha256=" + hashlib.sha256(staged).hexdigest())

    done = install(master, tmp_path, PIP_NO_INDEX="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed_version(tmp_path) == OWN_VERSION
    site = next((tmp_path / "venv/lib").glob("python3*/site-packages"))
    assert (site / "ecm/source.py").read_bytes() == Path(source.__file__).read_bytes()

    # The master refuses an elastiq that is not the one it was written for.
    other = install(master, tmp_path, version="9.9", PIP_NO_INDEX="1")
    assert other.returncode == 1 and "but this master was written for 9.9" in other.stdout


def test_a_staged_wheel_that_was_changed_is_not_installed(ecm_moto, workdir, tmp_path):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "m.ud", "--cluster-name", "c2", "--stage-bucket", "tamper-test")
    assert result.returncode == 0, result.stderr
    name = own_wheel().path.name
    s3(ecm_moto.url).put_object(Bucket="tamper-test", Key=f"c2/{name}", Body=b"PK not the wheel")
    done = install(master_text(workdir / "m.ud"), tmp_path, PIP_NO_INDEX="1")
    assert done.returncode != 0
    assert "giving up after 6 attempts" in done.stdout and "HASHES" in done.stderr.upper()


def test_without_an_object_store_nothing_is_written(ecm_moto, workdir):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "m.ud", S3_URL="")
    # refused before anything is asked or checked in the cloud (issue 25, item 2): exit 2
    assert result.returncode == 2 and "no object store" in result.stderr and "S3_URL" in result.stderr
    assert "Checking the credentials" not in result.stderr
    assert not (workdir / "m.ud").exists() and "Traceback" not in result.stderr


class _Index:
    """A PEP 503 simple index on 127.0.0.1 serving ``wheels``."""

    def __init__(self, root: Path, wheels):
        page = root / "simple" / "elastiq"
        page.mkdir(parents=True)
        links = "".join(f'<a href="{w.path.name}#sha256={w.sha256}">{w.path.name}</a>\n' for w in wheels)
        (page / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
        for w in wheels:
            (page / w.path.name).write_bytes(w.path.read_bytes())
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(root))  # noqa
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def index(tmp_path):
    served = _Index(tmp_path / "index", [own_wheel()])
    yield served
    served.close()


@pytest.fixture
def empty_index(tmp_path):
    served = _Index(tmp_path / "empty", [])
    yield served
    served.close()


def test_pinned_version_is_checked_against_the_index_and_installed_from_it(
        ecm_moto, workdir, tmp_path, index):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "m.ud", "--elastiq-source", f"elastiq=={OWN_VERSION}",
                 "--index-url", index.url, PIP_CONFIG_FILE="/dev/null")
    assert result.returncode == 0, result.stderr
    master = master_text(workdir / "m.ud")
    assert answer_values(master) == {"ELASTIQ_SOURCE": f"elastiq=={OWN_VERSION}",
                                     "PIP_INDEX": index.url}
    done = install(master, tmp_path)  # the master's pip uses the index the wizard checked
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed_version(tmp_path) == OWN_VERSION


def test_a_pin_the_index_does_not_serve_is_refused_before_writing(ecm_moto, workdir, empty_index):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "m.ud", "--elastiq-source", f"elastiq=={OWN_VERSION}",
                 "--index-url", empty_index.url, PIP_CONFIG_FILE="/dev/null")
    assert result.returncode == 2
    assert f"does not serve elastiq=={OWN_VERSION}" in result.stderr
    assert not written(workdir) and not (workdir / "m.ud").exists()


@pytest.mark.parametrize("spec, words", [
    ("elastiq", "a bare name is not pinned"),
    ("elastiq==0.9", "is not the version of this ecm"),
    ("git+https://example.org/elastiq.git@main", "40-hex commit"),
    ("https://example.org/elastiq.tar.gz", "expected elastiq=="),
    ("/nonexistent/elastiq-0.1-py3-none-any.whl", "is not the version of this ecm"),
])
def test_unpinned_or_foreign_sources_are_refused_first(ecm_moto, workdir, spec, words):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789abcdef0",
                 "-o", "m.ud", "--elastiq-source", spec)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "no such available image" not in result.stderr  # refused before the cloud is asked
    assert not (workdir / "m.ud").exists()


def test_a_vcs_url_pinned_to_a_commit_is_written_as_it_is(ecm_moto, workdir):
    spec = f"git+https://git.example.org/elastiq.git@{COMMIT}"
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", ecm_moto.images[ROCKY],
                 "-o", "m.ud", "--elastiq-source", spec)
    assert result.returncode == 0, result.stderr
    values = answer_values(master_text(workdir / "m.ud"))
    assert values == {"ELASTIQ_SOURCE": spec, "PIP_INDEX": ""}
