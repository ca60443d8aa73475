"""Pure translation of HTCondor job ads into elastiq's Queue: sizes, waiting time, matchability.

No I/O and no import of ``htcondor2``/``classad2``: the functions receive the ClassAd objects the
bindings returned (mapping-like, with ``get``/``eval``/``externalRefs``) and, for matchmaking,
the Machine ad template and a blank ad built by ``batch.py``, the only module that
imports the bindings.  Everything here only calls methods on ads it is given.  Slot ads are
:mod:`.pool`'s.

Bad input never raises.  A missing or odd attribute falls back to a conservative value and the
problem comes back as a note for the caller to log once:

- RequestCpus / RequestMemory missing or not a number: 1 cpu / 1024 MB (the job still counts
  as one idle job; such sizes fit any worker VM); RequestDisk: 0 (unknown disk never excludes).
- EnteredCurrentStatus and QDate missing: queued ``now`` (a job never looks old by accident).
- Requirements that are false, UNDEFINED or ERROR for a worker VM: the job is not matchable
  and never causes a launch (the negotiator would not match it either).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from ...model import Job

IDLE, RUNNING = 1, 2
JOB_CONSTRAINT = "JobStatus == 1 || JobStatus == 2"
#: Job attributes we read, plus those the default RequestMemory/RequestDisk expressions and the
#: usual Requirements reference.  Attributes other Requirements reference are added at run time.
JOB_PROJECTION = (
    "ClusterId", "ProcId", "GlobalJobId", "JobStatus",
    "RequestCpus", "RequestMemory", "RequestDisk", "Requirements", "QDate", "EnteredCurrentStatus",
    "DiskUsage", "ImageSize", "MemoryUsage", "ResidentSetSize", "ExecutableSize",
    "FileSystemDomain", "WantDocker", "AutoClusterId", "RemoteHost",
)
DEFAULT_CPUS, DEFAULT_MEMORY_MB = 1, 1024
_IDS = ("ClusterId", "ProcId")
_REQUESTS = ("RequestCpus", "RequestMemory", "RequestDisk")
_UNITS = {"RequestCpus": "cpu", "RequestMemory": "MB", "RequestDisk": "KB"}


_UNREAD = object()


def number(ad: Any, attr: str, value: Any = _UNREAD) -> Optional[float]:
    """The attribute (``value``: as already read) as a finite number >= 0, expressions
    evaluated in the ad; None when it is missing or not such a number."""
    if value is _UNREAD:
        value = ad.get(attr)
    if type(value) is int and value >= 0:  # the common case, kept fast
        return value
    if value is not None and type(value) not in (int, float):
        try:
            value = ad.eval(attr)
        except Exception:  # an ad that cannot even be evaluated is bad input, not a crash
            return None
    # type() rather than isinstance(): bools and classad2.Value.Undefined/Error (an IntEnum)
    # are not numbers here.
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return None
    return value


def text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _unscoped(refs: Iterable[str]) -> Set[str]:
    return {r for r in refs if not r.lower().startswith("target.")}


class Matcher:
    """Can an idle job ever run on a worker VM of the configured shape?

    The job's Requirements are evaluated with the real ClassAd library, MY = the job ad and
    TARGET = ``machine`` (the ad a fresh worker VM advertises: one partitionable slot holding
    the whole VM).  Request{Cpus,Memory,Disk} must also fit in the VM, as for a partitionable
    slot, and a docker job (``WantDocker``) needs ``HasDocker`` whatever its Requirements say.
    Only ``true`` (or a non-zero number, as the negotiator converts) matches; false, UNDEFINED
    and ERROR do not, and the reason says which (UNDEFINED names the attributes that neither
    the job nor the template defines).

    Verdicts are cached per (Requirements text, resolved requests, WantDocker, values of the
    job attributes the Requirements reference directly), so 100,000 jobs of a few kinds cost a
    few evaluations, until :meth:`set_machine` changes the template.  A job whose referenced
    attribute is itself an expression is evaluated without the cache: that value depends on
    attributes the key does not hold.  ``wanted`` collects the job attributes those
    expressions reference, so the caller can add them to its query projection.
    """

    def __init__(self, machine: Any, blank: Any, max_entries: int = 50000):
        self._blank, self._max = blank, max_entries
        self.wanted: Set[str] = set()
        self.evaluations = 0  # cache misses, for tests and benchmarks
        self._refs: Dict[str, Tuple[str, ...]] = {}
        self.set_machine(machine)

    def set_machine(self, machine: Any) -> None:
        """Judge against ``machine`` from now on; every cached verdict is forgotten."""
        self.machine = machine
        self._verdicts: Dict[tuple, Tuple[bool, str]] = {}
        self._refs.clear()  # which names are the machine's may have changed
        self._size = tuple(int(number(machine, a) or 0) for a in ("Cpus", "Memory", "Disk"))
        self.shape = "{} cpus, {} MB, {} MB disk, {}/{}, docker {}".format(
            self._size[0], self._size[1], self._size[2] // 1024, machine.get("OpSys"),
            machine.get("Arch"), "yes" if machine.get("HasDocker") is True else "no")

    def verdict(self, ad: Any, cpus: int, memory_mb: int, disk_kb: int) -> Tuple[bool, str]:
        """(matchable, why not: meaningful only when not matchable)."""
        get = ad.get
        expr = get("Requirements")
        source = None if expr is None else str(expr)
        refs = self._refs.get(source) if source is not None else ()
        if refs is None:
            refs = self._refs[source] = self._direct_refs(expr)
        docker = get("WantDocker") is True
        key: Optional[tuple] = (source, cpus, memory_mb, disk_kb, docker, *map(get, refs))
        try:
            found = self._verdicts.get(key)
        except TypeError:  # an expression among the values: its value may depend on job
            key = found = None  # attributes the key does not hold, so this job is not cached
        if found is None:
            self.evaluations += 1
            why = self._why_not(ad, expr, source, (cpus, memory_mb, disk_kb), docker)
            found = (why is None, f"can never run on a worker VM: {why}")
            if key is not None:
                if len(self._verdicts) >= self._max:
                    self._verdicts.clear()
                self._verdicts[key] = found
        return found

    def _direct_refs(self, expr: Any) -> Tuple[str, ...]:
        try:
            names = _unscoped(self._blank.externalRefs(expr)) if hasattr(expr, "eval") else set()
        except Exception:
            names = set()
        # Unscoped names the template defines (OpSys, Memory...) are the machine's, as in
        # ``OpSys == "LINUX"``: not worth projecting from the job.
        self.wanted |= {n for n in names if n not in self.machine}
        return tuple(sorted(names - set(_REQUESTS)))

    def _why_not(self, ad: Any, expr: Any, source: Optional[str],
                 wants: Tuple[int, int, int], docker: bool) -> Optional[str]:
        """None when the job matches the template, else why not."""
        for label, want, have, unit in zip(("cpus", "memory", "disk"), wants, self._size,
                                           ("", " MB", " KB")):
            if want > have:
                return f"requests {want}{unit} {label}, a worker VM has {have}{unit}"
        if docker and self.machine.get("HasDocker") is not True:
            # its Requirements may not say so (a job transform's), but only docker runs it
            return "a docker job (WantDocker), and the worker VMs have no docker (vm.has_docker)"
        if expr is None:  # no Requirements at all: the requests decide
            return None
        try:
            value = expr.eval(scope=ad, target=self.machine) if hasattr(expr, "eval") else expr
        except Exception as exc:
            return f"Requirements cannot be evaluated ({exc}): {_short(source)}"
        if type(value) is bool or type(value) in (int, float):
            return None if value else (
                f"Requirements are false for a worker VM ({self.shape}): {_short(source)}")
        kind = getattr(value, "name", None)  # classad2.Value.Undefined / .Error
        if kind == "Undefined":
            unknown = sorted(r for r in ad.externalRefs(expr) if r.split(".")[-1] not in self.machine)
            return (f"Requirements are UNDEFINED for a worker VM (nobody defines "
                    f"{', '.join(unknown) or '?'}): {_short(source)}")
        shown = kind.upper() if isinstance(kind, str) else f"a non-boolean ({_short(str(value), 40)})"
        return f"Requirements evaluate to {shown} for a worker VM: {_short(source)}"


def _short(source: Optional[str], limit: int = 200) -> str:
    source = source or "(none)"
    return source if len(source) <= limit else source[: limit - 3] + "..."


def _request(ad: Any, attr: str, read: Any, default: int, matcher: Matcher,
             notes: List[Tuple[str, str]], jid: str) -> int:
    """A request that did not read as a plain number: evaluated, or the conservative default
    (filled into the ad, as the schedd would, so that Requirements see it)."""
    value = number(ad, attr, read)
    if value is not None:
        return math.ceil(value)
    expr = ad.get(attr)
    if expr is not None or attr != "RequestDisk":
        shown = "missing" if expr is None else repr(_short(str(expr), 80))
        notes.append((jid, f"{attr} {shown} is not a number: counted as {default} "
                           f"{_UNITS[attr]}"))
    if hasattr(expr, "eval"):  # its attributes may be missing from the projection
        matcher.wanted |= _unscoped(ad.externalRefs(expr))
    ad[attr] = default
    return default


def _other_id(ad: Any, schedd: str, index: int) -> str:
    return text(ad.get("GlobalJobId")) or f"{schedd}#unknown-{index}"


def _disk(ad: Any) -> Any:
    try:
        return ad.eval("RequestDisk")  # usually the expression DiskUsage
    except Exception:
        return ad.get("RequestDisk")


def read_jobs(ads: Iterable[Any], schedd: str, matcher: Matcher, now: float):
    """Idle jobs (matchable or not), the running count, the startds running jobs (from
    ``RemoteHost``: ``slot1_1@host`` -> ``host``, as ``Worker.name``) and notes
    ``[(job id, message)]``.

    Only JobStatus 1 (idle) is demand and 2 (running) is counted; anything else is ignored.
    Job ids are ``<schedd name>#<ClusterId>.<ProcId>``.  Written for speed: 100,000 ads.

    Jobs of one autocluster (``AutoClusterId``, which the schedd gives the idle jobs the
    negotiator has seen) are identical for matchmaking, so within one answer of one schedd
    the verdict of the first is reused for the others without reading their Requirements.
    """
    idle: List[Job] = []
    running = 0
    running_on: Set[str] = set()
    notes: List[Tuple[str, str]] = []
    autoclusters: Dict[int, Tuple[bool, str]] = {}
    for index, ad in enumerate(ads):
        try:  # ad[...] is quicker than ad.get(...); the usual ad has all these
            status = ad["JobStatus"]
            if type(status) is not int or status != IDLE:
                if type(status) is int and status == RUNNING:
                    running += 1
                    add_startd(running_on, ad.get("RemoteHost"))
                continue
            cluster, proc, cpus, memory = (
                ad["ClusterId"], ad["ProcId"], ad["RequestCpus"], ad["RequestMemory"])
        except Exception:  # KeyError: a missing attribute; the slow path below copes
            if ad.get("JobStatus") != IDLE:
                continue
            cluster, proc, cpus, memory = map(ad.get, _IDS + _REQUESTS[:2])
        if type(cluster) is int and type(proc) is int:
            jid = f"{schedd}#{cluster}.{proc}"
        else:
            jid = _other_id(ad, schedd, index)
        idle.append(idle_job(ad, jid, cpus, memory, matcher, now, notes, autoclusters))
    return idle, running, running_on, notes


def idle_job(ad: Any, jid: str, cpus: Any, memory: Any, matcher: Matcher, now: float,
              notes: List[Tuple[str, str]], autoclusters: Dict[int, Tuple[bool, str]]) -> Job:
    """The Job of one idle job's ad (or of a group's, all alike); its problems go to notes."""
    get = ad.get
    if type(cpus) is not int or cpus < 1:
        cpus = max(1, _request(ad, "RequestCpus", cpus, DEFAULT_CPUS, matcher, notes, jid))
    if type(memory) is not int or memory < 0:
        memory = _request(ad, "RequestMemory", memory, DEFAULT_MEMORY_MB, matcher, notes, jid)
    since = get("EnteredCurrentStatus")
    if type(since) not in (int, float):
        since = number(ad, "EnteredCurrentStatus", since) or number(ad, "QDate")
        if since is None:
            notes.append((jid, f"has no EnteredCurrentStatus nor QDate: counted as "
                               f"queued at {now:.0f}"))
            since = now
    autocluster = get("AutoClusterId")
    found = autoclusters.get(autocluster) if type(autocluster) is int else None
    if found is None:
        disk = _disk(ad)
        if type(disk) is not int or disk < 0:
            disk = _request(ad, "RequestDisk", disk, 0, matcher, notes, jid)
        found = matcher.verdict(ad, cpus, memory, disk)
        if type(autocluster) is int:
            autoclusters[autocluster] = found
    ok, why_not = found
    if not ok:
        notes.append((jid, why_not))
    return Job(id=jid, cpus=cpus, memory_mb=memory, queued_since=float(since), fits_worker=ok)


def add_startd(names: Set[str], remote_host: Any) -> None:
    if isinstance(remote_host, str) and remote_host:
        names.add(remote_host.split("@", 1)[-1])
