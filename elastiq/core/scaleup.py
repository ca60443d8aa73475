"""When and how many VMs to launch.

- Demand counts only when more than ``waiting_jobs_threshold`` jobs are *uncovered* (no room
  on joined or booting VMs) and has stayed so for ``waiting_jobs_time_s`` (unset: 0 s, at the
  first tick that sees them, as a cluster autoscaler does: uncovered already means no room on
  any worker, joined or booting); the moment it was first seen above the threshold is carried
  in memory (``waiting_since``) and reset as soon as demand drops to the threshold or below.
- Draining workers are the cheapest capacity: as soon as jobs are uncovered, their drain is
  cancelled (without waiting for ``waiting_jobs_time_s``: it costs nothing), before anything
  new is launched.
- ``min_vms`` is kept regardless of demand.
- The launch never takes the number of alive instances we own (requested, booting, running,
  in error) above ``max_vms``, nor their cores or memory above ``max_cores``/``max_memory_mb``
  (:mod:`.quota`: what does not fit is cut, flavour by flavour, with a ``quota`` note).
- After failed launches, nothing is launched until the back-off has passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..model import CancelDrain, Catalogue, Launch, Memory
from .demand import Demand
from .lifecycle import Fleet, Member
from .mix import split
from .params import Params
from .quota import Room, used_text, within
from .reasons import Code, Reason


#: ``waiting_jobs_time_s`` when unset.  At equal p95 wait, waiting costs VM-hours instead of
#: saving them: with 0 s the default policy uses fewer VM-hours than with 40 s (the original's)
#: and than cluster-autoscaler's policy, with a lower p95 wait (benchmarks/bench_replay.py).
WAITING_JOBS_TIME_S = 0.0


def waiting_time(configured: Optional[float]) -> float:
    return WAITING_JOBS_TIME_S if configured is None else configured


@dataclass(frozen=True)
class ScaleUp:
    launches: Tuple[Launch, ...]  # one per flavour (several flavours: see .mix); () = none
    cancel_drains: Tuple[CancelDrain, ...]
    waiting_since: Optional[float]
    notes: Tuple[Reason, ...]
    wake: Optional[float]


def scale_up(
    demand: Optional[Demand],
    fleet: Fleet,
    draining: Sequence[Member],
    memory: Memory,
    params: Params,
    now: float,
    first_flavour: Optional[str] = None,
    room: Optional[Room] = None,
    catalogue: Optional[Catalogue] = None,
) -> ScaleUp:
    """Decide the launch (and drain cancellations) of this tick.  ``demand`` None: the queue
    or the pool could not be read, so only ``min_vms`` can cause a launch.
    ``first_flavour``: with several flavours, the first's name (the VMs beyond the mix).
    ``room``: what the quota leaves (:mod:`.quota`; None or only VMs counted: ``max_vms``
    alone limits), with ``catalogue`` for the flavours' shapes."""
    launching, q = params.launching, params.limits
    notes = []
    wake = None
    waiting_since = memory.waiting_since
    wanted = cancellable = 0
    jobs = {}  # the demand that launches, for the reason

    if demand is not None:
        if demand.unmatchable:
            notes.append(Reason.of(Code.UNMATCHABLE, count=demand.unmatchable))
        if demand.uncovered > launching.waiting_jobs_threshold:
            waiting_since = waiting_since if waiting_since is not None else now
            held = now - waiting_since
            cancellable = demand.new_vms
            wait = waiting_time(launching.waiting_jobs_time_s)
            if held >= wait:
                wanted = demand.new_vms
                jobs = dict(jobs=demand.uncovered, held=held, wait=wait)
                if demand.unplaced and room is not None and room.limits_shape \
                        and demand.new_vms < room.vms + len(draining):  # cores or memory
                    notes.append(Reason.of(Code.NO_ROOM_QUOTA, count=demand.unplaced,
                                           used=used_text(q, room)))
                elif demand.unplaced:
                    notes.append(Reason.of(Code.NO_ROOM, count=demand.unplaced,
                                           max_vms=q.max_vms, alive=fleet.alive))
            else:
                wake = waiting_since + wait
                notes.append(Reason.of(Code.WAITING, count=demand.uncovered, held=held,
                                       wait=wait))
        else:
            waiting_since = None
            if demand.uncovered:
                notes.append(Reason.of(Code.BELOW_THRESHOLD, count=demand.uncovered,
                                       threshold=launching.waiting_jobs_threshold))

    cancels = tuple(
        CancelDrain(m.worker.name, m.id, Reason.of(Code.JOBS_WAITING, jobs=demand.uncovered))
        for m in draining[:cancellable]
    )
    wanted = max(0, wanted - len(cancels))

    below_min = q.min_vms - fleet.alive
    code = Code.JOBS_WAITING
    if below_min > wanted:
        wanted = below_min
        code = Code.MIN_VMS
        jobs["min_vms"] = q.min_vms

    headroom = max(0, q.max_vms - fleet.alive)
    count = min(wanted, headroom)
    if wanted > headroom:
        notes.append(Reason.of(Code.MAX_VMS, count=wanted - headroom, max_vms=q.max_vms,
                               alive=fleet.alive))
    if count > 0 and now < memory.backoff_until:
        notes.append(Reason.of(Code.BACKOFF, count=count, failures=memory.failures,
                               left=memory.backoff_until - now))
        wake = memory.backoff_until if wake is None else min(wake, memory.backoff_until)
        count = 0

    launches: Tuple[Launch, ...] = ()
    if count > 0:
        why = Reason.of(code, **jobs, booting=fleet.booting, alive=fleet.alive,
                        max_vms=q.max_vms)
        if demand is not None and demand.mix:  # several flavours
            planned = split(count, demand.mix, first_flavour)
        else:
            planned = [(None, count)]
        if room is not None and catalogue is not None and room.limits_shape:
            planned = within(planned, room, catalogue)
            short = count - sum(n for _, n in planned)
            if short:
                notes.append(Reason.of(Code.QUOTA, count=short, used=used_text(q, room)))
        launches = tuple(Launch(n, why, name) for name, n in planned)
    return ScaleUp(launches, cancels, waiting_since, tuple(notes), wake)
