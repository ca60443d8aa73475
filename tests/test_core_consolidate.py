"""Consolidation (issue 15): under-used workers are drained while no job waits, never killed.

Table-driven over the pure core with an injected clock: a first tick sees the workers (their
under-use starts), a second one ``after`` seconds later decides.
"""
from __future__ import annotations

import pytest

from elastiq.model import CancelDrain, Drain, InstanceRecord, Lifecycle, Terminate
from elastiq.core.reasons import Code, Reason

from tests.test_core_decide import cfg, inst, jobs, joined, snap, worker
from tests.support.core_tick import CoreState, tick

T0 = 1000.0
AFTER = 600.0  # elastiq.consolidate_after_s's default


def two_ticks(claimed, idle=(), after=AFTER, *extra, free=None):
    """Workers w1.. with ``claimed`` 1-cpu jobs each (4 cpus), observed at T0 and T0+after."""
    free = free or [None] * len(claimed)
    workers = [worker(i, claimed=c, free=f) for i, (c, f) in enumerate(zip(claimed, free), 1)]
    instances = [inst(i) for i in range(1, len(claimed) + 1)]
    memory = CoreState(instances={f"i-{i}": joined(i) for i in range(1, len(claimed) + 1)})
    config = cfg(*extra)
    _, memory = tick(snap(idle, workers, instances), memory, config, T0)
    return tick(snap(idle, workers, instances), memory, config, T0 + after)


CASES = [
    # (what, claimed per worker, idle jobs, seconds under-used, extra knobs, drained)
    ("least used first, while the rest has room", [1, 1, 3], (), AFTER, (), ["i-1", "i-2"]),
    ("not under-used long enough", [1, 1, 3], (), AFTER - 1, (), []),
    ("jobs wait for a new VM: nothing consolidated", [1, 1, 3], jobs(8), AFTER, (), []),
    ("waiting jobs keep the room they need", [1, 1, 3], jobs(3), AFTER, (), ["i-1"]),
    ("no room for them if it went", [1, 1, 3], jobs(4), AFTER, (), []),
    ("lever off", [1, 1, 3], (), AFTER, ("elastiq.consolidate_below=0",), []),
    ("at the threshold is not under it", [2, 2], (), AFTER, (), []),
    ("its jobs would not fit the others", [1, 4], (), AFTER, (), []),
    ("min_vms kept", [1, 1, 3], (), AFTER, ("quota.min_vms=2",), ["i-1"]),
    ("higher threshold", [2, 2, 1], (), AFTER, ("elastiq.consolidate_below=0.6",), ["i-3", "i-1"]),
]


@pytest.mark.parametrize("what,claimed,idle,after,extra,drained", CASES, ids=[c[0] for c in CASES])
def test_consolidation_drains(what, claimed, idle, after, extra, drained):
    plan, memory = two_ticks(claimed, idle, after, *extra)
    drains = [a for a in plan.actions if isinstance(a, Drain)]
    assert [d.instance_id for d in drains] == drained
    for d in drains:
        assert d.reason.code is Code.CONSOLIDATION and d.reason["used"] < d.reason["below"]
        record = memory.instances[d.instance_id]
        assert record.lifecycle is Lifecycle.DRAINING and record.drain == "consolidation"
    assert not any(isinstance(a, Terminate) for a in plan.actions)


def test_not_due_yet_asks_to_be_woken_when_it_is():
    plan, _ = two_ticks([1, 3], (), 100)
    assert plan.next_check == T0 + AFTER


def test_idle_drains_are_told_apart_from_consolidation():
    plan, memory = two_ticks([0], (), AFTER, "elastiq.idle_timeout_max_s=600")
    (d,) = plan.actions
    assert isinstance(d, Drain) and d.reason.code is Code.IDLE
    assert memory.instances["i-1"].drain == "idle"


