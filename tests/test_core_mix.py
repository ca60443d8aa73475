"""The core with several flavours (core/mix.py): the cheapest mix, max_vms, fail safe."""
from __future__ import annotations

import random

import pytest

from elastiq.config import load
from elastiq.core.memory_codec import dump_records, load_records
from elastiq.model import (Catalogue, Flavour, Instance, InstanceRecord, InstanceState, Job,
                           LaunchOutcome, Lifecycle, Pool, Queue, Snapshot, Worker)
from tests.support.core_tick import CoreState, random_worker, record_launch, tick

CLUSTER = "c1"
FLAVOURS = (Flavour("vm4", 4, 8192, 1.0), Flavour("vm2", 2, 4096, 0.5),
            Flavour("vm1", 1, 2048, 0.25))


def cfg(max_vms=10):
    return load(None, [f"elastiq.cluster_name={CLUSTER}", f"quota.max_vms={max_vms}",
                       "vm.cpus=4", "vm.memory_mb=8192", "elastiq.waiting_jobs_time_s=0"])


def mixed(snapshot, memory, max_vms=10, flavours=FLAVOURS):
    """The default policy's plan at 100.0 with these flavours beside the configuration."""
    return tick(snapshot, memory, cfg(max_vms), 100.0, Catalogue(4, 8192, flavours))


def jobs(n, cpus=1, memory=1000, prefix="j"):
    return tuple(Job(f"{prefix}{i}", cpus, memory, 0.0) for i in range(n))


def snap(idle=(), workers=(), instances=()):
    return Snapshot(Queue(tuple(idle)), Pool(tuple(workers)), tuple(instances))


def launches(plan):
    return sorted((a.flavour, a.count) for a in plan.actions if type(a).__name__ == "Launch")


def test_a_few_small_jobs_get_a_small_vm():
    plan, _ = mixed(snap(jobs(2)), CoreState())
    assert launches(plan) == [("vm2", 1)]
    assert (plan.actions[0].count, plan.actions[0].flavour) == (1, "vm2")
    plan, _ = mixed(snap(jobs(1)), CoreState())
    assert launches(plan) == [("vm1", 1)]


def test_a_burst_gets_large_vms_and_its_tail_a_small_one():
    plan, _ = mixed(snap(jobs(9)), CoreState(), max_vms=20)
    assert launches(plan) == [("vm1", 1), ("vm4", 2)]


def test_the_nearer_max_vms_the_larger_the_vms():
    # 3 VMs of max_vms 10: a quarter-size VM only while the fleet holds <= 10/4 VMs
    plan, _ = mixed(snap(jobs(9)), CoreState(), max_vms=10)
    assert launches(plan) == [("vm2", 1), ("vm4", 2)]
    plan, _ = mixed(snap(jobs(9)), CoreState(), max_vms=4)
    assert launches(plan) == [("vm4", 3)]
    plan, _ = mixed(snap(jobs(1)), CoreState(), max_vms=4)
    assert launches(plan) == [("vm1", 1)]


def test_memory_decides_the_size_too():
    plan, _ = mixed(snap(jobs(1, memory=3000)), CoreState())
    assert launches(plan) == [("vm2", 1)]  # 1 cpu but 3000 MiB: vm1 (2048 MiB) is too small


def test_prices_not_proportional_to_cpus_are_followed():
    dear_small = (FLAVOURS[0], Flavour("vm2", 2, 4096, 1.0), Flavour("vm1", 1, 2048, 0.9))
    plan, _ = mixed(snap(jobs(2)), CoreState(), flavours=dear_small)
    assert launches(plan) == [("vm4", 1)]  # vm2 costs as much: the first listed of equal price
    plan, _ = mixed(snap(jobs(1)), CoreState(), flavours=dear_small)
    assert launches(plan) == [("vm1", 1)]


def test_a_full_fleet_with_a_draining_worker_still_decides():
    """max_vms reached, one worker draining: the demand counts its room (the drain can be
    cancelled), so the fleet it sizes is above max_vms; the first flavour is always allowed."""
    instances = [Instance(f"i-{i}", InstanceState.RUNNING, 0.0, CLUSTER, instance_type="vm4")
                 for i in range(2)]
    workers = [Worker(f"w{i}", f"i-{i}", None, 4, 8192, 4, 0, 0, None, draining=(i == 1))
               for i in range(2)]
    records = {f"i-{i}": InstanceRecord(Lifecycle.DRAINING if i else Lifecycle.JOINED, 0.0, 0.0,
                                        1.0, f"w{i}") for i in range(2)}
    plan, _ = mixed(snap(jobs(4), workers, instances), CoreState(instances=records), max_vms=2)
    assert launches(plan) == [] and [type(a).__name__ for a in plan.actions] == ["CancelDrain"]


