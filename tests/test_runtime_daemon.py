"""`elastiq run` as a real process: clean exit 0 on SIGTERM/SIGINT, one daemon per state
directory, --once, --log-stderr, metrics only when configured; the VM shape from the cloud."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from elastiq import cli
from elastiq.runtime import factory
from elastiq.adapters.base import ConfigError, TransientError
from elastiq.model import Catalogue
from elastiq.runtime import daemon, pidfile
from elastiq.runtime.state import State, StateStore
from tests.support.nobody import NOBODY, as_nobody
from tests.support.world import make_config

pytestmark = pytest.mark.local  # processes: see tests/conftest.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT_S = 60


def write_config(tmp_path, **elastiq):
    data = {"elastiq": {"cluster_name": "d", "state_dir": str(tmp_path / "state"),
                        "log_file": str(tmp_path / "elastiq.log"),
                        "check_queue_every_s": 0.2, "list_vms_every_s": 0.3,
                        "batch_plugin": "tests.support.world:IdleBatch",
                        "cloud_plugin": "tests.support.world:IdleCloud", **elastiq}}
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def spawn(path, *extra):
    return subprocess.Popen([sys.executable, "-m", "elastiq", "run", "--config", path, *extra],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def wait_ticked(proc, tmp_path):
    """Until the daemon holds its pid file and has saved a state (its first tick is done)."""
    pid_file, store = str(tmp_path / "state" / "elastiq.pid"), StateStore(str(tmp_path / "state"))

    def ready():
        assert proc.poll() is None, proc.communicate()
        status = pidfile.status(pid_file)
        return status.running and status.pid == proc.pid and store.read() is not None

    wait_until(ready, "the daemon's first tick")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_daemon_cleanly_with_exit_0(tmp_path, signum):
    proc = spawn(write_config(tmp_path))
    try:
        wait_ticked(proc, tmp_path)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    log = (tmp_path / "elastiq.log").read_text()
    assert f"{signal.Signals(signum).name} received: finishing the current action" in log
    assert log.rstrip().endswith(f"stopped; state saved to {tmp_path / 'state' / 'state.json'}")
    assert not (tmp_path / "state" / "elastiq.pid").exists()
    assert StateStore(str(tmp_path / "state")).read().cluster == "d"


def test_one_daemon_per_state_directory(tmp_path):
    path = write_config(tmp_path)
    first = spawn(path)
    try:
        wait_ticked(first, tmp_path)
        second = spawn(path)
        _, err = second.communicate(timeout=WAIT_S)
        assert second.returncode == 1
        assert f"elastiq is already running (pid {first.pid} holds" in err
    finally:
        first.terminate()
        first.communicate(timeout=WAIT_S)
    assert first.returncode == 0
    # the refused second daemon never wrote to (or rotated) the running one's log
    assert (tmp_path / "elastiq.log").read_text().count(" starting: cluster 'd'") == 1


def test_once_with_log_to_stderr(tmp_path):
    proc = spawn(write_config(tmp_path), "--once", "--log-stderr")
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    assert "INFO elastiq.daemon: elastiq " in err and " starting: cluster 'd'" in err
    assert "reconciled with the cloud: 0 known instance(s) still there" in err
    assert not (tmp_path / "elastiq.log").exists()
    assert StateStore(str(tmp_path / "state")).read().observation.idle_jobs == 0


def listening_sockets(pid):
    """Inodes of the TCP sockets in LISTEN state that process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    listening.add(fields[9])
    return inodes & listening


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_metrics_endpoint_only_when_configured(tmp_path):
    (tmp_path / "off").mkdir()
    (tmp_path / "on").mkdir()
    port = free_port()
    off = spawn(write_config(tmp_path / "off"))
    on = spawn(write_config(tmp_path / "on", metrics_port=port))
    try:
        wait_ticked(off, tmp_path / "off")
        wait_ticked(on, tmp_path / "on")
        assert listening_sockets(off.pid) == set()
        assert len(listening_sockets(on.pid)) == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        assert "elastiq_tick_duration_seconds_count" in text
        assert 'elastiq_jobs{state="idle"} 0' in text
    finally:
        for proc in (off, on):
            proc.terminate()
            proc.communicate(timeout=WAIT_S)


