"""HTCondor batch adapter: the queue of every schedd, the pool's startds, graceful drains.

With :mod:`.bindings`, the only modules importing ``htcondor2`` / ``classad2``.  It
talks to HTCondor through the few calls of :class:`CondorBindings` (tests inject a fake with
the same methods, fed with real ClassAds), turns the worker VM's Machine ad template into a
ClassAd, translates binding errors into domain errors (:func:`.bindings.boundary`), and
leaves the translation of ads to :mod:`.ads` (jobs, matchability),
:mod:`.groups` (the schedd's groups of jobs), :mod:`.pool` (slots -> workers)
and :mod:`.template` (the template: learned from a worker of ours, or synthetic before
one exists): pure modules that do not import the bindings, they only call methods of the ads
(and of the template) they are given.

Errors: the collector unreachable -> :class:`TransientError` (no observation); one schedd of
several unreachable -> the others still count and the Queue says ``partial``; anything
unexpected -> :class:`FatalError`.  No binding exception escapes.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import classad2

from ...model import Catalogue, Pool, Queue
from . import ads as ads
from . import groups as groups_of
from . import pool as pool_ads
from . import template as template
from ..base import AdapterError, TransientError, forgets_by_itself
from ..told import TellOnce
from .bindings import CondorBindings, boundary, bulk, daemon_started, local_facts

if TYPE_CHECKING:
    from ...config import Config

__all__ = ["CondorBindings", "HTCondorBatch", "local_facts"]
log = logging.getLogger(__name__)
#: At most this many attributes are added to the job projection at run time.
MAX_EXTRA_PROJECTION = 100


class HTCondorBatch:
    """elastiq's view of an HTCondor pool (see :class:`~elastiq.adapters.base.BatchSystem`).

    ``bindings``: the object making the HTCondor calls (default :class:`CondorBindings`);
    ``clock``: seconds since the epoch, used only for jobs that carry no time at all;
    ``machine_attrs``: extra attributes of the worker Machine ad template, over what it learns;
    ``local``: the local HTCondor's facts (default: :func:`local_facts`);
    ``catalogue``: the worker VMs' shape (default: the ``vm`` section's).

    The template is synthetic until a worker of ours shows up in :meth:`pool`, then learned
    from its slot ad (see :mod:`.template`); the next :meth:`queue` judges on it.
    """

    #: Its reads talk to its own daemons and share nothing with the other port's adapter: the
    #: runtime lists the cloud while it reads the queue (:func:`base.reads_overlap`).
    independent_reads = True

    def __init__(self, config: Config, bindings: Any = None,
                 clock: Callable[[], float] = time.time,
                 machine_attrs: Optional[Mapping[str, Any]] = None,
                 local: Optional[Mapping[str, Any]] = None,
                 catalogue: Optional[Catalogue] = None):
        self._config, self._cluster = config, config.elastiq.cluster_name
        self._catalogue = catalogue or Catalogue.of(config.vm)  # the worker VMs' shape
        self._bindings = bindings if bindings is not None else CondorBindings()
        self._clock = clock
        self._extra = dict(machine_attrs or {})
        self._local = dict(local_facts() if local is None else local)
        self.learned_from: Optional[Tuple[str, str]] = None  # (slot name, CondorVersion)
        synthetic = template.synthetic(config, self._local, self._catalogue)
        self.matcher = ads.Matcher(self._template(synthetic),
                                   classad2.ClassAd())
        self._projection: List[str] = list(ads.JOB_PROJECTION)
        self._slot_constraint = pool_ads.slot_constraint(classad2.quote(self._cluster))
        self._told = TellOnce(log)
        self._groups_read: Dict[str, int] = {}  # schedd name -> group ads of its last answer
        self._docker_told: Dict[str, str] = {}  # worker -> the docker problem logged

    # ------------------------------------------------------------------------- queue

    def queue(self) -> Queue:
        """Idle jobs (matchable or not) and running jobs of every schedd the collector knows.

        A schedd that cannot be read makes the Queue ``partial``; when none can be read, or
        the collector cannot be asked, :class:`TransientError`.
        """
        started = time.perf_counter()
        with boundary("cannot locate the schedds through the collector"):
            schedds = list(self._bindings.locate_schedds())
        if not schedds:
            raise TransientError("the collector knows no schedd: the queue cannot be read")
        self._master_version(schedds)
        idle: List[Any] = []
        running, running_on, failed = 0, set(), []
        notes: List[Tuple[str, str]] = []
        now = self._clock()
        for location in schedds:
            name = str(location.get("Name") or location.get("MyAddress") or "schedd")
            try:
                with boundary(f"cannot query schedd {name}"):
                    jobs, run, on, told = self._read_schedd(location, name, now)
            except TransientError as err:
                log.warning("queue is partial: %s", err)
                failed.append(name)
                continue
            idle += jobs
            running += run
            running_on |= on
            notes += told
        if len(failed) == len(schedds):
            raise TransientError(f"no schedd could be read ({', '.join(failed)})")
        self._told.tell(notes, complete=not failed)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("queue: %d idle (%d never matchable), %d running, %d/%d schedds, %.3f s",
                      len(idle), sum(not j.fits_worker for j in idle), running,
                      len(schedds) - len(failed), len(schedds), time.perf_counter() - started)
        return Queue(idle=tuple(idle), running=running, partial=bool(failed),
                     running_on=frozenset(running_on))

    def _read_schedd(self, location: Any, name: str, now: float):
        """Read one schedd; if its Requirements reference job attributes we did not project,
        project them too and read once more (attributes are remembered for next time)."""
        result = self._read_jobs(location, name, now)
        have = {a.lower() for a in self._projection}
        missing = sorted(a for a in self.matcher.wanted if a.lower() not in have)
        room = len(ads.JOB_PROJECTION) + MAX_EXTRA_PROJECTION - len(self._projection)
        if missing and room > 0:
            log.debug("job projection += %s", ", ".join(missing[:room]))
            self._projection += missing[:room]
            result = self._read_jobs(location, name, now)
        return result

    def _read_jobs(self, location: Any, name: str, now: float):
        """One grouped query (the schedd aggregates jobs alike in every projected attribute:
        a few ads instead of 100,000), then job by job only the clusters whose idle jobs the
        groups cannot name (:func:`.groups.read_groups`)."""
        groups = self._groups(location, name, groups_of.group_projection(self._projection))
        with bulk():
            grouped = groups_of.read_groups(groups, name, self.matcher, now)
        if grouped is not None and not grouped[4]:
            return grouped[:4]
        constraint = ads.JOB_CONSTRAINT
        if grouped is not None:
            clusters = " || ".join(f"ClusterId == {c}" for c in sorted(grouped[4]))
            constraint = f"({constraint}) && ({clusters})"
        found = self._bindings.query_jobs(location, constraint, self._projection)
        with bulk():
            idle, running, running_on, notes = ads.read_jobs(found, name, self.matcher, now)
        if grouped is None:
            return idle, running, running_on, notes
        return (grouped[0] + idle, grouped[1] + running, grouped[2] | running_on,
                grouped[3] + notes)

    def _groups(self, location: Any, name: str, projection: Sequence[str]) -> List[Any]:
        """The schedd's groups of the jobs we read: in one grouped query, or for a big schedd
        in several at once, each by a child process (:func:`.groups.query_parts`), their
        groups then in ClusterId order."""
        parts = groups_of.query_parts(ads.JOB_CONSTRAINT, location.get("TotalJobAds"),
                                      self._groups_read.get(name))
        if len(parts) == 1:
            found = self._bindings.group_jobs(location, parts[0], projection)
        else:
            with ThreadPoolExecutor(len(parts)) as queries:
                answers = list(queries.map(lambda part: self._bindings.group_jobs(
                    location, part, projection, apart=True), parts))
            found = sorted((ad for answer in answers for ad in answer),
                           key=lambda ad: ad.get("ClusterId", -1))
        self._groups_read[name] = len(found)
        return found

    # ------------------------------------------------------------------------- pool

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        """Workers of our cluster, one per startd, aggregated over their slots.

        ``known_ips``: private IP -> instance id of our instances (from the cloud adapter);
        used only for startds that do not advertise ``ElastiqCluster`` (IP fallback,
        including NO_DNS names such as ``10-64-22-215.INFN-PD``).  Other startds are left
        alone.  A slot ad that names no machine makes the Pool ``partial``.
        """
        with boundary("cannot query the collector for startd ads"):
            found = self._bindings.query_slots(self._slot_constraint, pool_ads.SLOT_PROJECTION)
            with bulk():
                workers, notes, malformed = pool_ads.aggregate_workers(
                    found, self._cluster, known_ips or {})
        self._learn(found)
        for note in notes:
            log.debug("pool: %s", note)
        self._tell_docker_problems(pool_ads.docker_problems(found))
        if malformed:
            log.warning("pool is partial: %d slot ads name no machine", malformed)
        log.debug("pool: %d workers of ours from %d slot ads", len(workers), len(found))
        return Pool(workers=workers, partial=malformed > 0,
                    collector_started=self._collector_started())

    def _tell_docker_problems(self, problems: Mapping[str, str]) -> None:
        """One warning per worker whose docker check failed (again after it was fixed): the
        docker-universe jobs that wait for it never run there, whatever the queue says."""
        for name, why in sorted(problems.items()):
            if self._docker_told.get(name) != why:
                log.warning("worker %s runs no docker-universe job (no HasDocker): its docker "
                            "check says: %s", name, why)
        self._docker_told = dict(problems)

    def _collector_started(self) -> Optional[float]:
        """When the (latest started) collector began: right after a restart it lists only the
        startds that advertised since.  None when it cannot be told (logged, not fatal)."""
        try:
            with boundary("cannot read the collector's own ad"):
                started = [daemon_started(ad) for ad in self._bindings.collector_ads()]
        except TransientError as err:
            log.debug("pool: %s", err)
            return None
        known = [s for s in started if s is not None]
        return float(max(known)) if known else None

    # ------------------------------------------------------------------------- template

    def _template(self, attrs: Dict[str, Any]) -> classad2.ClassAd:
        attrs.update(self._extra)
        return classad2.ClassAd(attrs)

    def _master_version(self, schedds: Sequence[Any]) -> None:
        """Before any worker is seen, the synthetic template carries the HTCondor version of
        the master's schedd (the workers install the same series) rather than the bindings'."""
        found = next(filter(None, map(template.daemon_attrs, schedds)), {})
        if self.learned_from is None and found.items() - self._local.items():
            self._local.update(found)
            self.matcher.set_machine(self._template(
                template.synthetic(self._config, self._local, self._catalogue)))

    def _learn(self, slots: Sequence[Any]) -> None:
        """Learn the template from a worker of ours when none was learned yet, or when no
        worker advertises the version it was learned from any more.  Failing to read the
        whole slot ad keeps the template as it is, to try again at the next pool read."""
        current = self.learned_from[1] if self.learned_from else None
        source = template.pick_source(slots, self._cluster, current)
        if source is None:
            return
        name, version = source
        try:
            with boundary(f"cannot read the slot ad of {name}"):
                found = self._bindings.query_slots(f"Name == {classad2.quote(name)}", ())
        except AdapterError as err:
            log.warning("worker template not learned: %s", err)
            return
        if not found:
            return
        self.matcher.set_machine(self._template(
            template.learned(found[0], self._config, self._catalogue)))
        self.learned_from = (name, version)
        log.info("worker template learned from %s (%s; %s): %s", name, version.strip("$ "),
                 found[0].get("OpSysAndVer") or found[0].get("OpSys"), self.matcher.shape)

    # ------------------------------------------------------------------------- drain

    def drain(self, worker: str, reason: str) -> None:
        """Drain ``worker`` (a Worker.name, i.e. the startd's name) gracefully: it stops
        matching new jobs at once, running jobs finish.  Idempotent: draining a worker that
        already drains is not an error.  The worker is drained when the pool shows it
        ``draining`` with no claimed slot; terminating the VM is the cloud adapter's job."""
        if self._drain_call(worker, True, lambda slot: self._bindings.drain(slot, reason)):
            log.debug("draining %s gracefully: %s", worker, reason)

    def cancel_drain(self, worker: str) -> None:
        """Cancel every drain of ``worker``: it accepts jobs again.  Idempotent."""
        if self._drain_call(worker, False, self._bindings.cancel_drain):
            log.debug("cancelled the drain of %s", worker)

    def _drain_call(self, worker: str, want: bool, call: Callable[[str], Any]) -> bool:
        """Make the call on one of the worker's slots (the startd is addressed through it);
        False if it failed only because the worker already was as wanted."""
        what = f"cannot {'drain' if want else 'cancel the drain of'} {worker}"
        with boundary(what):
            slots = self._slots_of(worker)
        if not slots:
            raise TransientError(f"{what}: it has no slot in the pool")
        try:
            with boundary(what):
                call(min(str(ad["Name"]) for ad in slots))
            return True
        except TransientError:
            if self._draining(worker) is not want:
                raise
            log.info("%s already %s", worker, "draining" if want else "not draining")
            return False

    def _slots_of(self, worker: str) -> List[Any]:
        """The collector's slot ads of ``worker`` (Name, Machine, Draining, State)."""
        found = self._bindings.query_slots(self._slot_constraint,
                                           ("Name", "Machine", "Draining", "State"))
        return [ad for ad in found if ad.get("Name") and pool_ads.startd_name(ad) == worker]

    def _draining(self, worker: str) -> Optional[bool]:
        """What the collector says of ``worker``'s drain; None if it cannot tell."""
        try:
            with boundary(f"cannot check whether {worker} drains"):
                return pool_ads.names_draining(self._slots_of(worker), worker)
        except AdapterError:
            return None

    # ------------------------------------------------------------------------- look

    def workers_of(self, instance_ids: Sequence[str],
                   known_ips: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """The workers of these instances in the pool now (see ``BatchSystem.workers_of``):
        one collector query for their slots (and the slots advertising no instance id, for
        the IP fallback), right before their VMs are terminated."""
        ids = sorted(set(instance_ids))
        if not ids:
            return {}
        named = " || ".join(f"ElastiqInstanceId =?= {classad2.quote(i)}" for i in ids)
        constraint = f"({self._slot_constraint}) && ({named} || ElastiqInstanceId =?= undefined)"
        with boundary("cannot look at the pool before terminating"):
            found = self._bindings.query_slots(constraint, pool_ads.SLOT_PROJECTION)
            workers, _, _ = pool_ads.aggregate_workers(found, self._cluster, known_ips or {})
        return {w.instance_id: w for w in workers if w.instance_id in ids}

    #: Nothing to do after a terminate (no ad is invalidated): a startd invalidates its own
    #: ads as it shuts down, the collector drops the ads of a VM that vanished once they are
    #: not renewed, and a worker missing from the pool is no proof anyway (see DESIGN.md).
    forget = forgets_by_itself
