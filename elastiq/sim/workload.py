"""Workloads to replay: Standard Workload Format (SWF) traces and a built-in synthetic one.

A :class:`Workload` is a list of jobs sorted by submit time, stored column-wise (the LPC-EGEE
trace has 234,889 jobs: plain lists keep reading and replaying it fast).  Submit times are
seconds from the first replayed job, which therefore submits at 0.

SWF (Feitelson et al., Parallel Workloads Archive): ``;`` lines are the header (``; Key: value``
pairs are kept in :attr:`Workload.header`), then 18 whitespace-separated fields per job, -1
meaning unknown.  Fields used: 1 job id, 2 submit time, 4 run time, 5 allocated processors,
7 used memory (KB per processor), 8 requested processors, 10 requested memory (KB per
processor).  Choices, documented because real traces need them:

- run time -1 (unknown: the job was cancelled before it ran) -> the job is skipped and
  counted in ``skipped['unknown_runtime']``;
- run time 0 -> the job is kept with a run time of 1 s (it still had to be matched to a slot)
  and counted in ``skipped['zero_runtime_as_1s']`` (kept, only flagged);
- processors: allocated if known, else requested, else 1;
- memory: requested if known, else used, else ``default_memory_mb`` per processor; never
  below 1 MiB;
- submit time -1 -> skipped (``skipped['unknown_submit']``).

SWF files are ordered by submit time (the format says so); reading stops at the end of the
window or after ``max_jobs`` jobs without reading the rest of the file.
"""
from __future__ import annotations

import gzip
import math
import random
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

DEFAULT_MEMORY_MB = 1024  # per processor, when the trace says nothing
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_COLUMNS = ("ids", "submit", "runtime", "cpus", "memory_mb")  # one value per job in each


class WorkloadError(Exception):
    """A trace cannot be read; the message names the file (and line)."""


@dataclass
class Workload:
    """Jobs to replay, column-wise, sorted by ``submit`` (seconds from the first job)."""

    name: str
    ids: List[str] = field(default_factory=list)
    submit: List[float] = field(default_factory=list)
    runtime: List[float] = field(default_factory=list)
    cpus: List[int] = field(default_factory=list)
    memory_mb: List[int] = field(default_factory=list)
    skipped: Dict[str, int] = field(default_factory=dict)
    header: Dict[str, str] = field(default_factory=dict)
    origin_s: float = 0.0  # trace time of the first replayed job

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def span_s(self) -> float:
        return self.submit[-1] if self.submit else 0.0

    def add(self, job_id: str, submit: float, runtime: float, cpus: int, memory_mb: int) -> None:
        self.ids.append(job_id)
        self.submit.append(submit)
        self.runtime.append(runtime)
        self.cpus.append(cpus)
        self.memory_mb.append(memory_mb)

    def take(self, indices: Iterable[int]) -> "Workload":
        """A workload of the jobs at ``indices`` (in that order); name, header, skipped counts
        and origin are kept."""
        out = Workload(self.name, skipped=dict(self.skipped), header=dict(self.header),
                       origin_s=self.origin_s)
        indices = list(indices)
        for column in _COLUMNS:
            values = getattr(self, column)
            setattr(out, column, [values[i] for i in indices])
        return out

    def core_seconds(self) -> float:
        return sum(c * r for c, r in zip(self.cpus, self.runtime))


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``6h``, ``2.5d`` -> seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600, 90m, 6h, 2.5d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_window(text: str) -> Tuple[Optional[float], Optional[float]]:
    """``START:END`` in trace time (seconds from the trace's time 0, SWF field 2); either
    side may be empty; units s, m, h, d (bare numbers are seconds): ``10d:20d``, ``:6h``."""
    start, sep, end = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r}: expected START:END, e.g. 10d:20d or 0:6h")
    lo = parse_duration(start) if start.strip() else None
    hi = parse_duration(end) if end.strip() else None
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"{text!r}: the end must be after the start")
    return lo, hi


def _open(path: str):
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
    except OSError as err:
        raise WorkloadError(f"{path}: cannot read: {err.strerror}") from None
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "r", encoding="utf-8", errors="replace")


