"""The virtual-time loop: the daemon's own tick against the simulated cloud and pool.

The simulator runs what ``elastiq run`` runs: the :class:`~elastiq.runtime.tick.Runtime` as
:func:`~elastiq.runtime.tick.build_runtime` builds it (observer, reconcile, the policy,
InFlight, the actuator with its look before terminating, the state), scheduled by the
daemon's :class:`~elastiq.runtime.scheduler.Scheduler` (checks due together run one tick;
the plan's ``next_check`` and the follow-up after acting are wake-ups) -- on a virtual clock,
with the simulated adapters (:mod:`.world`) in place of HTCondor and the cloud, and the state
kept in memory instead of a file.  What is simulation stays here: the workload, the simulated
world, the metrics and the report.

Each tick at a scheduler moment ``t``: the world advances to ``t`` (jobs submitted and
finished, VMs running and joining), the scheduler runs the runtime's tick, and the negotiator
matches idle jobs between the observation and the first action (see :mod:`.world`).

Quiet stretches are skipped: when the runtime did not act and the world is as it last read
it, the ticks before the next change of the world or the next wake-up would decide nothing
(by the contract of ``Plan.next_check``).  They are skipped with the one effect they have,
the observer's last cloud read among them, so for a policy that keeps that contract (the
default one) the actions are those of running every tick (tested against the daemon's road in
``tests/test_sim_one_road.py``); the legacy policy's own check cadence, which its
``next_check`` does not announce, may move a decision by one check period.

The replay ends when every job is done and our instances are back to the policy's
``resting_vms`` (``min_vms``; COBalD keeps its Limiter's minimum); or when VMs are still alive
long after the last job, no job could start for a day, or nothing at all can change any more
(``stop_reason`` says which).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

from ..adapters.base import ConfigError
from ..runtime.factory import flavour_entries, resolve_flavours
from .. import flavours as flavour_list
from .cloud import BootDelay
from ..config import Config, InvalidConfig
from ..core import POLICIES as CORE_POLICIES, get_policy as core_policy
from ..model import Catalogue, Plan
from ..runtime.metrics import Metrics
from ..runtime.observe import CLOUD_KINDS
from ..runtime.scheduler import Scheduler, checks
from ..runtime.state import State
from ..runtime.tick import build_runtime
from . import peers, skip
from .metrics import Recorder
from .workload import Workload
from .world import World

EPOCH = 1_000_000_000.0  # virtual time of the first job; metrics are relative to it
#: Every policy ``elastiq simulate`` can run: elastiq's own, then the baselines (:mod:`.peers`).
POLICY_NAMES = tuple(CORE_POLICIES) + peers.NAMES


def get_policy(name: str):
    """The policy registered under ``name``: elastiq's core ones or a baseline's (KeyError if
    unknown; :class:`peers.PolicyUnavailable` when its package is missing)."""
    if name in CORE_POLICIES:
        return core_policy(name)
    return peers.get_peer(name)


def policy_for(name: str, config: Config):
    """The policy ``name`` as the runtime runs it: a baseline bound to ``config``
    (:class:`peers.Configured`), elastiq's own as it is."""
    policy = get_policy(name)
    return policy if name in CORE_POLICIES else peers.Configured(policy, config)


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
    every_tick: bool = False  # run every tick, skip no quiet stretch (slow; to check skipping)
    progress: Optional[Callable[[float], None]] = None
    on_decision: Optional[Callable[[float, Plan], None]] = None  # (seconds since start, plan)


def sim_catalogue(config: Config) -> Catalogue:
    """The worker VMs the simulation runs with, beside its configuration: a definite shape
    (the ``vm`` section's, else the first flavour's; cpus default 1 as in ``vm.effective_cpus``,
    memory 2 GiB per cpu); with several flavours, them resolved from their entries (no cloud to
    ask: a flavour without ``:CPUS:MEMORY_MB`` is never launched, see :mod:`elastiq.flavours`)."""
    entries = flavour_entries(config)
    cpus, memory, flavours = config.vm.cpus, config.vm.memory_mb, ()
    if len(entries) > 1:
        try:
            flavours = resolve_flavours(config, None, entries).flavours
        except ConfigError as err:
            raise InvalidConfig(config.source, err.key, str(err)) from None
        cpus, memory = cpus or flavours[0].cpus, memory or flavours[0].memory_mb
    elif first_flavour_shape(config) is not None:
        written = first_flavour_shape(config)
        cpus, memory = cpus or written[0], memory or written[1]
    cpus = cpus or config.vm.effective_cpus
    return Catalogue(cpus, memory or 2048 * cpus, flavours)


def first_flavour_shape(config: Config) -> Optional[Tuple[int, int]]:
    """(cpus, memory MiB) written in the first flavour entry (``NAME:CPUS:MEMORY_MB``), if any."""
    entries = flavour_entries(config)
    try:
        entry = flavour_list.parse(entries[0]) if entries else None
    except ValueError:
        return None
    return (entry.cpus, entry.memory_mb) if entry and entry.cpus and entry.memory_mb else None


def split_matchable(workload: Workload, cpus: int, memory_mb: int) -> Tuple[Workload, int]:
    """Jobs larger than one VM can never run: they are left out of the replay and counted."""
    keep = [i for i in range(len(workload))
            if workload.cpus[i] <= cpus and workload.memory_mb[i] <= memory_mb]
    if len(keep) == len(workload):
        return workload, 0
    return workload.take(keep), len(workload) - len(keep)


class _Unsaved:
    """The state store of a simulation: the state stays in memory."""

    path = "(not saved: simulation)"
    for_status = False  # no ``status`` reads it: the runtime skips the per-VM summary

    def save(self, state: State) -> None:
        pass


