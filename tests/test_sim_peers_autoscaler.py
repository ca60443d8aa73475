"""The cluster-autoscaler policy: scale-up by bin packing, scale-down timing, in virtual time."""
from __future__ import annotations

from elastiq import config
from elastiq.sim.cloud import BootDelay
from elastiq.model import Drain, Instance, InstanceState, Job, Launch, Pool, Queue, Snapshot, Terminate, Worker
from elastiq.sim import engine
from elastiq.sim.peers.autoscaler import AutoscalerMemory, AutoscalerPolicy
from elastiq.sim.workload import Workload

R = InstanceState.RUNNING


def cfg(*sets):
    return config.load(None, ["vm.cpus=4", "vm.memory_mb=8192", "quota.max_vms=10"] + list(sets))


def worker(i, jobs=0, draining=False):
    """A 4-cpu / 8 GiB worker running ``jobs`` jobs of 1 cpu / 1 GiB."""
    return Worker(f"w{i}", f"i-{i}", cpus=4, memory_mb=8192, running_jobs=jobs, free_cpus=4 - jobs,
                  free_memory_mb=8192 - 1024 * jobs, draining=draining)


def snap(workers, idle=0, extra=()):
    ids = [w.instance_id for w in workers] + list(extra)
    return Snapshot(Queue(tuple(Job(f"j{n}") for n in range(idle))), Pool(tuple(workers)),
                    tuple(Instance(i, R, 0.0, "elastiq") for i in ids))


def drained(plan):
    return [a.instance_id for a in plan.actions if isinstance(a, Drain)]


def terminated(plan):
    return [i for a in plan.actions if isinstance(a, Terminate) for i in a.instance_ids]


def test_pending_jobs_launch_at_once_by_bin_packing_after_free_room_and_upcoming_nodes():
    policy, c = AutoscalerPolicy(), cfg()
    # 3 free cpus on w0, one VM booting (4 more): 14 pending jobs -> 7 uncovered -> 2 new VMs
    plan, _ = policy.plan(snap([worker(0, 1)], idle=14, extra=["i-9"]), None, AutoscalerMemory(), c, 0.0)
    assert [a.count for a in plan.actions if isinstance(a, Launch)] == [2]
    plan, _ = policy.plan(snap([worker(0, 1)], idle=3), None, AutoscalerMemory(), c, 0.0)
    assert not plan.actions  # they fit the free room: no scale-up


def test_scale_up_stays_within_max_vms():
    plan, _ = AutoscalerPolicy().plan(snap([worker(0, 4)], idle=100), None, AutoscalerMemory(), cfg("quota.max_vms=3"), 0.0)
    assert [a.count for a in plan.actions if isinstance(a, Launch)] == [2]


def test_unneeded_for_ten_minutes_then_drained_then_terminated_when_empty():
    policy, c = AutoscalerPolicy(), cfg()
    busy, light = worker(0, 3), worker(1, 1)  # utilization 0.75 and 0.25; w1's job fits on w0
    m = policy.initial_memory()
    plan, m = policy.plan(snap([busy, light]), None, m, c, 100.0)
    assert m.unneeded == {"i-1": 100.0} and plan.next_check == 700.0
    plan, m = policy.plan(snap([busy, light]), None, m, c, 699.0)
    assert not plan.actions
    plan, m = policy.plan(snap([busy, light]), None, m, c, 700.0)
    assert drained(plan) == ["i-1"] and not terminated(plan)  # drained, never killed
    plan, m = policy.plan(snap([busy, worker(1, 1, draining=True)]), None, m, c, 715.0)
    assert not plan.actions  # its job still runs
    plan, m = policy.plan(snap([busy, worker(1, 0, draining=True)]), None, m, c, 730.0)
    assert terminated(plan) == ["i-1"]


def test_busy_node_resets_the_unneeded_timer_and_jobs_that_fit_nowhere_keep_a_node():
    policy, c = AutoscalerPolicy(), cfg()
    _, m = policy.plan(snap([worker(0, 4), worker(1, 1)]), None, policy.initial_memory(), c, 0.0)
    assert m.unneeded == {}  # w1's job would fit nowhere else
    _, m = policy.plan(snap([worker(0, 3), worker(1, 1)]), None, m, c, 100.0)
    assert m.unneeded == {"i-1": 100.0}
    _, m = policy.plan(snap([worker(0, 3), worker(1, 2)]), None, m, c, 200.0)
    assert m.unneeded == {}
    _, m = policy.plan(snap([worker(0, 3), worker(1, 1)]), None, m, c, 300.0)
    assert m.unneeded == {"i-1": 300.0}


def test_no_scale_down_within_ten_minutes_of_a_scale_up():
    policy, c = AutoscalerPolicy(), cfg()
    m = AutoscalerMemory(last_scale_up=500.0, unneeded={"i-1": 0.0})
    plan, m = policy.plan(snap([worker(0, 2), worker(1, 0)]), None, m, c, 600.0)
    assert not drained(plan) and plan.next_check == 1100.0 and m.unneeded == {"i-1": 0.0}
    plan, m = policy.plan(snap([worker(0, 2), worker(1, 0)]), None, m, c, 1100.0)
    assert drained(plan) == ["i-1"]


def test_one_non_empty_node_at_a_time_and_never_below_min_vms():
    policy, c = AutoscalerPolicy(), cfg()
    workers = [worker(0, 1), worker(1, 1), worker(2, 0), worker(3, 0)]
    m = AutoscalerMemory(unneeded={f"i-{i}": 0.0 for i in range(4)})
    plan, m = policy.plan(snap(workers), None, m, c, 600.0)
    assert drained(plan) == ["i-2", "i-3", "i-0"]  # the empty ones in bulk, one busy one
    plan, _ = policy.plan(snap(workers), None, AutoscalerMemory(unneeded={f"i-{i}": 0.0 for i in range(4)}),
                          cfg("quota.min_vms=3"), 600.0)
    assert drained(plan) == ["i-2"]


def test_replay_of_a_small_workload_scales_down_at_the_documented_times():
    """Four 1-hour jobs and four 10-minute jobs at t=0 on 4-cpu VMs booting in 120 s: two VMs;
    the second empties at 720 s, is unneeded from then, drained at 1320 s and terminated at the
    daemon's follow-up tick (``recheck_after_action_s`` after acting); the first, drained at 3720 + 600 s."""
    work = Workload("hand-made")
    for n in range(8):
        work.add(f"j{n}", 0.0, 3600.0 if n < 4 else 600.0, 1, 1024)
    seen = []
    options = engine.SimOptions(policy="autoscaler", boot_delay=BootDelay("fixed", 120.0, 120.0),
                                on_decision=lambda t, plan: seen.extend((t, a) for a in plan.actions))
    r = engine.Simulation(work, cfg(), options).run()
    assert r["jobs_completed"] == 8 and r["jobs_killed"] == 0 and r["vms_launched"] == 2
    assert [(t, type(a).__name__, getattr(a, "instance_id", None) or a.instance_ids[0])
            for t, a in seen if not isinstance(a, Launch)] == [
        (1320.0, "Drain", "i-sim000002"), (1325.0, "Terminate", "i-sim000002"),
        (4320.0, "Drain", "i-sim000001"), (4325.0, "Terminate", "i-sim000001")]
