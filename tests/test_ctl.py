"""elastiqctl in pid-file mode: start/stop/restart/status with stale pid files, clear messages
and exit codes, log, conf with secrets masked.  The daemon really runs (as a background
process) with an empty test world."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import pytest
import yaml

from elastiq.cli import ctl
from tests.support.nobody import as_nobody

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "ctl-secret-key-0123456789abcdef"

pytestmark = [pytest.mark.local,  # starts elastiq daemons as processes
              pytest.mark.skipif(ctl.uses_systemd(), reason="the elastiq unit is installed here: "
                                 "elastiqctl would drive systemd, not a pid file")]


def write_config(directory, state_dir, **elastiq):
    path = os.path.join(directory, "elastiq.yaml")
    data = {"elastiq": {"cluster_name": "ctl", "state_dir": str(state_dir),
                        "log_file": os.path.join(str(state_dir), "elastiq.log"),
                        "batch_plugin": "tests.support.world:IdleBatch",
                        "cloud_plugin": "tests.support.world:IdleCloud", **elastiq},
            "ec2": {"aws_access_key_id": "AKIACTLTESTKEY000000", "aws_secret_access_key": SECRET}}
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)
    return path


@pytest.fixture
def conf(tmp_path):
    return write_config(str(tmp_path), tmp_path / "state"), tmp_path / "state"


def elastiqctl(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "elastiq.cli.ctl", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def alive(pid):
    """Running (a zombie left to a non-reaping init of a container counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_start_status_stop_restart(conf):
    path, state = conf
    started = elastiqctl("start", "--config", path)
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("elastiq started (pid ")
    pid = int((state / "elastiq.pid").read_text())
    try:
        again = elastiqctl("start", "--config", path)
        assert (again.returncode, again.stdout.strip()) == (0, f"elastiq is already running (pid {pid})")
        status = elastiqctl("status", "--config", path)
        assert status.returncode == 0 and status.stdout.startswith(f"elastiq is running (pid {pid})")
        restarted = elastiqctl("restart", "--config", path)
        assert restarted.returncode == 0, restarted.stderr
        assert f"elastiq stopped (was pid {pid})" in restarted.stdout
        assert not alive(pid)
        pid = int((state / "elastiq.pid").read_text())
        stopped = elastiqctl("stop", "--config", path)
        assert (stopped.returncode, stopped.stdout.strip()) == (0, f"elastiq stopped (was pid {pid})")
        assert not alive(pid) and not (state / "elastiq.pid").exists()
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    after = elastiqctl("status", "--config", path)
    assert after.returncode == 3 and after.stdout.startswith("elastiq is not running")
    assert "cluster 'ctl'" in after.stdout  # the saved state is still shown
    log = elastiqctl("log", "--config", path, "--no-follow", "-n", "3")
    assert log.returncode == 0 and "stopped; state saved to" in log.stdout.splitlines()[-1]


def test_stale_pid_file_is_recognised_and_removed(conf):
    path, state = conf
    state.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (state / "elastiq.pid").write_text(f"{dead.pid}\n")
    status = elastiqctl("status", "--config", path)
    assert status.returncode == 3
    assert status.stdout.startswith("elastiq is not running (stale pid file)")
    stop = elastiqctl("stop", "--config", path)
    assert stop.returncode == 0
    assert stop.stdout.splitlines() == [f"removed a stale pid file (pid {dead.pid} is not running)",
                                        "elastiq is not running"]
    (state / "elastiq.pid").write_text(f"{dead.pid}\n")
    start = elastiqctl("start", "--config", path)
    try:
        assert start.returncode == 0, start.stderr
        assert start.stdout.splitlines()[0] == f"removed a stale pid file (pid {dead.pid} is not running)"
    finally:
        assert elastiqctl("stop", "--config", path).returncode == 0


def test_a_daemon_that_cannot_start_is_reported_with_its_error(tmp_path):
    path = write_config(str(tmp_path), tmp_path / "state", cloud_plugin="tests.support.nothing:Here")
    start = elastiqctl("start", "--config", path)
    # refused before a daemon is started: the checks of `elastiq run`, on the terminal, exit 2
    assert start.returncode == 2
    assert "configuration error" in start.stderr
    assert "elastiq.cloud_plugin: cannot load 'tests.support.nothing:Here': No module named " \
        "'tests.support.nothing'" in start.stderr


def test_missing_or_bad_config_is_exit_2_naming_the_file(tmp_path):
    missing = elastiqctl("start", "--config", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'none.yaml'}: cannot read: No such file or directory" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("quota:\n  max_vms: lots\n")
    refused = elastiqctl("start", "--config", str(bad))
    assert refused.returncode == 2 and "quota.max_vms: expected an integer" in refused.stderr
    # status needs only the daemon's files: it says the file is invalid, and goes on
    # (tests/test_ctl_invalid_config.py)
    status = elastiqctl("status", "--config", str(bad))
    assert status.returncode == 3 and "quota.max_vms: expected an integer" in status.stderr


def test_conf_masks_secrets_and_shows_versions_and_locations(tmp_path):
    state = tmp_path / "state"
    path = write_config(str(tmp_path), state, cloud_plugin="ec2")  # the ec2 section is used
    out = elastiqctl("conf", "--config", path)
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout and "AKIACTLTESTKEY000000" not in out.stdout
    assert "aws_secret_access_key: '***'" in out.stdout
    assert f"# configuration file: {path}" in out.stdout
    assert f"# python: {sys.version.split()[0]}" in out.stdout
    assert "# packages: elastiq " in out.stdout and "boto3 " in out.stdout
    assert f"# state: {state / 'state.json'}" in out.stdout
    assert f"# log: {state / 'elastiq.log'}" in out.stdout
    assert f"# control: pid file {state / 'elastiq.pid'}" in out.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to user nobody")
@pytest.mark.parametrize("verb", ["status", "start", "stop"])
def test_a_user_without_permission_gets_exit_4_and_a_hint(tmp_path, verb):
    public = tempfile.mkdtemp()
    try:
        os.chmod(public, 0o755)
        state = tmp_path / "state"  # under pytest's 0700 root-owned directory
        state.mkdir()
        (state / "elastiq.pid").write_text("1\n")
        path = write_config(public, state)
        os.chmod(path, 0o644)
        import elastiq.cli.run  # noqa: F401 (start checks with it: nobody cannot import)
        code, err = as_nobody(ctl.main, [verb, "--config", path])
    finally:
        for name in os.listdir(public):
            os.unlink(os.path.join(public, name))
        os.rmdir(public)
    assert code == 4, err
    assert "permission denied" in err and "run as root or as the elastiq user" in err


def test_log_follows_the_file_across_a_rotation(tmp_path):
    path = write_config(str(tmp_path), tmp_path / "state")
    (tmp_path / "state").mkdir()
    log = tmp_path / "state" / "elastiq.log"
    log.write_text("one\ntwo\nthree\n")
    # SIGINT back to its default in the child: a shell without job control starts background
    # commands (a CI job, say) with SIGINT ignored, and Python then installs no Ctrl-C handler
    proc = subprocess.Popen([sys.executable, "-m", "elastiq.cli.ctl", "log", "--config", path, "-n", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert [proc.stdout.readline() for _ in range(2)] == ["two\n", "three\n"]
        with open(log, "a") as handle:
            handle.write("four\n")
        assert proc.stdout.readline() == "four\n"
        os.rename(log, str(log) + ".1")  # what RotatingFileHandler does
        log.write_text("five\n")
        assert proc.stdout.readline() == "five\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
