"""Worker VMs for end-to-end tests: each running EC2 instance (moto) tagged with a cluster
becomes a real startd of a :class:`~tests.support.condor_pool.CondorPool`, as the worker
user-data would make it on a real VM; its startd stops when the instance leaves ``running``.

    with InstanceStartds(pool, moto.client(), "c1", cpus=2, memory_mb=2048) as vms:
        ...                       # elastiq launches and terminates instances
        vms.peak                  # most instances of the cluster alive at once
        vms.started               # instance id -> time its startd was started

The startd is named after the instance id (its slots are ``slot1@<id>@<host>``) and advertises
``ElastiqCluster`` and ``ElastiqInstanceId``.  A background thread lists the instances every
``every`` seconds; an error in it is raised again by :meth:`check` and on leaving the ``with``.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Optional

from tests.support.condor_pool import CondorPool, Startd
from tests.support.e2e_pool import tagged_instances

GONE = ("shutting-down", "terminated")


class InstanceStartds(threading.Thread):
    def __init__(self, pool: CondorPool, client, cluster: str, cpus: int, memory_mb: int,
                 every: float = 0.3):
        super().__init__(daemon=True, name=f"instance-startds-{cluster}")
        self.pool, self.client, self.cluster = pool, client, cluster
        self.cpus, self.memory_mb, self.every = cpus, memory_mb, every
        self.startds: Dict[str, Startd] = {}
        self.started: Dict[str, float] = {}
        self.stopped: Dict[str, float] = {}
        self.peak = 0
        self.error: Optional[BaseException] = None
        self._done = threading.Event()

    def alive(self) -> Dict[str, str]:
        """Instance id -> state of the cluster's instances not terminated."""
        return {i["InstanceId"]: i["State"]["Name"] for i in tagged_instances(self.client, self.cluster)
                if i["State"]["Name"] not in GONE}

    def step(self) -> None:
        alive = self.alive()
        self.peak = max(self.peak, len(alive))
        for instance_id, state in sorted(alive.items()):
            if state == "running" and instance_id not in self.started:
                self.started[instance_id] = time.time()
                self.startds[instance_id] = self.pool.start_startd(
                    instance_id, cpus=self.cpus, memory_mb=self.memory_mb, cluster=self.cluster,
                    instance_id=instance_id)
        for instance_id, startd in list(self.startds.items()):
            if alive.get(instance_id) != "running":
                self.pool.stop_startd(startd)
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
            self.pool.stop_startd(startd)
        self.startds.clear()
        if exc[0] is None:
            self.check()
