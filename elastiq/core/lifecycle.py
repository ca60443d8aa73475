"""Per-instance lifecycle: requested -> booting -> joined -> draining -> terminating -> gone | error.

:func:`track` merges the new observation with the records of the previous tick and returns the
fleet as the rest of the core sees it.  Rules:

- Only instances tagged with our cluster are ours; everything else is invisible here.
- An id we launched but the cloud does not list yet (eventual consistency) stays *requested*
  and counts as alive until ``estimated_vm_deploy_time_s`` after its launch.
- An instance is *joined* while a worker of the pool maps to it (``Worker.instance_id``).
  When the pool could not be read, records keep what they were.
- *draining* is entered when the core plans a Drain (see ``mark``), kept while the pool shows
  the worker draining, and left (back to joined) when the pool shows it accepting jobs again.
- *terminating* is entered when the core plans a Terminate, or when the cloud shows the
  instance shutting down; *gone* instances are dropped from the records.
- ``busy_at`` is the last tick its worker was seen with a claimed slot, or named by the queue
  as the remote host of a running job.  A worker the queue names is alive even when the pool
  does not list it: it is not *missing*.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Dict, Mapping, Optional, Tuple

from ..model import (
    ALIVE_STATES,
    Instance,
    InstanceRecord,
    InstanceState,
    Lifecycle,
    Snapshot,
    Worker,
)


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
        return self.record.lifecycle in (Lifecycle.REQUESTED, Lifecycle.BOOTING)


@dataclass(frozen=True)
class Fleet:
    members: Tuple[Member, ...]
    records: Dict[str, InstanceRecord]

    @property
    def alive(self) -> int:
        return len(self.members)

    @cached_property
    def booting(self) -> int:
        """VMs on their way (requested or booting, never joined)."""
        return sum(1 for m in self.members if m.booting)

    def count(self, lifecycle: Lifecycle) -> int:
        return sum(1 for m in self.members if m.record.lifecycle is lifecycle)


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
    if snapshot.pool is not None:
        for worker in snapshot.pool.workers:
            other = workers.get(worker.instance_id or "")
            if worker.instance_id and (other is None or worker.running_jobs > other.running_jobs):
                workers[worker.instance_id] = worker  # two ads for one VM: trust the busier
    listed = {i.id: i for i in snapshot.instances if i.cluster == cluster}
    running_on = snapshot.queue.running_on if snapshot.queue is not None else frozenset()

    members = []
    new_records: Dict[str, InstanceRecord] = {}
    for instance in listed.values():
        if instance.state not in ALIVE_STATES and instance.state is not InstanceState.SHUTTING_DOWN:
            continue  # gone: forget it
        previous = records.get(instance.id)
        worker = workers.get(instance.id)
        record = _next_record(instance, previous, worker, snapshot.pool is not None, now,
                              running_on)
        new_records[instance.id] = record
        if instance.state is not InstanceState.SHUTTING_DOWN:
            members.append(Member(instance, record, worker))

    for instance_id, previous in records.items():
        if instance_id in listed:
            continue
        unlisted_young = (
            previous.lifecycle is Lifecycle.REQUESTED
            and now - previous.launched_at < deploy_time_s
        )
        if unlisted_young:  # launched, not yet listed by the cloud: still ours, still alive
            new_records[instance_id] = previous
            ghost = Instance(instance_id, InstanceState.REQUESTED, previous.launched_at, cluster)
            members.append(Member(ghost, previous, None, listed=False))

    return Fleet(tuple(members), new_records)


def _next_record(
    instance: Instance,
    previous: Optional[InstanceRecord],
    worker: Optional[Worker],
    pool_known: bool,
    now: float,
    running_on=frozenset(),
) -> InstanceRecord:
    """The record after this observation; ``previous`` itself when nothing changed (the
    common case, kept cheap: this runs for every instance at every tick)."""
    if previous is None:  # adopted or newly listed
        previous = InstanceRecord(
            lifecycle=_CLOUD_TO_LIFECYCLE.get(instance.state, Lifecycle.BOOTING),
            since=now,
            launched_at=instance.launched_at or now,
        )
    lifecycle = previous.lifecycle
    joined_at, missing, name = previous.joined_at, previous.missing_since, previous.worker
    busy = previous.busy_at
    if worker is not None and worker.busy:
        busy = now
    elif worker is None and name is not None and name in running_on:
        busy, missing, pool_known = now, None, False  # a job runs there: alive, unlisted

    if instance.state is InstanceState.SHUTTING_DOWN:
        lifecycle = Lifecycle.TERMINATING
    elif instance.state is InstanceState.ERROR:
        lifecycle = Lifecycle.TERMINATING if lifecycle is Lifecycle.TERMINATING else Lifecycle.ERROR
    elif lifecycle is Lifecycle.TERMINATING:
        pass  # we asked for it; the cloud has not caught up yet
    elif worker is not None:
        joined_at = joined_at if joined_at is not None else now
        missing, name = None, worker.name
        if worker.draining:
            lifecycle = Lifecycle.DRAINING
        elif lifecycle is Lifecycle.DRAINING and previous.since < now:
            lifecycle = Lifecycle.JOINED  # drain cancelled or never took effect
        elif lifecycle is not Lifecycle.DRAINING:
            lifecycle = Lifecycle.JOINED
    elif pool_known and joined_at is None:
        lifecycle = Lifecycle.REQUESTED if instance.state is InstanceState.REQUESTED else Lifecycle.BOOTING
    elif pool_known and missing is None:
        missing = now  # joined once, gone from the pool now

    if lifecycle is previous.lifecycle:
        if (joined_at, missing, name, busy) == (previous.joined_at, previous.missing_since,
                                                previous.worker, previous.busy_at):
            return previous
        return InstanceRecord(lifecycle, previous.since, previous.launched_at, joined_at, name,
                              missing, busy, previous.underused_since, previous.drain)
    drain = previous.drain if lifecycle is Lifecycle.DRAINING else None
    return InstanceRecord(lifecycle, now, previous.launched_at, joined_at, name, missing, busy,
                          previous.underused_since, drain)


def mark(records: Dict[str, InstanceRecord], ids, lifecycle: Lifecycle, now: float,
         drain: Optional[str] = None) -> None:
    """Record that the core planned a Drain (why: ``drain``), a drain's cancellation or a
    Terminate for these instances."""
    for instance_id in ids:
        previous = records.get(instance_id)
        if previous is not None and previous.lifecycle is not lifecycle:
            records[instance_id] = replace(previous, lifecycle=lifecycle, since=now, drain=drain,
                                           underused_since=None)
