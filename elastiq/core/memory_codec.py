"""The runtime's records and the default policy's memory as JSON data and back (pure: what
the state file stores).

The loaders raise ValueError naming the bad field (``records.i-1.since``).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ..model import InstanceRecord, Lifecycle, Memory


def dump_records(records: Mapping[str, InstanceRecord]) -> Dict[str, Any]:
    return {
        iid: {"lifecycle": r.lifecycle.value, "since": r.since,
              "launched_at": r.launched_at, "joined_at": r.joined_at, "worker": r.worker,
              "missing_since": r.missing_since, "busy_at": r.busy_at,
              "underused_since": r.underused_since, "drain": r.drain,
              **({"flavour": r.flavour} if r.flavour is not None else {}),
              **({"listed_at": r.listed_at} if r.listed_at is not None else {})}
        for iid, r in sorted(records.items())
    }


def load_records(data: Any, what: str = "records") -> Dict[str, InstanceRecord]:
    """``what``: where the records are in the file, for the errors."""
    if not isinstance(data, dict):
        raise ValueError(f"{what}: missing")
    records = {}
    for iid, raw in data.items():
        where = f"{what}.{iid}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected an object")
        try:
            lifecycle = Lifecycle(raw.get("lifecycle"))
        except ValueError:
            raise ValueError(f"{where}.lifecycle: unknown {raw.get('lifecycle')!r}") from None
        records[iid] = InstanceRecord(
            lifecycle=lifecycle,
            since=number(raw.get("since"), f"{where}.since"),
            launched_at=number(raw.get("launched_at"), f"{where}.launched_at"),
            joined_at=number(raw.get("joined_at"), f"{where}.joined_at", optional=True),
            worker=_opt_str(raw.get("worker"), f"{where}.worker"),
            missing_since=number(raw.get("missing_since"), f"{where}.missing_since", optional=True),
            busy_at=number(raw.get("busy_at"), f"{where}.busy_at", optional=True),
            underused_since=number(raw.get("underused_since"), f"{where}.underused_since",
                                 optional=True),
            drain=_opt_str(raw.get("drain"), f"{where}.drain"),
            flavour=_opt_str(raw.get("flavour"), f"{where}.flavour"),
            listed_at=number(raw.get("listed_at"), f"{where}.listed_at", optional=True),
        )
    return records


def dump_memory(m: Memory) -> Dict[str, Any]:
    return {
        "waiting_since": m.waiting_since,
        "backoff_until": m.backoff_until,
        "failures": m.failures,
        "unstarted": None if m.unstarted is None else list(m.unstarted),
    }


def load_memory(data: Any) -> Memory:
    """The default policy's memory (a state file of format 1 also holds the records in it, as
    ``instances``: they are the runtime's, read apart)."""
    mem = data
    if not isinstance(mem, dict):
        raise ValueError("memory: expected an object")
    failures = mem.get("failures", 0)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        raise ValueError("memory.failures: expected a non-negative integer")
    return Memory(
        waiting_since=number(mem.get("waiting_since"), "memory.waiting_since", optional=True),
        backoff_until=number(mem.get("backoff_until", 0.0), "memory.backoff_until"),
        failures=failures,
        unstarted=_unstarted(mem.get("unstarted")),
    )


def number(value: Any, what: str, optional: bool = False) -> Optional[float]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what}: expected a number, got {type(value).__name__}")
    return float(value)


def _opt_str(value: Any, what: str) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _unstarted(raw: Any):
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 3:
        raise ValueError("memory.unstarted: expected [queued_before, cpus, memory_mb]")
    before, cpus, memory = (number(v, "memory.unstarted") for v in raw)
    return (before, int(cpus), int(memory))
