"""Pending and running jobs from ``squeue --json`` (Slurm 24.11, data_parser v0.0.42): pure.

A pending job becomes one :class:`~elastiq.model.Job` per node it asks for (``<id>#<k>`` when
it asks for several), each of the CPUs and memory it needs on one node; a pending job array
(one entry for its pending tasks) one per task that may run at once (``<id>_<k>``: the tasks
of ``array_task_string``, at most its ``%`` limit); ``--exclusive`` (the
job's ``shared`` is ``none``) and ``--mem=0`` take a whole worker.  A job fits a worker
(``fits_worker``) only when it waits for resources and could run on one of our workers:

* waiting: eligible now (not held, no unfulfilled dependency, begin time reached: Slurm's
  ``eligible_time`` not in the future; it is 0 until the scheduler first looks at a job) and
  its pending reason is one of :data:`WAITING` (nodes busy, absent or not yet there).  Any
  other reason (a limit, a bad constraint, a partition down...) will not be cured by a new
  worker: the job never causes a launch (fail safe: an unknown reason too);
* runnable here: its partition is one of ours (``slurm.partitions``; none given: any), every
  feature of one alternative of its ``--constraint`` is among our workers' features, and one
  node's share of its CPUs and memory is within a worker's shape.
"""
from __future__ import annotations

import re
from typing import Any, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

from ...model import Job

#: Pending reasons that a worker joining (or freeing up) resolves.
WAITING = frozenset({"None", "Priority", "Resources", "ReqNodeNotAvail", "NodeDown"})
RUNNING = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STAGE_OUT"})
#: The worker features every node of ours has (see :mod:`.nodes`).
OUR_FEATURE = "elastiq"
_MEMORY = re.compile(r"(?:^|,)mem=(\d+(?:\.\d+)?)([KMGT]?)")
_UNITS = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def number(field: Any) -> Optional[int]:
    """Slurm's ``{"set": ..., "infinite": ..., "number": ...}`` as an int (None: not set)."""
    if isinstance(field, dict):
        return int(field["number"]) if field.get("set") and not field.get("infinite") else None
    return int(field) if isinstance(field, (int, float)) else None


def constraint_met(constraint: str, features: FrozenSet[str]) -> bool:
    """Whether a node with ``features`` satisfies ``--constraint``: alternatives split by
    ``|``, each a list of features joined by ``&`` or ``,`` (counts ``*N`` and brackets
    ignored)."""
    text = constraint.strip().replace("[", "").replace("]", "").replace("(", "").replace(")", "")
    if not text:
        return True
    for alternative in text.split("|"):
        wanted = {re.sub(r"\*\d+$", "", f.strip()) for f in re.split(r"[&,]", alternative)}
        if wanted - {""} <= features:
            return True
    return False


def array_tasks(job: Mapping[str, Any]) -> int:
    """How many tasks of a pending job array may run at once (1: not an array)."""
    text = (job.get("array_task_string") or "").split("%")[0]
    count = 0
    for part in filter(None, text.split(",")):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        try:
            count += (int(last) - int(first)) // int(step or 1) + 1 if last else 1
        except ValueError:
            count += 1
    limit = number(job.get("array_max_tasks")) or 0
    return max(1, min(count, limit) if limit > 0 else count)


def _memory_mb(job: Mapping[str, Any], cpus: int, nodes: int) -> Optional[int]:
    """Memory per node (MiB): 0 means all of it; None: not told."""
    per_node, per_cpu = number(job.get("memory_per_node")), number(job.get("memory_per_cpu"))
    if per_node is not None:
        return per_node
    if per_cpu is not None:
        return per_cpu * cpus
    found = _MEMORY.search(job.get("tres_req_str") or "")
    if found:
        return int(float(found.group(1)) * _UNITS[found.group(2)] / nodes)
    return None


