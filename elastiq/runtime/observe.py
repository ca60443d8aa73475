"""Observe the world for one tick: queue and pool from the batch system, instances from the cloud.

Every read that fails with an adapter error (or any exception: a bug in an adapter must not
stop the service) becomes ``None`` in the snapshot, with its reason in ``Snapshot.problems``;
the core then makes no scale-down decision.

The queue and the pool are read at every tick: whether a worker has a claimed slot must never
come from an old reading.  The pool is read last, with the private IPs of the listed instances
(the adapter maps a worker that does not advertise its instance id by its address).  The cloud
listing is the slow, rate-limited call, so it is read at the VM check (``vms``, every
``list_vms_every_s``), at wake-ups and at start, and reused by the queue check while it is
younger than ``list_vms_every_s`` -- unless the queue shows new demand, or the runtime acted
on the cloud since (then the listing is read again at once).  The instances we
launched since the listing are known to the core from its memory, so a reused listing never
lets it exceed ``max_vms``.

When the listing is read whatever the queue shows (a VM check, a wake-up, the start, a listing
gone stale or invalidated) and both adapters declare ``independent_reads``
(:func:`~elastiq.adapters.base.reads_overlap`), the listing runs in a thread while the queue is
read: the two are independent I/O against two remote systems, so the tick waits for the
slower of the two rather than for their sum.  The listing gets a head start of up to
:data:`HEAD_START_S` to put its request on the wire: the HTCondor bindings hold the
interpreter's lock for the whole of a schedd query made in this process (the adapter reads a
big schedd in child processes, but a small one here), and a listing that had not sent its
request by then would wait for the query to end.  Either way each read's errors are its own
problem, noted in the fixed order queue, cloud, pool, in the calling thread.

With an :class:`~.owner.Ownership` (the daemon's: its cloud tags launches with an owner id),
the instances of another daemon's cluster of the same name are left out of every listing
(see :mod:`.owner`): the core never sees them.
"""
from __future__ import annotations

import functools
import logging
import threading
from typing import Callable, Collection, Dict, List, Optional, Tuple, TypeVar

