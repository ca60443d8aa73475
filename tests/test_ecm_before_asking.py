"""What the wizard can check is checked before its first question, and what it did in the
user's cloud stays on the screen (issue 25, item 2): in a real terminal (pexpect) against the
moto server, ``S3_URL`` missing (the default path stages the wheel in the object store) or a
``KEY_NAME`` the cloud does not have stop ecm before it asks for the operating system; a run
that stages says, after the spinner is gone, which bucket it created and which file it
uploaded, and until when the master must boot (the presigned URL's 7 days)."""
from __future__ import annotations

import datetime
import re

import pexpect

from ecm import source
from elastiq import __version__ as OWN_VERSION
from tests.test_ecm_wizard import (ENTER, ecm_moto, spawn, workdir,  # noqa: F401 fixtures
                                   written)


def _refused_before_the_first_question(child) -> str:
    index = child.expect(["Operating system of the master", pexpect.EOF])
    text = child.before
    child.close(force=True)
    assert index == 1, "asked a question first: " + text
    return text


def test_no_object_store_is_said_before_any_question(ecm_moto, workdir):
    child = spawn(ecm_moto, workdir, S3_URL="")
    text = _refused_before_the_first_question(child)
    assert child.exitstatus == 2
    assert "no object store" in text and "set S3_URL" in text
    assert written(workdir) == []


def test_an_unknown_key_pair_is_said_before_any_question(ecm_moto, workdir):
    (workdir / "ecm.conf").write_text((workdir / "ecm.conf").read_text().replace(
        "KEY_NAME=lab key", "KEY_NAME=no-such-key"))
    child = spawn(ecm_moto, workdir)
    text = _refused_before_the_first_question(child)
    assert child.exitstatus == 2 and "KEY_NAME: no key pair 'no-such-key'" in text


def test_on_a_terminal_the_bucket_and_the_upload_stay_said(ecm_moto, workdir):
    child = spawn(ecm_moto, workdir, "--stage-bucket", "terminal-stage-test",
                  "--cluster-name", "terminal-c1", "--no-embed-credentials")
    child.expect("Operating system of the master and the workers")
    child.send(ENTER)                                  # AlmaLinux 9
    child.expect("Image for the AlmaLinux 9")
    child.send(ENTER)
    child.expect(r"Write master-almalinux9-\S+\?")
    child.send("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    screen = child.before.replace("\r", "")
    name = f"elastiq-{OWN_VERSION}-py3-none-any.whl"
    assert f"Created the private bucket terminal-stage-test in {ecm_moto.url}." in screen
    assert (f"Uploaded {name} (" in screen and
            "bucket terminal-stage-test, key terminal-c1/" + name in screen)
    deadline = re.search(r"Boot the master before (\d{4}-\d\d-\d\d \d\d:\d\d)", screen)
    assert deadline, screen
    days = (datetime.datetime.strptime(deadline.group(1), "%Y-%m-%d %H:%M")
            - datetime.datetime.now()).total_seconds() / 86400
    assert 6.9 < days <= source.STAGE_EXPIRY_S / 86400
    assert "valid 7 days" in screen
    [path] = written(workdir)
    assert path.name.startswith("master-almalinux9-")
