"""The COBalD policy: cobald's own controllers over drones that obey COBalD's Pool contract."""
from __future__ import annotations

import pytest

pytest.importorskip("cobald")

from cobald.composite.factory import FactoryPool  # noqa: E402

from elastiq import config  # noqa: E402
from elastiq.model import (  # noqa: E402
    Drain, Instance, InstanceState, Launch, Pool, Queue, Snapshot, Terminate, Worker,
)
from elastiq.sim import engine  # noqa: E402
from elastiq.sim.peers.cobald_pool import CobaldMemory, CobaldPolicy, Drone  # noqa: E402

R, B = InstanceState.RUNNING, InstanceState.BOOTING
TICK = 15.0  # check_queue_every_s
RATE = 4 / 8  # cores per second for 4-cpu VMs


def cfg(*sets):
    return config.load(None, ["vm.cpus=4", "vm.memory_mb=8192", "quota.max_vms=10"] + list(sets))


def worker(i, used=0.0, draining=False, jobs=None):
    """A 100-cpu / 100 MiB worker whose cpu and memory ratios both equal ``used``."""
    taken = round(used * 100)
    return Worker(f"w{i}", f"i-{i}", cpus=100, memory_mb=100, free_cpus=100 - taken,
                  free_memory_mb=100 - taken, draining=draining,
                  running_jobs=taken if jobs is None else jobs)


def snap(instances, workers):
    return Snapshot(Queue(), Pool(tuple(workers)), tuple(Instance(f"i-{i}", s, 0.0, "elastiq") for i, s in instances))


def regulate(kind, used, demand, n=1):
    """One plan() of ``n`` available drones at ratio ``used``; the demand it leaves."""
    snapshot = snap([(i, R) for i in range(n)], [worker(i, used) for i in range(n)])
    memory = CobaldMemory(demand=demand, regulated_at=1000.0 - TICK)
    _, new = CobaldPolicy(kind).plan(snapshot, None, memory, cfg(), 1000.0)
    return new.demand


def test_drone_reports_supply_utilisation_and_allocation_as_tardis():
    available = Drone("i-1", 4, Worker("w", "i-1", cpus=4, memory_mb=8192, free_cpus=2, free_memory_mb=6144,
                                       running_jobs=2))
    assert (available.supply, available.demand) == (4.0, 4.0)
    assert (available.utilisation, available.allocation) == (0.25, 0.5)  # min / max of cpu, memory
    for silent in (Drone("i-2", 4), Drone("i-3", 4, worker(3, 0.5, draining=True))):
        assert silent.supply == 0.0 and silent.demand == 4.0  # booting or draining: no supply
    available.demand = 0
    assert available.demand == 0


def test_factory_of_drones_without_supply_reports_full_utilisation():
    factory = FactoryPool(Drone("i-1", 4), factory=lambda: Drone(None, 4))
    assert (factory.supply, factory.utilisation, factory.allocation) == (0, 1.0, 1.0)
    factory = FactoryPool(Drone("i-1", 4, worker(1, 0.2)), Drone("i-2", 4, worker(2, 0.6), rank=1),
                          factory=lambda: Drone(None, 4))
    assert factory.supply == 8 and factory.utilisation == pytest.approx(0.4)


# The expectations of cobald's own tests (cobald_tests/controller/test_linear.py and
# test_relative_supply.py), with the ratios coming from the simulated pool.
@pytest.mark.parametrize("used, change", [
    (1.0, +1), (0.0, -1), (0.5, 0), (0.49, -1), (0.51, +1),
])
def test_linear_controller_moves_demand_by_rate_times_interval(used, change):
    assert regulate("linear", used, demand=20.0) == pytest.approx(20.0 + change * RATE * TICK)


@pytest.mark.parametrize("used, scale", [(1.0, 1.1), (0.1, 0.9), (0.5, 1.0)])
def test_relative_supply_controller_sets_demand_relative_to_supply(used, scale):
    assert regulate("relative", used, demand=5.0, n=3) == pytest.approx(12 * scale)


def test_limiter_and_quota_clamp_the_demand():
    assert regulate("linear", 0.0, demand=2.0) == 1.0  # TARDIS's Limiter minimum: 1 core
    assert regulate("linear", 1.0, demand=39.0) == 40.0  # quota: max_vms 10 x 4 cores


