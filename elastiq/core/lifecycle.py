"""Per-instance lifecycle: requested -> booting -> joined -> draining -> terminating -> forgotten,
or error.

:func:`track` merges the new observation with the records of the previous tick and returns the
fleet as the rest of the core sees it.  Each instance's next lifecycle is read from
:data:`TRANSITIONS` (previous lifecycle x what the cloud lists x what the pool shows of its
worker); the rules it is written from, in words:

- Only instances tagged with our cluster are ours; everything else is invisible here.
- An id we launched but the cloud does not list yet (eventual consistency) stays *requested*
  and counts as alive until ``estimated_vm_deploy_time_s`` after its launch.  Any other record
  the cloud does not list, and any instance it lists as gone, is forgotten (no record).
- An instance is *joined* while a worker of the pool maps to it (``Worker.instance_id``).
  When the pool could not be read, records keep what they were.  One that never joined stays
  *requested* / *booting* as the cloud says; one whose worker left the pool keeps its lifecycle
  and notes since when its worker is missing (``missing_since``).
- *draining* is entered when the core plans a Drain (see ``mark``) or the pool shows the
  worker draining, kept while it does, and left (back to joined) when the pool shows it
  accepting jobs again (a pool read at the very instant of the planned drain predates it).
- *terminating* is entered when the core plans a Terminate, or when the cloud shows the
  instance shutting down (such an instance is kept in the records but is not a member);
  nothing but the cloud forgetting it ends it.  *error* is what the cloud says.
- ``busy_at`` is the last tick its worker was seen running a job, or named by the queue
  as the remote host of a running job.  A worker the queue names is alive even when the pool
  does not list it: it is not *missing*, its pool state counts as unknown.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import product
from typing import Dict, Mapping, NamedTuple, Optional, Tuple, Union

from ..model import (
    Instance,
    InstanceRecord,
    InstanceState,
    Lifecycle,
    Snapshot,
    Worker,
)


_ON_ITS_WAY = frozenset((Lifecycle.REQUESTED, Lifecycle.BOOTING))


@dataclass(frozen=True)
class Member:
    """One alive instance of ours, with its worker (None: not in the pool now)."""

    instance: Instance
    record: InstanceRecord
    worker: Optional[Worker]
    listed: bool = True  # False: launched by us, not yet listed by the cloud

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def booting(self) -> bool:
        """Capacity on its way: launched, never joined, not failed or going away."""
        return self.record.lifecycle in _ON_ITS_WAY

    @property
    def accepting(self) -> bool:
        """Joined, with its worker in the pool and not draining: new jobs may land there."""
        return (self.worker is not None and not self.worker.draining
                and self.record.lifecycle is Lifecycle.JOINED)

    @property
    def flavour(self) -> Optional[str]:
        """Its flavour, as the cloud lists it or as we launched it (None: not known)."""
        return self.instance.instance_type or self.record.flavour


@dataclass(frozen=True)
class Fleet:
    """The tracked instances; ``ended``: the records forgotten (or turned TERMINATING) this
    tick although elastiq had not terminated them: deleted outside elastiq, powered off by
    a safety net, or never listed by the cloud."""

    members: Tuple[Member, ...]
    records: Dict[str, InstanceRecord]
    ended: Tuple[Tuple[str, InstanceRecord], ...] = ()

    @property
    def alive(self) -> int:
        return len(self.members)

    @cached_property
    def booting(self) -> int:
        """VMs on their way (requested or booting, never joined)."""
        return sum(1 for m in self.members if m.booting)


class Seen(enum.Enum):
    """What the pool shows of an instance's worker."""

    ACCEPTING = "accepting"  # in the pool, accepting jobs
    DRAINING = "draining"  # in the pool, draining
    NOT_YET = "not yet"  # the pool was read, no worker: it never joined
    MISSING = "missing"  # the pool was read, no worker: it joined once
    UNKNOWN = "unknown"  # the pool could not be read, or a running job names the worker


class Unlisted(enum.Enum):
    """The cloud does not list the instance (the cloud column's other values: InstanceState)."""

    YET = "not listed yet"  # launched less than estimated_vm_deploy_time_s ago
    LONG = "not listed"


KEEP = "keep"  # next lifecycle: the previous one
FORGET = "forget"  # next: no record
JOIN = "join"  # learns: joined_at (the first time), the worker's name, not missing
MISSING = "missing"  # learns: since when the worker is missing (the first time)


class Step(NamedTuple):
    lifecycle: Union[Lifecycle, str]  # a Lifecycle, KEEP or FORGET
    learns: Optional[str]  # JOIN, MISSING or None


