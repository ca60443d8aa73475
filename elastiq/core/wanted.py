"""Whether an idle worker is still wanted, and whether the pool's answer can be trusted.

One rule, used by scale-up (cancel a drain) and scale-down (drain) alike, so the two never
undo each other:

- A worker's idle time counts from the last tick the core saw it busy (``busy_at``, kept in
  memory), or the pool's own ``idle_since`` when that is later.  The pool's timestamp is only a
  hint (a partitionable slot does not move it when its dynamic slots come and go); after a
  restart without state it is all there is.  A worker idle for the idle timeout is released
  unless jobs that can start on it are waiting.  The timeout adapts to what a relaunch costs
  (:func:`idle_timeout`: ``idle_timeout_boot_factor`` times the measured boot-to-join time,
  within the operator's ``idle_timeout_min_s`` .. ``idle_timeout_max_s``).
- Jobs that waited ``idle_timeout_max_s`` while a worker they fit sat idle for
  ``idle_timeout_max_s`` did not start there (the negotiator does not match them, whatever our
  worker template says): they are *unstarted*.  They keep no worker, cancel no drain and cause
  no launch; they are reported.  The cut (queued before, shape) is kept in memory.

And the pool: workers missing from it while the queue names them as the remote host of a
running job (or, when the queue names no host, while it counts more running jobs than the
pool's workers run), or while the collector restarted less than :data:`COLLECTOR_GRACE_S` ago
(its startds advertise again within ``UPDATE_INTERVAL``, 300 s by default), are not gone: the
pool is then partial, and nothing is scaled down from it.
"""
from __future__ import annotations

from typing import Optional, Tuple

from ..model import Lifecycle, Snapshot
from .demand import Placeable
from .lifecycle import Fleet, Member
from .params import Releasing
from .reasons import Code, Reason

#: HTCondor's default UPDATE_INTERVAL (300 s) plus its jitter and a negotiation cycle.
COLLECTOR_GRACE_S = 360.0


def idle_start(member: Member) -> Optional[float]:
    """Since when ``member``'s worker has been idle; None while it is claimed or absent."""
    worker, record = member.worker, member.record
    if worker is None or worker.busy:
        return None
    times = [t for t in (worker.idle_since, record.busy_at) if t is not None]
    if times:
        return max(times)
    return record.joined_at


def idle_timeout(fleet: Fleet, releasing: Releasing) -> Tuple[float, Reason]:
    """How long a worker may sit idle before it is drained, and why (its basis):
    ``idle_timeout_boot_factor`` times the median boot-to-join time of our VMs in the pool now
    (what a relaunch would cost), within ``idle_timeout_min_s`` (capped at the maximum) and
    ``idle_timeout_max_s``; the maximum itself when the factor is 0 or nothing was measured."""
    e = releasing
    longest, factor, floor = e.idle_timeout_max_s, e.idle_timeout_boot_factor, e.idle_timeout_min_s
    boots = sorted(m.record.joined_at - m.record.launched_at for m in fleet.members
                   if m.record.joined_at is not None and m.worker is not None)
    if not factor or not boots:
        return longest, Reason.of(Code.IDLE_TIMEOUT_MAX)
    median = boots[len(boots) // 2] if len(boots) % 2 else (boots[len(boots) // 2 - 1]
                                                             + boots[len(boots) // 2]) / 2
    timeout = max(min(floor, longest), min(longest, factor * median))
    return timeout, Reason.of(Code.BOOT_TO_JOIN, factor=factor, median=median,
                              low=min(floor, longest), high=longest)


def idle_long(fleet: Fleet, idle_for: float, now: float):
    """Accepting, unclaimed workers idle for ``idle_for`` or more."""
    for m in fleet.members:
        start = idle_start(m)
        if (start is not None and now - start >= idle_for and not m.worker.draining
                and m.record.lifecycle is Lifecycle.JOINED):
            yield m


def release_unstarted(jobs: Placeable, fleet: Fleet, unstarted: Optional[Tuple[float, int, int]],
                      idle_for: float, now: float) -> Tuple[Placeable, Optional[Tuple[float, int, int]]]:
    """Move the stale jobs that fit an idle-for-long worker to *unstarted*; return the jobs
    and the new ``Memory.unstarted``."""
    rooms = [(m.worker.free_cpus, m.worker.free_memory_mb) for m in idle_long(fleet, idle_for, now)]
    if not rooms or not jobs.stale:
        return jobs, unstarted
    cpus, memory = max(rooms)
    released = jobs.without_unstarted(cpus, memory)
    if released is jobs:
        return jobs, unstarted
    return released, (now - idle_for, cpus, memory)


def unstarted_note(jobs: Optional[Placeable], idle_for: float) -> Tuple[Reason, ...]:
    if jobs is None or not jobs.unstarted:
        return ()
    return (Reason.of(Code.UNSTARTED, count=jobs.unstarted, idle_for=idle_for),)


def pool_doubt(snapshot: Snapshot, fleet: Fleet, now: float) -> Optional[Reason]:
    """Why the pool's answer must not be trusted for a scale-down; None when it can be."""
    if snapshot.pool is None:
        return None
    lost = [m for m in fleet.members
            if m.worker is None and m.record.joined_at is not None
            and m.record.lifecycle in (Lifecycle.JOINED, Lifecycle.DRAINING)]
    if not lost:
        return None
    queue = snapshot.queue
    running = queue.running_on if queue is not None else frozenset()
    named = sorted(m.record.worker for m in lost if m.record.worker in running)
    if named:
        return Reason.of(Code.LOST_RUN_JOBS, count=len(named), workers=tuple(named[:3]))
    if queue is not None and not running:  # the queue counts running jobs but names no host
        unseen = queue.running - sum(w.running_jobs for w in snapshot.pool.workers)
        if unseen > 0:
            return Reason.of(Code.RUNNING_UNSEEN, count=unseen, lost=len(lost))
    started = snapshot.pool.collector_started
    if started is not None and now - started < COLLECTOR_GRACE_S:
        return Reason.of(Code.COLLECTOR_RESTARTED, ago=now - started, count=len(lost))
    return None
