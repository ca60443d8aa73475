"""The two ports of elastiq, and the few domain errors adapters raise.

Every adapter translates its SDK's exceptions once, at its boundary, into one of the errors
below; nothing above the adapters ever sees a boto3 or htcondor exception.  Messages must never
contain secrets (keys, tokens, user-data).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

from ..model import Instance, Pool, Queue, Worker


class AdapterError(Exception):
    """Base of the domain errors.  ``kind`` is the short class name used in logs and metrics."""

    kind = "error"


class TransientError(AdapterError):
    """Throttling, 5xx, timeouts, endpoint unreachable, daemon down: try again later."""

    kind = "transient"


class QuotaError(AdapterError):
    """The cloud refused for lack of quota or capacity: back off."""

    kind = "quota"


class AuthError(AdapterError):
    """Credentials missing, wrong or not allowed: the message says what to check."""

    kind = "auth"


class ConfigError(AdapterError):
    """The configuration names something that does not exist (image, flavour, key...).

    ``key`` is the configuration key to fix, e.g. ``ec2.image_id``.
    """

    kind = "config"

    def __init__(self, message: str, key: Optional[str] = None):
        super().__init__(message)
        self.key = key


class FatalError(AdapterError):
    """Anything else that retrying will not fix."""

    kind = "fatal"


@runtime_checkable
class BatchSystem(Protocol):
    """Read-only view of the batch system plus the one thing we change in it: draining.

    ``queue()`` and ``pool()`` raise an :class:`AdapterError` when nothing can be read; when
    only part can be read they return an object with ``partial=True``.
    """

    def queue(self) -> Queue: ...

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        """Our workers.  ``known_ips`` (private IP -> instance id of our instances) lets a
        worker that does not advertise ``ElastiqInstanceId`` be mapped by its address."""

    def drain(self, worker: str, reason: str) -> None:
        """Stop the worker from accepting new jobs; running jobs finish (graceful)."""

    def cancel_drain(self, worker: str) -> None:
        """Undo :meth:`drain`: the worker accepts jobs again."""

    def workers_of(self, instance_ids: Sequence[str],
                   known_ips: Optional[Mapping[str, str]] = None) -> Mapping[str, Worker]:
        """The pool's workers of these instances right now, by instance id: one targeted
        query, made right before their VMs are terminated (a VM may have joined, or a job
        been matched, since the last observation).  An instance absent from the answer has
        no worker in the pool.  Raises :class:`AdapterError` when the pool cannot be asked."""

    def forget(self, instance_ids: Sequence[str]) -> None:
        """These instances' VMs were just terminated (the actuator calls this once the cloud
        accepted the terminate): drop at once what the batch system still keeps of their
        workers, so it schedules nothing there and lists no dead node (Slurm: delete the
        nodes).  A no-op where the batch system forgets by itself; an instance without a
        worker is no error.  Raises :class:`AdapterError`; what is left is cleaned up later
        (or never needed)."""


def look_in_pool(batch: BatchSystem, instance_ids: Sequence[str],
                 known_ips: Optional[Mapping[str, str]] = None) -> Dict[str, Worker]:
    """``workers_of`` for a batch system whose whole pool is cheap to read (simulators,
    test doubles): ``workers_of = look_in_pool`` in the class body."""
    wanted = set(instance_ids)
    return {w.instance_id: w for w in batch.pool(known_ips).workers if w.instance_id in wanted}


def forgets_by_itself(batch: BatchSystem, instance_ids: Sequence[str]) -> None:
    """``forget`` of a batch system that needs no telling when a worker's VM is gone (the
    simulated pool, test doubles; HTCondor: see its adapter): ``forget = forgets_by_itself``
    in the class body."""


def reads_overlap(batch: Any, cloud: Any) -> bool:
    """Whether the batch system's queue read and the cloud's listing may run at the same
    time, in two threads: both adapters declare ``independent_reads = True`` in their class
    body (their reads talk to their own remote system and share no state with the other
    adapter).  Simulated adapters, which share one world and one random source, do not."""
    return getattr(batch, "independent_reads", False) is True and \
        getattr(cloud, "independent_reads", False) is True


#: The answer of a cloud that cannot do what an optional capability asks (describe flavours,
#: check settings).
NOT_SUPPORTED = None


@dataclass(frozen=True)
class SettingCheck:
    """What the cloud said of one launch setting: ``found`` describes the thing it knows
    (image name, flavour shape...), ``problem`` why it cannot be used (None: it can)."""

    key: str  # the configuration key, e.g. ``ec2.image_id``
    value: str  # the setting as configured
    found: str = ""
    problem: Optional[str] = None


def check_setting(key: str, value: str, ask) -> SettingCheck:
    """``ask()`` the cloud about one setting (returns what it found): a :class:`ConfigError`
    is that setting's problem; any other :class:`AdapterError` (unreachable...) propagates."""
    try:
        return SettingCheck(key, value, ask() or "")
    except ConfigError as err:
        return SettingCheck(err.key or key, value, problem=str(err))


@runtime_checkable
class Cloud(Protocol):
    """The cloud, seen only through the instances carrying our cluster tag."""

    def list_instances(self) -> Tuple[Instance, ...]:
        """Every instance tagged with our cluster name, in any state but long gone."""

    def launch(self, count: int, *, flavour: Optional[str] = None,
               request_id: Optional[str] = None) -> Tuple[str, ...]:
        """Ask for up to ``count`` VMs in as few calls as possible; return the ids granted
        (possibly fewer than asked, never more).

        ``flavour``: one of the flavours the cloud's section names (None: the first, or only,
        one); a cloud whose section names one flavour is never given another.
        ``request_id`` names the request.  The runtime passes the id of a launch whose outcome
        it does not know (the answer was lost) again, with the same count and flavour, to learn
        that outcome: a cloud that can make a launch idempotent answers with the VMs the first
        attempt made instead of making new ones (EC2: the ``ClientToken``; OpenStack: the
        servers named after the request, looked up first); one that cannot may ignore it."""

    def terminate(self, instance_ids: Sequence[str]) -> None:
        """Terminate these instances (ours only); idempotent."""

    def describe_flavours(self, names: Sequence[str]) -> Optional[Mapping[str, Tuple[int, int]]]:
        """``name -> (cpus, memory_mb)`` of those flavours the cloud knows, in as few calls as
        possible; :data:`NOT_SUPPORTED` (None) when this cloud cannot tell any (then the
        configuration gives the shapes).  A name the cloud does not know is a
        :class:`ConfigError` naming its configuration key."""

    def check_settings(self) -> Optional[Sequence[SettingCheck]]:
        """Ask the cloud about every setting a launch would use (image, flavours, key pair,
        security groups, network), without launching: one :class:`SettingCheck` each
        (``elastiq config check --online``).  :data:`NOT_SUPPORTED` (None): this cloud cannot
        tell.  Raises :class:`AdapterError` when the cloud cannot be asked at all."""


def error_kind(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, AdapterError) else "fatal"
