"""The virtual-time engine end to end, with both policies, on small workloads."""
from __future__ import annotations

from dataclasses import replace

import pytest

from elastiq import config
from elastiq.sim.cloud import BootDelay
from elastiq.sim.peers import legacy
from elastiq.model import Launch, Plan
from elastiq.sim import engine, metrics
from elastiq.sim.workload import Workload, synthetic
from elastiq.core.reasons import Code, Reason

BUILTIN = ["quota.max_vms=10", "vm.cpus=4", "vm.memory_mb=8192", "elastiq.idle_timeout_max_s=600"]
COMPARED = ["jobs_completed", "vm_hours", "busy_vm_hours", "wait_mean_s", "wait_p95_s", "vms_peak",
            "launch_calls", "vms_launched", "vms_terminated", "jobs_killed"]


def cfg(*sets):
    return config.load(None, BUILTIN + list(sets))


def simulate(work=None, sets=(), **options):
    sim = engine.Simulation(work or synthetic(0), cfg(*sets), engine.SimOptions(**options))
    return sim, sim.run()


def alive(row):
    return sum(row[1:6])


@pytest.mark.parametrize("policy", ["default", "legacy"])
def test_builtin_workload_scales_up_and_down(policy):
    sim, r = simulate(policy=policy)
    assert set(metrics.REQUIRED_KEYS) <= set(r)
    assert r["jobs"] == r["jobs_completed"] == 118
    assert r["max_vms_violations"] == 0 and 0 < r["vms_peak"] <= 10
    assert r["vms_launched"] == r["vms_terminated"] and r["vms_alive_at_end"] == 0
    if policy == "default":
        assert r["jobs_killed"] == 0
    timeline = sim.recorder.timeline
    # scale-up in the first burst, back to zero in the gap (2 h), up again in the second burst
    before_gap = [row for row in timeline if row[0] <= 2.0]
    in_gap = [row for row in timeline if 2.0 < row[0] <= 2.4]
    assert max(alive(row) for row in timeline if row[0] < 1) >= 5
    assert alive(before_gap[-1]) == 0 and all(alive(row) == 0 for row in in_gap)
    assert max(alive(row) for row in timeline if row[0] > 2.5) >= 5
    assert r["stop_reason"] == "all jobs done and VMs back to min_vms"


@pytest.mark.parametrize("policy", ["default", "legacy"])
def test_metrics_are_consistent(policy):
    _, r = simulate(synthetic(3), policy=policy, error_share=0.1, never_join_share=0.1, seed=3)
    assert r["idle_vm_hours"] == pytest.approx(
        r["vm_hours"] - r["busy_vm_hours"] - r["booting_vm_hours"], abs=0.002)
    assert r["oracle_vm_hours"] <= r["busy_vm_hours"] <= r["vm_hours"]
    assert r["oracle_ratio"] == pytest.approx(r["vm_hours"] / r["oracle_vm_hours"], rel=1e-3)
    assert 0 < r["wait_mean_s"] <= r["wait_max_s"] and r["wait_p95_s"] <= r["wait_max_s"]
    assert r["launch_calls"] <= r["vms_launched"]
    assert r["plan_calls"] <= r["ticks"]
    # oracle: sum of cores x run time / 4 cpus per VM
    work = synthetic(3)
    assert r["oracle_vm_hours"] == pytest.approx(work.core_seconds() / 4 / 3600, abs=0.001)


@pytest.mark.parametrize("options", [
    {}, {"error_share": 0.2, "never_join_share": 0.2}, {"cloud_capacity": 6},
    {"boot_delay": BootDelay.parse("lognormal:200:0.6")},
])
def test_skipping_ticks_changes_nothing_for_the_default_policy(options):
    _, fast = simulate(synthetic(3), seed=1, **options)
    _, slow = simulate(synthetic(3), seed=1, every_tick=True, **options)
    assert {k: fast[k] for k in COMPARED} == {k: slow[k] for k in COMPARED}
    assert fast["ticks"] < slow["ticks"] / 2


def test_skipping_ticks_shifts_legacy_only_by_its_vm_check_cadence():
    _, fast = simulate(synthetic(3), policy="legacy")
    _, slow = simulate(synthetic(3), policy="legacy", every_tick=True)
    for key in ("jobs_completed", "jobs_killed"):
        assert fast[key] == slow[key]
    # its own check cadence is not in its Plan.next_check: a launch may move by a period too
    for key in ("launch_calls", "vms_launched"):
        assert abs(fast[key] - slow[key]) <= 1
    # each idle termination can move by one 45 s VM check
    assert abs(fast["vm_hours"] - slow["vm_hours"]) <= fast["vms_launched"] * 45 / 3600


def one_job_then(second_at=None):
    work = Workload("race")
    work.add("a", 0.0, 60.0, 1, 1024)
    if second_at is not None:
        work.add("b", second_at, 60.0, 1, 1024)
    return work


