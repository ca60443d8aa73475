"""The apscheduler shell: checks at their intervals, wake-ups, one tick at a time, clean stop.

These run the real BackgroundScheduler with sub-second intervals; they wait for events with
generous timeouts and assert on order and concurrency, never on durations.
"""
from __future__ import annotations

import threading
import time

from elastiq.runtime.scheduler import Agenda, Scheduler, checks
from tests.support.world import Clock, make_config

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
    cfg = make_config(elastiq={"check_queue_every_s": 7, "list_vms_every_s": 30})
    assert checks(cfg) == (("queue", 7), ("vms", 30))


def served(kinds):
    return {part for kind in kinds for part in kind.split("+")}


def test_all_checks_run_and_never_two_at_once():
    rec = Recorder(lambda k: {"queue", "vms", "other"} <= served(k) and len(k) >= 12, work_s=0.03)
    sched = Scheduler(rec, (("queue", 0.05), ("vms", 0.08), ("other", 0.06)))
    sched.start()
    try:
        assert rec.done.wait(TIMEOUT)
    finally:
        sched.stop()
    assert rec.kinds[0].split("+")[0] == "start"  # (a check due meanwhile: served too)
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
        if kind.startswith("start"):
            raise RuntimeError("bug")
        return None

    sched = Scheduler(run, (("queue", 0.05),))
    sched.start()
    try:
        assert done.wait(TIMEOUT)
    finally:
        sched.stop()
    assert [kind.split("+")[0] for kind in calls[:3]] == ["start", "queue", "queue"]


# ------------------------------------------------------------- coalescing (issue 9, defect 3)


def test_checks_that_fall_due_together_run_one_tick():
    """queue every 15 s, vms every 45 s, other every 20 s: the queue check sets the pace, the
    others ride on its ticks when due (other due at 20 s is served at 30 s, its next one at
    45 s); every check keeps its rhythm and no instant gets two ticks."""
    clock = Clock(1000.0)
    ticks = []
    sched = Scheduler(lambda kind: ticks.append((clock.now - 1000, kind)),
                      (("queue", 15), ("vms", 45), ("other", 20)), clock=clock)
    for step in range(0, 180 * 4 + 1):  # every 0.25 s for 3 minutes
        clock.now = 1000.0 + step / 4
        sched.run_due()
    assert [t for t, _ in ticks] == [15 * i for i in range(1, 13)]  # the queue check's pace
    kinds = dict(ticks)
    assert kinds[15] == "queue" and kinds[30] == "queue+other"
    assert kinds[45] == "queue+vms+other" and kinds[75] == "queue" and kinds[135] == "queue+vms"
    assert kinds[180] == "queue+vms+other"
    counts = {k: sum(k in kind.split("+") for _, kind in ticks) for k in ("queue", "vms", "other")}
    assert counts == {"queue": 12, "vms": 4, "other": 9}  # other: 180 s / 20 s, none lost


def test_the_most_frequent_check_sets_the_pace_whichever_it_is():
    agenda = Agenda((("queue", 30), ("other", 10)), start=0.0)
    assert agenda.pace == "other" and agenda.next_at() == 10
    assert agenda.take(10) == ["other"] and agenda.take(20) == ["other"]
    assert agenda.take(30) == ["queue", "other"]
    assert Agenda((), start=0.0).next_at() is None


def test_a_check_due_just_before_or_after_a_wake_up_is_served_by_it():
    clock = Clock(0.0)
    ticks = []

    def run(kind):
        ticks.append((clock.now, kind))
        return {14.6: 29.8}.get(clock.now)  # that tick asks for a wake-up at 29.8

    sched = Scheduler(run, (("queue", 15), ("vms", 30)), clock=clock)
    sched.wake_at(14.6)
    for step in range(0, 40 * 10 + 1):
        clock.now = step / 10
        sched.run_due()
    # 14.6: the wake-up serves the queue check due at 15; 29.8: the wake-up (never early) serves
    # the checks due at 30
    assert ticks[:2] == [(14.6, "wake+queue"), (29.8, "wake+queue+vms")]
    assert all(t != 15.0 and t != 30.0 for t, _ in ticks)


def test_a_wake_up_is_never_run_early_and_a_check_waits_for_it_within_the_window():
    clock = Clock(0.0)
    sched = Scheduler(lambda kind: None, (("queue", 10),), clock=clock)
    sched.wake_at(10.4)
    clock.now = 10.0
    assert sched.run_due() is None  # the check waits 0.4 s for the wake-up rather than tick twice
    clock.now = 10.4
    assert sched.run_due() == "wake+queue"
    sched.wake_at(25.0)
    clock.now = 20.0
    assert sched.run_due() == "queue"  # the wake-up is more than the window away
    clock.now = 24.9
    assert sched.run_due() is None
    clock.now = 25.0
    assert sched.run_due() == "wake"