def test_interval_is_the_time_since_the_last_regulation_at_most_one_tick():
    policy, snapshot = CobaldPolicy(), snap([(0, R)], [worker(0, 1.0)])
    _, m = policy.plan(snapshot, None, CobaldMemory(demand=10.0, regulated_at=995.0), cfg(), 1000.0)
    assert m.demand == 10.0 + RATE * 5
    _, m = policy.plan(snapshot, None, CobaldMemory(demand=10.0, regulated_at=0.0), cfg(), 1000.0)
    assert m.demand == 10.0 + RATE * TICK  # the engine skipped ticks at a fixed point


def test_demand_above_the_drones_launches_new_drones():
    plan, m = CobaldPolicy().plan(snap([(0, R)], [worker(0, 1.0)]), None, CobaldMemory(demand=12.0), cfg(), 0.0)
    assert plan.of(Launch)[0].count == 4  # 19.5 cores wanted, 4 held: ceil(15.5 / 4)
    assert plan.next_check == TICK


def test_released_drones_drain_least_used_first_and_stop_only_when_drained():
    policy, c = CobaldPolicy(), cfg()
    instances = [(0, R), (1, R), (2, B)]
    busy, idle = worker(0, 0.4, jobs=2), worker(1, 0.0)
    plan, m = policy.plan(snap(instances, [busy, idle]), None, CobaldMemory(demand=10.0), c, 0.0)
    # demand 2.5 < supply 8: 9.5 cores too many; the idle and the booting drones (supply x
    # utilisation 0) go, the busy one stays
    assert plan.of(Terminate)[0].instance_ids == ("i-2",)
    assert [(d.worker, d.instance_id) for d in plan.of(Drain)] == [("w1", "i-1")]
    assert m.released == m.draining == frozenset({"i-1"})

    draining = worker(1, 0.3, draining=True, jobs=1)  # a job was matched before the drain
    plan, m = policy.plan(snap(instances[:2], [busy, draining]), None, m, c, TICK)
    assert not plan.of(Terminate) and not plan.of(Drain)  # never kill it: wait
    drained = worker(1, 0.0, draining=True)
    plan, m = policy.plan(snap(instances[:2], [busy, drained]), None, m, c, 2 * TICK)
    assert [t.instance_ids for t in plan.of(Terminate)] == [("i-1",)]


def test_released_drone_not_yet_joined_drains_once_it_joins():
    policy, c = CobaldPolicy(), cfg()
    memory = CobaldMemory(demand=4.0, released=frozenset({"i-1"}))
    plan, m = policy.plan(snap([(0, R), (1, R)], [worker(0, 0.6)]), None, memory, c, 0.0)
    assert not plan.of(Drain) and not plan.of(Terminate) and m.released == {"i-1"}
    plan, m = policy.plan(snap([(0, R), (1, R)], [worker(0, 0.6), worker(1, 0.0)]), None, m, c, TICK)
    assert [d.instance_id for d in plan.of(Drain)] == ["i-1"]


def test_vm_in_error_is_cleaned_up_and_replaced():
    plan, m = CobaldPolicy().plan(snap([(0, InstanceState.ERROR)], []), None, CobaldMemory(demand=4.0), cfg(), 0.0)
    assert plan.of(Terminate)[0].instance_ids == ("i-0",)
    assert plan.of(Launch)[0].count == 3  # demand 11.5 cores and no drone left


def test_fixed_point_asks_for_no_tick():
    # utilisation below 0.5 with demand at the Limiter's minimum: nothing changes any more
    plan, m = CobaldPolicy().plan(snap([(0, R)], [worker(0, 0.0)]), None, CobaldMemory(demand=1.0), cfg(), 0.0)
    assert not plan.actions and plan.next_check is None and m.demand == 1.0


@pytest.mark.parametrize("policy", ["cobald", "cobald-relative"])
def test_replay_completes_every_job_without_killing_any(policy):
    from elastiq.sim.workload import synthetic
    c = cfg("elastiq.idle_timeout_max_s=600")
    r = engine.Simulation(synthetic(0), c, engine.SimOptions(policy=policy, timeline=False)).run()
    again = engine.Simulation(synthetic(0), c, engine.SimOptions(policy=policy, timeline=False)).run()
    assert r["jobs_completed"] == r["jobs"] == 118 and r["jobs_killed"] == 0
    assert r["vm_hours"] == again["vm_hours"]  # deterministic
    if policy == "cobald":  # the Limiter's 1 core keeps one drone at rest: the replay ends there
        assert r["vms_alive_at_end"] == 1 and r["stop_reason"] == "all jobs done and VMs back to min_vms"