def _why_not(job: Mapping[str, Any], now: float, partitions: FrozenSet[str],
             features: FrozenSet[str]) -> Optional[str]:
    """Why the job will not run on a new worker of ours (None: it would)."""
    eligible = number(job.get("eligible_time"))
    if job.get("hold"):
        return "is held"
    dependency = job.get("dependency") or ""
    if dependency and not eligible:
        return f"waits for its dependency {dependency}"
    if eligible and eligible > now:  # 0 without a dependency: not yet seen by the scheduler
        return "may not start yet (begin time)"
    reason = job.get("state_reason") or "None"
    if reason not in WAITING:
        return f"is pending for a reason a new worker does not cure ({reason})"
    wanted = {p for p in (job.get("partition") or "").split(",") if p}
    if partitions and not wanted & partitions:
        return f"is in partition {','.join(sorted(wanted))}, not ours"
    if not constraint_met(job.get("features") or "", features):
        return f"asks for features our workers lack ({job.get('features')})"
    return None


def pending_jobs(job: Mapping[str, Any], shape: Tuple[int, int], now: float,
                 partitions: FrozenSet[str],
                 features: FrozenSet[str]) -> Tuple[List[Job], Optional[str]]:
    """The Jobs of one pending job (one per node) and why they do not fit (None: they do)."""
    nodes = max(1, number(job.get("node_count")) or 1)
    cpus = max(number(job.get("minimum_cpus_per_node")) or 1,
               -(-(number(job.get("cpus")) or 1) // nodes))
    memory = _memory_mb(job, cpus, nodes)
    if "none" in (job.get("shared") or ()) or memory == 0:
        cpus, memory = max(cpus, shape[0]), max(memory or 0, shape[1])
    memory = memory if memory is not None else 1024
    why = _why_not(job, now, partitions, features)
    if why is None and (cpus > shape[0] or memory > shape[1]):
        why = f"needs {cpus} cpu(s) and {memory} MiB per node, more than a worker has"
    ident = str(job["job_id"])
    since = float(number(job.get("submit_time")) or now)
    tasks = array_tasks(job)
    ids = [ident] if tasks == 1 else [f"{ident}_{t}" for t in range(tasks)]
    ids = ids if nodes == 1 else [f"{i}#{k}" for i in ids for k in range(nodes)]
    return [Job(i, cpus, memory, since, why is None) for i in ids], why


def allocated_nodes(job: Mapping[str, Any]) -> Set[str]:
    """The names of the nodes a running job holds."""
    allocation = ((job.get("job_resources") or {}).get("nodes") or {}).get("allocation") or ()
    names = {a["name"] for a in allocation if isinstance(a, dict) and a.get("name")}
    listed = job.get("nodes") or ""
    if not names and listed and "[" not in listed:
        names = {n for n in listed.split(",") if n}
    return names


def read_queue(data: Mapping[str, Any], shape: Tuple[int, int], now: float,
               partitions: Iterable[str] = (), features: Iterable[str] = ()):
    """``(idle Jobs, running job count, names of nodes running jobs, notes)`` of an
    ``squeue --json`` answer; notes are ``(job id, why it never causes a launch)``."""
    ours, have = frozenset(partitions), frozenset(features) | {OUR_FEATURE}
    idle: List[Job] = []
    running, running_on, notes = 0, set(), []
    for job in data.get("jobs") or ():
        state = set(job.get("job_state") or ())
        if state & RUNNING:
            running += 1
            running_on |= allocated_nodes(job)
        elif "PENDING" in state:
            jobs, why = pending_jobs(job, shape, now, ours, have)
            idle += jobs
            if why:
                notes.append((str(job["job_id"]), why))
    return idle, running, frozenset(running_on), notes


def jobs_per_node(data: Mapping[str, Any]) -> Mapping[str, int]:
    """Node name -> how many running jobs hold it, of an ``squeue --json`` answer."""
    counts: dict = {}
    for job in data.get("jobs") or ():
        if set(job.get("job_state") or ()) & RUNNING:
            for name in allocated_nodes(job):
                counts[name] = counts.get(name, 0) + 1
    return counts
