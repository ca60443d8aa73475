"""Quotas as clouds count them: instances, cores and memory (pure).

OpenStack's and AWS's quotas limit a project's cores and RAM, not only its instances:
``quota.max_cores`` and ``quota.max_memory_mb`` stand next to ``max_vms`` (None: no limit).

- Every alive VM of ours counts, as the cloud counts it: requested, booting, running or in
  error, each with its flavour's cpus and memory.  A VM whose flavour the catalogue does not
  know (adopted, one flavour configured) counts with the worker VM's shape, the first
  flavour's, the largest: never less than it may hold.
- A launch is cut to what fits the room left, flavour after flavour in the order planned
  (fullest VMs first): a flavour that does not fit leaves room for a smaller one after it.
- Without ``max_cores`` and ``max_memory_mb`` nothing here is computed: the room is
  ``max_vms`` minus the alive VMs, as always.

The default policy, the legacy one and the simulator's peers all count with this module.
"""
from __future__ import annotations

from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ..model import Catalogue

Shape = Tuple[int, int]


class Room(NamedTuple):
    """What the quota leaves: VMs, cores and MiB (None: not limited).  A tuple: one is made
    every tick."""

    vms: int
    cores: Optional[int] = None
    memory_mb: Optional[int] = None

    @property
    def limits_shape(self) -> bool:
        """Whether cores or memory are limited (else only the VM count is)."""
        return self.cores is not None or self.memory_mb is not None

    def holds(self, shape: Shape) -> int:
        """How many more VMs of ``shape`` (cpus, MiB) fit."""
        count = self.vms
        if self.cores is not None:
            count = min(count, self.cores // max(shape[0], 1))
        if self.memory_mb is not None:
            count = min(count, self.memory_mb // max(shape[1], 1))
        return max(0, count)

    def after(self, count: int, shape: Shape) -> "Room":
        """The room left once ``count`` VMs of ``shape`` are launched."""
        return Room(self.vms - count,
                    None if self.cores is None else self.cores - count * shape[0],
                    None if self.memory_mb is None else self.memory_mb - count * shape[1])

    def plus(self, shapes: Iterable[Shape]) -> "Room":
        """The room with these VMs given back (e.g. draining workers a job may take again)."""
        count = cores = memory = 0
        for c, m in shapes:
            count, cores, memory = count + 1, cores + c, memory + m
        return Room(self.vms + count, None if self.cores is None else self.cores + cores,
                    None if self.memory_mb is None else self.memory_mb + memory)


def shape_of(flavour: Optional[str], catalogue: Catalogue) -> Shape:
    """The cpus and MiB of a VM of ``flavour`` (see the module docstring for unknown ones)."""
    for f in catalogue.flavours:
        if f.name == flavour and f.known:
            return f.cpus, f.memory_mb  # type: ignore[return-value]
    return catalogue.cpus, catalogue.memory_mb


def room_left(quota, catalogue: Catalogue, alive: int, flavours: Iterable[Optional[str]]) -> Room:
    """The room ``quota`` (:class:`.params.Limits`, or any object with its fields) leaves,
    given our ``alive`` VMs and their flavour names (one per VM; None: not known; read only
    when cores or memory are limited)."""
    vms = quota.max_vms - alive
    if quota.max_cores is None and quota.max_memory_mb is None:
        return Room(max(0, vms))
    shapes = [shape_of(name, catalogue) for name in flavours]
    cores = None if quota.max_cores is None else quota.max_cores - sum(s[0] for s in shapes)
    memory = (None if quota.max_memory_mb is None
              else quota.max_memory_mb - sum(s[1] for s in shapes))
    return Room(max(0, vms), cores, memory)


def used_text(quota, room: Room) -> str:
    """What the limited dimensions hold, e.g. ``156/160 cores``, for a note."""
    parts = []
    for left, limit, unit in ((room.cores, quota.max_cores, "cores"),
                              (room.memory_mb, quota.max_memory_mb, "MiB")):
        if left is not None and limit is not None:
            parts.append(f"{limit - left}/{limit} {unit}")
    return ", ".join(parts)


def within(launches: Sequence[Tuple[Optional[str], int]], room: Room,
           catalogue: Catalogue) -> List[Tuple[Optional[str], int]]:
    """``(flavour, count)`` launches cut to what fits ``room``, in their order; entries cut to
    0 are left out."""
    out = []
    for flavour, count in launches:
        shape = shape_of(flavour, catalogue)
        take = min(count, room.holds(shape))
        if take > 0:
            out.append((flavour, take))
            room = room.after(take, shape)
    return out
