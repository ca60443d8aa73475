"""Pure translation of the schedd's grouped answer (``QueryOpt.GroupBy``) into the idle jobs,
as :func:`.ads.read_jobs` reads them job by job.

Asked with a projection, the schedd answers one ad per set of jobs whose projected attributes
read the same, with ``JobCount`` and ``JobIds`` (``"c.first ... c.last"``, or ``"c.p"``).  With
``ClusterId`` projected (and ``ProcId`` not), a group is jobs of one cluster; when its count
fills first..last, its jobs are named exactly, and the group is read once for all of them: the
schedd does the aggregation, the client builds a few ads instead of 100,000.  Like
:mod:`.ads`: no I/O, no import of the bindings.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ...model import Job
from .ads import IDLE, RUNNING, Matcher, add_startd, idle_job

#: Not asked in a grouped query (``group_projection``): they differ per job and would make
#: one group of each.
PER_JOB = frozenset({"procid", "globaljobid"})
#: A schedd holding more jobs than this (its ad's ``TotalJobAds``) is read in
#: :data:`QUERY_PARTS` grouped queries at once, each by a child process: the schedd answers
#: each in a query worker of its own (``SCHEDD_QUERY_WORKERS``, 8 by default), and its
#: grouping, ~14 us per job, is shared between them; this process's threads run meanwhile.
SPLIT_ABOVE_JOBS = 20000
QUERY_PARTS = 2
#: ... unless its last answer held more groups than this (one-job clusters, as DAGMan
#: submits): the groups then come back as text, and parsing 100,000 of them costs more than
#: the parts save (a tick 1.3 s slower, measured).
MANY_GROUPS = 20000


def group_projection(projection: Sequence[str]) -> List[str]:
    """The attributes a grouped query asks (and groups by): the projection less the per-job
    ids; JobStatus, ClusterId and every attribute a job is judged on stay."""
    return [a for a in projection if a.lower() not in PER_JOB]


def query_parts(constraint: str, total_jobs: Any, last_groups: Optional[int]) -> List[str]:
    """The constraints of the grouped queries that together select the jobs ``constraint``
    selects, disjoint by ClusterId (a group never spans clusters, so together they answer the
    groups one query would): ``constraint`` alone for a schedd of at most
    :data:`SPLIT_ABOVE_JOBS` jobs or of unknown size, or whose last answer (``last_groups``
    ads, None if unknown) held more than :data:`MANY_GROUPS`."""
    if type(total_jobs) is not int or total_jobs <= SPLIT_ABOVE_JOBS or \
            (last_groups is not None and last_groups > MANY_GROUPS):
        return [constraint]
    return [f"({constraint}) && ClusterId % {QUERY_PARTS} == {part}"
            for part in range(QUERY_PARTS)]


def group_procs(ad: Any) -> Optional[Tuple[int, range]]:
    """(ClusterId, its ProcIds) of a group ad of the schedd (``QueryOpt.GroupBy``: ``JobCount``
    jobs of one cluster, ``JobIds`` ``"c.first ... c.last"`` or ``"c.p"``); None when the
    ids cannot be told exactly (the procs are not first..last without a gap)."""
    cluster, count, ids = ad.get("ClusterId"), ad.get("JobCount"), ad.get("JobIds")
    if type(cluster) is not int or type(count) is not int or count < 1 or not isinstance(ids, str):
        return None
    ends = ids.split(" ... ")
    try:
        first, last = ((c, int(p)) for c, p in (e.strip().split(".") for e in (ends[0], ends[-1])))
    except ValueError:
        return None
    if len(ends) > 2 or first[0] != last[0] or first[0] != str(cluster) or \
            last[1] - first[1] + 1 != count:
        return None
    return cluster, range(first[1], last[1] + 1)


def read_groups(groups: Sequence[Any], schedd: str, matcher: Matcher, now: float):
    """:func:`read_jobs` from the schedd's group ads (one per set of jobs of one cluster alike
    in every projected attribute, ``JobCount`` of them): each group is read once and its idle
    jobs named one by one.  Also the ClusterIds whose jobs cannot all be named (a group with
    gaps in its ProcIds): none of their groups counts here, the caller reads those clusters
    job by job.  None instead when a group names no cluster at all."""
    procs = [group_procs(ad) if ad.get("JobStatus") == IDLE else None for ad in groups]
    unnamed: Set[int] = set()
    for ad, found in zip(groups, procs):
        if ad.get("JobStatus") == IDLE and found is None:
            cluster = ad.get("ClusterId")
            if type(cluster) is not int:
                return None
            unnamed.add(cluster)
    idle: List[Job] = []
    running = 0
    running_on: Set[str] = set()
    notes: List[Tuple[str, str]] = []
    autoclusters: Dict[int, Tuple[bool, str]] = {}
    for ad, found in zip(groups, procs):
        status, count = ad.get("JobStatus"), ad.get("JobCount")
        if ad.get("ClusterId") in unnamed or type(count) is not int:
            continue
        if status == RUNNING:
            running += count
            add_startd(running_on, ad.get("RemoteHost"))
        if status != IDLE or found is None:
            continue
        cluster, proc_ids = found
        jid = f"{schedd}#{cluster}.{proc_ids[0]}"
        told: List[Tuple[str, str]] = []
        job = idle_job(ad, jid, ad.get("RequestCpus"), ad.get("RequestMemory"), matcher, now,
                        told, autoclusters)
        prefix, cpus, memory = f"{schedd}#{cluster}.", job.cpus, job.memory_mb
        named = [Job(f"{prefix}{proc}", cpus, memory, job.queued_since, job.fits_worker)
                 for proc in proc_ids]  # 100,000 of them: nothing more per job
        idle += named
        notes += ((each.id, message) for each in named for _, message in told)
    return idle, running, running_on, notes, unnamed