def test_a_flavour_of_unknown_shape_is_never_launched():
    unknown_small = FLAVOURS[:2] + (Flavour("vm1", None, None),)
    plan, _ = mixed(snap(jobs(1)), CoreState(), flavours=unknown_small)
    assert launches(plan) == [("vm2", 1)]
    only_first = (FLAVOURS[0], Flavour("vm2", None, None), Flavour("vm1", None, None))
    plan, _ = mixed(snap(jobs(1)), CoreState(), flavours=only_first)
    assert launches(plan) == [(None, 1)]  # the one-flavour road: the configured flavour
    unknown_first = (Flavour("vm4", None, None),) + FLAVOURS[1:]
    plan, _ = mixed(snap(jobs(1)), CoreState(), flavours=unknown_first)
    assert launches(plan) == [(None, 1)]


def test_booting_vms_count_with_their_own_flavours_shape():
    booting = Instance("i-1", InstanceState.BOOTING, 90.0, CLUSTER, instance_type="vm1")
    memory = CoreState(instances={"i-1": InstanceRecord(Lifecycle.BOOTING, 90.0, 90.0)})
    # the vm1 holds 1 job, not 4: the 2 others need a new VM, a large one while a VM boots
    plan, _ = mixed(snap(jobs(3), instances=[booting]), memory)
    assert launches(plan) == [("vm4", 1)]
    plan, _ = mixed(snap(jobs(1), instances=[booting]), memory)
    assert launches(plan) == []
    # not listed yet: the flavour comes from the record of the launch
    memory = record_launch(CoreState(), LaunchOutcome(1, ("i-1",), flavour="vm1"), cfg(), 90.0)
    plan, _ = mixed(snap(jobs(3)), memory)
    assert launches(plan) == [("vm4", 1)]
    # one flavour: the booting VM counts as a whole VM of the one shape, no launch
    plan, _ = mixed(snap(jobs(3)), memory, flavours=())
    assert launches(plan) == []


def test_the_launch_record_keeps_its_flavour_across_ticks_and_restarts():
    memory = record_launch(CoreState(), LaunchOutcome(1, ("i-1",), flavour="vm2"), cfg(), 90.0)
    listed = Instance("i-1", InstanceState.RUNNING, 90.0, CLUSTER)
    _, memory = mixed(snap(instances=[listed]), memory)
    assert memory.instances["i-1"].flavour == "vm2"
    assert load_records(dump_records(memory.instances))["i-1"].flavour == "vm2"
    assert "flavour" not in dump_records({"i-2": InstanceRecord(
        Lifecycle.BOOTING, 1.0, 1.0)})["i-2"]  # one flavour: the state as before


def test_booting_vms_no_job_needs_are_terminated_newest_first_by_size():
    small = Instance("i-1", InstanceState.BOOTING, 80.0, CLUSTER, instance_type="vm1")
    big = Instance("i-2", InstanceState.BOOTING, 90.0, CLUSTER, instance_type="vm4")
    memory = CoreState(instances={i.id: InstanceRecord(Lifecycle.BOOTING, i.launched_at,
                                                    i.launched_at) for i in (small, big)})
    # one 1-cpu job: the older vm1 holds it, the newer vm4 is not needed
    plan, _ = mixed(snap(jobs(1), instances=[small, big]), memory)
    assert plan.terminated_ids == ("i-2",)
    # a 2-cpu job: only the vm4 holds it, and the vm1 is older: nothing is terminated
    plan, _ = mixed(snap(jobs(1, cpus=2), instances=[small, big]), memory)
    assert plan.terminated_ids == () and launches(plan) == []


@pytest.mark.parametrize("seed", range(40))
def test_never_above_max_vms_and_never_more_vms_than_one_flavour(seed):
    rng = random.Random(seed)
    max_vms = rng.randint(1, 8)
    alive = rng.randint(0, max_vms)
    instances, workers, records = [], [], {}
    for i in range(alive):
        joined = rng.random() < 0.6
        kind = rng.choice(FLAVOURS) if joined else FLAVOURS[0]  # booting: as one flavour's
        instances.append(Instance(f"i-{i}", InstanceState.RUNNING, 0.0, CLUSTER,
                                  instance_type=kind.name))
        if joined:
            worker, records[f"i-{i}"] = random_worker(rng, i, kind)
            workers.append(worker)
        else:
            records[f"i-{i}"] = InstanceRecord(Lifecycle.BOOTING, 0.0, 0.0)
    idle = [Job(f"j{n}", rng.choice((1, 1, 2, 3, 4)), rng.choice((500, 1500, 3000, 7000)), 0.0)
            for n in range(rng.randint(0, 30))]
    shot = snap(idle, workers, instances)
    memory = CoreState(instances=records)
    several, _ = mixed(shot, memory, max_vms)
    one, _ = mixed(shot, memory, max_vms, ())
    assert alive + several.launch_count <= max_vms
    assert several.launch_count == one.launch_count
    assert {a.flavour for a in several.actions if type(a).__name__ == "Launch"} <= \
        {f.name for f in FLAVOURS}
