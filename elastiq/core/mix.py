"""Several flavours: the cheapest mix of new VMs that fits the waiting jobs.

Used only when the cloud section names two or more flavours of known shape
(``Catalogue.flavours``, see :mod:`elastiq.flavours`) and launches are sized by packing (no
``n_jobs_per_vm``); otherwise :mod:`.demand` decides alone, exactly as with one flavour.

- The jobs are packed as with one flavour (:func:`.demand.pack`, first-fit decreasing): into
  the free room of joined workers, into the VMs booting, each of its own flavour's shape (one
  whose flavour is not known, e.g. adopted, counts as the first flavour), then into new VMs of
  the first flavour, the largest, at most ``limit`` of them.  So there are exactly as many new
  VMs as with the first flavour alone: ``max_vms`` (counted in VMs) is kept the same way, and
  no job that one large VM would hold is left waiting.
- Each new VM then takes the cheapest flavour that holds the jobs packed into it (ties: the
  one listed first): full VMs stay large, the one that got the tail of a burst or a few small
  jobs becomes smaller.  The mix never costs more than the first flavour alone.
- Small VMs must not use up ``max_vms`` (counted in VMs, whatever their size): a flavour of
  a k-th of the first one's cpus is chosen only while the fleet, with the new VMs, holds at
  most ``max_vms / k`` VMs (:func:`allowed`); nearer to ``max_vms`` the VMs stay large.
- While a VM of ours is booting, new VMs take the first flavour: jobs then come faster than
  VMs join, and the room a large VM has left serves the next ones without another boot
  (small VMs for every few jobs would make each of them wait a whole boot: on LPC-EGEE the
  p95 wait went from 177 s to 224 s without this rule).
- Under a cores/memory quota (``quota.max_cores``, ``quota.max_memory_mb``, see
  :mod:`.quota`) each new VM is packed as the largest flavour that holds its first job and
  still fits the room left, then shrunk as above (never grown): when the large ones no longer
  fit, smaller ones take the jobs the quota still has room for.
- A flavour of unknown shape is never chosen (fail safe).
- The new VMs are listed fullest first: when fewer are launched (drains cancelled, ``max_vms``,
  back-off), the ones left out are the emptiest.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from ..model import Flavour
from .demand import Demand, Placeable, pack, place
from .quota import Room


def usable(flavours: Sequence[Flavour]) -> Tuple[Flavour, ...]:
    """The flavours the mix may use: of known shape, the first one (the reference) first; ()
    when fewer than two are usable (then one flavour decides, as always)."""
    if not flavours or not flavours[0].known:
        return ()
    found = tuple(f for f in flavours if f.known)
    return found if len(found) > 1 else ()


def shape_of(name: Optional[str], flavours: Sequence[Flavour]) -> Tuple[int, int]:
    """The shape of the flavour called ``name``; the first flavour's when unknown."""
    for flavour in flavours:
        if flavour.name == name:
            return flavour.cpus, flavour.memory_mb  # type: ignore[return-value]
    return flavours[0].cpus, flavours[0].memory_mb  # type: ignore[return-value]


def cheapest(cpus: int, memory_mb: int, flavours: Sequence[Flavour],
             opened: Optional[Flavour] = None) -> Flavour:
    """The cheapest flavour of at least this shape (ties: the first listed); the first
    flavour, the largest, holds anything packed for it.  ``opened``: the flavour the VM was
    packed as under a cores/memory quota: no larger one is chosen (it is, if none fits)."""
    fitting = [f for f in flavours if f.cpus >= cpus and f.memory_mb >= memory_mb
               and (opened is None or (f.cpus <= opened.cpus and f.memory_mb <= opened.memory_mb))]
    return min(fitting or [opened or flavours[0]], key=lambda f: f.price)


def quota_opener(flavours: Sequence[Flavour], room: Room, opened: List[Flavour]):
    """:func:`.demand.pack`'s ``open_vm`` under a cores/memory quota: each new VM is the
    largest flavour that holds the job and still fits the room left (appended to
    ``opened``); None when none does."""
    by_size = sorted(flavours, key=lambda f: (f.cpus, f.memory_mb), reverse=True)
    left = [room]

    def open_vm(cpus: int, memory_mb: int) -> Optional[Tuple[int, int]]:
        for f in by_size:
            shape = (f.cpus, f.memory_mb)
            if f.cpus >= cpus and f.memory_mb >= memory_mb and left[0].holds(shape):
                left[0] = left[0].after(1, shape)
                opened.append(f)
                return shape  # type: ignore[return-value]
        return None
    return open_vm