from ..adapters.base import AdapterError, BatchSystem, Cloud, error_kind, reads_overlap
from ..model import Instance, Pool, Queue, Snapshot
from .owner import Ownership

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Error kinds that the next try will meet again (the configuration, the credentials, a bug
#: of the remote side): said so in the problem.
PERMANENT_KINDS = frozenset({"config", "auth", "fatal"})
#: Tick kinds that always read the cloud; the periodic ``queue`` check may reuse the listing.
#: A tick serving several checks has their kinds joined by ``+`` (``"queue+vms"``).
CLOUD_KINDS = frozenset({"vms", "wake", "start", "once"})
#: Seconds the calling thread leaves the listing thread alone before it reads the queue: time
#: to send the listing's first request (~10 ms of Python) before a schedd query takes the
#: interpreter's lock.  A listing answered sooner ends the wait at once.
HEAD_START_S = 0.05


@functools.lru_cache(maxsize=None)
def _reads_cloud(kind: str) -> bool:
    """A tick of this kind always reads the cloud (a few kinds recur: each is parsed once)."""
    return not CLOUD_KINDS.isdisjoint(kind.split("+"))


class Observer:
    def __init__(self, batch: BatchSystem, cloud: Cloud, cloud_max_age_s: float,
                 on_error: Callable[[str], None] = lambda kind: None,
                 ownership: Optional[Ownership] = None,
                 known: Callable[[], Collection[str]] = tuple):
        """``ownership``: keep only our instances, ``known()`` giving the ids the saved state
        holds (an instance without owner id is ours only if known); None: every instance of
        the listing is ours."""
        self.batch, self.cloud = batch, cloud
        self.ownership, self.known = ownership, known
        self.cloud_max_age_s = cloud_max_age_s
        self.on_error = on_error
        self._overlap = reads_overlap(batch, cloud)  # list the cloud while reading the queue
        self._listing: Optional[Tuple[Instance, ...]] = None
        self._listed_at = float("-inf")
        self._last_idle: Optional[int] = None
        self._known_ips: Dict[str, str] = {}
        self._ips_of: object = None  # the listing _ips was computed from (tuples: immutable)
        self._ips: Dict[str, str] = {}

    def known_ips(self) -> Dict[str, str]:
        """Private IP -> instance id of the instances of the last listing."""
        return self._known_ips

    def invalidate_cloud(self) -> None:
        """The cloud changed because of us: read it again at the next tick."""
        self._listing = None

    def observe(self, kind: str, now: float) -> Snapshot:
        problems: List[str] = []
        listing_due = (_reads_cloud(kind) or self._listing is None
                       or now - self._listed_at >= self.cloud_max_age_s)
        listing = _Read(self._try, "cloud", self.cloud.list_instances,
                        background=listing_due and self._overlap)
        queue: Optional[Queue] = self._note(self._try("queue", self.batch.queue), problems)
        idle = None if queue is None else len(queue.idle)
        new_demand = idle is not None and idle > (self._last_idle or 0)
        if queue is not None:
            self._last_idle = idle
        if listing_due or new_demand:
            instances = self._note(listing.result(), problems)
            if instances is not None:
                instances = self._ours(instances)
                self._listing, self._listed_at = instances, now
            else:
                self._listing = None
        else:
            instances = self._listing
        if instances is not self._ips_of:
            self._ips_of = instances
            self._ips = {i.private_ip: i.id for i in instances or () if i.private_ip}
        known_ips = self._ips
        self._known_ips = known_ips or self._known_ips
        pool: Optional[Pool] = self._note(
            self._try("pool", lambda: self.batch.pool(known_ips)), problems)
        return Snapshot(queue=queue, pool=pool, instances=instances, problems=tuple(problems))

    def _ours(self, listing) -> Tuple[Instance, ...]:
        listing = tuple(listing)
        return listing if self.ownership is None else self.ownership.ours(listing, self.known)

    def _try(self, what: str, call: Callable[[], T]) -> "_Outcome":
        """``call()``'s value, or None with the problem (its kind, its cause and whether
        retrying can help: ``status`` shows it), logged here; safe in any thread."""
        try:
            return call(), None, None
        except AdapterError as err:
            kind, cause = error_kind(err), str(err)
            log.warning("cannot read the %s (%s error): %s", what, kind, err)
        except Exception as err:  # an adapter bug: keep running, fail safe
            kind, cause = "internal", f"{type(err).__name__}, see the log"
            log.error("cannot read the %s (unexpected %s)", what, type(err).__name__,
                      exc_info=True)
        outlook = ("retrying cannot help until that is fixed" if kind in PERMANENT_KINDS
                   else "retried at the next tick")
        return None, f"{what} unreadable ({kind} error: {cause}): {outlook}", kind

    def _note(self, outcome: "_Outcome", problems: List[str]):
        """The value of a read; its problem, if any, noted (in the calling thread)."""
        value, problem, kind = outcome
        if problem is not None:
            problems.append(problem)
            self.on_error(kind)
        return value


_Outcome = Tuple[object, Optional[str], Optional[str]]


class _Read:
    """One read, made when its result is asked (``background`` False), or started in a thread
    at once with :data:`HEAD_START_S` of head start (True; its result is then waited for)."""

    def __init__(self, attempt: Callable[[str, Callable], _Outcome], what: str,
                 call: Callable, background: bool):
        self._attempt, self._what, self._call = attempt, what, call
        self._outcome: Optional[_Outcome] = None
        self._thread: Optional[threading.Thread] = None
        if background:
            self._thread = threading.Thread(target=self._run, name=f"elastiq-read-{what}",
                                            daemon=True)
            self._thread.start()
            self._thread.join(HEAD_START_S)

    def _run(self) -> None:
        self._outcome = self._attempt(self._what, self._call)

    def result(self) -> _Outcome:
        if self._thread is not None:
            self._thread.join()
            if self._outcome is None:  # its thread died of a BaseException: no answer
                self._outcome = self._attempt(self._what, _no_answer)
        elif self._outcome is None:
            self._outcome = self._attempt(self._what, self._call)
        return self._outcome


def _no_answer():
    raise RuntimeError("the read's thread ended without an answer")