def test_look_before_terminate_saves_the_job_legacy_would_kill():
    sets = ("quota.max_vms=1", "elastiq.idle_timeout_max_s=300")
    sim, _ = simulate(one_job_then(), sets, policy="legacy", boot_delay=BootDelay.parse("fixed:60"))
    (vm,) = sim.cloud.vms.values()
    killed_at = vm.terminated_at - engine.EPOCH  # the tick legacy terminated the idle host
    # a job submitted just before that tick: observed idle, matched before the terminate; the
    # daemon's actuator looks at the pool first and drains the host instead (the original
    # elastiq killed the job here)
    sim, r = simulate(one_job_then(killed_at - 5), sets, policy="legacy",
                      boot_delay=BootDelay.parse("fixed:60"))
    assert r["jobs_killed"] == 0 and r["jobs_completed"] == 2
    assert sim.pool.kills == [0, 0]
    assert any(d.text.startswith("terminate i-sim000001 held back: its worker")
               for d in sim.runtime.state.decisions)
    _, r = simulate(one_job_then(killed_at - 5), sets, policy="default",
                    boot_delay=BootDelay.parse("fixed:60"))
    assert r["jobs_killed"] == 0 and r["jobs_completed"] == 2


def test_default_is_fail_safe_with_unreadable_observations():
    _, r = simulate(queue_failure=0.3, pool_failure=0.3, list_failure=0.3, seed=2)
    assert r["ticks_with_unreadable_observation"] > 20
    assert r["jobs_completed"] == r["jobs"] and r["jobs_killed"] == 0
    assert r["max_vms_violations"] == 0 and r["vms_alive_at_end"] == 0


@pytest.mark.parametrize("policy", ["default", "legacy"])
def test_cloud_capacity_below_max_vms(policy):
    _, r = simulate(policy=policy, cloud_capacity=4)
    assert r["vms_peak"] == 4 and r["jobs_completed"] == r["jobs"]
    assert r["launch_calls"] > r["vms_launched"] / 4  # refused calls are counted too


def test_jobs_larger_than_a_vm_are_left_out_and_counted():
    work = synthetic(0)
    _, r = simulate(work, ["vm.cpus=2", "vm.memory_mb=4096"])
    assert r["jobs_unmatchable"] == work.cpus.count(4)
    assert r["jobs"] == len(work) - r["jobs_unmatchable"] == r["jobs_completed"]


@pytest.mark.parametrize("policy", ["default", "legacy"])
def test_a_pool_that_cannot_grow_stops_instead_of_spinning(policy):
    _, r = simulate(policy=policy, sets=["quota.max_vms=0"])
    assert r["jobs_completed"] == 0 and r["vms_launched"] == 0
    assert r["stop_reason"] in ("nothing left that could change", "no job could start for 24 h")


def test_engine_calls_the_policy_like_the_daemon():
    calls = []

    def plan(snapshot, fleet, memory, params, now, catalogue):
        calls.append(("plan", now, snapshot.complete))
        return legacy.plan(snapshot, memory, sim.config, now, catalogue)

    def record_launch(memory, outcome, params, now):
        calls.append(("record_launch", now, outcome))
        return legacy.record_launch(memory, outcome, sim.config, now)

    sim = engine.Simulation(synthetic(0), cfg(), engine.SimOptions(policy="legacy", cloud_capacity=3))
    sim.runtime.policy.plan, sim.runtime.policy.record_launch = plan, record_launch
    sim.run()
    outcomes = [c[2] for c in calls if c[0] == "record_launch"]
    granted = [i for o in outcomes for i in o.granted]
    assert granted == list(sim.cloud.vms)  # every id the cloud granted, in order
    assert any(o.error == "quota" and not o.granted for o in outcomes)
    for n, call in enumerate(calls):
        if call[0] == "record_launch":  # right after the plan of the same tick
            previous_plan = [c for c in calls[:n] if c[0] == "plan"][-1]
            assert previous_plan[1] == call[1]
    times = [c[1] for c in calls if c[0] == "plan"]
    assert times == sorted(times) and len(set(times)) == len(times)
    # at the daemon scheduler's moments: its checks (15, 20, 45 s) and wake-ups (5 s after acting)
    assert all((t - engine.EPOCH) % 5 == 0 for t in times)


def test_progress_is_reported():
    seen = []
    engine.Simulation(synthetic(0), cfg(), engine.SimOptions(progress=seen.append)).run()
    assert seen and seen == sorted(seen) and all(0 <= f <= 1 for f in seen)


def test_a_policy_that_overshoots_max_vms_is_caught():
    def plan(snapshot, fleet, memory, params, now, catalogue):
        if memory == "fresh":
            return Plan((Launch(12, Reason.of(Code.MIN_VMS, alive=0, min_vms=12)),)), "launched"
        return Plan(), memory

    sim = engine.Simulation(synthetic(0), cfg(), engine.SimOptions(policy="legacy"))
    sim.runtime.policy.plan, sim.runtime.policy.record_launch = plan, lambda m, o, c, n: m
    sim.runtime.state = replace(sim.runtime.state, memory="fresh")
    r = sim.run()
    assert r["vms_peak"] == 12 and r["max_vms_violations"] > 0
    assert r["vms_alive_at_end"] == 12 and r["jobs_completed"] == r["jobs"]
    assert r["stop_reason"] == "nothing left that could change"
