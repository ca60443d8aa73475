"""One tick: observe (batch + cloud) -> reconcile (once) -> decide (core) -> act -> persist.

:class:`Runtime` holds what lives between ticks (the persisted :class:`State`: the lifecycle
records and the policy's memory among it; the observer's cloud listing, the notes of the last
plan) and nothing else; the clock is injected, so tests and the latency benchmark drive it in
virtual time.  The decision is :func:`elastiq.core.records.step`: the records brought up to
the observation, the policy's plan over them, the plan's marks in them.

``tick(kind)`` returns when the runtime wants to tick again: the plan's ``next_check`` (a
time-based condition changes then; one not after the tick's time is ignored), or
``recheck_after_action_s`` after it acted (to see the effect soon); None when nothing is
pending and the periodic checks suffice.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any, Callable, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Type

from ..adapters.base import BatchSystem, Cloud
from ..config import Config, params_of
from ..core import get_policy, records as rec
from ..core.reasons import Reason
from ..model import Catalogue, InstanceState, Plan, Snapshot
from .actuator import Actuator, Outcome
from .inflight import InFlight
from .metrics import Metrics
from .observe import Observer
from . import owner as owner_file
from .owner import Ownership
from .reconcile import reconcile
from .state import (MAX_DECISIONS, MAX_JOIN_TIMES, Decision, Observation, State, StateStore,
                    VMView)

log = logging.getLogger(__name__)

def build_runtime(config: Config, batch: BatchSystem, cloud: Cloud, store: "StateStore",
                  state: Optional[State] = None, clock: Callable[[], float] = time.time,
                  metrics: Optional[Metrics] = None, dry_run: bool = False,
                  stopping: Optional[threading.Event] = None, policy=None,
                  catalogue: Optional[Catalogue] = None,
                  observer_class: Type[Observer] = Observer) -> "Runtime":
    """The Runtime as ``elastiq run`` builds it: the policy named by ``elastiq.policy``
    (``policy``: another policy object, as ``elastiq simulate --policy`` runs;
    ``observer_class``: the simulator's, which may note ticks it skipped)."""
    policy = policy if policy is not None else get_policy(config.elastiq.policy)
    return Runtime(config, policy, batch, cloud, store, state, clock, metrics, dry_run, stopping,
                   catalogue, observer_class)


class Runtime:
    def __init__(self, config: Config, policy, batch: BatchSystem, cloud: Cloud,
                 store: StateStore, state: Optional[State] = None,
                 clock: Callable[[], float] = time.time, metrics: Optional[Metrics] = None,
                 dry_run: bool = False, stopping: Optional[threading.Event] = None,
                 catalogue: Optional[Catalogue] = None,
                 observer_class: Type[Observer] = Observer):
        self.config, self.policy, self.store, self.clock = config, policy, store, clock
        self.params = params_of(config)  # what the core reads of the configuration
        # the worker VMs' facts beside the configuration (the user's input, never changed)
        self.catalogue = catalogue or Catalogue.of(config.vm)
        self.metrics = metrics or Metrics()
        self.state = state or State(memory=policy.initial_memory())  # memory: opaque, the policy's
        self.state = replace(self.state, cluster=config.elastiq.cluster_name)
        self.stopping = stopping or threading.Event()  # set: abandon the remaining actions
        e = config.elastiq
        self.observer = observer_class(batch, cloud, e.list_vms_every_s,
                                       on_error=self.metrics.error,
                                       ownership=_ownership(cloud, e.cluster_name, store),
                                       known=lambda: self.state.records)
        # a drain sent is in flight until the pool shows it, or every check has run once more
        self.in_flight = InFlight(batch, clock, max(e.check_queue_every_s, e.list_vms_every_s))
        self.actuator = Actuator(self.in_flight, cloud, policy, config, clock, self.metrics,
                                 params=self.params,
                                 dry_run_boot=dry_run, dry_run_shutdown=dry_run,
                                 should_stop=self.stopping.is_set,
                                 known_ips=self.observer.known_ips)
        self.reconciled = False
        self._for_status = store.for_status  # False: nobody reads a per-VM summary
        self.last_plan: Optional[Plan] = None  # the plan of the last tick, as carried out
        self._notes: FrozenSet[tuple] = frozenset()  # the last notes' keys (elapsed times aside)
        self._raw_notes: Tuple[Reason, ...] = ()  # the last notes as they were

    # ------------------------------------------------------------------ the tick

    def tick(self, kind: str) -> Optional[float]:
        started = self.clock()
        snapshot = self.observer.observe(kind, started)
        self.metrics.observed(snapshot)
        now = self.clock()
        before, memory = self.state.records, self.state.memory
        decisions: List[Decision] = []
        if not self.reconciled:
            before, report = reconcile(before, snapshot, self.params, now)
            if report is not None:
                self.reconciled = True
                for line in report.lines():
                    log.info("%s", line)
                if report.adopted or report.missing:
                    decisions.extend(Decision(now, "note", line) for line in report.lines()[1:])

        if self.state.unknown_launches:  # learn their outcome before deciding anew
            before, memory = self._retry_unknown(before, memory, decisions)
        plan, records, memory = rec.step(self.policy, snapshot, before, memory, self.params, now,
                                         self.catalogue)
        plan = self.last_plan = self.in_flight.hold_back(plan, snapshot.pool, now)
        decisions.extend(self._log_notes(plan.notes, now))

        outcome = self.actuator.execute(plan, records, memory, before,
                                        persist=self._persist_launch,
                                        hold_launches=bool(self.state.unknown_launches))
        if outcome.changed_cloud:
            self.observer.invalidate_cloud()
        self._save(self._next_state(outcome, decisions, snapshot))
        self.metrics.tick(self.clock() - started)
        return self._next_wake(plan, outcome, now)

    def _persist_launch(self, records: rec.Records, memory: Any, granted: Tuple[str, ...]) -> None:
        """Save the records and memory right after a launch, with the instances granted
        awaiting their join."""
        self._save(replace(self.state, records=records, memory=memory,
                           awaiting_join=self.state.awaiting_join + granted))

    def _retry_unknown(self, records: rec.Records, memory: Any,
                       decisions: List[Decision]) -> Tuple[rec.Records, Any]:
        records, memory, left, done = self.actuator.retry_unknown(
            self.state.unknown_launches, records, memory, persist=self._persist_launch)
        self.state = replace(self.state, unknown_launches=left)
        decisions.extend(done)
        self.observer.invalidate_cloud()
        return records, memory

    def _next_state(self, outcome: Outcome, decisions: List[Decision], snapshot: Snapshot) -> State:
        records = outcome.records
        # this tick's launches were added to awaiting_join at once
        joins, awaiting = rec.join_delays(records, self.state.awaiting_join)
        owned = {i: r.worker for i, r in records.items()} if self._for_status else {}
        now, old = self.clock(), self.state
        new = tuple(decisions) + outcome.decisions
        return State(outcome.memory,
                     (old.decisions + new)[-MAX_DECISIONS:] if new else old.decisions,
                     (old.join_times + joins)[-MAX_JOIN_TIMES:] if joins else old.join_times,
                     awaiting, _summarise(snapshot, owned, now, old.observation, self._for_status),
                     old.cluster, now, old.unknown_launches + outcome.unknown, records)

    def _next_wake(self, plan: Plan, outcome: Outcome, now: float) -> Optional[float]:
        # a next_check not after this tick's time is this tick's: waking for it again at once
        # would decide the same (the policy is pure) and spin; the periodic checks follow
        wakes = [plan.next_check] if plan.next_check is not None and plan.next_check > now else []
        if outcome.acted:
            wakes.append(now + self.config.elastiq.recheck_after_action_s)
        return min(wakes) if wakes else None

    def _log_notes(self, notes: Iterable[Reason], now: float) -> List[Decision]:
        """Log the reasons for not acting: INFO when they changed (their :attr:`Reason.key`:
        elapsed times aside), else DEBUG."""
        if notes == self._raw_notes:  # the same notes again (most ticks)
            for note in notes:
                log.debug("%s", note)
            return []
        self._raw_notes = notes
        keys = [(note.key, note) for note in notes]
        previous, self._notes = self._notes, frozenset(key for key, _ in keys)
        changed = []
        for key, note in keys:
            if key in previous:
                log.debug("%s", note)
            else:
                log.info("%s", note)
                changed.append(Decision(now, "note", str(note)))
        return changed

    # ------------------------------------------------------------------ persistence

    def save(self) -> None:
        """Persist the current state (at shutdown)."""
        self._save(self.state)

    def _save(self, state: State) -> None:
        now = self.clock()
        self.state = state if state.saved_at == now else replace(state, saved_at=now)
        try:
            self.store.save(self.state)
        except OSError as err:  # disk full, permissions: keep running, try again next tick
            self.metrics.error("state")
            log.error("cannot save the state to %s: %s", self.store.path, err.strerror or err)


def _ownership(cloud: Cloud, cluster: str, store) -> Optional[Ownership]:
    """The split of listings by owner when the cloud tags launches with an owner id (its
    ``owner`` attribute; a cloud without one sees every instance of the cluster as ours)."""
    owner = getattr(cloud, "owner", None)
    if not owner:
        return None
    directory = getattr(store, "directory", None)
    return Ownership(owner, cluster, owner_file.path_in(directory) if directory
                     else "the owner file of the state directory")


def _summarise(snapshot: Snapshot, owned: Mapping[str, Optional[str]], now: float,
               previous: Optional[Observation], vms_too: bool = True) -> Observation:
    """What ``status`` shows: our VMs with cloud state, address, worker and running jobs
    (``vms_too`` False: the counts and problems only)."""
    queue = snapshot.queue
    if not vms_too:
        return Observation(now, len(queue.idle) if queue else None,
                           queue.running if queue else None, (), snapshot.problems)
    listed = {i.id: i for i in snapshot.instances or () if i.state is not InstanceState.GONE}
    workers = {w.instance_id: w for w in (snapshot.pool.workers if snapshot.pool else ())
               if w.instance_id}
    old = {v.instance_id: v for v in (previous.vms if previous else ())}
    vms = []
    for instance_id in sorted(set(owned) | set(listed)):
        instance, worker, prior = listed.get(instance_id), workers.get(instance_id), old.get(instance_id)
        vms.append(VMView(
            instance_id,
            instance.state.value if instance else (None if snapshot.instances is not None
                                                   else prior and prior.cloud_state),
            (instance.private_ip if instance else None) or (prior.address if prior else None),
            worker.name if worker else owned.get(instance_id),
            worker.running_jobs if worker else 0,
        ))
    return Observation(
        at=now,
        idle_jobs=len(queue.idle) if queue else None,
        running_jobs=queue.running if queue else None,
        vms=tuple(vms),
        problems=snapshot.problems,
    )