class ShapedCloud:
    def __init__(self, shape=None, error=None):
        self.shape, self.error = shape, error

    def describe_flavours(self, names):
        if self.error:
            raise self.error
        return {names[0]: self.shape} if self.shape else self.shape  # None: not supported


def test_vm_shape_is_read_from_the_flavour_when_not_configured(caplog):
    cfg = make_config(vm={"cpus": None, "memory_mb": None}, ec2={"flavour": "m1.large"})
    with caplog.at_level(logging.INFO, logger="elastiq"):
        filled = factory.read_catalogue(cfg, ShapedCloud((4, 8192)))
    assert (filled.cpus, filled.memory_mb) == (4, 8192)
    assert (cfg.vm.cpus, cfg.vm.memory_mb) == (None, None)  # the configuration stays the user's
    assert "worker VM shape of flavour m1.large: 4 cpu(s), 8192 MiB" in caplog.text
    half = factory.read_catalogue(make_config(vm={"cpus": 2, "memory_mb": None},
                                              ec2={"flavour": "m1.large"}), ShapedCloud((4, 8192)))
    assert (half.cpus, half.memory_mb) == (2, 8192)  # what is configured wins
    full = make_config()
    assert factory.read_catalogue(full, ShapedCloud((4, 8192))) == Catalogue.of(full.vm)
    for error in (TransientError("503"), None):  # configured: cannot ask / cannot tell, no matter
        assert factory.read_catalogue(full, ShapedCloud(error=error)) == Catalogue.of(full.vm)


def test_a_flavour_the_cloud_does_not_know_is_refused_even_with_the_shape_configured():
    """As for a list of flavours: `run` and `elastiqctl start` refuse, naming the key, instead
    of launching what the cloud will refuse on every tick."""
    unknown = ConfigError("unknown instance type 'm9.huge': the cloud does not know it",
                          key="ec2.flavour")
    for vm in ({"cpus": None, "memory_mb": None}, {"cpus": 4, "memory_mb": 8192}):
        cfg = make_config(vm=vm, ec2={"flavour": "m9.huge"})
        with pytest.raises(ConfigError) as err:
            factory.read_catalogue(cfg, ShapedCloud(error=unknown))
        assert err.value.key == "ec2.flavour"


@pytest.mark.parametrize("cloud", [ShapedCloud(None), ShapedCloud({}), ShapedCloud(error=TransientError("503"))])
def test_vm_shape_unknown_keeps_the_defaults_with_a_warning(caplog, cloud):
    cfg = make_config(vm={"cpus": None, "memory_mb": None})
    with caplog.at_level(logging.WARNING, logger="elastiq"):
        assert factory.read_catalogue(cfg, cloud) == Catalogue(1, 2048)
    assert "worker VM shape unknown: assuming 1 cpu(s), 2048 MiB" in caplog.text


def test_a_state_of_another_cluster_is_pointed_out(tmp_path):
    from elastiq.model import InstanceRecord, Lifecycle, Memory

    StateStore(str(tmp_path / "state")).save(State(
        Memory(), cluster="old", records={"i-old": InstanceRecord(Lifecycle.JOINED, 1.0, 1.0)}))
    proc = spawn(write_config(tmp_path), "--once", "--log-stderr")
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    assert "the state was saved for cluster 'old', the configuration names 'd': the 1 " \
           "instance(s) tagged 'old' are no longer managed by this elastiq" in err


def test_plugins_are_registry_names_or_dotted_paths():
    from elastiq import config
    from tests.support.world import IdleBatch, IdleCloud

    cfg = make_config(elastiq={"batch_plugin": "tests.support.world:IdleBatch",
                               "cloud_plugin": "tests.support.world:IdleCloud"})
    catalogue, batch, cloud = factory.build_adapters(cfg)
    assert catalogue == Catalogue.of(cfg.vm)
    assert isinstance(batch, IdleBatch) and isinstance(cloud, IdleCloud)
    with pytest.raises(config.InvalidConfig, match=r"elastiq.cloud_plugin: unknown 'open stack' "
                       r"\(known: ec2, openstack, or a 'package.module:Class' path\)"):
        make_config(elastiq={"cloud_plugin": "open stack"})
    missing = make_config(elastiq={"batch_plugin": "tests.support.world:NoSuchClass"})
    with pytest.raises(config.InvalidConfig, match=r"elastiq.batch_plugin: cannot load "
                       r"'tests.support.world:NoSuchClass'"):
        factory.build_adapters(missing)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to user nobody")