_L, _S = Lifecycle, InstanceState
_ALL = tuple(Lifecycle)
_STAYING = tuple(life for life in Lifecycle if life is not _L.TERMINATING)
_NOT_REQUESTED = tuple(life for life in Lifecycle if life is not _L.REQUESTED)
_UP = (_S.REQUESTED, _S.BOOTING, _S.RUNNING)
_ANY = tuple(Seen)
CLOUD = tuple(InstanceState) + tuple(Unlisted)

_RULES = (
    # previous lifecycle  cloud lists                pool shows worker  next            learns
    (_ALL,                (_S.GONE, Unlisted.LONG),  _ANY,              FORGET,         None),
    ((_L.REQUESTED,),     (Unlisted.YET,),           _ANY,              KEEP,           None),
    (_NOT_REQUESTED,      (Unlisted.YET,),           _ANY,              FORGET,         None),
    (_ALL,                (_S.SHUTTING_DOWN,),       _ANY,              _L.TERMINATING, None),
    ((_L.TERMINATING,),   _UP + (_S.ERROR,),         _ANY,              _L.TERMINATING, None),
    (_STAYING,            (_S.ERROR,),               _ANY,              _L.ERROR,       None),
    (_STAYING,            _UP,                       (Seen.ACCEPTING,), _L.JOINED,      JOIN),
    (_STAYING,            _UP,                       (Seen.DRAINING,),  _L.DRAINING,    JOIN),
    (_STAYING,            (_S.REQUESTED,),           (Seen.NOT_YET,),   _L.REQUESTED,   None),
    (_STAYING,            (_S.BOOTING, _S.RUNNING),  (Seen.NOT_YET,),   _L.BOOTING,     None),
    (_STAYING,            _UP,                       (Seen.MISSING,),   KEEP,           MISSING),
    (_STAYING,            _UP,                       (Seen.UNKNOWN,),   KEEP,           None),
)


def _table(rules) -> Dict[Tuple[Lifecycle, object, Seen], Step]:
    """Every (previous, cloud, seen) cell from exactly one rule; ValueError otherwise."""
    table: Dict[Tuple[Lifecycle, object, Seen], Step] = {}
    for previous, clouds, seens, lifecycle, learns in rules:
        for key in product(previous, clouds, seens):
            if key in table:
                raise ValueError(f"two rules for {key}")
            table[key] = Step(lifecycle, learns)
    left = [key for key in product(Lifecycle, CLOUD, Seen) if key not in table]
    if left:
        raise ValueError(f"no rule for {left[0]} and {len(left) - 1} more")
    return table


#: (previous lifecycle, cloud state or Unlisted, Seen) -> Step: the lifecycle's transitions.
TRANSITIONS = _table(_RULES)

#: The table's cells of a running instance whose worker is in the pool, accepting jobs while
#: joined or draining while draining (the pool shows what the record says).
_IN_POOL = {_L.JOINED: TRANSITIONS[_L.JOINED, _S.RUNNING, Seen.ACCEPTING],
            _L.DRAINING: TRANSITIONS[_L.DRAINING, _S.RUNNING, Seen.DRAINING]}

#: The lifecycle of an instance seen for the first time (adopted, or listed before tracked).
_CLOUD_TO_LIFECYCLE = {
    InstanceState.REQUESTED: Lifecycle.REQUESTED,
    InstanceState.BOOTING: Lifecycle.BOOTING,
    InstanceState.RUNNING: Lifecycle.BOOTING,
    InstanceState.ERROR: Lifecycle.ERROR,
    InstanceState.SHUTTING_DOWN: Lifecycle.TERMINATING,
}


