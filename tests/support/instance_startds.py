"""Worker VMs for end-to-end tests: each running instance of a cluster (an EC2 instance of
moto, a Nova server of the OpenStack test cloud) becomes a real startd of a
:class:`~tests.support.condor_pool.CondorPool`, as the worker user-data would make it on a real
VM; its startd stops when the instance stops running.

    with InstanceStartds(pool, ec2_alive(moto.client(), "c1"), "c1", cpus=2, memory_mb=2048) as vms:
        ...                       # elastiq launches and terminates instances
        vms.peak                  # most instances of the cluster alive at once
        vms.started               # instance id -> time its startd was started

The instances come from ``alive``: a function returning instance id -> whether it runs, for
the cluster's instances not gone (:func:`ec2_alive`, :func:`nova_alive`).  The startd is named
after the instance id (its slots are ``slot1@<id>@<host>``) and advertises ``ElastiqCluster``
and ``ElastiqInstanceId``.  A background thread lists the instances every ``every`` seconds; an
error in it is raised again by :meth:`check` and on leaving the ``with``.  A subclass starts
another kind of worker (:class:`tests.support.slurm_cluster.InstanceNodes`: slurmd).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, Mapping, Optional, TypeVar

from tests.support.condor_pool import CondorPool, Startd
from tests.support.e2e_pool import tagged_instances

GONE = ("shutting-down", "terminated")
Alive = Callable[[], Dict[str, bool]]


T = TypeVar("T")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_elastiq(config_path: str, env: Mapping[str, str]) -> subprocess.Popen:
    """`elastiq run --config config_path` as a process of this checkout (stderr kept)."""
    return subprocess.Popen([sys.executable, "-m", "elastiq", "run", "--config", config_path],
                            cwd=ROOT, env=dict(env, PYTHONPATH=ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_elastiq(daemon: subprocess.Popen) -> str:
    """SIGTERM, as systemd stops it; its stderr once it has exited (within 60 s)."""
    daemon.send_signal(signal.SIGTERM)
    return daemon.communicate(timeout=60)[1].decode(errors="replace")


def kill_if_running(daemon: subprocess.Popen) -> None:
    """What a test that failed before :func:`stop_elastiq` leaves: killed, and waited for."""
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()


def healthy(vms, daemon: subprocess.Popen, check: Callable[[], T]) -> Callable[[], T]:
    """``check``, after checking that the emulated VMs' workers and elastiq still run."""
    def checked() -> T:
        vms.check()
        assert daemon.poll() is None, f"elastiq exited: {daemon.stderr.read().decode()}"
        return check()
    return checked


def ec2_alive(client, cluster: str) -> Alive:
    """The cluster's EC2 instances not gone -> running."""
    return lambda: {i["InstanceId"]: i["State"]["Name"] == "running"
                    for i in tagged_instances(client, cluster) if i["State"]["Name"] not in GONE}


def nova_alive(conn, tag: str) -> Alive:
    """The Nova servers tagged ``tag`` not gone nor being deleted -> ACTIVE."""
    return lambda: {s.id: s.status == "ACTIVE" for s in conn.compute.servers(tags=tag)
                    if s.status not in ("DELETED", "SOFT_DELETED") and s.task_state != "deleting"}


class InstanceStartds(threading.Thread):
    def __init__(self, pool: CondorPool, alive: Alive, cluster: str, cpus: int, memory_mb: int,
                 every: float = 0.3):
        super().__init__(daemon=True, name=f"instance-startds-{cluster}")
        self.pool, self.alive, self.cluster = pool, alive, cluster
        self.cpus, self.memory_mb, self.every = cpus, memory_mb, every
        self.startds: Dict[str, Startd] = {}
        self.started: Dict[str, float] = {}
        self.stopped: Dict[str, float] = {}
        self.peak = 0
        self.error: Optional[BaseException] = None
        self._done = threading.Event()

    def start_worker(self, instance_id: str) -> Startd:
        """The worker of a running instance (a subclass may start another kind)."""
        return self.pool.start_startd(instance_id, cpus=self.cpus, memory_mb=self.memory_mb,
                                      cluster=self.cluster, instance_id=instance_id)

    def stop_worker(self, startd: Startd) -> None:
        self.pool.stop_startd(startd)

    def step(self) -> None:
        alive = self.alive()
        self.peak = max(self.peak, len(alive))
        for instance_id, running in sorted(alive.items()):
            if running and instance_id not in self.started:
                self.started[instance_id] = time.time()
                self.startds[instance_id] = self.start_worker(instance_id)
        for instance_id, startd in list(self.startds.items()):
            if not alive.get(instance_id):
                self.stop_worker(startd)
                del self.startds[instance_id]
                self.stopped[instance_id] = time.time()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.step()
            except BaseException as exc:  # raised again in the test's thread by check()
                self.error = exc
                return
            self._done.wait(self.every)

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the instance emulator failed: {self.error!r}") from self.error

    def __enter__(self) -> "InstanceStartds":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join(30)
        for startd in self.startds.values():
            self.stop_worker(startd)
        self.startds.clear()
        if exc[0] is None:
            self.check()
