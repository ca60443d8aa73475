"""Immutable snapshots of the world (in) and plans (out) shared by core, adapters and runtime.

Times are POSIX seconds (floats).  Memory sizes are MiB.  Nothing here does I/O.

An observation that failed is ``None`` in the :class:`Snapshot`; an observation that is only
partly readable (one schedd of several down) carries ``partial=True``.  The core never scales
down from a missing or partial observation.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, FrozenSet, Mapping, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:  # the core imports this module
    from .core.reasons import Reason


class InstanceState(str, enum.Enum):
    """Cloud-side state of one VM, normalised across clouds by the cloud adapter."""

    REQUESTED = "requested"  # accepted by the API, not yet visible as pending (or pending)
    BOOTING = "booting"  # pending / building
    RUNNING = "running"
    SHUTTING_DOWN = "shutting-down"  # stopping / shutting-down: capacity that is going away
    GONE = "gone"  # terminated / deleted
    ERROR = "error"  # the cloud says it failed


#: States in which a VM costs money and counts against ``max_vms``.
ALIVE_STATES = frozenset(
    {InstanceState.REQUESTED, InstanceState.BOOTING, InstanceState.RUNNING, InstanceState.ERROR}
)


@dataclass(frozen=True)
class Job:
    """One idle (waiting) job.

    ``fits_worker`` is False when the job's Requirements can never be satisfied by a worker VM of
    the configured shape (too much memory, another OpSys...): such a job never causes a launch.
    """

    id: str
    cpus: int = 1
    memory_mb: int = 1024
    queued_since: float = 0.0
    fits_worker: bool = True


class IdleJobs(tuple):
    """Idle jobs (a tuple, in queue order) with a summary their producer keeps as jobs come
    and go: ``by_kind`` maps ``(cpus, memory_mb, fits_worker)`` to the sorted ``queued_since``
    of the jobs of that kind.  The core then counts jobs per kind and age by bisection instead
    of reading every job each tick (a simulated saturated queue holds tens of thousands)."""

    def __new__(cls, jobs, by_kind: Mapping[Tuple[int, int, bool], Sequence[float]]):
        self = super().__new__(cls, jobs)
        self.by_kind = by_kind
        return self


@dataclass(frozen=True)
class Queue:
    """What the schedds told us.  ``partial``: at least one schedd could not be read.

    ``running_on``: the ``Worker.name`` of every worker a running job's remote host names
    (empty when the adapter cannot tell): such a worker is alive whatever the pool says.
    """

    idle: Tuple[Job, ...] = ()
    running: int = 0
    partial: bool = False
    running_on: FrozenSet[str] = frozenset()


@dataclass(frozen=True)
class Worker:
    """One execute machine of the pool, aggregated over its slots.

    ``instance_id`` is the cloud instance it runs on (as the worker advertises it, or by the
    IP fallback); ``None`` when it cannot be mapped: such a worker is never touched.
    ``idle_since`` is when the machine last ran no job (``None`` while any job runs there).
    ``draining``: it accepts no new jobs.
    """

    name: str
    instance_id: Optional[str] = None
    address: Optional[str] = None
    cpus: int = 1
    memory_mb: int = 2048
    running_jobs: int = 0
    free_cpus: int = 1
    free_memory_mb: int = 2048
    idle_since: Optional[float] = None
    draining: bool = False

    @property
    def busy(self) -> bool:
        return self.running_jobs > 0


@dataclass(frozen=True)
class Pool:
    """``collector_started``: when the collector answering started (None: unknown).  Right
    after a restart the collector lists only the startds that advertised again since."""

    workers: Tuple[Worker, ...] = ()
    partial: bool = False
    collector_started: Optional[float] = None


@dataclass(frozen=True)
class Instance:
    """One cloud VM.  ``cluster`` is the value of its ``elastiq:cluster`` tag (None: untagged),
    ``owner`` of its ``elastiq:owner`` tag: the id of the daemon that launched it (None: none,
    an older elastiq's; see :mod:`elastiq.runtime.owner`)."""

    id: str
    state: InstanceState
    launched_at: float = 0.0
    cluster: Optional[str] = None
    private_ip: Optional[str] = None
    instance_type: Optional[str] = None
    owner: Optional[str] = None


@dataclass(frozen=True)
class Flavour:
    """One flavour (instance type) the cloud section names, resolved: its shape (None: not
    known, so never launched) and its price relative to the first flavour's (1.0)."""

    name: str
    cpus: Optional[int]
    memory_mb: Optional[int]
    price: float = 1.0

    @property
    def known(self) -> bool:
        return self.cpus is not None and self.memory_mb is not None


@dataclass(frozen=True)
class Catalogue:
    """Facts about the worker VMs, kept beside the configuration (the user's input, which they
    never change): the shape of a worker VM (the ``vm`` section's where it is set, else what
    the cloud tells of the flavour, else the defaults) and, when the cloud section names two or
    more flavours, those flavours resolved (:mod:`elastiq.flavours`; () with one flavour)."""

    cpus: int
    memory_mb: int
    flavours: Tuple[Flavour, ...] = ()

    @classmethod
    def of(cls, vm) -> "Catalogue":
        """The configuration's own (its ``vm`` section, defaults filled): nothing asked."""
        return cls(vm.effective_cpus, vm.effective_memory_mb)


@dataclass(frozen=True)
class Snapshot:
    """One observation of the world.  A ``None`` member could not be read this time."""

    queue: Optional[Queue]
    pool: Optional[Pool]
    instances: Optional[Tuple[Instance, ...]]
    problems: Tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Everything read and nothing partial: the only case in which we may scale down."""
        return (
            self.queue is not None
            and self.pool is not None
            and self.instances is not None
            and not self.queue.partial
            and not self.pool.partial
        )


# ----------------------------------------------------------------------------- plan (out)


@dataclass(frozen=True)
class Launch:
    """``flavour``: the flavour (instance type) to launch; None: the configured (first) one."""

    count: int
    reason: Reason
    flavour: Optional[str] = None


@dataclass(frozen=True)
class Drain:
    worker: str
    instance_id: str
    reason: Reason


@dataclass(frozen=True)
class CancelDrain:
    worker: str
    instance_id: str
    reason: Reason


@dataclass(frozen=True)
class Terminate:
    instance_ids: Tuple[str, ...]
    reason: Reason


Action = Union[Launch, Drain, CancelDrain, Terminate]


@dataclass(frozen=True)
class Plan:
    """What the core wants done this tick, and ``notes``: why it did not do more (each
    action's and note's :class:`~elastiq.core.reasons.Reason` is data: a code and its parameters).

    ``next_check``: the earliest future time at which a time-based condition changes (a
    waiting threshold held long enough, a worker idle long enough, a deploy deadline, the end
    of a back-off).  The runtime ticks again no later than that, so a decision never waits for
    an unrelated interval; None when nothing is pending.
    """

    actions: Tuple[Action, ...] = ()
    notes: Tuple[Reason, ...] = ()
    next_check: Optional[float] = None

    def of(self, kind: type) -> Tuple[Action, ...]:
        return tuple(a for a in self.actions if isinstance(a, kind))

    @property
    def launch_count(self) -> int:
        return sum(a.count for a in self.of(Launch))  # type: ignore[attr-defined]

    @property
    def terminated_ids(self) -> Tuple[str, ...]:
        return tuple(i for a in self.of(Terminate) for i in a.instance_ids)  # type: ignore


# ----------------------------------------------------------------------------- memory


class Lifecycle(str, enum.Enum):
    """Per-instance life as the core tracks it across ticks (``core/lifecycle.py``); an instance
    the cloud lists as gone, or no longer lists, has no record at all."""

    REQUESTED = "requested"
    BOOTING = "booting"
    JOINED = "joined"
    DRAINING = "draining"
    TERMINATING = "terminating"
    ERROR = "error"


@dataclass(frozen=True)
class InstanceRecord:
    """The runtime's record of one instance we own (``core/records.py``), for every policy."""

    lifecycle: Lifecycle
    since: float
    launched_at: float
    joined_at: Optional[float] = None
    worker: Optional[str] = None
    missing_since: Optional[float] = None  # joined once, its worker absent from the pool since
    busy_at: Optional[float] = None  # last tick its worker was seen running a job
    underused_since: Optional[float] = None  # its worker used below elastiq.consolidate_below since
    drain: Optional[str] = None  # the code of the reason we drain it ("idle", "consolidation"...; None: not by us)
    flavour: Optional[str] = None  # the flavour we launched it as (None: the first, or unknown)
    listed_at: Optional[float] = None  # first listed by the cloud (None: not yet)


@dataclass(frozen=True)
class Memory:
    """The default policy's own memory between ticks (the runtime keeps and persists it; the
    per-instance records are the runtime's, see ``core/records.py``).

    ``waiting_since``: when demand was first seen above the threshold (None: not above).
    ``backoff_until`` / ``failures``: launch back-off after consecutive launch failures.
    ``unstarted``: ``(queued_before, cpus, memory_mb)``: idle jobs queued before that time
    and no larger than that shape waited ``idle_timeout_max_s`` next to an idle worker they fit
    and did not start there; they are reported and never cause a launch.
    """

    waiting_since: Optional[float] = None
    backoff_until: float = 0.0
    failures: int = 0
    unstarted: Optional[Tuple[float, int, int]] = None


@dataclass(frozen=True)
class LaunchOutcome:
    """What came of a Launch: ids granted (possibly fewer than asked) or the error class."""

    requested: int
    granted: Tuple[str, ...] = ()
    error: Optional[str] = None  # None, or "transient" | "quota" | "auth" | "config" | "fatal"
    flavour: Optional[str] = None  # the Launch's flavour (None: the configured one)