def track(
    snapshot: Snapshot,
    records: Mapping[str, InstanceRecord],
    cluster: str,
    deploy_time_s: float,
    now: float,
) -> Fleet:
    """Merge the observation into the records.  ``snapshot.instances`` must not be None."""
    assert snapshot.instances is not None
    workers: Dict[str, Worker] = {}
    pool_known = snapshot.pool is not None
    if pool_known:
        for worker in snapshot.pool.workers:
            other = workers.get(worker.instance_id or "")
            if worker.instance_id and (other is None or worker.running_jobs > other.running_jobs):
                workers[worker.instance_id] = worker  # two ads for one VM: trust the busier
    listed = {i.id: i for i in snapshot.instances if i.cluster == cluster}
    running_on = snapshot.queue.running_on if snapshot.queue is not None else frozenset()

    members = []
    new_records: Dict[str, InstanceRecord] = {}
    ended = []
    for instance in listed.values():
        previous = records.get(instance.id)
        if previous is not None and previous.lifecycle is not _L.TERMINATING and \
                instance.state in (_S.GONE, _S.SHUTTING_DOWN):
            ended.append((instance.id, previous))
        if instance.state is _S.GONE:
            continue  # forgotten, whatever its record said (the table's first rule)
        if previous is None:  # adopted or newly listed
            previous = InstanceRecord(
                lifecycle=_CLOUD_TO_LIFECYCLE.get(instance.state, Lifecycle.BOOTING),
                since=now,
                launched_at=instance.launched_at or now,
                listed_at=now,
            )
        elif previous.listed_at is None:
            previous = replace(previous, listed_at=now)
        worker = workers.get(instance.id)
        record = _next_record(instance.state, previous, worker, pool_known, now, running_on)
        if record is not None:
            new_records[instance.id] = record
            if instance.state is not InstanceState.SHUTTING_DOWN:
                members.append(Member(instance, record, worker))

    for instance_id, previous in records.items():
        if instance_id in listed:
            continue
        # not listed "yet" only until it has been listed once: after that, unlisted is gone
        young = previous.listed_at is None and now - previous.launched_at < deploy_time_s
        seen = _seen(previous, workers.get(instance_id), pool_known, now)
        step = TRANSITIONS[previous.lifecycle, Unlisted.YET if young else Unlisted.LONG, seen]
        if step.lifecycle is KEEP:  # launched, not yet listed by the cloud: ours, alive
            new_records[instance_id] = previous
            ghost = Instance(instance_id, InstanceState.REQUESTED, previous.launched_at, cluster)
            members.append(Member(ghost, previous, None, listed=False))
        elif previous.lifecycle is not _L.TERMINATING:
            ended.append((instance_id, previous))

    return Fleet(tuple(members), new_records, tuple(ended))


def _seen(previous: InstanceRecord, worker: Optional[Worker], pool_known: bool,
          now: float) -> Seen:
    if worker is not None:
        # a pool read at the instant our drain was planned predates the drain
        drain_planned_now = previous.lifecycle is Lifecycle.DRAINING and previous.since >= now
        return Seen.DRAINING if worker.draining or drain_planned_now else Seen.ACCEPTING
    if not pool_known:
        return Seen.UNKNOWN
    return Seen.NOT_YET if previous.joined_at is None else Seen.MISSING


def _next_record(
    state: InstanceState,
    previous: InstanceRecord,
    worker: Optional[Worker],
    pool_known: bool,
    now: float,
    running_on=frozenset(),
) -> Optional[InstanceRecord]:
    """The record after this observation (None: forget it); ``previous`` itself when nothing
    changed (the common case, kept cheap: this runs for every instance at every tick)."""
    joined_at, missing, name = previous.joined_at, previous.missing_since, previous.worker
    busy = previous.busy_at
    if worker is not None and worker.busy:
        busy = now
    elif worker is None and name is not None and name in running_on:
        busy, missing, pool_known = now, None, False  # a job runs there: alive, unlisted
    if (worker is not None and state is _S.RUNNING and previous.lifecycle in _IN_POOL
            and (previous.lifecycle is _L.DRAINING) is worker.draining):
        step = _IN_POOL[previous.lifecycle]  # most instances at most ticks: no _seen needed
    else:
        step = TRANSITIONS[previous.lifecycle, state, _seen(previous, worker, pool_known, now)]
    lifecycle = step.lifecycle
    if lifecycle is FORGET:
        return None
    if lifecycle is KEEP:
        lifecycle = previous.lifecycle
    if step.learns is JOIN:
        joined_at = joined_at if joined_at is not None else now
        missing, name = None, worker.name
    elif step.learns is MISSING and missing is None:
        missing = now

    if lifecycle is previous.lifecycle:
        if (joined_at, missing, name, busy) == (previous.joined_at, previous.missing_since,
                                                previous.worker, previous.busy_at):
            return previous
        return InstanceRecord(lifecycle, previous.since, previous.launched_at, joined_at, name,
                              missing, busy, previous.underused_since, previous.drain,
                              previous.flavour, previous.listed_at)
    drain = previous.drain if lifecycle is Lifecycle.DRAINING else None
    return InstanceRecord(lifecycle, now, previous.launched_at, joined_at, name, missing, busy,
                          previous.underused_since, drain, previous.flavour, previous.listed_at)


def mark(records: Dict[str, InstanceRecord], ids, lifecycle: Lifecycle, now: float,
         drain: Optional[str] = None) -> None:
    """Record that the core planned a Drain (why: ``drain``), a drain's cancellation or a
    Terminate for these instances."""
    for instance_id in ids:
        previous = records.get(instance_id)
        if previous is not None and previous.lifecycle is not lifecycle:
            records[instance_id] = replace(previous, lifecycle=lifecycle, since=now, drain=drain,
                                           underused_since=None)
