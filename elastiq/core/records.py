"""The per-instance lifecycle records: the runtime's own record keeping, one implementation
for every policy (pure: ``now`` is a parameter).

A policy plans; the records of what became of each instance we own are kept here, for any
policy the runtime runs:

- :func:`step` is the core's part of a tick: the records brought up to the observation
  (:func:`.lifecycle.track`, and since when each worker is under-used), the policy's plan
  over them, then what the plan decided marked in them (:func:`mark_plan`);
- :func:`launched`: the instances a launch granted, *requested* from now on (they count
  against ``max_vms`` before the cloud lists them);
- :func:`adopt`: after a start, the saved records against the cloud's first listing;
- :func:`undo`: an action the plan decided was not carried out (dry run, shutdown, the pool
  could not be looked at): those instances' records go back to what they were before the tick;
- :func:`drained_instead`: a planned termination found the worker accepting or running jobs
  and drained it instead;
- :func:`join_delays`: boot-to-join times of the instances that joined.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, TYPE_CHECKING

from ..model import (ALIVE_STATES, CancelDrain, Catalogue, Drain, InstanceRecord, InstanceState,
                     LaunchOutcome, Lifecycle, Plan, Snapshot, Terminate)
from .consolidate import note_underuse
from .lifecycle import Fleet, mark, track
from .params import Params

if TYPE_CHECKING:  # annotations only
    from .policy import Policy

#: instance id -> its lifecycle record: every instance we own and have not seen gone.
Records = Mapping[str, InstanceRecord]


@dataclass(frozen=True)
class Adoption:
    """What :func:`adopt` found: tagged instances taken on, saved ones not listed, and how
    many saved ones are still there."""

    adopted: Tuple[str, ...] = ()
    missing: Tuple[str, ...] = ()
    kept: int = 0


def observe(snapshot: Snapshot, records: Records, params: Params, now: float) -> Optional[Fleet]:
    """The records merged with the observation, as the fleet a policy plans over; None when
    the cloud could not be listed (the records then stay as they were)."""
    if snapshot.instances is None:
        return None
    fleet = track(snapshot, records, params.cluster_name, params.estimated_vm_deploy_time_s, now)
    return note_underuse(fleet, params.releasing.consolidate_below, now)


def step(policy: Policy, snapshot: Snapshot, records: Records, memory: Any, params: Params,
         now: float, catalogue: Optional[Catalogue] = None) -> Tuple[Plan, Records, Any]:
    """One decision: ``(plan, records, the policy's memory)`` after this observation."""
    fleet = observe(snapshot, records, params, now)
    plan, memory = policy.plan(snapshot, fleet, memory, params, now, catalogue)
    return plan, mark_plan(fleet.records if fleet is not None else records, plan, now), memory


def mark_plan(records: Records, plan: Plan, now: float) -> Records:
    """Record what ``plan`` decided: a drained instance is *draining* (``drain``: the code of
    the reason it is drained for), one whose drain is cancelled *joined* again, one to
    terminate *terminating*.  ``records`` itself when the plan changes none."""
    marked: Optional[Dict[str, InstanceRecord]] = None
    for action in plan.actions:
        if isinstance(action, Drain):
            ids, lifecycle, drain = (action.instance_id,), Lifecycle.DRAINING, action.reason.code.value
        elif isinstance(action, CancelDrain):
            ids, lifecycle, drain = (action.instance_id,), Lifecycle.JOINED, None
        elif isinstance(action, Terminate):
            ids, lifecycle, drain = action.instance_ids, Lifecycle.TERMINATING, None
        else:
            continue
        if marked is None:
            marked = dict(records)
        mark(marked, ids, lifecycle, now, drain)
    return records if marked is None else marked


def launched(records: Records, outcome: LaunchOutcome, now: float) -> Records:
    """The instances a launch granted become *requested* records."""
    if not outcome.granted:
        return records
    out = dict(records)
    for instance_id in outcome.granted:
        out[instance_id] = InstanceRecord(Lifecycle.REQUESTED, now, now, flavour=outcome.flavour)
    return out


def adopt(records: Records, snapshot: Snapshot, params: Params,
          now: float) -> Tuple[Records, Adoption]:
    """The saved records against the cloud's listing (which must not be None): the listed
    instances are tracked exactly as any instance seen for the first time; a saved record the
    cloud does not list is kept while freshly requested (``estimated_vm_deploy_time_s``: the
    cloud may not list it yet)."""
    listed = {i.id: i for i in snapshot.instances if i.cluster == params.cluster_name}
    adopted = tuple(sorted(
        i.id for i in listed.values()
        if i.id not in records
        and (i.state in ALIVE_STATES or i.state is InstanceState.SHUTTING_DOWN)))
    missing = tuple(sorted(i for i in records if i not in listed))
    tracked = track(snapshot, records, params.cluster_name, params.estimated_vm_deploy_time_s,
                    now).records
    return tracked, Adoption(adopted, missing, len(records) - len(missing))


def undo(records: Records, before: Records, instance_ids: Iterable[str]) -> Records:
    """Those instances' records as in ``before`` (the records the tick started from)."""
    out: Dict[str, InstanceRecord] = dict(records)
    for instance_id in instance_ids:
        if instance_id in before:
            out[instance_id] = before[instance_id]
        else:  # adopted this very tick: adopted again at the next one
            out.pop(instance_id, None)
    return out


def drained_instead(records: Records, instance_id: str, worker: str, now: float) -> Records:
    """A planned termination of ``instance_id`` drained its ``worker`` instead."""
    record = records.get(instance_id)
    if record is None:
        return records
    out = dict(records)
    out[instance_id] = replace(record, lifecycle=Lifecycle.DRAINING, since=now, worker=worker,
                               joined_at=record.joined_at or now, missing_since=None)
    return out


def join_delays(records: Records, instance_ids: Iterable[str]
                ) -> Tuple[Tuple[float, ...], Tuple[str, ...]]:
    """Boot-to-join seconds of those instances that joined, and the ones still awaited
    (forgotten ones are in neither)."""
    joins, waiting = [], []
    for instance_id in instance_ids:
        record = records.get(instance_id)
        if record is None:
            continue  # gone before it joined
        if record.joined_at is not None:
            joins.append(max(0.0, record.joined_at - record.launched_at))
        else:
            waiting.append(instance_id)
    return tuple(joins), tuple(waiting)
