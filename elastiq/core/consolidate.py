"""Consolidation: shrink the pool onto fewer, fuller workers while no job waits.

Most VM-hours wasted by a batch pool are not idle VMs but VMs kept alive by one or two jobs
(fragmentation).  Cluster-autoscaler's scale-down of under-utilised nodes is the model:

- a worker's *use* is the larger of its claimed cpu and memory shares;
- a joined, accepting worker with a claimed slot and a use below ``consolidate_below`` is
  *under-used*; since when is kept in its record (``underused_since``, reset when its use
  rises to the threshold, when it goes idle -- the idle rule of :mod:`.wanted` then applies --
  or when it is drained or its drain cancelled);
- a worker under-used for ``consolidate_after_s`` is drained when its running jobs and all
  the fitting jobs waiting would fit the free room of the accepting workers that stay
  (least used first, each drained one keeping the room its jobs counted on): no waiting job
  is left needing a new VM, and as many jobs as it runs still find room elsewhere.

A consolidation drain is a drain like any other: no new job lands there, its running jobs
finish (never killed), then the VM is terminated because it is drained and unclaimed; and
scale-up cancels it, as any drain, as soon as jobs wait with no room (:mod:`.scaleup`).  That
is the one rule of :mod:`.wanted` seen from the other side: jobs that can start keep workers.
"""
from __future__ import annotations

from dataclasses import replace
from typing import List, Tuple

from ..model import Drain, Worker
from .demand import place
from .lifecycle import Fleet, Member
from .reasons import Code, Reason

def use(worker: Worker) -> float:
    """The larger of the claimed cpu and memory shares of ``worker``."""
    return max((worker.cpus - worker.free_cpus) / max(worker.cpus, 1),
               (worker.memory_mb - worker.free_memory_mb) / max(worker.memory_mb, 1))


def note_underuse(fleet: Fleet, below: float, now: float) -> Fleet:
    """``fleet`` with ``underused_since`` of every record brought up to this observation."""
    members, records = fleet.members, None  # copied at the first change
    for k, m in enumerate(fleet.members):
        record = m.record
        under = below > 0 and m.accepting and m.worker.busy and use(m.worker) < below
        since = (record.underused_since if record.underused_since is not None else now) if under else None
        if since != record.underused_since:
            if records is None:
                members, records = list(members), dict(fleet.records)
            record = records[m.id] = replace(record, underused_since=since)
            members[k] = Member(m.instance, record, m.worker, m.listed)
    return fleet if records is None else Fleet(tuple(members), records)


def consolidation_drains(fleet: Fleet, leaving: set, allowed: int, below: float, after: float,
                         now: float, wakes: List[float], waiting=()) -> Tuple[Drain, ...]:
    """Drains of under-used workers (at most ``allowed``), least used first; the moments more
    will be due go to ``wakes``.  ``waiting``: ``((cpus, memory_mb), count)`` of the fitting
    jobs waiting, which must keep fitting the room of the workers that stay."""
    candidates = []
    for m in fleet.members:
        since = m.record.underused_since
        if since is None or m.id in leaving or not m.accepting:
            continue
        if now - since >= after:
            candidates.append(m)
        else:
            wakes.append(since + after)
    if not candidates or allowed <= 0:
        return ()
    candidates.sort(key=lambda m: (use(m.worker), m.id))
    room = {m.id: [m.worker.free_cpus, m.worker.free_memory_mb]
            for m in fleet.members if m.accepting and m.id not in leaving}
    waiting = sorted(waiting, reverse=True)
    if not _fit(waiting, {i: list(r) for i, r in room.items()}):
        return ()
    out = []
    for m in candidates:
        if len(out) >= allowed:
            break
        w = m.worker
        jobs = [(_share(w), w.running_jobs)]
        trial = {i: list(r) for i, r in room.items() if i != m.id}
        if not _fit(jobs, trial) or not _fit(waiting, {i: list(r) for i, r in trial.items()}):
            continue
        room = trial
        out.append(Drain(w.name, m.id, Reason.of(
            Code.CONSOLIDATION, used=use(w), below=below, underused=now - m.record.underused_since,
            jobs=w.running_jobs)))
    return tuple(out)


def _share(worker: Worker) -> Tuple[int, int]:
    """The shape of one of ``worker``'s running jobs: the pool shows no job's own request,
    so equal shares of its used cpus and memory, rounded up."""
    jobs = worker.running_jobs
    return (-(-(worker.cpus - worker.free_cpus) // jobs),
            -(-(worker.memory_mb - worker.free_memory_mb) // jobs))


def _fit(jobs, room: dict) -> bool:
    """First-fit ``jobs`` (``((cpus, memory_mb), count)``) into ``room`` (id -> [free cpus,
    free MiB], changed in place); whether they all found a place."""
    return all(not place(cpus, memory, count, room.values()) for (cpus, memory), count in jobs)
