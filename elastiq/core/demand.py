"""How many new VMs the idle jobs need.

Idle jobs are placed, largest first (first-fit decreasing over cpu then memory), into:

1. the free cpu/memory of joined workers that accept jobs (the negotiator will match them
   there on its next cycle, so launching for them would waste money),
2. the full shape of VMs already requested or booting (capacity on its way),
3. new VMs of the configured shape, at most ``limit`` of them.

With ``n_jobs_per_vm`` set, the original's simpler rule applies instead: every VM holds that
many jobs, a worker has ``n_jobs_per_vm - running_jobs`` free places.

Jobs that fit no worker, or larger than one VM, are never placed and never cause a launch;
nor do *unstarted* jobs (see :mod:`.wanted`).
Jobs of identical shape are placed together, so the cost grows with the number of distinct
shapes times the number of bins, not with the number of jobs.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from operator import attrgetter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..model import IdleJobs, Job


@dataclass(frozen=True)
class Placeable:
    """The idle jobs, sorted once per tick: those that fit one worker VM, counted by shape."""

    shapes: Counter  # (cpus, memory_mb) -> number of idle jobs of that shape that fit a VM
    unmatchable: int  # idle jobs that can never run on a worker VM
    fresh: int  # of the placeable ones, jobs queued after ``fresh_after``
    stale: Counter = field(default_factory=Counter)  # the shapes of the others
    unstarted: int = 0  # jobs that fit a VM but did not start next to an idle worker

    @property
    def waiting(self) -> int:
        return sum(self.shapes.values())

    def without_unstarted(self, cpus: int, memory_mb: int) -> "Placeable":
        """These jobs with the stale ones no larger than ``cpus``/``memory_mb`` moved to
        ``unstarted``."""
        gone = Counter({s: n for s, n in self.stale.items() if s[0] <= cpus and s[1] <= memory_mb})
        if not gone:
            return self
        return Placeable(self.shapes - gone, self.unmatchable, self.fresh, self.stale - gone,
                         self.unstarted + sum(gone.values()))


@dataclass(frozen=True)
class Demand:
    waiting: int  # idle jobs that fit a worker and that fit one VM
    uncovered: int  # of those, jobs with no room in existing or booting capacity
    new_vms: int  # new VMs needed for the uncovered jobs (capped by ``limit``)
    unplaced: int  # jobs left without room even after ``limit`` new VMs
    unmatchable: int  # idle jobs that can never run on a worker VM
    # several flavours (:mod:`.mix`): (flavour, new VMs of it), in launch order; () = one flavour
    mix: Tuple[Tuple[str, int], ...] = ()


_QUEUED = attrgetter("queued_since")
_KIND = attrgetter("cpus", "memory_mb", "fits_worker")


def classify(jobs: Iterable[Job], vm_cpus: int, vm_memory_mb: int, fresh_after: float,
             unstarted: Optional[Tuple[float, int, int]] = None) -> Placeable:
    """The idle jobs (there may be 100,000 of them) counted by kind and age.  ``unstarted``:
    ``(queued_before, cpus, memory_mb)`` of jobs known not to start (``Memory.unstarted``).

    Works on each kind's sorted queue times (:func:`kinds_of`, or the summary that comes with
    :class:`~elastiq.model.IdleJobs`): per kind, the first ``cut`` are *unstarted* (when the
    shape is small enough), the first ``old`` are stale, found by bisection, so the work per
    tick grows with the number of distinct kinds, not of jobs."""
    before, max_cpus, max_memory = unstarted or (float("-inf"), 0, 0)
    by_kind = jobs.by_kind if isinstance(jobs, IdleJobs) and jobs.by_kind is not None \
        else kinds_of(jobs)
    shapes: Counter = Counter()
    stale: Counter = Counter()
    unmatchable = fresh = skipped = 0
    for (cpus, memory, fits), times in by_kind.items():
        n = len(times)
        if not (fits and cpus <= vm_cpus and memory <= vm_memory_mb):
            unmatchable += n
            continue
        shape = (max(cpus, 1), max(memory, 0))
        cut = (bisect_right(times, before)
               if shape[0] <= max_cpus and shape[1] <= max_memory else 0)
        old = bisect_right(times, fresh_after)
        skipped += cut
        if n > cut:
            shapes[shape] += n - cut
        if old > cut:
            stale[shape] += old - cut
        fresh += n - max(cut, old)
    return Placeable(shapes, unmatchable, fresh, stale, skipped)


def kinds_of(jobs: Iterable[Job]) -> Dict[Tuple[int, int, bool], List[float]]:
    """``(cpus, memory_mb, fits_worker)`` -> the sorted ``queued_since`` of the jobs of that
    kind (the summary :class:`~elastiq.model.IdleJobs` carries)."""
    jobs = jobs if isinstance(jobs, (list, tuple)) else list(jobs)
    by_kind: Dict[Tuple[int, int, bool], List[float]] = {}
    for kind, queued in zip(map(_KIND, jobs), map(_QUEUED, jobs)):
        by_kind.setdefault(kind, []).append(queued)
    for times in by_kind.values():
        times.sort()  # linear on a queue already in order, as the schedd's usually is
    return by_kind


def by_shape(
    jobs: Placeable,
    free: Sequence[Tuple[int, int]],
    booting: int,
    vm_cpus: int,
    vm_memory_mb: int,
    limit: int,
) -> Demand:
    """First-fit decreasing of job shapes into ``free`` bins and ``booting`` VMs, then into at
    most ``limit`` new VMs."""
    bins = list(free) + [(vm_cpus, vm_memory_mb)] * booting
    uncovered, new, unplaced = pack(jobs, bins, vm_cpus, vm_memory_mb, limit)
    return Demand(jobs.waiting, uncovered, len(new), unplaced, jobs.unmatchable)


def pack(jobs: Placeable, room: Sequence[Tuple[int, int]], vm_cpus: int, vm_memory_mb: int,
         limit: int, open_vm: Optional[Callable[[int, int], Optional[Tuple[int, int]]]] = None,
         ) -> Tuple[int, List[List[int]], int]:
    """First-fit decreasing of the job shapes into ``room`` (free cpus/memory of workers and
    booting VMs), then into at most ``limit`` new VMs of ``vm_cpus``/``vm_memory_mb``.
    ``open_vm(cpus, memory_mb)``, when given, sizes each new VM instead: the shape of a VM
    that holds a job of that shape, or None when none may be opened for it (a quota).
    Returns (jobs without room in ``room``, the new VMs' room left, jobs left unplaced)."""
    existing: List[List[int]] = [[c, m] for c, m in room if c > 0]
    leftover = []
    for (cpus, memory), count in sorted(jobs.shapes.items(), reverse=True):
        if existing:
            count = place(cpus, memory, count, existing)
        if count:
            leftover.append((cpus, memory, count))
    uncovered = sum(count for _, _, count in leftover)

    new: List[List[int]] = []
    unplaced = 0
    for cpus, memory, count in leftover:
        if new:
            count = place(cpus, memory, count, new)
        while count and len(new) < limit:
            shape = (vm_cpus, vm_memory_mb) if open_vm is None else open_vm(cpus, memory)
            if shape is None:
                break
            new.append(list(shape))
            count = place(cpus, memory, count, new[-1:])
        unplaced += count
    return uncovered, new, unplaced


def place(cpus: int, memory: int, count: int, bins: Iterable[List[int]]) -> int:
    """Put up to ``count`` jobs of one shape into ``bins`` (``[free cpus, free MiB]``, changed
    in place), first fit; return how many are left.  The one packing routine of scale-up and
    consolidation."""
    for slot in bins:
        if not count:
            break
        fit = min(count, slot[0] // max(cpus, 1), slot[1] // memory if memory else count)
        if fit > 0:
            slot[0] -= fit * cpus
            slot[1] -= fit * memory
            count -= fit
    return count


def by_count(
    jobs: Placeable,
    running_jobs: Sequence[int],
    booting: int,
    n_jobs_per_vm: int,
    limit: int,
) -> Demand:
    """The original's rule: every VM runs ``n_jobs_per_vm`` jobs."""
    room = sum(max(0, n_jobs_per_vm - c) for c in running_jobs) + booting * n_jobs_per_vm
    uncovered = max(0, jobs.waiting - room)
    new_vms = min(limit, math.ceil(uncovered / n_jobs_per_vm))
    unplaced = max(0, uncovered - new_vms * n_jobs_per_vm)
    return Demand(jobs.waiting, uncovered, new_vms, unplaced, jobs.unmatchable)