class _Unscraped(Metrics):
    """The runtime's Prometheus metrics, which nobody scrapes in a simulation: the per-tick
    gauges and histogram are not kept (counts of launches, terminations, errors are)."""

    def observed(self, snapshot) -> None:
        pass

    def tick(self, seconds: float) -> None:
        pass


class Simulation:
    """One replay.  ``run()`` returns the metrics dict; ``timeline`` holds the samples."""

    def __init__(self, workload: Workload, config: Config, options: SimOptions = SimOptions()):
        self.config, self.catalogue = config, sim_catalogue(config)
        self.options = options
        vm = self.catalogue
        self.workload, self.unmatchable = split_matchable(workload, vm.cpus, vm.memory_mb)
        self.workload_start = EPOCH
        self.world = World(self.workload, self.config, options, EPOCH, self.catalogue)
        self.pool, self.cloud = self.world.pool, self.world.sim_cloud
        self.policy = policy_for(options.policy, config)
        state = State(memory=self.policy.initial_memory(seed=options.seed))
        self.runtime = build_runtime(self.config, self.world.batch, self.world.cloud, _Unsaved(),
                                     state, clock=self.world.clock, metrics=_Unscraped(),
                                     policy=self.policy, catalogue=self.catalogue,
                                     observer_class=skip.ReplayObserver)
        self.scheduler = Scheduler(self._tick, checks(self.config), clock=self.world.clock)
        self.recorder = Recorder(self, timeline=options.timeline)
        self._acted = False

    @property
    def now(self) -> float:
        return self.world.now

    @property
    def memory(self):
        """The policy's memory (opaque: for tests and reports)."""
        return self.runtime.state.memory

    def _tick(self, kind: str) -> Optional[float]:
        """One tick of the runtime (the scheduler calls it), then the negotiation if no action
        came first, and the counts."""
        world, rec, t = self.world, self.recorder, self.world.now
        wake = self.runtime.tick(kind)
        world.negotiate()
        plan = self.runtime.last_plan or Plan()
        # acted, or asked to be called again at once (a next_check not after now: the runtime
        # leaves it to the next periodic check): the next tick is not quiet
        self._acted = bool(plan.actions) or (plan.next_check is not None and plan.next_check <= t)
        rec.plan_calls += 1
        if plan.actions and self.options.on_decision is not None:
            self.options.on_decision(t - EPOCH, plan)
        observation = self.runtime.state.observation
        rec.tick(t, world.peak, bool(observation and observation.problems), world.peak_cores,
                 world.peak_memory_mb)
        return wake

    # -- the loop
    def run(self) -> dict:
        """Replay the whole workload; return the metrics (see :mod:`elastiq.sim.metrics`)."""
        wall = time.perf_counter()
        world, sched, rec, opts = self.world, self.scheduler, self.recorder, self.options
        failing = bool(opts.queue_failure or opts.pool_failure or opts.list_failure)
        self._progress_at, self._completed, self._done_at = EPOCH, 0, None
        sched.wake_at(EPOCH, kind="start")
        while True:
            t = sched.next_moment()
            world.advance(t)
            if sched.run_due() is None:
                continue
            if self._finished(t, world.started):
                break
            quiet = not (failing or opts.every_tick or self._acted or world.unseen())
            if quiet and not self._skip_quiet():
                rec.stop_reason = "nothing left that could change"
                break
            if opts.progress is not None and rec.ticks % 64 == 0:
                opts.progress(min(1.0, (t - EPOCH) / max(self.workload.span_s, 1.0)))
        self.pool.close(world.now)
        return rec.result(world.now, time.perf_counter() - wall)

    def _finished(self, t: float, started: int) -> bool:
        """Stop when the work is done and the pool is back to min_vms, or when nothing more
        can happen (VMs never scaled down, or jobs that can never start)."""
        e, pool = self.config.elastiq, self.pool
        if started or pool.completed != self._completed:
            self._progress_at, self._completed = t, pool.completed
        if not pool.all_done():
            stall = max(86400.0, 10 * (e.idle_timeout_max_s + e.estimated_vm_deploy_time_s))
            if pool.all_submitted() and not pool.running and t - self._progress_at > stall:
                self.recorder.stop_reason = f"no job could start for {stall / 3600:g} h"
                return True
            return False
        if self._done_at is None:
            self._done_at = t
        if self.cloud.alive <= self.policy.resting_vms(self.runtime.params):
            return True
        if t - self._done_at > 3 * (e.idle_timeout_max_s + e.estimated_vm_deploy_time_s) + 3600:
            self.recorder.stop_reason = "VMs still alive long after the last job"
            return True
        return False

    def _skip_quiet(self) -> bool:
        """Skip the ticks before the next change of the world or the next wake-up, with the
        observer's last cloud read among them (the world is as it was: the same listing, read
        at that time).  False when nothing can ever change any more."""
        agenda, event = self.scheduler.agenda, self.world.next_event()
        wake = self.scheduler.pending_wake
        if event is None and wake is None:
            return False
        following = agenda.next_at()
        if (wake is not None and wake <= following) or (event is not None and event <= following):
            return True  # the very next tick sees it: nothing to skip
        target = wake if wake is not None else math.inf
        if event is not None:  # the first periodic tick at or after the event sees it
            target = min(target, skip.tick_at_or_after(agenda, event))
        last_tick = skip.last_tick_before(agenda, target - agenda.window)
        if last_tick is None:
            return True
        reads = [at for kind, at in skip.last_served(agenda, last_tick).items() if kind in CLOUD_KINDS]
        if reads:
            self.world.now = max(reads)
            self.runtime.observer.relisted(self.world.now)
        agenda.take(last_tick)
        return True
