"""Compact host lists, as in Slurm or pdsh: ``10-0-0-4 ... 10-0-0-9, 10-0-0-12`` -> ``10-0-0-[4-9,12]``.

A name is split around its last run of digits into prefix, number and suffix; names sharing
prefix, suffix and (for zero-padded numbers) width are merged into one bracketed range list.
Names without digits are listed as they are.  The output is sorted and deterministic.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Tuple

_LAST_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")


def _ranges(numbers: List[int], width: int) -> str:
    parts = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        a, b = str(start).zfill(width), str(prev).zfill(width)
        parts.append(a if start == prev else f"{a}-{b}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def compact(names: Iterable[str]) -> str:
    """The compact form of ``names`` (duplicates ignored); empty string for no names."""
    groups: Dict[Tuple[str, str, int], List[int]] = {}
    plain = []
    for name in sorted(set(names)):
        match = _LAST_NUMBER.match(name)
        if not match:
            plain.append(name)
            continue
        prefix, digits, suffix = match.groups()
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        groups.setdefault((prefix, suffix, width), []).append(int(digits))
    for (prefix, suffix, width), numbers in list(groups.items()):
        if width:  # node01 and node10 belong together: node[01,10]
            same = groups.get((prefix, suffix, 0), [])
            numbers.extend(n for n in same if len(str(n)) == width)
            same[:] = [n for n in same if len(str(n)) != width]
    out = []
    for (prefix, suffix, width), numbers in groups.items():
        if not numbers:
            continue
        numbers = sorted(set(numbers))
        body = _ranges(numbers, width)
        out.append(f"{prefix}{body}{suffix}" if len(numbers) == 1 else f"{prefix}[{body}]{suffix}")
    return ",".join(sorted(out) + plain)
