"""The runtime's per-instance records (elastiq.core.records): one implementation for every policy."""
from __future__ import annotations

import pytest

from elastiq import config
from elastiq.core import get_policy, records
from elastiq.core.reasons import Code, Reason
from elastiq.model import (CancelDrain, Drain, Instance, InstanceRecord, InstanceState, Launch,
                           LaunchOutcome, Lifecycle, Memory, Plan, Pool, Queue, Snapshot,
                           Terminate, Worker)
from elastiq.sim import engine

CFG = config.load(None, ["elastiq.cluster_name=test"])
PARAMS = config.params_of(CFG)
NOW = 10_000.0
IDLE = Reason.of(Code.IDLE, idle=700.0, timeout=600.0, basis=Reason.of(Code.IDLE_TIMEOUT_MAX))
UNDER = Reason.of(Code.CONSOLIDATION, used=0.2, below=0.5, underused=900.0, jobs=1)


def rec(lifecycle, since=NOW - 100, joined_at=None, worker=None):
    return InstanceRecord(lifecycle, since, NOW - 900, joined_at, worker)


def test_undo_puts_back_the_records_the_tick_started_from():
    before = {"i-a": rec(Lifecycle.JOINED, worker="w-a")}
    after = {"i-a": rec(Lifecycle.DRAINING, since=NOW, worker="w-a"),
             "i-new": rec(Lifecycle.JOINED)}  # adopted this tick
    assert records.undo(after, before, ("i-a", "i-new")) == before


def test_a_drain_instead_of_a_terminate_is_recorded():
    kept = {"i-a": rec(Lifecycle.TERMINATING)}
    got = records.drained_instead(kept, "i-a", "w-a", NOW)["i-a"]
    assert (got.lifecycle, got.worker, got.since, got.joined_at) == (Lifecycle.DRAINING, "w-a", NOW, NOW)
    assert records.drained_instead(kept, "i-gone", "w", NOW) is kept


def test_join_delays_of_the_joined_and_the_awaited():
    kept = {"i-j": rec(Lifecycle.JOINED, joined_at=NOW - 600, worker="w-j"),
            "i-b": rec(Lifecycle.BOOTING)}
    assert records.join_delays(kept, ("i-j", "i-b", "i-forgotten")) == ((300.0,), ("i-b",))


def test_adopt_tracks_tagged_instances_and_reports_the_missing():
    listing = (Instance("i-ours", InstanceState.RUNNING, NOW - 60, "test"),
               Instance("i-theirs", InstanceState.RUNNING, NOW - 60, "other"))
    snapshot = Snapshot(None, Pool((Worker("w", "i-ours"),)), listing)
    kept, found = records.adopt({"i-old": rec(Lifecycle.JOINED)}, snapshot, PARAMS, NOW)
    assert found == records.Adoption(("i-ours",), ("i-old",), 0)
    assert set(kept) == {"i-ours"} and kept["i-ours"].worker == "w"


def test_launched_instances_are_requested_with_their_flavour():
    kept = records.launched({}, LaunchOutcome(2, ("i-1", "i-2"), flavour="big"), NOW)
    assert {i: (r.lifecycle, r.launched_at, r.flavour) for i, r in kept.items()} == {
        "i-1": (Lifecycle.REQUESTED, NOW, "big"), "i-2": (Lifecycle.REQUESTED, NOW, "big")}
    nothing = {}
    assert records.launched(nothing, LaunchOutcome(2, (), "quota"), NOW) is nothing


def test_the_plan_is_marked_in_the_records_with_the_code_of_each_drain():
    kept = {"i-1": rec(Lifecycle.JOINED, worker="w1"), "i-2": rec(Lifecycle.JOINED, worker="w2"),
            "i-3": rec(Lifecycle.DRAINING, worker="w3"), "i-4": rec(Lifecycle.ERROR)}
    plan = Plan((CancelDrain("w3", "i-3", Reason.of(Code.JOBS_WAITING, jobs=3)),
                 Launch(1, Reason.of(Code.MIN_VMS, alive=0, min_vms=1)),
                 Drain("w1", "i-1", IDLE), Drain("w2", "i-2", UNDER),
                 Terminate(("i-4",), Reason.of(Code.IN_ERROR))))
    marked = records.mark_plan(kept, plan, NOW)
    assert {i: (r.lifecycle, r.drain, r.since) for i, r in marked.items()} == {
        "i-1": (Lifecycle.DRAINING, "idle", NOW), "i-2": (Lifecycle.DRAINING, "consolidation", NOW),
        "i-3": (Lifecycle.JOINED, None, NOW), "i-4": (Lifecycle.TERMINATING, None, NOW)}
    assert kept["i-1"].lifecycle is Lifecycle.JOINED  # a copy: the records given are kept
    assert records.mark_plan(kept, Plan(plan.actions[1:2]), NOW) is kept


@pytest.mark.parametrize("name", ["default", "legacy"])
def test_without_a_cloud_listing_the_records_stay_and_the_policy_gets_no_fleet(name):
    policy = engine.policy_for(name, CFG)
    seen = []

    class Watching:
        def plan(self, snapshot, fleet, memory, params, now, catalogue=None):
            seen.append(fleet)
            return policy.plan(snapshot, fleet, memory, params, now, catalogue)

    kept = {"i-1": rec(Lifecycle.JOINED, worker="w1")}
    snapshot = Snapshot(Queue(), Pool(), None, ("cloud: timeout",))
    plan, after, _ = records.step(Watching(), snapshot, kept, policy.initial_memory(), PARAMS, NOW)
    assert seen == [None] and after is kept and plan.actions == ()


def test_a_step_tracks_the_listing_for_the_policy():
    listing = (Instance("i-1", InstanceState.RUNNING, NOW - 60, "test"),)
    snapshot = Snapshot(Queue(), Pool((Worker("w1", "i-1"),)), listing)
    plan, after, memory = records.step(get_policy("default"), snapshot,
                                       {"i-1": rec(Lifecycle.BOOTING)}, Memory(), PARAMS, NOW)
    assert after["i-1"].lifecycle is Lifecycle.JOINED and after["i-1"].joined_at == NOW
    assert memory == Memory() and plan.actions == ()