def read_swf(
    path: str,
    max_jobs: Optional[int] = None,
    window: Tuple[Optional[float], Optional[float]] = (None, None),
    default_memory_mb: int = DEFAULT_MEMORY_MB,
) -> Workload:
    """Read an SWF trace, gzip-compressed or not (recognised by its content, not its name)."""
    name = re.sub(r"(\.swf)?(\.gz)?$", "", path.rsplit("/", 1)[-1])
    workload = Workload(name)
    skipped = {"unknown_runtime": 0, "zero_runtime_as_1s": 0, "unknown_submit": 0}
    lo, hi = window
    origin = None
    try:
        with _open(path) as lines:
            for lineno, line in enumerate(lines, 1):
                if line.startswith(";"):
                    key, sep, value = line[1:].partition(":")
                    if sep and key.strip() and " " not in key.strip():
                        workload.header.setdefault(key.strip(), value.strip())
                    continue
                fields = line.split()
                if not fields:
                    continue
                if len(fields) < 18:
                    raise WorkloadError(f"{path}:{lineno}: expected 18 SWF fields, got {len(fields)}")
                submit, runtime, alloc, used_kb, req_procs, req_kb = _numbers(
                    fields, path, lineno)
                procs = int(alloc) if alloc > 0 else int(req_procs)
                mem_kb = req_kb if req_kb > 0 else used_kb
                if submit < 0:
                    skipped["unknown_submit"] += 1
                    continue
                if lo is not None and submit < lo:
                    continue
                if hi is not None and submit >= hi:
                    break
                if runtime < 0:
                    skipped["unknown_runtime"] += 1
                    continue
                if runtime == 0:
                    skipped["zero_runtime_as_1s"] += 1
                    runtime = 1.0
                procs = max(procs, 1)
                memory = math.ceil(mem_kb * procs / 1024) if mem_kb > 0 else default_memory_mb * procs
                if origin is None:
                    origin = submit
                workload.add(fields[0], submit - origin, runtime, procs, max(int(memory), 1))
                if max_jobs is not None and len(workload) >= max_jobs:
                    break
    except (OSError, EOFError, UnicodeError) as err:
        raise WorkloadError(f"{path}: cannot read: {err}") from None
    workload.skipped = skipped
    workload.origin_s = origin or 0.0
    return _sorted_by_submit(workload)


#: SWF fields read (1-based number, name) and the largest value accepted for each.
_FIELDS = ((2, "submit time", 1e12), (4, "run time", 1e12), (5, "allocated processors", 1e7),
           (7, "used memory", 1e15), (8, "requested processors", 1e7),
           (10, "requested memory", 1e15))


def _numbers(fields: List[str], path: str, lineno: int) -> List[float]:
    """The fields of :data:`_FIELDS` as finite numbers, or a WorkloadError naming the line."""
    values = []
    for number, name, limit in _FIELDS:
        text = fields[number - 1]
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or abs(value) > limit:
            raise WorkloadError(f"{path}:{lineno}: field {number} ({name}) is not a number "
                                f"between -1 and {limit:g} (got {text[:20]!r})")
        values.append(value)
    return values


def _sorted_by_submit(workload: Workload) -> Workload:
    """``workload`` itself when sorted by submit time, else its jobs in that order, with submit
    times counted again from the first job (a trace that breaks the SWF ordering rule)."""
    submit = workload.submit
    if all(a <= b for a, b in zip(submit, submit[1:])):
        return workload
    ordered = workload.take(sorted(range(len(workload)), key=submit.__getitem__))
    first = ordered.submit[0]
    ordered.submit = [s - first for s in ordered.submit]
    ordered.origin_s += first
    return ordered


def truncate(workload: Workload, max_jobs: int) -> Workload:
    """The first ``max_jobs`` jobs of ``workload``."""
    return workload.take(range(min(max_jobs, len(workload))))


def synthetic(seed: int = 0) -> Workload:
    """The built-in workload: two bursts of short and long jobs about 2.5 h apart.

    Burst 1 (first 10 minutes): 40 short single-core jobs (3-10 min), 8 long ones (45-75 min)
    and 6 two-core jobs (10-20 min).  Burst 2 (2.5 h later): 60 short jobs (2-8 min) and 4
    four-core jobs (20-30 min).  In between the pool empties, so with the built-in knobs a
    replay shows scale-up, queueing at max_vms, scale-down, and scale-up again.
    Deterministic for a given ``seed``.
    """
    rng = random.Random(seed)
    jobs = []

    def burst(start: float, count: int, lo_min: float, hi_min: float, cpus: int) -> None:
        for _ in range(count):
            jobs.append((start + rng.uniform(0, 600), rng.uniform(lo_min, hi_min) * 60, cpus))

    burst(0, 40, 3, 10, 1)
    burst(0, 8, 45, 75, 1)
    burst(0, 6, 10, 20, 2)
    burst(9000, 60, 2, 8, 1)
    burst(9000, 4, 20, 30, 4)
    jobs.sort()
    workload = Workload(f"synthetic(seed={seed})")
    origin = jobs[0][0]
    for n, (submit, runtime, cpus) in enumerate(jobs, 1):
        workload.add(f"syn-{n}", round(submit - origin, 1), round(runtime), cpus, 1024 * cpus)
    return workload
