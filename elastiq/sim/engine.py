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
would decide nothing.  For the default policy the result is identical to calling it at every
tick (tested); the legacy policy's own 45 s VM-check cadence can shift by one period.  This is
what lets a 239-day replay run in well under a minute.

The replay ends when every job is done and our instances are back to ``min_vms`` (or the
policy's ``resting_vms``: COBalD keeps its Limiter's minimum); or when VMs
are still alive long after the last job, no job could start for a day, or nothing at all can
change any more (``stop_reason`` says which).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Tuple

from ..adapters.base import AdapterError, error_kind
from ..adapters.sim import BootDelay, SimCloud, SimPool
from ..config import Config
from ..core import POLICIES as CORE_POLICIES, get_policy as core_policy
from ..model import CancelDrain, Drain, Launch, LaunchOutcome, Plan, Snapshot, Terminate
from . import peers
from .metrics import Recorder
from .workload import Workload

EPOCH = 1_000_000_000.0  # virtual time of the first job; metrics are relative to it
_NO_PLAN = Plan()
#: Every policy ``elastiq simulate`` can run: elastiq's own, then the peers' (:mod:`.peers`).
POLICY_NAMES = tuple(CORE_POLICIES) + peers.NAMES


def get_policy(name: str):
    """The policy registered under ``name``: elastiq's core ones or a peer's (KeyError if
    unknown; :class:`peers.PolicyUnavailable` when its package is missing)."""
    if name in CORE_POLICIES:
        return core_policy(name)
    return peers.get_peer(name)


def resting_vms(policy, config: Config) -> int:
    """VMs the policy keeps when nothing runs: min_vms, unless the policy says otherwise."""
    rest = getattr(policy, "resting_vms", None)
    return rest(config) if rest is not None else config.quota.min_vms


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
    on_decision: Optional[Callable[[float, Plan], None]] = None  # (seconds since start, plan)


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
    return workload.take(keep), len(workload) - len(keep)


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

    def act(self, plan: Plan) -> int:
        """Carry out the plan; return the most instances alive at any point of it."""
        cfg, now = self.config, self.now
        peak = self.cloud.alive
        for action in plan.actions:
            if isinstance(action, Launch):
                try:
                    outcome = LaunchOutcome(action.count, self.cloud.launch(action.count))
                except AdapterError as err:
                    outcome = LaunchOutcome(action.count, (), error_kind(err))
                self.memory = self.policy.record_launch(self.memory, outcome, cfg, now)
                peak = max(peak, self.cloud.alive)
            elif isinstance(action, Drain):
                self.pool.drain(action.worker, action.reason)
            elif isinstance(action, CancelDrain):
                self.pool.cancel_drain(action.worker)
            elif isinstance(action, Terminate):
                self.cloud.terminate(action.instance_ids)
        return peak

    # -- the loop
    def run(self) -> dict:
        """Replay the whole workload; return the metrics (see :mod:`elastiq.sim.metrics`)."""
        wall = time.perf_counter()
        pool, cloud, rec, opts = self.pool, self.cloud, self.recorder, self.options
        failing = bool(opts.queue_failure or opts.pool_failure or opts.list_failure)
        seen, next_check, acted = None, None, True
        self._progress_at, self._completed, self._done_at = EPOCH, 0, None
        while True:
            t = self.now
            pool.advance(t)
            cloud.advance(t)
            snapshot = self.observe()
            observed = (pool.version, cloud.version)
            due = next_check is not None and t >= next_check
            if failing or acted or due or observed != seen or opts.every_tick:
                plan, self.memory = self.policy.plan(snapshot, self.memory, self.config, t)
                rec.plan_calls += 1
                next_check, seen = plan.next_check, observed
                if plan.actions and opts.on_decision is not None:
                    opts.on_decision(t - EPOCH, plan)
            else:
                plan = _NO_PLAN
            started = pool.negotiate(t)
            peak = self.act(plan)
            acted = bool(plan.actions)
            rec.tick(t, peak, bool(snapshot.problems))
            if self._finished(t, started):
                break
            unseen = acted or bool(snapshot.problems) or observed != (pool.version, cloud.version)
            following = self._next_tick(t, unseen or opts.every_tick, next_check)
            if following is None:
                rec.stop_reason = "nothing left that could change"
                break
            self.now = following
            if opts.progress is not None and rec.ticks % 64 == 0:
                opts.progress(min(1.0, (self.now - EPOCH) / max(self.workload.span_s, 1.0)))
        pool.close(self.now)
        return rec.result(self.now, time.perf_counter() - wall)

    def _finished(self, t: float, started: int) -> bool:
        """Stop when the work is done and the pool is back to min_vms, or when nothing more
        can happen (VMs never scaled down, or jobs that can never start)."""
        e, pool = self.config.elastiq, self.pool
        if started or pool.completed != self._completed:
            self._progress_at, self._completed = t, pool.completed
        if not pool.all_done():
            stall = max(86400.0, 10 * (e.idle_for_time_s + e.estimated_vm_deploy_time_s))
            if pool.all_submitted() and not pool.running and t - self._progress_at > stall:
                self.recorder.stop_reason = f"no job could start for {stall / 3600:g} h"
                return True
            return False
        if self._done_at is None:
            self._done_at = t
        if self.cloud.alive <= resting_vms(self.policy, self.config):
            return True
        if t - self._done_at > 3 * (e.idle_for_time_s + e.estimated_vm_deploy_time_s) + 3600:
            self.recorder.stop_reason = "VMs still alive long after the last job"
            return True
        return False

    def _next_tick(self, t: float, unseen: bool, next_check: Optional[float]) -> Optional[float]:
        """The next grid time at which something can change (None: nothing ever will).
        ``unseen``: this tick changed something the policy has not observed yet."""
        interval = self.config.elastiq.check_queue_every_s

        def grid(x: float) -> float:
            return max(EPOCH + math.ceil((x - EPOCH) / interval - 1e-9) * interval, t + interval)

        wakes = [t + interval] if unseen else []
        wakes += [grid(when) for when in (self.pool.next_event(), self.cloud.next_event()) if when is not None]
        if next_check is not None:
            wakes.append(grid(next_check))
        return min(wakes) if wakes else None
