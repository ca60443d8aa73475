"""When and how many VMs to launch.

- Demand counts only when more than ``waiting_jobs_threshold`` jobs are *uncovered* (no room
  on joined or booting VMs) and has stayed so for ``waiting_jobs_time_s``; the moment it was
  first seen above the threshold is carried in memory (``waiting_since``) and reset as soon as
  demand drops to the threshold or below.
- Draining workers are the cheapest capacity: as soon as jobs are uncovered, their drain is
  cancelled (without waiting for ``waiting_jobs_time_s``: it costs nothing), before anything
  new is launched.
- ``min_vms`` is kept regardless of demand.
- The launch never takes the number of alive instances we own (requested, booting, running,
  in error) above ``max_vms``.
- After failed launches, nothing is launched until the back-off has passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, TYPE_CHECKING, Tuple

from ..model import CancelDrain, Launch, Memory
from .demand import Demand
from .lifecycle import Fleet, Member
from .mix import split

if TYPE_CHECKING:  # annotations only: the configuration imports the core's registry
    from ..config import Config


@dataclass(frozen=True)
class ScaleUp:
    launches: Tuple[Launch, ...]  # one per flavour (several flavours: see .mix); () = none
    cancel_drains: Tuple[CancelDrain, ...]
    waiting_since: Optional[float]
    notes: Tuple[str, ...]
    wake: Optional[float]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def scale_up(
    demand: Optional[Demand],
    fleet: Fleet,
    draining: Sequence[Member],
    memory: Memory,
    config: Config,
    now: float,
) -> ScaleUp:
    """Decide the launch (and drain cancellations) of this tick.  ``demand`` None: the queue
    or the pool could not be read, so only ``min_vms`` can cause a launch."""
    e, q = config.elastiq, config.quota
    notes = []
    wake = None
    waiting_since = memory.waiting_since
    wanted = cancellable = 0
    why = []

    if demand is not None:
        if demand.unmatchable:
            notes.append(f"{_plural(demand.unmatchable, 'idle job')} can never run on a worker VM: ignored")
        if demand.uncovered > e.waiting_jobs_threshold:
            waiting_since = waiting_since if waiting_since is not None else now
            held = now - waiting_since
            cancellable = demand.new_vms
            if held >= e.waiting_jobs_time_s:
                wanted = demand.new_vms
                why.append(f"{_plural(demand.uncovered, 'job')} waiting {held:.0f} s"
                           f" >= {e.waiting_jobs_time_s:g} s")
                if demand.unplaced:
                    notes.append(f"{_plural(demand.unplaced, 'job')} without room: max_vms"
                                 f" {q.max_vms} reached ({fleet.alive} alive)")
            else:
                wake = waiting_since + e.waiting_jobs_time_s
                notes.append(f"{_plural(demand.uncovered, 'job')} waiting for {held:.0f} s"
                             f" of {e.waiting_jobs_time_s:g} s before launching")
        else:
            waiting_since = None
            if demand.uncovered:
                notes.append(f"{_plural(demand.uncovered, 'job')} waiting, not above the"
                             f" threshold of {e.waiting_jobs_threshold}")

    cancels = tuple(
        CancelDrain(m.worker.name, m.id,
                    f"cancel drain of {m.worker.name}: {_plural(demand.uncovered, 'job')} waiting")
        for m in draining[:cancellable]
    )
    wanted = max(0, wanted - len(cancels))

    below_min = q.min_vms - fleet.alive
    if below_min > wanted:
        wanted = below_min
        why.insert(0, f"{fleet.alive} VMs < min_vms {q.min_vms}")

    headroom = max(0, q.max_vms - fleet.alive)
    count = min(wanted, headroom)
    if wanted > headroom:
        notes.append(f"{_plural(wanted - headroom, 'more VM')} wanted but max_vms"
                     f" {q.max_vms} reached ({fleet.alive} alive)")
    if count > 0 and now < memory.backoff_until:
        notes.append(f"launch of {count} held back: backing off after"
                     f" {_plural(memory.failures, 'failure')} for {memory.backoff_until - now:.0f} s more")
        wake = memory.backoff_until if wake is None else min(wake, memory.backoff_until)
        count = 0

    launches: Tuple[Launch, ...] = ()
    if count > 0:
        booting = fleet.booting
        if booting:
            why.append(f"{_plural(booting, 'VM')} booting")
        why.append(f"{fleet.alive}/{q.max_vms} VMs")
        if demand is not None and demand.mix:  # several flavours
            first = config.flavours[0].name
            launches = tuple(Launch(n, f"launch {n} {name}: " + ", ".join(why), name)
                             for name, n in split(count, demand.mix, first))
        else:
            launches = (Launch(count, f"launch {count}: " + ", ".join(why)),)
    return ScaleUp(launches, cancels, waiting_since, tuple(notes), wake)
