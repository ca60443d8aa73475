"""What must outlive the daemon process, stored atomically as one JSON file (mode 0600).

The state holds the lifecycle record of every instance we own (the runtime's, for any
policy: :mod:`elastiq.core.records`), the policy's own memory, opaque here and stored through
the policy's codec (``dump_memory``/``load_memory``; the default policy's: when the waiting
threshold was first reached, launch back-off), the last decisions with their reasons, the
boot-to-join times of past workers and a summary of the last observation (what ``elastiq
status`` shows while the daemon runs).

Format 2 stores the records beside the memory (``records``); format 1 (elastiq before the
records were the runtime's) stored them inside the default policy's memory
(``memory.instances``): it is still read.

Writes are atomic: a temporary file in the same directory is written, fsync'ed and renamed over
the old one, then the directory is fsync'ed.  A reader (``elastiq status``) therefore sees the
old or the new state, never half of one.  A state file that cannot be decoded (truncated, edited
by hand, written by a newer elastiq) is moved aside with a warning and the daemon starts from
empty memory: the instances are then adopted from the cloud by their cluster tag.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..core.memory_codec import (dump_memory, dump_records, load_memory, load_records,
                                 number as _num)
from ..model import InstanceRecord, Memory

log = logging.getLogger(__name__)

FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: the records inside the memory (memory.instances)
MAX_DECISIONS = 50
MAX_JOIN_TIMES = 500


@dataclass(frozen=True)
class Decision:
    """One thing the daemon decided (or failed to do), with its reason, for ``status``."""

    at: float
    kind: str  # launch | drain | cancel-drain | terminate | failed | note
    text: str


@dataclass(frozen=True)
class VMView:
    """One VM as last observed: cloud state, address, the worker it runs and its jobs."""

    instance_id: str
    cloud_state: Optional[str] = None
    address: Optional[str] = None
    worker: Optional[str] = None
    jobs: int = 0


@dataclass(frozen=True)
class Observation:
    at: float
    idle_jobs: Optional[int] = None
    running_jobs: Optional[int] = None
    vms: Tuple[VMView, ...] = ()
    problems: Tuple[str, ...] = ()


@dataclass(frozen=True)
class UnknownLaunch:
    """A launch whose answer was lost (a transient error: it may have reached the cloud).
    The next tick asks for it again with the same ``request_id``, count and flavour."""

    request_id: str
    count: int
    flavour: Optional[str]
    since: float


@dataclass(frozen=True)
class State:
    memory: Any = field(default_factory=Memory)  # the policy's, opaque (its codec stores it)
    decisions: Tuple[Decision, ...] = ()  # the last MAX_DECISIONS
    join_times: Tuple[float, ...] = ()  # boot-to-join seconds, oldest first (MAX_JOIN_TIMES)
    awaiting_join: Tuple[str, ...] = ()  # launched by us, not joined yet: to time their boot
    observation: Optional[Observation] = None
    cluster: str = ""
    saved_at: float = 0.0
    unknown_launches: Tuple[UnknownLaunch, ...] = ()
    # the lifecycle record of every instance we own (elastiq.core.records)
    records: Mapping[str, InstanceRecord] = field(default_factory=dict)


# ----------------------------------------------------------------------------- codec


def encode(state: State, dump: Callable[[Any], Any] = dump_memory) -> Dict[str, Any]:
    """The state as JSON data; ``dump``: the policy's memory codec (the memory is opaque)."""
    return {
        "format": FORMAT,
        "cluster": state.cluster,
        "saved_at": state.saved_at,
        "records": dump_records(state.records),
        "memory": dump(state.memory),
        "decisions": [{"at": d.at, "kind": d.kind, "text": d.text} for d in state.decisions],
        "join_times": list(state.join_times),
        "awaiting_join": list(state.awaiting_join),
        "unknown_launches": [{"request_id": u.request_id, "count": u.count,
                              "flavour": u.flavour, "since": u.since}
                             for u in state.unknown_launches],
        "observation": None if state.observation is None else {
            "at": state.observation.at,
            "idle_jobs": state.observation.idle_jobs,
            "running_jobs": state.observation.running_jobs,
            "problems": list(state.observation.problems),
            "vms": [{"instance_id": v.instance_id, "cloud_state": v.cloud_state,
                     "address": v.address, "worker": v.worker, "jobs": v.jobs}
                    for v in state.observation.vms],
        },
    }