def test_missed_runs_are_coalesced_and_the_rhythm_kept():
    agenda = Agenda((("queue", 10),), start=0.0)
    assert agenda.take(5) == [] and agenda.take(9.5) == ["queue"]
    assert agenda.next_at() == 20  # served ahead of time: next one at the usual time
    assert agenda.take(55) == ["queue"] and agenda.next_at() == 60  # 20..50 missed: one run


def test_the_real_scheduler_runs_checks_with_equal_intervals_as_one_tick():
    rec = Recorder(lambda k: len(k) >= 4)
    sched = Scheduler(rec, (("queue", 0.1), ("vms", 0.1), ("other", 0.1)))
    sched.start()
    try:
        assert rec.done.wait(TIMEOUT)
    finally:
        sched.stop()
    assert rec.kinds[0].split("+")[0] == "start"  # (a check due meanwhile: served too)
    assert all(kind == "queue+vms+other" for kind in rec.kinds[1:4]), rec.kinds


def test_stop_during_a_tick_that_asks_for_a_wake_up_waits_for_it_and_nothing_runs_after(
        monkeypatch):
    """stop() while a tick runs and asks for a wake-up due at once (checks due too): stop
    returns once that tick ends, no tick starts after, and no thread dies with a traceback
    (apscheduler's shutdown(wait=True) held its job store lock while waiting for the tick; a
    one-off date job fired just before shutdown could not be removed)."""
    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    entered, release, more = threading.Event(), threading.Event(), threading.Event()
    ticks = []

    def run(kind):
        ticks.append(kind)
        if len(ticks) > 1:
            more.set()
        entered.set()
        release.wait(TIMEOUT)
        return time.time()

    sched = Scheduler(run, (("queue", 0.01),))
    sched.start()
    assert entered.wait(TIMEOUT)
    stopper = threading.Thread(target=sched.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive(), "stop() returned while the tick still ran"
    release.set()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive(), "stop() hangs"
    assert not more.wait(0.3), ticks
    assert len(ticks) == 1 and ticks[0].startswith("start") and died == []


def test_wake_ups_requested_between_ticks_each_fire_once():
    """An outside wake-up moves the one job's next run earlier (the job is never removed, so
    a wake-up after several ticks still fires)."""
    rec = Recorder(lambda k: False)

    def ticks_reach(n):
        deadline = time.monotonic() + TIMEOUT
        while len(rec.kinds) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return len(rec.kinds) >= n

    sched = Scheduler(rec, (("queue", 3600),))
    sched.start()
    try:
        assert ticks_reach(1)
        for n in (2, 3, 4):
            sched.wake_at(time.time() + 0.02)
            assert ticks_reach(n)
    finally:
        sched.stop()
    assert rec.kinds == ["start", "wake", "wake", "wake"]


def test_wake_ups_asked_by_ticks_that_end_at_once_all_fire():
    """A tick may end before apscheduler has finished handing it over (it then computes the
    job's next run after our listener set it): the wake-up the tick asked for must still be
    the next run, not the trigger's pace (a day here: no periodic check)."""
    count, asked = 40, []
    done = threading.Event()

    def run(kind):
        if len(asked) >= count:
            done.set()
            return None
        asked.append(kind)
        return time.time() + 0.002

    sched = Scheduler(run, ())
    sched.start()
    try:
        assert done.wait(TIMEOUT), f"{len(asked)} ticks, then no wake-up fired"
    finally:
        sched.stop()
    assert asked == ["start"] + ["wake"] * (count - 1)


def test_a_wake_up_and_the_listener_inside_apschedulers_lock_do_not_deadlock(monkeypatch):
    """A tick that ends before apscheduler has handed it over runs the job-executed listener in
    apscheduler's thread, inside its job store lock; a wake-up asked meanwhile used to hold our
    lock while waiting for that one, and the listener waited for ours (CI: both hung).  Here
    the two are made to meet: neither waits for the other, and the wake-up is the next run."""
    sched = Scheduler(lambda kind: None, (("queue", 3600),))
    sched.start()
    aps, wake = sched._aps, time.time() + 600
    waker = threading.Thread(target=sched.wake_at, args=(wake,), daemon=True)
    modifying, original = threading.Event(), aps.modify_job

    def modify_job(*args, **kwargs):
        if threading.current_thread() is waker:
            modifying.set()
        return original(*args, **kwargs)

    def apscheduler_thread():  # holds its job store lock, then runs our listener
        with aps._jobstores_lock:
            if modifying.wait(TIMEOUT):
                sched._arm()

    monkeypatch.setattr(aps, "modify_job", modify_job)
    holder = threading.Thread(target=apscheduler_thread, daemon=True)
    holder.start()
    waker.start()
    waker.join(TIMEOUT)
    holder.join(TIMEOUT)
    assert modifying.is_set()
    assert not (waker.is_alive() or holder.is_alive()), "deadlock"  # (not stopped: it would hang)
    next_run = aps.get_job("tick").next_run_time.timestamp()
    sched.stop()
    assert abs(next_run - wake) < 1e-3
