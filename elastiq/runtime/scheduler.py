"""When to tick: the periodic checks and the wake-ups a plan asks for, on apscheduler 3.

This is the only module that imports apscheduler.  All ticks run on one executor thread, so
two never overlap, and each tick serves everything due at that moment: **checks that fall due
together run one tick**, whose kind names them all (``"queue+vms"``), never one tick each --
each tick reads the queue, the pool and maybe the cloud, and acts.

The checks of the original elastiq keep their intervals (``check_queue_every_s``,
``check_vms_every_s``, ``check_vms_in_error_every_s``), counted from one start.  **The most
frequent check sets the pace**: a less frequent one that falls due in between is served by its
next tick (at most one shortest interval late; its rhythm is kept).  Every tick reads every
schedd and the collector, so a tick of its own would add those reads just for a fresher cloud
listing.  ``run(kind)`` returns the time at which the runtime wants to tick again
(``Plan.next_check``: a waiting threshold reached, a join deadline, an idle period over, the
end of a back-off; or a quick follow-up after acting).  The scheduler then ticks (kind
``wake``) at that time unless it already ticks earlier.  A wake-up is never run early (its
condition would not hold yet), but a periodic check due within :data:`COALESCE_S` of a tick is
served by that tick, ahead of time or up to that much late: the checks only need to run about
that often.  Runs missed while a long tick ran are coalesced into one.
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..config import Config

log = logging.getLogger(__name__)

UTC = datetime.timezone.utc
Runner = Callable[[str], Optional[float]]
#: A periodic check due within this many seconds of a tick is served by that tick (at most
#: half the shortest interval).
COALESCE_S = 1.0


def checks(cfg: Config) -> Tuple[Tuple[str, float], ...]:
    """The periodic checks: (kind, interval in seconds)."""
    e = cfg.elastiq
    return (("queue", e.check_queue_every_s), ("vms", e.check_vms_every_s),
            ("errors", e.check_vms_in_error_every_s))


def _at(when: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(when, UTC)


class Agenda:
    """When each periodic check is due next, and when the next periodic tick comes: that of
    the most frequent check (the ``pace``), which serves every other check due by then; pure
    (times are passed in)."""

    def __init__(self, periodic: Sequence[Tuple[str, float]], start: float,
                 window: float = COALESCE_S):
        self.intervals: Dict[str, float] = dict(periodic)
        self.due_at: Dict[str, float] = {k: start + i for k, i in self.intervals.items()}
        self.pace: Optional[str] = min(self.intervals, key=self.intervals.get, default=None)
        shortest = self.intervals[self.pace] if self.pace else 2 * window
        self.window = min(window, shortest / 2)

    def next_at(self) -> Optional[float]:
        """When the next periodic tick is due (None: no periodic check)."""
        return self.due_at[self.pace] if self.pace else None

    def take(self, now: float) -> List[str]:
        """The checks a tick at ``now`` serves (due by ``now + window``), in configured order;
        each is next due one interval after its missed runs."""
        due = [k for k, at in self.due_at.items() if at <= now + self.window]
        for kind in due:
            interval, at = self.intervals[kind], self.due_at[kind]
            missed = int((now + self.window - at) // interval) + 1
            self.due_at[kind] = at + missed * interval
        return due


def _background_scheduler():
    """apscheduler's one-thread background scheduler, imported when first needed (a
    simulation, which moves a virtual clock, never needs it)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.base import JobLookupError
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_STOPPED

    class _BackgroundScheduler(BackgroundScheduler):
        """apscheduler 3 removes a fired date job after handing it to the executor; when
        shutdown() comes in between, the removal looks among the pending jobs, fails and kills
        the scheduler thread with a traceback.  At shutdown that removal does not matter:
        ignore it."""

        def remove_job(self, job_id, jobstore=None):
            try:
                super().remove_job(job_id, jobstore)
            except JobLookupError:
                if self.state != STATE_STOPPED:
                    raise

    return _BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )


