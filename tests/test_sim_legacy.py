"""The legacy baseline (the original elastiq's algorithm), called directly with hand-made snapshots."""
from __future__ import annotations

from dataclasses import replace

import pytest

from elastiq import config
from elastiq.sim.engine import get_policy
from elastiq.sim.peers import legacy
from elastiq.model import (
    Instance, InstanceState, Job, Launch, LaunchOutcome, Pool, Queue, Snapshot, Terminate, Worker,
)
from elastiq.core.reasons import Reason
from elastiq.sim.peers.views import LegacyCode

R, B, E = InstanceState.RUNNING, InstanceState.BOOTING, InstanceState.ERROR


def cfg(*sets):
    base = ["vm.cpus=4", "quota.max_vms=10", "elastiq.idle_timeout_max_s=600"]
    return config.load(None, base + list(sets))


def snap(idle=0, instances=(), workers=(), queue=True, pool=True, listing=True):
    return Snapshot(
        Queue(tuple(Job(f"j{n}") for n in range(idle))) if queue else None,
        Pool(tuple(workers)) if pool else None,
        tuple(instances) if listing else None,
    )


def vm(i, state=R, cluster="elastiq"):
    return Instance(f"i-{i}", state, 0.0, cluster)


def worker(i, jobs=0):
    return Worker(f"w{i}", f"i-{i}", cpus=4, running_jobs=jobs, free_cpus=4 - jobs)


def launches(plan):
    return [a.count for a in plan.actions if isinstance(a, Launch)]


def terminated(plan):
    return sorted(i for a in plan.actions if isinstance(a, Terminate) for i in a.instance_ids)


def run(snapshots, c, memory=None, start=1000.0, step=15.0):
    """Call plan() at start, start+step, ... and return the list of (plan, memory)."""
    memory = memory or legacy.initial_memory()
    out = []
    for n, s in enumerate(snapshots):
        plan, memory = legacy.plan(s, memory, c, start + n * step)
        out.append((plan, memory))
    return out


def test_registered_as_the_legacy_baseline():
    policy = get_policy("legacy")
    assert policy.name == "legacy"
    assert policy.initial_memory(seed=7) == legacy.initial_memory(7)  # the seed reaches its rng
    plan, memory = policy.plan(snap(idle=5), None, policy.initial_memory(), cfg(), 0.0)
    assert (plan, memory) == legacy.plan(snap(idle=5), legacy.initial_memory(), cfg(), 0.0)


def test_threshold_must_be_held_longer_than_waiting_time():
    c = cfg()  # threshold 0, 40 s
    steps = run([snap(idle=5)] * 4, c)
    assert [launches(p) for p, _ in steps] == [[], [], [], [2]]  # at +45 s, ceil(5/4)
    assert steps[0][1].first_seen_above_threshold == 1000.0
    # the wake-up is the queue check that launches (strictly more than 40 s: not at +40 s)
    assert steps[0][0].next_check == 1045.0
    assert steps[3][1].first_seen_above_threshold is None  # reset after launching


def test_threshold_is_strict_on_time_and_count():
    c = cfg("elastiq.waiting_jobs_threshold=4")
    _, m = legacy.plan(snap(idle=5), legacy.initial_memory(), c, 0.0)
    plan, _ = legacy.plan(snap(idle=5), m, c, 40.0)
    assert launches(plan) == []  # held exactly 40 s: not more than 40 s
    plan, _ = legacy.plan(snap(idle=5), m, c, 40.5)
    assert launches(plan) == [2]
    plan, m2 = legacy.plan(snap(idle=4), m, c, 60.0)
    assert launches(plan) == [] and m2.first_seen_above_threshold is None


def test_dropping_below_resets_the_timer():
    c = cfg()
    steps = run([snap(idle=3), snap(idle=3), snap(idle=0), snap(idle=3), snap(idle=3), snap(idle=3)], c)
    assert all(launches(p) == [] for p, _ in steps)
    assert steps[3][1].first_seen_above_threshold == 1045.0


@pytest.mark.parametrize("idle, per_vm_set, expected", [
    (9, [], [3]),  # n_jobs_per_vm 0 -> vm.cpus 4: ceil(9/4)
    (9, ["elastiq.n_jobs_per_vm=2"], [5]),
    (1, [], [1]),
    (100, [], [10]),  # capped by max_vms
])
def test_sizing_is_ceil_of_waiting_over_jobs_per_vm(idle, per_vm_set, expected):
    c = cfg(*per_vm_set)
    m = replace(legacy.initial_memory(), first_seen_above_threshold=0.0)
    plan, _ = legacy.plan(snap(idle=idle), m, c, 100.0)
    assert launches(plan) == expected


