"""A flavour's family as the cloud lists it: the smaller sizes elastiq may launch beside the
configured one when little work waits (pure: the shapes come from the cloud module).

Clouds price the sizes of a family in proportion to their cpus (EC2's c5.large, c5.xlarge,
c5.2xlarge; OpenStack's m1.medium, m1.large, m1.xlarge), so a few small jobs on a small VM
cost less than on the large one.  The family of ``FLAVOR_VMS`` here is every flavour that:

- has the same name up to its last dot (``c5.`` for ``c5.2xlarge``), when the name has one;
- has the same memory per cpu, within :data:`RATIO_TOLERANCE`;
- has fewer cpus, but at least a :data:`SMALLEST_SHARE`-th of them, and no more memory;

one per cpu count (the first by name), largest first, after ``FLAVOR_VMS`` itself: the
order elastiq's ``flavour`` list wants (the first is the largest, see
:mod:`elastiq.flavours`).
"""
from __future__ import annotations

from typing import List, Mapping, Tuple

RATIO_TOLERANCE = 0.1
SMALLEST_SHARE = 4


def family(chosen: str, shapes: Mapping[str, Tuple[int, int]]) -> List[str]:
    """``[chosen, smaller...]`` (see the module docstring); ``[]`` when the shape of
    ``chosen`` is not in ``shapes`` (name -> (cpus, memory MiB)) or no smaller size fits."""
    if chosen not in shapes or min(shapes[chosen]) <= 0:
        return []
    cpus, memory = shapes[chosen]
    prefix = chosen.rpartition(".")[0]
    per_cpu = memory / cpus
    found = {}
    for name in sorted(shapes):
        c, m = shapes[name]
        if (name == chosen or c <= 0 or not cpus / SMALLEST_SHARE <= c < cpus or m > memory
                or (prefix and name.rpartition(".")[0] != prefix)
                or abs(m / c - per_cpu) > RATIO_TOLERANCE * per_cpu):
            continue
        found.setdefault(c, name)
    smaller = [found[c] for c in sorted(found, reverse=True)]
    return [chosen] + smaller if smaller else []


def described(names: List[str], shapes: Mapping[str, Tuple[int, int]]) -> str:
    """``m1.large (4 cpus, 8 GiB), m1.medium (2 cpus, 4 GiB)`` for a question."""
    def size(mib: int) -> str:
        return f"{mib / 1024:g} GiB" if mib % 1024 == 0 else f"{mib} MiB"
    return ", ".join(f"{n} ({shapes[n][0]} cpu{'s' if shapes[n][0] != 1 else ''}, "
                     f"{size(shapes[n][1])})" for n in names)
