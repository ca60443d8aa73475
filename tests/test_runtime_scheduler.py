"""The apscheduler shell: checks at their intervals, wake-ups, one tick at a time, clean stop.

These run the real BackgroundScheduler with sub-second intervals; they wait for events with
generous timeouts and assert on order and concurrency, never on durations.
"""
from __future__ import annotations

import threading
import time

from elastiq.runtime.scheduler import Scheduler, checks
from tests.support.world import make_config

TIMEOUT = 20


class Recorder:
    def __init__(self, until, work_s=0.0, wake=None):
        self.kinds, self.until, self.work_s, self.wake = [], until, work_s, wake
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def __call__(self, kind):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.work_s)
        with self.lock:
            self.active -= 1
            self.kinds.append(kind)
            if self.until(self.kinds):
                self.done.set()
        return self.wake(kind) if self.wake else None


def test_checks_come_from_the_configured_intervals():
    cfg = make_config(elastiq={"check_queue_every_s": 7, "check_vms_every_s": 30,
                               "check_vms_in_error_every_s": 11})
    assert checks(cfg) == (("queue", 7), ("vms", 30), ("errors", 11))


def test_all_checks_run_and_never_two_at_once():
    rec = Recorder(lambda k: {"queue", "vms", "errors"} <= set(k) and len(k) >= 12, work_s=0.03)
    sched = Scheduler(rec, (("queue", 0.05), ("vms", 0.08), ("errors", 0.06)))
    sched.start()
    try:
        assert rec.done.wait(TIMEOUT)
    finally:
        sched.stop()
    assert rec.kinds[0] == "start"
    assert rec.max_active == 1


def test_a_requested_wake_up_does_not_wait_for_the_interval():
    rec = Recorder(lambda k: "wake" in k, wake=lambda kind: time.time() + 0.05 if kind == "start" else None)
    sched = Scheduler(rec, (("queue", 3600), ("vms", 3600)))
    sched.start()
    try:
        assert rec.done.wait(TIMEOUT)
    finally:
        sched.stop()
    assert rec.kinds == ["start", "wake"]


def test_an_earlier_wake_up_wins_and_a_later_one_does_not_postpone_it():
    sched = Scheduler(lambda kind: None, ())
    now = time.time()
    sched.wake_at(now + 100)
    sched.wake_at(now + 200)
    assert sched.pending_wake == now + 100
    sched.wake_at(now + 50)
    assert sched.pending_wake == now + 50


def test_stop_lets_the_running_tick_finish():
    started, finished = threading.Event(), []

    def run(kind):
        started.set()
        time.sleep(0.2)
        finished.append(kind)

    sched = Scheduler(run, ())
    sched.start()
    assert started.wait(TIMEOUT)
    sched.stop()
    assert finished == ["start"]


def test_a_failing_tick_does_not_stop_the_schedule():
    calls = []
    done = threading.Event()

    def run(kind):
        calls.append(kind)
        if len(calls) >= 3:
            done.set()
        if kind == "start":
            raise RuntimeError("bug")
        return None

    sched = Scheduler(run, (("queue", 0.05),))
    sched.start()
    try:
        assert done.wait(TIMEOUT)
    finally:
        sched.stop()
    assert calls[:3] == ["start", "queue", "queue"]