def test_consolidated_worker_ends_when_its_jobs_end_and_its_drain_is_cancelled_by_waiting_jobs():
    config = cfg()
    _, memory = two_ticks([1, 3])
    instances = [inst(1), inst(2)]
    # draining with its job still running: not terminated
    busy = [worker(1, claimed=1, draining=True), worker(2, claimed=3)]
    plan, kept = tick(snap((), busy, instances), memory, config, T0 + AFTER + 15)
    assert not plan.actions
    # jobs wait that the one accepting worker cannot take: the drain is cancelled first
    plan, _ = tick(snap(jobs(3), busy, instances), kept, config, T0 + AFTER + 30)
    assert [type(a) for a in plan.actions] == [CancelDrain]
    # no job waits and its job ended: terminated
    done = [worker(1, claimed=0, idle_since=T0 + AFTER + 20, draining=True), worker(2, claimed=3)]
    plan, _ = tick(snap((), done, instances), kept, config, T0 + AFTER + 30)
    assert [a.instance_ids for a in plan.actions if isinstance(a, Terminate)] == [("i-1",)]


def test_under_use_restarts_after_a_cancelled_drain():
    config = cfg()
    _, memory = two_ticks([1, 3])
    instances = [inst(1), inst(2)]
    accepting = [worker(1, claimed=1), worker(2, claimed=3)]
    # the pool shows the drain cancelled: under-use counts again from now
    t = T0 + AFTER + 60
    plan, memory = tick(snap((), accepting, instances), memory, config, t)
    assert not plan.actions and memory.instances["i-1"].underused_since == t
    plan, _ = tick(snap((), accepting, instances), memory, config, t + AFTER)
    assert [a.instance_id for a in plan.actions if isinstance(a, Drain)] == ["i-1"]


# -- the adaptive idle timeout (issue 15): a multiple of the measured boot-to-join time


@pytest.mark.parametrize("boots,extra,expected", [
    ([200.0], (), 1600.0),  # 8 x 200 s
    ([100.0, 200.0, 900.0], (), 1600.0),  # the median, not the mean
    ([100.0, 300.0], (), 1600.0),  # even count: mean of the middle two
    ([30.0], (), 600.0),  # never below idle_timeout_min_s
    ([1000.0], (), 3600.0),  # never above idle_timeout_max_s
    ([], (), 3600.0),  # nothing measured: the operator's maximum
    ([200.0], ("elastiq.idle_timeout_boot_factor=0",), 3600.0),  # off: fixed, as before
    ([30.0], ("elastiq.idle_timeout_max_s=300",), 300.0),  # a minimum above the maximum yields
    ([200.0], ("elastiq.idle_timeout_min_s=0", "elastiq.idle_timeout_boot_factor=2"), 400.0),
])
def test_idle_timeout_follows_the_measured_boot_to_join(boots, extra, expected):
    from elastiq.core.lifecycle import Fleet, Member
    from elastiq.config import params_of
    from elastiq.core.wanted import idle_timeout
    from elastiq.model import InstanceRecord

    members = tuple(Member(inst(i), InstanceRecord(Lifecycle.JOINED, 0.0, 100.0, 100.0 + b, f"w{i}"),
                           worker(i)) for i, b in enumerate(boots, 1))
    config = cfg("elastiq.idle_timeout_max_s=3600", *extra)
    assert idle_timeout(Fleet(members, {}), params_of(config).releasing)[0] == expected


def test_an_idle_worker_is_drained_after_the_adapted_timeout_not_the_hour():
    """Boot-to-join 200 s: released 1,600 s after its last job, not 3,600 s."""
    config = cfg("elastiq.idle_timeout_max_s=3600")
    record = InstanceRecord(Lifecycle.JOINED, 200.0, 0.0, 200.0, "w1", busy_at=1000.0)
    memory = CoreState(instances={"i-1": record})
    snapshot = snap((), [worker(1, idle_since=1000.0)], [inst(1)])
    plan, _ = tick(snapshot, memory, config, 2599.0)
    assert not plan.actions and plan.next_check == 2600.0
    plan, _ = tick(snapshot, memory, config, 2600.0)
    basis = Reason.of(Code.BOOT_TO_JOIN, factor=8, median=200, low=600, high=3600)
    assert [a.reason for a in plan.actions] == [
        Reason.of(Code.IDLE, idle=1600, timeout=1600, basis=basis)]
    # golden: the adaptive timeout's wording
    assert str(plan.actions[0].reason) == (
        "idle for 1600 s >= 1600 s (8 x median boot-to-join 200 s, within 600-3600 s)")