def test_allegedly_running_vms_correct_the_waiting_jobs():
    c = cfg()
    m = replace(legacy.initial_memory(), first_seen_above_threshold=0.0, vms_allegedly_running=1,
                deadlines=((5000.0, "i-1"),))
    plan, _ = legacy.plan(snap(idle=9, instances=[vm(1, B)]), m, c, 100.0)
    assert launches(plan) == [2]  # 9 - 1*4 = 5 -> ceil(5/4)
    m2 = replace(m, vms_allegedly_running=3)
    plan, m3 = legacy.plan(snap(idle=9, instances=[vm(1, B)]), m2, c, 100.0)
    assert launches(plan) == [] and m3.first_seen_above_threshold is None  # 9 - 12 < 0


def test_max_vms_cap_counts_all_our_alive_instances_only():
    c = cfg("quota.max_vms=5")
    m = replace(legacy.initial_memory(), first_seen_above_threshold=0.0)
    ours = [vm(1, R), vm(2, B), vm(3, E), vm(4, InstanceState.GONE), vm(5, InstanceState.SHUTTING_DOWN)]
    foreign = [vm(9, R, cluster="other"), vm(8, R, cluster=None)]
    plan, _ = legacy.plan(snap(idle=40, instances=ours + foreign), m, c, 100.0)
    # 3 alive of ours (running, booting, error -- the error one is replaced by the error
    # check first, which launches 1 and terminates it): 5 - 3 + 1 terminated - 1 replaced = 2
    assert terminated(plan) == ["i-3"]
    assert launches(plan) == [1, 2]
    plan, _ = legacy.plan(snap(idle=40, instances=ours[:2] + foreign, listing=True), m, c, 100.0)
    assert launches(plan) == [3]
    full = [vm(n) for n in range(5)]
    plan, _ = legacy.plan(snap(idle=40, instances=full), m, c, 100.0)
    assert launches(plan) == [] and LegacyCode.OVER_QUOTA in [n.code for n in plan.notes]


def test_no_launch_without_a_listing_of_instances():
    m = replace(legacy.initial_memory(), first_seen_above_threshold=0.0)
    plan, m2 = legacy.plan(snap(idle=8, listing=False), m, cfg(), 100.0)
    assert launches(plan) == [] and m2.first_seen_above_threshold is None
    assert LegacyCode.NO_LISTING in [n.code for n in plan.notes]


def test_record_launch_counts_granted_vms_and_schedules_their_deadline():
    c = cfg("elastiq.estimated_vm_deploy_time_s=600")
    m = legacy.record_launch(legacy.initial_memory(), LaunchOutcome(3, ("i-1", "i-2")), c, 50.0)
    assert m.vms_allegedly_running == 2 and m.deadlines == ((650.0, "i-1"), (650.0, "i-2"))
    failed = legacy.record_launch(m, LaunchOutcome(2, (), "quota"), c, 60.0)
    assert failed == m


def test_deploy_deadline_decrements_and_terminates_vms_that_did_not_join():
    c = cfg()
    m = legacy.initial_memory()
    m = legacy.record_launch(m, LaunchOutcome(2, ("i-1", "i-2")), c, 0.0)
    # first VM check at 0 s sees no host; at 550 s, i-1 joined
    _, m = legacy.plan(snap(instances=[vm(1, B), vm(2, B)]), m, c, 0.0)
    _, m = legacy.plan(snap(instances=[vm(1), vm(2)], workers=[worker(1)]), m, c, 550.0)
    plan, m = legacy.plan(snap(instances=[vm(1), vm(2)], workers=[worker(1)]), m, c, 599.0)
    assert plan.next_check == 600.0 and terminated(plan) == []
    plan, m = legacy.plan(snap(instances=[vm(1), vm(2)], workers=[worker(1)]), m, c, 600.0)
    assert terminated(plan) == ["i-2"]
    assert m.vms_allegedly_running == 0 and m.deadlines == ()


