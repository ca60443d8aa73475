"""A pytest plugin: SIGTERM to the test process (a CI job's time limit, ``timeout``) ends the
session as Ctrl-C does, so the running test's ``with`` blocks and every fixture's teardown
run: its daemons, VMs and network namespaces are stopped by the tests, not left behind."""
from __future__ import annotations

import signal


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _interrupt)
