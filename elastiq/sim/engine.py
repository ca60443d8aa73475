"""The virtual-time loop: a policy against the simulated cloud and pool, as the daemon runs it.

Each tick at time ``t`` (on the grid of ``check_queue_every_s``):

1. the pool and the cloud advance to ``t`` (jobs submitted and finished, VMs running/joining);
2. observe: ``pool.queue()``, ``pool.pool()``, ``cloud.list_instances()`` -> Snapshot (a failed
   read gives ``None`` and a problem, exactly as the runtime does);
3. ``policy.plan(snapshot, memory, config, t)``;
4. the negotiator matches idle jobs onto free slots.  It runs *after* the observation and
   *before* the actions: the window in which, in a real pool, a job can start on a host that
   is about to be terminated (a job killed that way is counted);
5. act, in plan order: Launch -> ``cloud.launch`` then ``policy.record_launch`` with the
   LaunchOutcome; Drain/CancelDrain -> the pool; Terminate -> ``cloud.terminate``.

Ticks in which nothing can change are skipped: the next tick is the first grid point at or
after the next job submission or completion, VM state change, or the plan's ``next_check``,
or the next grid point when the last tick changed something the policy has not seen yet or
acted.  The policy is not called when the snapshot is unchanged since its last call, its last
plan had no action and ``next_check`` has not come: by the contract of ``Plan.next_check``, it
would decide nothing.  This is what makes a 239-day replay take seconds.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Tuple

from ..adapters.base import AdapterError, error_kind
from ..adapters.sim import BootDelay, SimCloud, SimPool
from ..config import Config
from ..core import get_policy
from ..model import CancelDrain, Drain, Launch, LaunchOutcome, Plan, Snapshot, Terminate
from .metrics import Recorder
from .workload import Workload

EPOCH = 1_000_000_000.0  # virtual time of the first job; metrics are relative to it
_NO_PLAN = Plan()


@dataclass
class SimOptions:
    policy: str = "default"
    seed: int = 0
    boot_delay: BootDelay = field(default_factory=BootDelay)
    never_join_share: float = 0.0
    error_share: float = 0.0
    cloud_capacity: Optional[int] = None
    queue_failure: float = 0.0
    pool_failure: float = 0.0
    list_failure: float = 0.0
    timeline: bool = True
    every_tick: bool = False  # visit every grid tick and always plan (slow; to check skipping)
    progress: Optional[Callable[[float], None]] = None


def sim_config(config: Config) -> Config:
    """The configuration the simulation runs with: a definite VM shape (cpus default 1 as in
    ``vm.effective_cpus``; memory default 2 GiB per cpu when unset)."""
    cpus = config.vm.effective_cpus
    memory = config.vm.memory_mb or 2048 * cpus
    return replace(config, vm=replace(config.vm, cpus=cpus, memory_mb=memory))


def split_matchable(workload: Workload, cpus: int, memory_mb: int) -> Tuple[Workload, int]:
    """Jobs larger than one VM can never run: they are left out of the replay and counted."""
    keep = [i for i in range(len(workload))
            if workload.cpus[i] <= cpus and workload.memory_mb[i] <= memory_mb]
    if len(keep) == len(workload):
        return workload, 0
    out = Workload(workload.name, skipped=dict(workload.skipped), header=workload.header,
                   origin_s=workload.origin_s)
    for i in keep:
        out.add(workload.ids[i], workload.submit[i], workload.runtime[i], workload.cpus[i],
                workload.memory_mb[i])
    return out, len(workload) - len(keep)


class Simulation:
    """One replay.  ``run()`` returns the metrics dict; ``timeline`` holds the samples."""

    def __init__(self, workload: Workload, config: Config, options: SimOptions = SimOptions()):
        self.config = sim_config(config)
        self.options = options
        vm = self.config.vm
        self.workload, self.unmatchable = split_matchable(workload, vm.cpus, vm.memory_mb)
        self.now = self.workload_start = EPOCH
        clock = lambda: self.now  # noqa: E731
        self.pool = SimPool(clock, self.workload, start=EPOCH, vm_cpus=vm.cpus,
                            vm_memory_mb=vm.memory_mb, queue_failure=options.queue_failure,
                            pool_failure=options.pool_failure, seed=options.seed)
        self.cloud = SimCloud(clock, cluster=self.config.elastiq.cluster_name,
                              boot_delay=options.boot_delay,
                              never_join_share=options.never_join_share,
                              error_share=options.error_share, capacity=options.cloud_capacity,
                              list_failure=options.list_failure, seed=options.seed, pool=self.pool)
        self.policy = get_policy(options.policy)
        memory = self.policy.initial_memory()
        if hasattr(memory, "rng_state"):
            memory = replace(memory, rng_state=options.seed)
        self.memory = memory
        self.recorder = Recorder(self, timeline=options.timeline)

    # -- one tick
    def observe(self) -> Snapshot:
        problems = []

        def read(what, fn):
            try:
                return fn()
            except AdapterError as err:
                problems.append(f"{what} unreadable ({err.kind}): {err}")
                return None

        queue = read("queue", self.pool.queue)
        pool = read("pool", self.pool.pool)
        instances = read("cloud", self.cloud.list_instances)
        return Snapshot(queue, pool, instances, tuple(problems))

    def act(self, plan: Plan) -> None:
        cfg, now = self.config, self.now
        for action in plan.actions:
            if isinstance(action, Launch):
                try:
                    outcome = LaunchOutcome(action.count, self.cloud.launch(action.count))
                except AdapterError as err:
                    outcome = LaunchOutcome(action.count, (), error_kind(err))
                self.memory = self.policy.record_launch(self.memory, outcome, cfg, now)
            elif isinstance(action, Drain):
                self.pool.drain(action.worker, action.reason)
            elif isinstance(action, CancelDrain):
                self.pool.cancel_drain(action.worker)
            elif isinstance(action, Terminate):
                self.cloud.terminate(action.instance_ids)

    # -- the loop
    def run(self) -> dict:
        wall = time.perf_counter()
        cfg, pool, cloud, rec = self.config, self.pool, self.cloud, self.recorder
        interval = cfg.elastiq.check_queue_every_s
        failing = bool(self.options.queue_failure or self.options.pool_failure or self.options.list_failure)
        tail = 3 * (cfg.elastiq.idle_for_time_s + cfg.elastiq.estimated_vm_deploy_time_s) + 3600
        stall = max(86400.0, 10 * (cfg.elastiq.idle_for_time_s + cfg.elastiq.estimated_vm_deploy_time_s))
        span = max(self.workload.span_s, 1.0)
        seen, next_check, acted = None, None, True
        last_progress, completed, done_at, progress_every = EPOCH, 0, None, 64

        def grid(x: float) -> float:
            return EPOCH + math.ceil((x - EPOCH) / interval - 1e-9) * interval

        while True:
            t = self.now
            pool.advance(t)
            cloud.advance(t)
            snapshot = self.observe()
            observed = (pool.version, cloud.version)
            due = next_check is not None and t >= next_check
            if failing or acted or due or observed != seen or self.options.every_tick:
                plan, self.memory = self.policy.plan(snapshot, self.memory, cfg, t)
                rec.plan_calls += 1
                next_check, seen = plan.next_check, observed
            else:
                plan = _NO_PLAN
            started = pool.negotiate(t)
            self.act(plan)
            acted = bool(plan.actions)
            rec.tick(t, bool(snapshot.problems))
            if started or pool.completed != completed:
                last_progress, completed = t, pool.completed

            work_done = pool.all_done()
            if work_done and done_at is None:
                done_at = t
            if work_done and cloud.alive <= cfg.quota.min_vms:
                break
            if work_done and t - done_at > tail:
                rec.stop_reason = "VMs still alive long after the last job"
                break
            if pool.all_submitted() and not pool.running and t - last_progress > stall:
                rec.stop_reason = f"no job could start for {stall / 3600:g} h"
                break

            wakes = []
            if acted or snapshot.problems or (pool.version, cloud.version) != observed \
                    or self.options.every_tick:
                wakes.append(t + interval)
            for when in (pool.next_event(), cloud.next_event()):
                if when is not None:
                    wakes.append(max(grid(when), t + interval))
            if next_check is not None:
                wakes.append(t + interval if next_check <= t else max(grid(next_check), t + interval))
            if not wakes:
                rec.stop_reason = "nothing left that could change"
                break
            self.now = min(wakes)
            if self.options.progress is not None and rec.ticks % progress_every == 0:
                self.options.progress(min(1.0, (self.now - EPOCH) / span))

        pool.close(self.now)
        return rec.result(self.now, time.perf_counter() - wall)