class Scheduler:
    """Runs ``run(kind)`` for the checks and the requested wake-ups, one tick at a time.

    ``start()`` fires a first ``start`` tick at once.  ``stop()`` lets the running tick finish
    (the runtime abandons its remaining actions when asked to stop) and returns.
    ``run_due()`` runs what is due now (the scheduler's thread calls it; tests may too).
    """

    def __init__(self, run: Runner, periodic: Sequence[Tuple[str, float]],
                 clock: Callable[[], float] = time.time):
        self._run_tick = run
        self._clock = clock
        self._agenda = Agenda(periodic, clock())
        self._lock = threading.Lock()  # the single runner (the executor has one thread too)
        self._wake_lock = threading.Lock()  # guards what follows
        self._wake: Optional[Tuple[float, str]] = None  # (when, kind) of the next wake-up
        self._job: Optional[str] = None
        self._job_at: Optional[float] = None
        self._seq = 0
        self._stopped = False
        self._background = None  # apscheduler's, made at first use

    @property
    def _aps(self):
        if self._background is None:
            self._background = _background_scheduler()
        return self._background

    def start(self) -> None:
        self._aps.start()
        self.wake_at(self._clock(), kind="start")

    def stop(self) -> None:
        # apscheduler's shutdown holds its job store lock while it waits for the running tick:
        # a tick that then added or removed a job would wait for it forever.  Past this flag
        # (set under the lock every scheduling change holds), no tick touches the jobs.
        with self._wake_lock:
            self._stopped = True
        if self._background is not None and self._background.running:
            self._background.shutdown(wait=True)

    def wake_at(self, when: float, kind: str = "wake") -> None:
        """Tick at ``when`` (at once if it has passed), unless a wake-up is already due earlier."""
        with self._wake_lock:
            if self._wake is None or when < self._wake[0]:
                self._wake = (when, kind)
            self._reschedule()

    @property
    def pending_wake(self) -> Optional[float]:
        wake = self._wake
        return wake[0] if wake else None

    def run_due(self) -> Optional[str]:
        """Run one tick for everything due now; its kind, or None when nothing was due."""
        with self._lock:
            now = self._clock()
            with self._wake_lock:
                kinds = []
                if self._wake is not None and self._wake[0] <= now:
                    kinds.append(self._wake[1])
                    self._wake = None
                kinds += self._agenda.take(now) if kinds or self._check_due(now) else []
            if not kinds:
                return None
            kind = "+".join(kinds)
            try:
                next_time = self._run_tick(kind)
            except Exception:  # a bug must not stop the service: log it, keep the schedule
                log.exception("%s tick failed", kind)
                next_time = None
        if next_time is not None:
            self.wake_at(next_time)
        return kind

    @property
    def agenda(self) -> Agenda:
        return self._agenda

    def next_moment(self) -> Optional[float]:
        """When the next tick is due (a check or the pending wake-up), for a virtual clock:
        ``elastiq simulate`` moves its clock there and calls :meth:`run_due`."""
        with self._wake_lock:
            return self._next_moment()

    def _check_due(self, now: float) -> bool:
        """A check is due and no wake-up comes within the coalescing window to serve it."""
        first = self._agenda.next_at()
        if first is None or first > now:
            return False
        return self._wake is None or self._wake[0] > first + self._agenda.window

    def _next_moment(self) -> Optional[float]:
        check, wake = self._agenda.next_at(), self._wake[0] if self._wake else None
        if wake is None or check is None:
            return check if wake is None else wake
        return wake if wake <= check + self._agenda.window else min(check, wake)

    def _reschedule(self) -> None:
        """One apscheduler date job at the next moment (the caller holds ``_wake_lock``)."""
        if self._stopped or self._background is None or not self._background.running:
            return
        when = self._next_moment()
        if when is None or when == self._job_at:
            return
        if self._job is not None:  # superseded
            from apscheduler.jobstores.base import JobLookupError

            try:
                self._aps.remove_job(self._job)
            except JobLookupError:
                pass  # it is firing right now
        self._seq += 1
        # a fresh id each time: apscheduler removes a fired date job by its id, which must
        # never be the id of the job that tick just scheduled
        self._job, self._job_at = f"tick-{self._seq}", when
        self._aps.add_job(self._fire, "date", run_date=_at(when), args=(self._job,), id=self._job)

    def _fire(self, job: str) -> None:
        with self._wake_lock:
            if job == self._job:
                self._job = self._job_at = None
        self.run_due()
        with self._wake_lock:
            self._reschedule()
