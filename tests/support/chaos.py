"""Chaos harness: the daemon's Runtime, the real EC2 adapter through the fault proxy to moto,
and a simulated HTCondor pool whose workers are moto's running instances, in virtual time.

Each ``Chaos.tick()`` moves virtual time by ``step_s``: instances moto lists running for
``join_s`` join the pool, instances moto no longer lists running leave it (killing the jobs
running there: ``jobs_killed``), jobs are submitted, finish and are matched; then one real
tick runs.  Counted against moto itself (not elastiq's view): the most alive instances of the
cluster after every launch call and every tick (``peak``), the
tagged instances elastiq's memory does not know and untagged ones (``orphans``), and drains of
a worker whose drain was cancelled before and that ran no job since (``flaps``: the cancel was
for nothing).

The cloud's launch times are real time while the daemon's clock is virtual, so the harness
hands the core each instance's launch time in virtual time (``_VirtualLaunchTimes``).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Set

from elastiq.adapters.base import TransientError
from elastiq.adapters.ec2.cloud import EC2Cloud
from elastiq.sim.cloud import SimPool
from elastiq.core import get_policy
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.e2e_pool import tagged_instances
from tests.support.ec2_fixtures import make_config
from tests.support.sim_world import workload

ALIVE = ("pending", "running")


class _VirtualLaunchTimes:
    """The EC2 adapter, with launch times in the daemon's virtual time."""

    def __init__(self, cloud: EC2Cloud, clock, sample):
        self.cloud, self.clock, self.sample = cloud, clock, sample
        self.first_seen: Dict[str, float] = {}

    def list_instances(self):
        out = []
        for i in self.cloud.list_instances():
            out.append(replace(i, launched_at=self.first_seen.setdefault(i.id, self.clock())))
        return tuple(out)

    def launch(self, count, *, flavour=None, request_id=None):
        try:
            ids = self.cloud.launch(count, flavour=flavour, request_id=request_id)
        finally:
            self.sample()  # the count can only grow here
        for i in ids:
            self.first_seen.setdefault(i, self.clock())
        return ids

    def terminate(self, ids):
        self.cloud.terminate(ids)

    def describe_flavours(self, names):
        return self.cloud.describe_flavours(names)


class _Pool:
    """SimPool as the daemon's batch system, with outages the scenario switches on."""

    def __init__(self, chaos: "Chaos"):
        self.chaos, self.sim = chaos, chaos.sim

    def _check(self, what: str) -> None:
        if what in self.chaos.unreadable:
            raise TransientError(f"chaos: {what} unreadable")

    def queue(self):
        self._check("queue")
        return self.sim.queue()

    def pool(self, known_ips=None):
        self._check("pool")
        answer = self.sim.pool(known_ips)
        if self.chaos.race_s:  # the world moves on between the observation and the actions
            self.chaos.move(self.chaos.now + self.chaos.race_s)
        return answer

    def drain(self, worker, reason):
        self._check("drain")
        self.chaos.drained.append(worker)
        if self.chaos.cancelled.pop(worker, True) is False:
            self.chaos.flaps += 1
        self.sim.drain(worker, reason)

    def cancel_drain(self, worker):
        self._check("drain")
        self.chaos.cancelled[worker] = False  # True once a job ran there
        self.sim.cancel_drain(worker)

    def workers_of(self, ids, known_ips=None):
        self._check("pool")
        return self.sim.workers_of(ids, known_ips)

    def forget(self, ids):
        self.sim.forget(ids)


class Chaos:
    def __init__(self, tmp_path, server, world, cluster: str, jobs, *, max_vms: int = 4,
                 step_s: float = 20.0, join_s: float = 30.0, race_s: float = 0.0,
                 proxy_url: Optional[str] = None, **elastiq):
        self.server, self.cluster = server, cluster
        self.client = server.client()
        self.now = self.start = 1_000_000.0
        clock = lambda: self.now  # noqa: E731
        self.step_s, self.join_s, self.race_s = step_s, join_s, race_s
        self.sim = SimPool(clock, workload(jobs), start=self.start, vm_cpus=1, vm_memory_mb=2048)
        self.unreadable: Set[str] = set()
        self.peak = self.ticks = self.flaps = 0
        self.drained: List[str] = []
        self.cancelled: Dict[str, bool] = {}
        self.running_since: Dict[str, float] = {}
        settings = dict(cluster_name=cluster, waiting_jobs_time_s=20, idle_timeout_max_s=120,
                        estimated_vm_deploy_time_s=120, n_jobs_per_vm=1, launch_backoff_s=10,
                        launch_backoff_max_s=60, recheck_after_action_s=5, state_dir=str(tmp_path / "state"))
        settings.update(elastiq)
        ec2 = make_config(proxy_url or server.url, world, cluster)
        from elastiq import config as config_mod
        self.config = config_mod.from_dict({
            "elastiq": settings, "quota": {"min_vms": 0, "max_vms": max_vms},
            "vm": {"cpus": 1, "memory_mb": 2048},
            "ec2": {k: v for k, v in vars(ec2.cloud).items() if v not in (None, ())},
        }, "chaos")
        cloud = EC2Cloud(self.config, max_attempts=2, connect_timeout=1.0, read_timeout=0.2,
                         detect=lambda names: {})
        self.cloud = _VirtualLaunchTimes(cloud, clock, self.sample)
        self.store = StateStore(str(tmp_path / "state"))
        self.runtime = Runtime(self.config, get_policy("default"), _Pool(self), self.cloud,
                               self.store, clock=clock)

    # ------------------------------------------------------------------ the world
    def alive(self) -> Dict[str, str]:
        return {i["InstanceId"]: i["State"]["Name"]
                for i in tagged_instances(self.client, self.cluster, ALIVE)}

    def sample(self) -> None:
        self.peak = max(self.peak, len(self.alive()))

    def move(self, t: float) -> None:
        self.now = t
        alive = self.alive()
        self.peak = max(self.peak, len(alive))
        running = {i for i, s in alive.items() if s == "running"}
        for i in running:
            self.running_since.setdefault(i, t)
        for i in list(self.sim.workers):
            if i not in running:
                self.sim.remove_worker(i, t)
        for i in sorted(running):
            if i not in self.sim.workers and t - self.running_since[i] >= self.join_s:
                self.sim.add_worker(i, t)
        self.sim.advance(t)
        self.sim.negotiate(t)
        for slot in self.sim.workers.values():
            if slot.running and slot.name in self.cancelled:
                self.cancelled[slot.name] = True

    def tick(self) -> None:
        self.move(self.now + self.step_s)
        self.runtime.tick("vms")
        self.ticks += 1

    # ------------------------------------------------------------------ the counts
    def orphans(self) -> int:
        """Alive instances that elastiq would never terminate: tagged ones its memory does
        not know, and untagged ones (a launch whose tags were lost)."""
        known = set(self.runtime.state.records)
        tagged = set(self.alive())
        everything = {i["InstanceId"] for r in self.client.describe_instances()["Reservations"]
                      for i in r["Instances"] if i["State"]["Name"] in ALIVE}
        return len(tagged - known) + len(everything - tagged)

    def decisions(self, kind: str) -> int:
        return sum(1 for d in self.runtime.state.decisions if d.kind == kind)
