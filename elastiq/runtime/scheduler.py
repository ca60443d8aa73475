"""When to tick: the periodic checks and the wake-ups a plan asks for, on apscheduler 3.

This is the only module that imports apscheduler.  All jobs run on one executor thread through
one runner, so two checks never overlap; missed runs are coalesced into one.

The checks of the original elastiq keep their intervals (``check_queue_every_s``,
``check_vms_every_s``, ``check_vms_in_error_every_s``); each runs one tick of the given *kind*.
``run(kind)`` returns the time at which the runtime wants to tick again (``Plan.next_check``:
a waiting threshold reached, a join deadline, an idle period over, the end of a back-off; or a
quick follow-up after acting).  The scheduler then fires a ``wake`` tick at that time unless one
is already due earlier, so a time-based decision never waits for an unrelated interval.
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Callable, Optional, Sequence, Tuple

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

from ..config import Config

log = logging.getLogger(__name__)

UTC = datetime.timezone.utc
Runner = Callable[[str], Optional[float]]


def checks(cfg: Config) -> Tuple[Tuple[str, float], ...]:
    """The periodic checks: (kind, interval in seconds)."""
    e = cfg.elastiq
    return (("queue", e.check_queue_every_s), ("vms", e.check_vms_every_s),
            ("errors", e.check_vms_in_error_every_s))


def _at(when: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(when, UTC)


class _BackgroundScheduler(BackgroundScheduler):
    """apscheduler 3 removes a fired date job after handing it to the executor; when shutdown()
    comes in between, the removal looks among the pending jobs, fails and kills the scheduler
    thread with a traceback.  At shutdown that removal does not matter: ignore it."""

    def remove_job(self, job_id, jobstore=None):
        try:
            super().remove_job(job_id, jobstore)
        except JobLookupError:
            if self.state != STATE_STOPPED:
                raise


class Scheduler:
    """Runs ``run(kind)`` for each check and for each requested wake-up, one at a time.

    ``start()`` fires a first ``start`` tick at once.  ``stop()`` lets the running tick finish
    (the runtime abandons its remaining actions when asked to stop) and returns.
    """

    def __init__(self, run: Runner, periodic: Sequence[Tuple[str, float]],
                 clock: Callable[[], float] = time.time):
        self._run_tick = run
        self._periodic = tuple(periodic)
        self._clock = clock
        self._lock = threading.Lock()  # the single runner (the executor has one thread too)
        self._wake_lock = threading.Lock()
        self._wake_at: Optional[float] = None
        self._wake_job: Optional[str] = None
        self._wake_seq = 0
        self._aps = _BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    def start(self) -> None:
        for kind, interval in self._periodic:
            self._aps.add_job(self._run, "interval", seconds=interval, args=(kind,), id=kind,
                              next_run_time=_at(self._clock() + interval))
        self.wake_at(self._clock(), kind="start")
        self._aps.start()

    def stop(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=True)

    def wake_at(self, when: float, kind: str = "wake") -> None:
        """Tick at ``when`` (at once if it has passed), unless a wake-up is already due earlier."""
        with self._wake_lock:
            if self._wake_at is not None and self._wake_at <= when:
                return
            if self._wake_job is not None:  # superseded by this earlier one
                try:
                    self._aps.remove_job(self._wake_job)
                except JobLookupError:
                    pass  # it is firing right now
            self._wake_seq += 1
            # a fresh id each time: apscheduler removes a fired date job by its id, which
            # must never be the id of the wake-up that tick just asked for
            self._wake_job = f"wake-{self._wake_seq}"
            self._wake_at = when
            self._aps.add_job(self._run, "date", run_date=_at(when), args=(kind, self._wake_job),
                              id=self._wake_job)

    @property
    def pending_wake(self) -> Optional[float]:
        return self._wake_at

    def _run(self, kind: str, wake_job: Optional[str] = None) -> None:
        if wake_job is not None:
            with self._wake_lock:
                if wake_job == self._wake_job:
                    self._wake_at = self._wake_job = None
        with self._lock:
            try:
                next_time = self._run_tick(kind)
            except Exception:  # a bug must not stop the service: log it, keep the schedule
                log.exception("%s tick failed", kind)
                return
        if next_time is not None and self._aps.running:
            self.wake_at(next_time)
