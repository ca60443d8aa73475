"""The daemon's Runtime on the simulated cloud and pool, in virtual time, for race tests.

``SimWorld.tick(t)`` moves the world to ``t`` (jobs submitted and finished, VMs joining, one
negotiation), then runs one real tick (observe -> decide -> act -> persist).  ``after_observe``
(optional) moves the world on between the observation and the actions: the window in which
a negotiator matches a job the observation did not show.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from elastiq.sim.cloud import BootDelay, SimCloud, SimPool
from elastiq.core import get_policy
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from elastiq.sim.workload import Workload
from tests.support.world import make_config


def workload(jobs: Sequence[tuple]) -> Workload:
    """``jobs``: (submit, runtime) pairs of one-cpu jobs."""
    return Workload("race", ids=[f"1.{i}" for i in range(len(jobs))], submit=[s for s, _ in jobs],
                    runtime=[r for _, r in jobs], cpus=[1] * len(jobs),
                    memory_mb=[1024] * len(jobs))


class _Late:
    """The simulated pool, with the world moving on right after the pool is observed."""

    def __init__(self, world: "SimWorld"):
        self.world, self.sim = world, world.pool

    def queue(self):
        return self.sim.queue()

    def pool(self, known_ips=None):
        answer = self.sim.pool(known_ips)
        hook, self.world.after_observe = self.world.after_observe, None
        if hook is not None:
            hook()
        return answer

    def drain(self, worker, reason):
        self.sim.drain(worker, reason)

    def cancel_drain(self, worker):
        self.sim.cancel_drain(worker)

    def workers_of(self, instance_ids, known_ips=None):
        return self.sim.workers_of(instance_ids, known_ips)

    def forget(self, instance_ids):
        self.sim.forget(instance_ids)


class SimWorld:
    def __init__(self, tmp_path, jobs: Sequence[tuple], boot_s: float = 30.0,
                 vm: Optional[dict] = None, **elastiq):
        self.now = 0.0
        clock: Callable[[], float] = lambda: self.now  # noqa: E731
        vm = {"cpus": 1, "memory_mb": 2048, **(vm or {})}
        self.pool = SimPool(clock, workload(jobs), start=0.0, vm_cpus=vm["cpus"],
                            vm_memory_mb=vm["memory_mb"])
        self.cloud = SimCloud(clock, cluster="test", boot_delay=BootDelay("fixed", boot_s),
                              pool=self.pool)
        settings = {"waiting_jobs_time_s": 0, "n_jobs_per_vm": 0}
        settings.update(elastiq)
        self.config = make_config(tmp_path, elastiq=settings, vm=vm)
        self.after_observe: Optional[Callable[[], None]] = None
        self.runtime = Runtime(self.config, get_policy("default"), _Late(self), self.cloud,
                               StateStore(str(tmp_path / "state")), clock=clock)

    def move(self, t: float) -> None:
        self.now = t
        self.pool.advance(t)
        self.cloud.advance(t)
        self.pool.negotiate(t)

    def tick(self, t: float, after_observe: Optional[Callable[[], None]] = None) -> None:
        self.move(t)
        self.after_observe = after_observe
        self.runtime.tick("vms")

    @property
    def decisions(self) -> List[str]:
        return [d.text for d in self.runtime.state.decisions]

    def lifecycle(self, instance_id: str):
        record = self.runtime.state.records.get(instance_id)
        return record.lifecycle if record else None