def decode(data: Any, load: Callable[[Any], Any] = load_memory) -> State:
    """The inverse of :func:`encode`; ValueError (naming the bad field) on anything else."""
    if not isinstance(data, dict):
        raise ValueError("top level: expected an object")
    if data.get("format") not in READABLE_FORMATS:
        raise ValueError(f"format: expected {FORMAT}, got {data.get('format')!r}")
    raw_memory = data.get("memory")
    if data["format"] == 1:  # the records were the default policy's, in its memory
        records = (load_records(raw_memory.get("instances"), "memory.instances")
                   if isinstance(raw_memory, dict) else {})
    else:
        records = load_records(data.get("records"))
    memory = load(raw_memory)
    decisions = tuple(
        Decision(_num(d["at"], "decisions.at"), str(d["kind"]), str(d["text"]))
        for d in _list(data, "decisions")
    )
    join_times = tuple(_num(t, "join_times") for t in _list(data, "join_times"))
    awaiting = tuple(str(i) for i in _list(data, "awaiting_join"))
    unknown = tuple(UnknownLaunch(str(u["request_id"]), int(_num(u["count"], "unknown_launches.count")),
                                  None if u.get("flavour") is None else str(u["flavour"]),
                                  _num(u["since"], "unknown_launches.since"))
                    for u in _list(data, "unknown_launches"))
    obs = data.get("observation")
    observation = None
    if obs is not None:
        if not isinstance(obs, dict):
            raise ValueError("observation: expected an object")
        observation = Observation(
            at=_num(obs.get("at"), "observation.at"),
            idle_jobs=obs.get("idle_jobs"),
            running_jobs=obs.get("running_jobs"),
            problems=tuple(str(p) for p in _list(obs, "problems")),
            vms=tuple(VMView(str(v["instance_id"]), v.get("cloud_state"), v.get("address"),
                             v.get("worker"), int(v.get("jobs") or 0))
                      for v in _list(obs, "vms")),
        )
    return State(memory=memory, decisions=decisions, join_times=join_times,
                 awaiting_join=awaiting, observation=observation, cluster=str(data.get("cluster", "")),
                 saved_at=_num(data.get("saved_at", 0.0), "saved_at"), unknown_launches=unknown,
                 records=records)


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list")
    return value


# ----------------------------------------------------------------------------- store


class StateStore:
    """The state file under ``directory`` (created 0700 when missing).  ``policy``: whose
    memory codec (``dump_memory``/``load_memory``) stores the opaque memory; default: the
    default policy's."""

    #: ``elastiq status`` reads this state: the runtime keeps a per-VM summary in it (a store
    #: nobody reads, like the simulator's, says False).
    for_status = True

    def __init__(self, directory: str, name: str = "state.json", policy=None):
        self.directory = directory
        self.path = os.path.join(directory, name)
        self._dump = policy.dump_memory if policy is not None else dump_memory
        self._load = policy.load_memory if policy is not None else load_memory

    def read(self) -> Optional[State]:
        """Read-only (for ``status``): None when missing; ValueError when unreadable."""
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        return _parse(raw, self._load)

    def load(self) -> Optional[State]:
        """The saved state; None when there is none or it was corrupt (then moved aside).

        Also removes temporary files left by a process killed while saving."""
        for leftover in glob.glob(glob.escape(self.path) + ".tmp-*"):
            try:
                os.unlink(leftover)
            except OSError:
                pass
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read()
                mode = os.fstat(handle.fileno()).st_mode & 0o777
        except FileNotFoundError:
            return None
        if mode & 0o077:
            log.warning("state file %s had mode %04o; tightening to 0600", self.path, mode)
            os.chmod(self.path, 0o600)
        try:
            return _parse(raw, self._load)
        except ValueError as err:
            aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            os.replace(self.path, aside)
            log.warning("state file %s is unreadable (%s); moved aside to %s, starting with "
                        "empty memory (tagged instances will be adopted)",
                        self.path, _short(err), aside)
            return None

    def save(self, state: State) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        data = json.dumps(encode(state, self._dump), indent=1, sort_keys=True).encode("utf-8")
        tmp = f"{self.path}.tmp-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            os.unlink(tmp)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _parse(raw: bytes, load: Callable[[Any], Any] = load_memory) -> State:
    """The state in a file's bytes; ValueError for anything that is not one (bad UTF-8 and
    bad JSON are ValueErrors already; a wrong shape deep inside may be a KeyError/TypeError)."""
    try:
        return decode(json.loads(raw.decode("utf-8")), load)
    except (KeyError, TypeError) as err:
        raise ValueError(_short(err)) from None


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
