"""A typo in the configuration of a running daemon (issue 25, item 5): the daemon keeps running
with what it read at start; ``elastiqctl status``, ``log``, ``conf`` and ``stop`` need only its
pid, state and log files, so they still work and say the file is invalid now; ``start`` and
``restart`` refuse (exit 2) and leave the daemon alone.  Where the files are: the file's own
``elastiq.state_dir``/``log_file`` while it still parses (the typo is elsewhere), else the
defaults, and ``--set`` wins (``elastiq.cli.standin``)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from elastiq.cli import ctl
from tests.test_ctl import alive, elastiqctl, write_config

pytestmark = pytest.mark.skipif(ctl.uses_systemd(), reason="the elastiq unit is installed here: "
                                "elastiqctl would drive systemd, not a pid file")


@pytest.fixture
def running(tmp_path):
    """A daemon started from a valid file; stopped by its pid whatever the test did."""
    state = tmp_path / "state"
    path = write_config(str(tmp_path), state)
    started = elastiqctl("start", "--config", path)
    assert started.returncode == 0, started.stderr
    pid = int((state / "elastiq.pid").read_text())
    try:
        yield path, state, pid
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def _add_typo(path: str) -> None:
    with open(path, "a") as handle:
        handle.write("quota:\n  max_vm: 3\n")  # max_vms misspelt


def test_a_typo_leaves_status_log_conf_and_stop_working(running):
    path, state, pid = running
    _add_typo(path)
    status = elastiqctl("status", "--config", path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"elastiq is running (pid {pid})")
    assert "the configuration is invalid now" in status.stderr and "max_vm" in status.stderr
    assert f"files in {state} " in status.stderr and "as the file still gives them" in status.stderr
    assert "elastiqctl restart" in status.stderr

    log = elastiqctl("log", "--no-follow", "--config", path)
    assert log.returncode == 0, log.stderr
    assert "starting" in log.stdout and "invalid now" in log.stderr

    conf = elastiqctl("conf", "--config", path)
    assert conf.returncode == 0, conf.stderr
    assert "INVALID now" in conf.stdout and f"# state: {state / 'state.json'}" in conf.stdout
    assert "secret" not in conf.stdout.lower().replace("secrets masked", "")

    for verb in ("restart", "start"):
        refused = elastiqctl(verb, "--config", path)
        assert refused.returncode == 2 and "max_vm" in refused.stderr
        assert alive(pid)

    stop = elastiqctl("stop", "--config", path)
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.strip() == f"elastiq stopped (was pid {pid})"
    assert not alive(pid)


def test_a_file_that_no_longer_parses_uses_the_defaults_or_set(running, tmp_path):
    path, state, pid = running
    with open(path, "a") as handle:
        handle.write("quota: [unclosed\n")  # not YAML any more: no value can be read from it
    plain = elastiqctl("status", "--config", path)
    assert "the configuration is invalid now" in plain.stderr
    assert "the defaults" in plain.stderr and str(state) not in plain.stderr
    pointed = elastiqctl("status", "--config", path, "--set", f"elastiq.state_dir={state}")
    assert pointed.returncode == 0, pointed.stderr
    assert pointed.stdout.startswith(f"elastiq is running (pid {pid})")
    assert "from --set" in pointed.stderr
    live = elastiqctl("status", "--live", "--config", path)  # needs the cloud's settings
    assert live.returncode == 2 and "configuration error" in live.stderr