def test_wake_ups_fall_on_the_queue_checks_from_the_first_call():
    c = cfg("elastiq.estimated_vm_deploy_time_s=600")  # queue checks every 15 s
    _, m = legacy.plan(snap(instances=[vm(1, B)]), legacy.initial_memory(), c, 1000.0)
    assert m.queue_checks_from == 1000.0
    # launched at a follow-up tick 7 s after a queue check: its deadline at 1607 s is looked at
    # by the queue check at 1615 s, as the original's loop did
    m = legacy.record_launch(m, LaunchOutcome(1, ("i-1",)), c, 1007.0)
    plan, m = legacy.plan(snap(instances=[vm(1, B)]), m, c, 1007.0)
    assert m.deadlines == ((1607.0, "i-1"),) and plan.next_check == 1615.0
    assert m.queue_checks_from == 1000.0  # kept


def test_deadline_check_uses_hosts_of_the_last_vm_check():
    # the original looked at the cached worker list: a VM that joined after the last VM check
    # is terminated although it is in the pool now
    c = cfg("elastiq.legacy_check_vms_every_s=45")
    m = legacy.record_launch(legacy.initial_memory(), LaunchOutcome(1, ("i-1",)), c, 0.0)
    _, m = legacy.plan(snap(instances=[vm(1, B)]), m, c, 570.0)  # VM check: no host yet
    plan, m = legacy.plan(snap(instances=[vm(1)], workers=[worker(1)]), m, c, 600.0)
    assert terminated(plan) == ["i-1"]


def idle_hosts_memory(n, since=0.0, **kw):
    hosts = {f"w{i}": legacy.HostStatus(f"i-{i}", 0, since) for i in range(n)}
    return replace(legacy.initial_memory(), hosts=hosts, **kw)


def test_idle_hosts_terminated_directly_honouring_min_vms():
    c = cfg("quota.min_vms=2")
    m = idle_hosts_memory(5)
    s = snap(instances=[vm(i) for i in range(5)], workers=[worker(i) for i in range(5)])
    plan, m2 = legacy.plan(s, m, c, 600.0)
    assert terminated(plan) == []  # idle exactly 600 s: not more
    plan, m2 = legacy.plan(s, m, c, 601.0)
    assert len(terminated(plan)) == 3 and not any(a for a in plan.actions if isinstance(a, Launch))
    assert all(h.unchanged_since == 601.0 for h in m2.hosts.values())  # timers reset
    assert m2.next_vms_check == 646.0


def test_idle_termination_order_is_random_but_seeded():
    c = cfg("quota.min_vms=3")
    s = snap(instances=[vm(i) for i in range(6)], workers=[worker(i) for i in range(6)])
    picks = set()
    for seed in range(8):
        plan, m = legacy.plan(s, idle_hosts_memory(6, rng_state=seed), c, 700.0)
        again, _ = legacy.plan(s, idle_hosts_memory(6, rng_state=seed), c, 700.0)
        assert terminated(plan) == terminated(again) and len(terminated(plan)) == 3
        assert m.rng_state != seed
        picks.add(tuple(terminated(plan)))
    assert len(picks) > 1


def test_busy_and_recently_changed_hosts_are_kept():
    c = cfg()
    m = idle_hosts_memory(3)
    s = snap(instances=[vm(i) for i in range(3)],
             workers=[worker(0), worker(1, jobs=2), worker(2)])
    m = replace(m, hosts={**m.hosts, "w2": legacy.HostStatus("i-2", 1, 0.0)})  # had a job
    plan, m2 = legacy.plan(s, m, c, 700.0)
    assert terminated(plan) == ["i-0"]
    assert m2.hosts["w1"] == legacy.HostStatus("i-1", 2, 700.0)
    assert m2.hosts["w2"] == legacy.HostStatus("i-2", 0, 700.0)


def test_scale_down_decrements_allegedly_running_too():
    c = cfg()
    m = idle_hosts_memory(2, vms_allegedly_running=3)
    s = snap(instances=[vm(0), vm(1)], workers=[worker(0), worker(1)])
    _, m2 = legacy.plan(s, m, c, 700.0)
    assert m2.vms_allegedly_running == 1