def test_a_state_file_the_user_cannot_read_is_exit_4_naming_it(tmp_path):
    """e.g. root ran `elastiq run --once` once, then the service user starts."""
    public = tempfile.mkdtemp()
    try:
        os.chmod(public, 0o755)
        state = os.path.join(public, "state")
        os.mkdir(state, 0o700)
        os.chown(state, NOBODY, NOBODY)
        StateStore(state).save(State())  # root's file, mode 0600
        path = write_config(tmp_path, state_dir=state, log_file=os.path.join(state, "log"))
        public_config = os.path.join(public, "elastiq.yaml")
        shutil.copy(path, public_config)
        os.chmod(public_config, 0o644)
        cli.build_parser()  # imports what the commands import lazily, while still root
        code, err = as_nobody(cli.main, ["run", "--once", "--config", public_config])
    finally:
        shutil.rmtree(public)
    assert code == 4, err
    assert f"permission denied: {state}/state.json (run as root or as the elastiq user" in err


def test_a_metrics_port_that_cannot_be_used_is_a_configuration_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path, metrics_port=port)
        proc = spawn(path, "--once")
        _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 2, err
    assert f"{path}: elastiq.metrics_port: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_the_batch_system_judges_jobs_on_the_flavours_shape(tmp_path, moto, ec2_world):
    """A master written by ecm has no ``vm:`` section: the worker VM's shape is the flavour's
    (c5.xlarge: 4 cpus, 8 GiB), and a job asking for 4 cpus must cause a launch, not be judged
    "can never run" on a 1 cpu / 2 GiB default VM (issue 9, defect 4)."""
    from tests.htcondor_fake import load
    from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
    from tests.support.ec2_server import REGION

    job = next(a for a in load("jobs.queue.long.txt") if (a["ClusterId"], a["ProcId"]) == (3, 1))
    job.update({"RequestCpus": 4, "RequestMemory": 6000})
    ads = tmp_path / "jobs.long.txt"
    ads.write_text(job.printOld())
    data = yaml.safe_load(Path(write_config(tmp_path)).read_text())
    data["elastiq"].update(cluster_name="demo", batch_plugin="tests.htcondor_fake:FixturePool",
                           cloud_plugin="ec2", waiting_jobs_time_s=0)
    data["ec2"] = {"api_url": moto.url, "region": REGION, "aws_access_key_id": ACCESS_KEY,
                   "aws_secret_access_key": SECRET_KEY, "image_id": ec2_world.image_id,
                   "flavour": "c5.xlarge"}
    assert "vm" not in data
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "elastiq", "run", "--once", "--log-stderr",
                           "--config", str(path)], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, ELASTIQ_TEST_JOB_ADS=str(ads)),
                          timeout=WAIT_S)
    assert proc.returncode == 0, proc.stderr
    assert "worker VM shape of flavour c5.xlarge: 4 cpu(s), 8192 MiB" in proc.stderr
    assert "can never run" not in proc.stderr
    assert moto.calls("RunInstances") == 1, proc.stderr


def test_a_held_pid_file_names_no_pid_until_the_daemon_announces_it(tmp_path):
    """elastiqctl start confirms by the pid in the file: a daemon that still may fail (its
    metrics port) holds the lock without a pid, so it counts as running but not yet started."""
    path = str(tmp_path / "elastiq.pid")
    lock = pidfile.PidLock(path)
    lock.acquire(announce=False)
    try:
        assert pidfile.status(path) == pidfile.PidStatus(running=True, pid=None, stale=False)
        lock.announce()
        assert pidfile.status(path) == pidfile.PidStatus(running=True, pid=os.getpid(), stale=False)
    finally:
        lock.release()
    assert pidfile.status(path) == pidfile.PidStatus(running=False, pid=None, stale=False)
