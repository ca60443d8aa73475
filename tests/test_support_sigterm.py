"""SIGTERM to a pytest session of ours (tests/support/sigterm_teardown.py) runs the teardown of
the test under way: the process its fixture started is stopped, not left running."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.support.condor_daemons import wait_for

pytestmark = pytest.mark.local
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INNER = textwrap.dedent('''
    import subprocess, threading
    import pytest

    @pytest.fixture
    def daemon(tmp_path_factory):
        proc = subprocess.Popen(["sleep", "600"])
        with open({pids!r}, "w") as handle:
            handle.write(str(proc.pid))
        try:
            yield proc
        finally:
            proc.kill()
            proc.wait()
            with open({pids!r}, "a") as handle:
                handle.write(" stopped")

    def test_blocks(daemon):
        threading.Event().wait()  # until the session is stopped
''')


def test_sigterm_stops_the_session_and_runs_the_teardown(tmp_path):
    pids = tmp_path / "pids"
    (tmp_path / "test_inner.py").write_text(INNER.format(pids=str(pids)))
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.sigterm_teardown",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    daemon = None
    try:
        wait_for(lambda: pids.exists() and pids.read_text().strip(), 60, "the fixture's process")
        daemon = int(pids.read_text())
        session.send_signal(signal.SIGTERM)
        out, _ = session.communicate(timeout=60)
        assert session.returncode == 2, out  # pytest's "interrupted"
        assert "KeyboardInterrupt" in out and "signal SIGTERM" in out, out
        assert pids.read_text() == f"{daemon} stopped"
        with pytest.raises(ProcessLookupError):
            os.kill(daemon, 0)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
        if daemon is not None and "stopped" not in pids.read_text():
            os.kill(daemon, signal.SIGKILL)  # left behind: this test failed
