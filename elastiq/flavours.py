"""Several flavours: the cloud section's ``flavour`` as a list (pure: no SDK, no I/O).

``ec2.flavour`` / ``openstack.flavour`` is one name, as always, or a list of them (YAML list,
or names separated by commas: ``--set ec2.flavour=c5.xlarge,c5.large``).  Each entry is
``NAME``, ``NAME:CPUS:MEMORY_MB`` or ``NAME:CPUS:MEMORY_MB:PRICE`` (an empty field: ask the
cloud, or the default), e.g. ``c5.large:2:4096`` or ``c5.large:::0.085``.

Semantics (see also :mod:`elastiq.core.mix`):

- One name (or a list of one) is exactly the one-flavour elastiq of before: the core ignores
  this module's catalogue and ``vm.cpus``/``vm.memory_mb`` or the cloud give the VM shape.
- The **first** flavour is the reference: ``vm.cpus``/``vm.memory_mb``, when set, are its
  shape (else its entry's, else the cloud's); it decides which jobs can run at all; the
  policies that know one flavour (legacy, the peers) and ``min_vms`` launch it; prices and the
  simulator's VM-hours are counted in its price.  It must be the largest: no other flavour
  may have more cpus or memory (a configuration error naming ``<section>.flavour[i]``).
- A shape comes from the entry, else from the cloud (EC2 DescribeInstanceTypes, Nova's
  flavours).  A flavour whose shape stays unknown is never launched (fail safe): a warning
  says so, the others are used.
- ``PRICE`` is in any unit, the same for every flavour: give it for all flavours or for none;
  by default a flavour costs its cpus (how EC2 and OpenStack price within a family).  Prices
  are divided by the first flavour's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .model import Flavour

Value = Union[None, str, Sequence[str]]


@dataclass(frozen=True)
class Entry:
    """One entry of the list as written."""

    name: str
    cpus: Optional[int] = None
    memory_mb: Optional[int] = None
    price: Optional[float] = None


def texts(value: Value) -> Tuple[str, ...]:
    """The entries' texts: a string is split at commas; None is no entry."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return tuple(t.strip() for t in value)


def key_of(section: str, value: Value, index: int) -> str:
    """``ec2.flavour`` for a single name, ``ec2.flavour[i]`` for an entry of a list."""
    return f"{section}.flavour" if len(texts(value)) < 2 else f"{section}.flavour[{index}]"


def names(value: Value) -> List[str]:
    """The entries' flavour names, in order (ValueError: an entry that does not parse)."""
    return [parse(text).name for text in texts(value)]


def key_named(section: str, value: Value, name: str) -> str:
    """The key naming the entry of flavour ``name`` (the first entry's when not listed)."""
    listed = names(value)
    return key_of(section, value, listed.index(name) if name in listed else 0)


def parse(text: str) -> Entry:
    """One entry; ValueError says what is wrong with it."""
    parts = text.split(":")
    if len(parts) not in (1, 3, 4) or not parts[0].strip():
        raise ValueError(f"expected NAME, NAME:CPUS:MEMORY_MB or NAME:CPUS:MEMORY_MB:PRICE "
                         f"(got {text!r})")
    numbers: List[Optional[float]] = []
    for what, part in zip(("cpus", "memory_mb", "price"), parts[1:]):
        if not part.strip():
            numbers.append(None)
            continue
        try:
            number = float(part) if what == "price" else int(part)
        except ValueError:
            raise ValueError(f"{what} {part!r} is not a number (in {text!r})") from None
        if not number > 0 or number != number or number == float("inf"):
            raise ValueError(f"{what} must be > 0 (got {part!r} in {text!r})")
        numbers.append(number)
    numbers += [None] * (3 - len(numbers))
    cpus, memory, price = numbers
    return Entry(parts[0].strip(), cpus, memory, price)  # type: ignore[arg-type]


def first_name(value: Value) -> Optional[str]:
    """The first (reference) flavour's name, for messages and one-flavour code; None: unset."""
    found = texts(value)
    if not found:
        return None
    try:
        return parse(found[0]).name
    except ValueError:
        return found[0]


def problems(section: str, value: Value) -> Iterable[Tuple[str, str]]:
    """``(key, problem)`` of the entries as written (no cloud asked)."""
    entries: List[Entry] = []
    for index, text in enumerate(texts(value)):
        try:
            entries.append(parse(text))
        except ValueError as err:
            yield key_of(section, value, index), str(err)
            return
    seen = set()
    for index, entry in enumerate(entries):
        if entry.name in seen:
            yield key_of(section, value, index), f"{entry.name!r} is listed twice"
        seen.add(entry.name)
    yield from resolve(section, value, None, None, {})[1]  # shapes as written: largest first?
    priced = [e.price is not None for e in entries]
    if any(priced) and not all(priced):
        index = priced.index(not priced[0])
        yield key_of(section, value, index), "give a price to every flavour or to none"


def resolve(section: str, value: Value, vm_cpus: Optional[int], vm_memory_mb: Optional[int],
            described: Mapping[str, Tuple[int, int]]) -> Tuple[Tuple[Flavour, ...],
                                                             List[Tuple[str, str]]]:
    """The catalogue of a list of two or more flavours (``()`` for one flavour or none), and
    ``(key, problem)`` for each flavour larger than the first.  ``described``: the shapes the
    cloud told, by name; ``vm_cpus``/``vm_memory_mb``: the ``vm`` section's (the first's)."""
    entries = [parse(t) for t in texts(value)]
    if len(entries) < 2:
        return (), []
    shapes = []
    for index, e in enumerate(entries):
        cloud = described.get(e.name) or (None, None)
        cpus, memory = e.cpus or cloud[0], e.memory_mb or cloud[1]
        if index == 0:
            cpus, memory = vm_cpus or cpus, vm_memory_mb or memory
        shapes.append((cpus, memory))
    ref_cpus, ref_memory = shapes[0]
    ref_price = entries[0].price if entries[0].price is not None else ref_cpus
    out, wrong = [], []
    for index, (e, (cpus, memory)) in enumerate(zip(entries, shapes)):
        if index and ref_cpus and ref_memory and cpus and memory \
                and (cpus > ref_cpus or memory > ref_memory):
            wrong.append((key_of(section, value, index),
                          f"{e.name} is larger than the first flavour {entries[0].name} "
                          f"({cpus} cpus, {memory} MiB > {ref_cpus} cpus, {ref_memory} MiB): "
                          "list the largest first"))
        price = e.price if e.price is not None else cpus
        known = bool(cpus and memory and price and ref_price)
        out.append(Flavour(e.name, cpus if known else None, memory if known else None,
                           price / ref_price if known else 1.0))
    return tuple(out), wrong