def allowed(flavours: Sequence[Flavour], vms_after: int, max_vms: int) -> Tuple[Flavour, ...]:
    """The flavours a new VM may take when the fleet holds ``vms_after`` VMs with it: one of
    a k-th of the first flavour's cpus only while ``vms_after <= max_vms / k``, so that small
    VMs do not use up ``max_vms`` (counted in VMs): the fuller the fleet, the larger the VMs.
    The first flavour is always allowed (a fleet counted with draining workers whose drain
    may be cancelled can be above ``max_vms``)."""
    ref = flavours[0]
    return (ref,) + tuple(f for f in flavours[1:] if vms_after * ref.cpus <= max_vms * f.cpus)


def by_flavours(jobs: Placeable, free: Sequence[Tuple[int, int]],
                booting: Sequence[Optional[str]], flavours: Sequence[Flavour],
                limit: int, alive: int = 0, max_vms: Optional[int] = None,
                quota: Optional[Room] = None) -> Demand:
    """The demand of ``jobs`` (see the module docstring) given the free room of joined workers,
    the flavour names of the VMs booting, ``flavours`` (:func:`usable`'s), and the fleet's
    ``alive`` VMs of ``max_vms`` (None: no limit on the sizes, see :func:`allowed`).
    ``quota``: the room a cores/memory quota leaves (None: not limited); each new VM is then
    packed as the largest flavour that still fits it (:func:`quota_opener`)."""
    ref = flavours[0]
    room = list(free) + [shape_of(name, flavours) for name in booting]
    opened: List[Flavour] = []
    open_vm = None if quota is None else quota_opener(flavours, quota, opened)
    uncovered, new, unplaced = pack(jobs, room, ref.cpus, ref.memory_mb, limit, open_vm)
    if booting:  # jobs come faster than VMs join: the room a large VM leaves serves them
        sizes: Sequence[Flavour] = flavours[:1]
    else:
        sizes = flavours if max_vms is None else allowed(flavours, alive + len(new), max_vms)
    chosen: List[Tuple[float, str]] = []
    for index, (cpus_left, memory_left) in enumerate(new):
        box = opened[index] if opened else None
        used_cpus = (box or ref).cpus - cpus_left
        used_memory = (box or ref).memory_mb - memory_left
        flavour = cheapest(used_cpus, used_memory, sizes, box)
        chosen.append((-(used_cpus / ref.cpus), flavour.name))
    counts: Dict[str, int] = {}
    for _, name in sorted(chosen, key=lambda c: c[0]):  # fullest first, stable
        counts[name] = counts.get(name, 0) + 1
    return Demand(jobs.waiting, uncovered, len(new), unplaced, jobs.unmatchable,
                  tuple(counts.items()))


def split(count: int, mix: Sequence[Tuple[str, int]], first: str) -> List[Tuple[str, int]]:
    """``count`` new VMs over the ``mix`` in its order (fullest first); any beyond it (for
    ``min_vms``) are of the ``first`` flavour."""
    out: Dict[str, int] = {}
    for name, n in mix:
        take = min(n, count)
        if take:
            out[name] = out.get(name, 0) + take
            count -= take
    if count:
        out[first] = out.get(first, 0) + count
    return list(out.items())


def unneeded_booting(jobs: Placeable, free: Sequence[Tuple[int, int]],
                     kept: Sequence[Optional[str]], booting: Sequence[Optional[str]],
                     flavours: Sequence[Flavour]) -> int:
    """How many of the newest booting VMs no waiting job needs: the jobs are packed first-fit
    decreasing into ``free``, the VMs ``kept`` (booting, not to be terminated: not listed
    yet) and the ``booting`` ones, oldest first (flavour names); the count of the newest left
    empty (never one a job was packed into, whatever its size)."""
    shapes = [shape_of(name, flavours) for name in booting]
    bins = [[c, m] for c, m in free if c > 0]
    bins += [list(shape_of(name, flavours)) for name in kept]
    first = len(bins)
    bins += [list(shape) for shape in shapes]
    for (cpus, memory), count in sorted(jobs.shapes.items(), reverse=True):
        place(cpus, memory, count, bins)
    empty = 0
    for room, shape in zip(reversed(bins[first:]), reversed(shapes)):
        if tuple(room) != tuple(shape):
            break
        empty += 1
    return empty