def test_a_host_drained_instead_is_terminated_at_the_next_vm_check_without_a_job():
    c = cfg("elastiq.legacy_check_vms_every_s=45")  # idle_timeout_max_s 600
    m = idle_hosts_memory(2, vms_allegedly_running=3)
    s = snap(instances=[vm(0), vm(1)], workers=[worker(0), worker(1)])
    plan, m = legacy.plan(s, m, c, 700.0)
    assert terminated(plan) == ["i-0", "i-1"] and m.vms_allegedly_running == 1
    # the daemon found a job matched on w1 since the observation and drained it instead
    m = get_policy("legacy").drained_instead(m, "i-1", 700.0)
    busy = snap(instances=[vm(1)], workers=[worker(1, jobs=1)])
    plan, m = legacy.plan(busy, m, c, 745.0)
    assert terminated(plan) == [] and m.drained == {"i-1"}  # the job runs: kept
    done = snap(instances=[vm(1)], workers=[worker(1)])
    plan, m = legacy.plan(done, m, c, 760.0)
    assert plan.next_check == 790.0  # the next VM check, not 600 s after the job ended
    plan, m = legacy.plan(done, m, c, 790.0)
    assert terminated(plan) == ["i-1"]
    assert m.vms_allegedly_running == 1  # counted off once, when first picked
    _, m = legacy.plan(snap(), m, c, 805.0)
    assert m.drained == frozenset()  # gone from the listing: forgotten


def test_vm_check_has_its_own_cadence():
    c = cfg("elastiq.legacy_check_vms_every_s=45")
    s = snap(instances=[vm(0)], workers=[worker(0)])
    _, m = legacy.plan(s, legacy.initial_memory(), c, 0.0)
    assert m.hosts["w0"].unchanged_since == 0.0 and m.next_vms_check == 45.0
    busy = snap(instances=[vm(0)], workers=[worker(0, jobs=1)])
    plan, m = legacy.plan(busy, m, c, 15.0)
    assert m.hosts["w0"].jobs == 0  # not checked yet
    assert plan.next_check == 45.0  # the next VM check will see the change
    _, m = legacy.plan(busy, m, c, 45.0)
    assert m.hosts["w0"] == legacy.HostStatus("i-0", 1, 45.0) and m.next_vms_check == 90.0


def test_unreadable_pool_skips_the_vm_check_and_retries():
    c = cfg()
    m = idle_hosts_memory(1)
    plan, m2 = legacy.plan(snap(instances=[vm(0)], pool=False), m, c, 5000.0)
    assert terminated(plan) == [] and m2.hosts == m.hosts and m2.next_vms_check is None
    assert plan.next_check == 5015.0


def test_unreadable_queue_launches_nothing():
    m = replace(legacy.initial_memory(), first_seen_above_threshold=0.0)
    plan, m2 = legacy.plan(snap(queue=False), m, cfg(), 100.0)
    assert launches(plan) == [] and m2.first_seen_above_threshold == 0.0
    assert Reason.of(LegacyCode.NO_QUEUE) in plan.notes


def test_error_instances_terminated_and_replaced():
    c = cfg()
    m = replace(legacy.initial_memory(), vms_allegedly_running=2,
                deadlines=((900.0, "i-1"), (900.0, "i-2")))
    plan, m2 = legacy.plan(snap(instances=[vm(1, E), vm(2, B)]), m, c, 100.0)
    assert terminated(plan) == ["i-1"] and launches(plan) == [1]
    assert m2.vms_allegedly_running == 1 and m2.deadlines == ((900.0, "i-2"),)
    assert m2.next_error_check == 120.0


def test_min_vms_launch_counts_joined_and_allegedly_running():
    c = cfg("quota.min_vms=3")
    s = snap(instances=[vm(0), vm(1, B)], workers=[worker(0, jobs=1)])
    plan, _ = legacy.plan(s, legacy.initial_memory(), c, 0.0)
    assert launches(plan) == [2]  # 3 - 1 joined - 0 allegedly (the booting one is not counted)
    m = replace(legacy.initial_memory(), vms_allegedly_running=1, deadlines=((500.0, "i-1"),))
    plan, _ = legacy.plan(s, m, c, 0.0)
    assert launches(plan) == [1]


def test_plan_is_pure():
    c = cfg()
    m = idle_hosts_memory(2, first_seen_above_threshold=0.0)
    s = snap(idle=6, instances=[vm(0), vm(1)], workers=[worker(0), worker(1)])
    first = legacy.plan(s, m, c, 700.0)
    second = legacy.plan(s, m, c, 700.0)
    assert first == second
    assert m == idle_hosts_memory(2, first_seen_above_threshold=0.0)
