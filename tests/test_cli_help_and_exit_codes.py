"""The command lines as an operator reads them (issue 25, items 10, 12 and 13): one exit-code
table, the README's and every ``--help``'s, and true where it was not (``elastiqctl start``
whose daemon refuses its configuration, ecm without credentials); ecm's messages in ecm's
words (no elastiq.yaml key in them; an invalid EC2_URL says what is valid); ``--help`` without
reStructuredText markup and with a description for every ``elastiqctl`` verb; ``config check
--config``; ``ecm --version``; ``config migrate`` of a file that is not INI."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from elastiq import __version__ as OWN_VERSION
from elastiq.cli import ctl
from elastiq.cli import options
from tests.test_ctl import elastiqctl, write_config
from tests.test_ecm_wizard import (ecm_moto, failing_credentials, run,  # noqa: F401 fixtures
                                   workdir)

pytestmark = pytest.mark.local  # runs the commands as processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = Path(ROOT, "README.md").read_text(encoding="utf-8")
MARKUP = re.compile(r":[a-z]+:`|``|`[^`\s][^`]*`")
ELASTIQ_KEY = re.compile(r"\b(ec2|openstack|elastiq|quota)\.[a-z_]+\b")


def _cli(*argv, env=None):
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))


def test_the_readme_table_is_the_table():
    block = README[README.index("### Exit codes"):]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", block, re.M)
    assert [(int(code), text) for code, text in rows] == list(options.EXIT_CODES)
    assert "0 success, 1\nruntime failure" not in README  # the old, partial list is gone


@pytest.mark.parametrize("argv", [("-m", "elastiq"), ("-m", "elastiq.cli.ctl"), ("ecm.py",)])
def test_every_command_shows_the_table(argv):
    done = _cli(*argv, "--help")
    assert done.returncode == 0
    assert options.exit_codes_help() in done.stdout


def _helps():
    yield ("-m", "elastiq", "--help")
    for command in ("run", "status", "simulate", "config"):
        yield ("-m", "elastiq", command, "--help")
    for action in ("check", "show", "migrate"):
        yield ("-m", "elastiq", "config", action, "--help")
    yield ("-m", "elastiq.cli.ctl", "--help")
    for verb, _ in ctl.VERBS:
        yield ("-m", "elastiq.cli.ctl", verb, "--help")
    yield ("ecm.py", "--help")


def test_help_has_no_restructuredtext_markup():
    for argv in _helps():
        done = _cli(*argv)
        assert done.returncode == 0, (argv, done.stderr)
        found = MARKUP.search(done.stdout)
        assert found is None, (argv, done.stdout[max(0, found.start() - 60):found.end() + 60])


def test_every_elastiqctl_verb_has_a_description():
    main = _cli("-m", "elastiq.cli.ctl", "--help").stdout
    for verb, _ in ctl.VERBS:
        assert re.search(rf"^    {verb} +\S", main, re.M), verb  # listed with its help
        usage = _cli("-m", "elastiq.cli.ctl", verb, "--help").stdout
        description = usage.split("\n\n")[1]
        assert not description.startswith("options:") and len(description.split()) >= 8, verb
    assert {verb for verb, _ in ctl.VERBS} == {"start", "stop", "restart", "status", "log",
                                               "conf"}


def test_config_check_takes_config_like_every_command(tmp_path):
    path = write_config(str(tmp_path), tmp_path / "state")
    for argv in (("--config", path), (path,), ("-c", path)):
        done = _cli("-m", "elastiq", "config", "check", *argv)
        assert done.returncode == 0 and done.stdout.startswith(f"OK {path}"), done.stderr
    both = _cli("-m", "elastiq", "config", "check", path, "--config", str(tmp_path / "other"))
    assert both.returncode == 2 and "two configuration files given" in both.stderr


def test_ecm_version():
    done = _cli("ecm.py", "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"ecm (elastiq) {OWN_VERSION}")


def test_migrating_a_file_without_a_section_header_says_so(tmp_path):
    done = _cli("-m", "elastiq", "config", "migrate", os.path.join(ROOT, "etc", "elastiq.yaml"))
    assert done.returncode == 2, done.stderr
    assert "etc/elastiq.yaml: line " in done.stderr
    assert "not a legacy INI elastiq.conf: no [section] header" in done.stderr
    assert "unexpected error" not in done.stderr and "AttributeError" not in done.stderr


@pytest.mark.skipif(ctl.uses_systemd(), reason="elastiqctl would drive systemd")
def test_elastiqctl_start_gives_the_daemons_configuration_error_as_2(tmp_path):
    with socket.socket() as taken:  # the metrics port is checked only by the running daemon
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        path = write_config(str(tmp_path), tmp_path / "state",
                            metrics_port=taken.getsockname()[1])
        start = elastiqctl("start", "--config", path)
    assert start.returncode == 2, start.stdout + start.stderr
    assert "elastiq failed to start (exit 2)" in start.stderr
    assert "elastiq.metrics_port: cannot listen" in start.stderr


def test_ecm_without_credentials_is_2_in_ecms_words(ecm_moto, workdir):
    done = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789ab",
               EC2_ACCESS_KEY="", EC2_SECRET_KEY="")
    assert done.returncode == 2
    assert "source your ec2rc.sh" in done.stderr and not ELASTIQ_KEY.search(done.stderr)
    half = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789ab",
               EC2_SECRET_KEY="")
    assert half.returncode == 2
    assert "EC2_SECRET_KEY is not set (EC2_ACCESS_KEY is)" in half.stderr


def test_refused_credentials_are_2_in_ecms_words(failing_credentials, workdir):
    done = run(failing_credentials, workdir, "--yes", "--os", "rocky9", "--image",
               "ami-0123456789ab")
    assert done.returncode == 2
    assert "rejected our credentials" in done.stderr and "EC2_SECRET_KEY" in done.stderr
    assert not ELASTIQ_KEY.search(done.stderr), done.stderr


@pytest.mark.parametrize("url", ["notaurl", "ftp://ec2.example.org", "http://"])
def test_an_invalid_endpoint_url_says_what_is_valid(ecm_moto, workdir, url):
    done = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789ab",
               EC2_URL=url)
    assert done.returncode == 2
    assert f"EC2_URL {url!r} is not a valid endpoint URL: expected http:// or https://" in \
        done.stderr and "e.g. https://" in done.stderr


def test_an_unreachable_endpoint_names_ec2_url_not_the_yaml_key(workdir):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        done = subprocess.run(
            [sys.executable, os.path.join(ROOT, "ecm.py"), "--yes", "--os", "rocky9",
             "--image", "ami-0123456789ab"], cwd=str(workdir), capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL,
            env={"PATH": os.environ["PATH"], "HOME": str(workdir),
                 "EC2_URL": f"http://127.0.0.1:{port}", "S3_URL": f"http://127.0.0.1:{port}",
                 "EC2_ACCESS_KEY": "a", "EC2_SECRET_KEY": "b",
                 "AWS_EC2_METADATA_DISABLED": "true"})
    assert done.returncode == 1, done.stderr
    assert "check EC2_URL and the network" in done.stderr
    assert not ELASTIQ_KEY.search(done.stderr), done.stderr
