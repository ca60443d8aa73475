"""When to tick: the periodic checks and the wake-ups a plan asks for, on apscheduler 3.

This is the only module that imports apscheduler.  All ticks run on one executor thread, so
two never overlap, and each tick serves everything due at that moment: **checks that fall due
together run one tick**, whose kind names them all (``"queue+vms"``), never one tick each --
each tick reads the queue, the pool and maybe the cloud, and acts.

Two checks, counted from one start: ``queue`` every ``check_queue_every_s`` (a tick reads the
queue and the pool and decides) and ``vms`` every ``list_vms_every_s`` (that tick reads the
cloud's list of our VMs too).  **The most frequent check sets the pace**: a less frequent one
that falls due in between is served by its next tick (at most one shortest interval late; its
rhythm is kept).  Every tick reads every schedd and the collector, so a tick of its own would
add those reads just for a fresher cloud listing.  ``run(kind)`` returns the time at which the
runtime wants to tick again (``Plan.next_check``: a waiting threshold reached, a join
deadline, an idle period over, the end of a back-off; or ``recheck_after_action_s`` after
acting).  The scheduler then ticks (kind ``wake``) at that time unless it already ticks
earlier.  A wake-up is never run early (its condition would not hold yet), but a periodic
check due within :data:`COALESCE_S` of a tick is served by that tick, ahead of time or up to
that much late: the checks only need to run about that often.  Runs missed while a long tick
ran are coalesced into one.

:class:`Agenda` and :meth:`Scheduler.run_due` decide what a tick serves (pure of threads: the
simulator drives them on a virtual clock); apscheduler fires them: one persistent job
(``coalesce``, ``max_instances=1``, no misfire limit: a late check still runs) whose trigger
is the agenda's next moment -- the pace after the last run while that run has not been served
yet.  After every tick (a job-executed listener) and at every wake-up request, the job's next
run time is set to the next moment; apscheduler computes its trigger right after handing the
job to the executor, before the tick has asked for its wake-up -- or, when the tick ended
first, after the listener: either way the last word is the next moment as the tick left it.
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
    return (("queue", e.check_queue_every_s), ("vms", e.list_vms_every_s))


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


#: The id of the one apscheduler job.
JOB = "tick"
#: The pace when no periodic check sets one (wake-ups only): the job's next run is set by
#: every wake-up, so this is only the trigger's fallback.
NO_PACE_S = 86400.0


def _agenda_trigger(next_moment: Callable[[], Optional[float]], pace: float):
    """An apscheduler trigger (its documented extension point) firing at ``next_moment()``;
    the pace after the previous run while that moment is not after it (the run has been
    handed to the executor, not served yet)."""
    from apscheduler.triggers.base import BaseTrigger

    class AgendaTrigger(BaseTrigger):
        def get_next_fire_time(self, previous_fire_time, now):
            when = next_moment()
            at = _at(when) if when is not None else None
            if previous_fire_time is not None and (at is None or at <= previous_fire_time):
                return previous_fire_time + datetime.timedelta(seconds=pace)
            return at or now + datetime.timedelta(seconds=pace)

    return AgendaTrigger()


def _background_scheduler():
    """apscheduler's background scheduler with one executor thread, imported when first needed
    (a simulation, which moves a virtual clock, never needs it)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )


class Scheduler:
    """Runs ``run(kind)`` for the checks and the requested wake-ups, one tick at a time.

    ``start()`` fires a first ``start`` tick at once.  ``stop()`` lets the running tick finish
    (the runtime abandons its remaining actions when asked to stop) and returns; no tick starts
    after it.  ``run_due()`` runs what is due now (apscheduler's job calls it; the simulator and
    tests too, on a virtual clock).
    """

    def __init__(self, run: Runner, periodic: Sequence[Tuple[str, float]],
                 clock: Callable[[], float] = time.time):
        self._run_tick = run
        self._clock = clock
        self._agenda = Agenda(periodic, clock())
        self._lock = threading.Lock()  # guards the agenda, the wake-up and _stopped
        self._ticking = threading.Lock()  # held while a tick runs: stop() waits for it
        self._wake: Optional[Tuple[float, str]] = None  # (when, kind) of the next wake-up
        self._stopped = False
        self._aps = None  # apscheduler's, made by start()

    def start(self) -> None:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

        pace = self._agenda.intervals.get(self._agenda.pace, NO_PACE_S)
        self._aps = _background_scheduler()
        # after each run (the executor has counted it finished, so a next run time that has
        # come already is not refused as a second instance): the next moment
        self._aps.add_listener(lambda event: self._arm(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.wake_at(self._clock(), kind="start")
        # the trigger reads without our lock: apscheduler holds its job store lock when it asks,
        # and _arm takes ours before that one
        self._aps.add_job(self.run_due, _agenda_trigger(self._next_moment, pace), id=JOB,
                          next_run_time=_at(self.next_moment()))
        self._aps.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        if self._aps is not None and self._aps.running:
            # not shutdown(wait=True): that holds the job store lock while it waits
            self._aps.shutdown(wait=False)
        with self._ticking:  # the running tick, if any, has finished
            pass

    def wake_at(self, when: float, kind: str = "wake") -> None:
        """Tick at ``when`` (at once if it has passed), unless a wake-up is already due earlier."""
        with self._lock:
            self._note_wake(when, kind)
        if not self._ticking.locked():  # else the tick's end sets the next run
            self._arm()

    @property
    def pending_wake(self) -> Optional[float]:
        wake = self._wake
        return wake[0] if wake else None

    def run_due(self) -> Optional[str]:
        """Run one tick for everything due now; its kind, or None when nothing was due."""
        with self._ticking:
            now = self._clock()
            with self._lock:
                if self._stopped:
                    return None
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
                with self._lock:
                    self._note_wake(next_time, "wake")
        return kind

    @property
    def agenda(self) -> Agenda:
        return self._agenda

    def next_moment(self) -> Optional[float]:
        """When the next tick is due (a check or the pending wake-up), for a virtual clock:
        ``elastiq simulate`` moves its clock there and calls :meth:`run_due`."""
        with self._lock:
            return self._next_moment()

    def _note_wake(self, when: float, kind: str) -> None:
        if self._wake is None or when < self._wake[0]:
            self._wake = (when, kind)

    def _check_due(self, now: float) -> bool:
        """A check is due and no wake-up comes within the coalescing window to serve it."""
        first = self._agenda.next_at()
        if first is None or first > now:
            return False
        return self._wake is None or self._wake[0] > first + self._agenda.window

    def _next_moment(self) -> Optional[float]:
        wake_up = self._wake  # read once (the trigger reads without the lock)
        check, wake = self._agenda.next_at(), wake_up[0] if wake_up else None
        if wake is None or check is None:
            return check if wake is None else wake
        return wake if wake <= check + self._agenda.window else min(check, wake)

    def _arm(self) -> None:
        """Set the job's next run to the next moment (None: paused until a wake-up).

        Our lock is not held while apscheduler is called: a tick that ends before apscheduler
        has finished handing it over runs our job-executed listener in apscheduler's own
        thread, which holds its job store lock; a wake-up holding our lock while it waited for
        that one deadlocked the two (seen in a full test run).  So the moment is set, then checked to be
        still the one to set (another thread may have set an older one after it)."""
        while True:
            with self._lock:
                if self._stopped or self._aps is None or not self._aps.running:
                    return
                when = self._next_moment()
            self._aps.modify_job(JOB, next_run_time=None if when is None else _at(when))
            with self._lock:
                if self._next_moment() == when:
                    return
