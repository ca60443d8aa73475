"""Quotas as clouds count them (core/quota.py): cores and memory next to max_vms, in the
default policy with one flavour and with several, and in the legacy policy."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from elastiq.config import load, params_of
from elastiq.core import records as core_records
from elastiq.core.quota import Room, room_left, within
from elastiq.core.reasons import Code
from elastiq.model import (Catalogue, Flavour, Instance, InstanceRecord, InstanceState, Job,
                           Launch, Lifecycle, Pool, Queue, Snapshot, Worker)
from elastiq.sim.peers import Configured
from elastiq.sim.peers.legacy import LegacyPolicy
from tests.support.core_tick import POLICY, CoreState, random_worker, tick

CLUSTER = "c1"
FLAVOURS = (Flavour("vm4", 4, 8192, 1.0), Flavour("vm2", 2, 4096, 0.5),
            Flavour("vm1", 1, 2048, 0.25))
SHAPES = {f.name: (f.cpus, f.memory_mb) for f in FLAVOURS}


def cfg(*sets, max_vms=100):
    return load(None, [f"elastiq.cluster_name={CLUSTER}", f"quota.max_vms={max_vms}",
                       "vm.cpus=4", "vm.memory_mb=8192", "elastiq.waiting_jobs_time_s=0",
                       *sets])


def jobs(n, cpus=1, memory=1000):
    return tuple(Job(f"j{i}", cpus, memory, 0.0) for i in range(n))


def snap(idle=(), workers=(), instances=()):
    return Snapshot(Queue(tuple(idle)), Pool(tuple(workers)), tuple(instances))


def launches(plan):
    return sorted((a.flavour, a.count) for a in plan.of(Launch))


def running(i, flavour=None):
    return Instance(f"i-{i}", InstanceState.RUNNING, 0.0, CLUSTER, instance_type=flavour)


def test_room_counts_cores_and_memory_and_cuts_launches_in_order():
    room = Room(10, cores=10, memory_mb=None)
    assert room.holds((4, 8192)) == 2 and room.after(2, (4, 8192)) == Room(8, 2, None)
    catalogue = Catalogue(4, 8192, FLAVOURS)
    # the large ones first, a smaller one fills what they leave
    assert within([("vm4", 3), ("vm2", 2)], room, catalogue) == [("vm4", 2), ("vm2", 1)]
    assert within([("vm4", 3)], Room(10, None, 12000), catalogue) == [("vm4", 1)]
    assert within([(None, 5)], Room(3), Catalogue(4, 8192)) == [(None, 3)]
    # every alive VM counts with its flavour's shape; one not in the catalogue as the first's
    quota = cfg("quota.max_cores=20", "quota.max_memory_mb=40000").quota
    assert room_left(quota, catalogue, 3, ["vm1", "vm2", "other"]) == \
        Room(97, 20 - 7, 40000 - 14336)


def test_one_flavour_never_launches_beyond_max_cores_booting_vms_included():
    config = cfg("quota.max_cores=10")
    plan, _ = tick(snap(jobs(20)), CoreState(), config, 100.0)
    assert launches(plan) == [(None, 2)]  # 8 of 10 cores
    assert [str(n) for n in plan.notes if n.code is Code.NO_ROOM_QUOTA] == \
        ["12 jobs without room: the quota's cores or memory are used up (0/10 cores)"]
    booting = Instance("i-0", InstanceState.BOOTING, 90.0, CLUSTER)
    memory = CoreState(instances={"i-0": InstanceRecord(Lifecycle.BOOTING, 90.0, 90.0)})
    plan, _ = tick(snap(jobs(20), instances=[booting]), memory, config, 100.0)
    assert launches(plan) == [(None, 1)]


def test_memory_quota_and_min_vms_are_cut_too():
    config = cfg("quota.max_memory_mb=20000")
    # the configuration check refuses this when the vm section gives the shape; when the
    # cloud gives it, the core still keeps the quota
    config = replace(config, quota=replace(config.quota, min_vms=3))
    plan, _ = tick(snap(), CoreState(), config, 100.0)
    assert launches(plan) == [(None, 2)]  # min_vms 3 x 8192 MiB does not fit 20000
    config = cfg("quota.max_cores=12", "elastiq.n_jobs_per_vm=1")
    plan, _ = tick(snap(jobs(20)), CoreState(), config, 100.0)
    assert launches(plan) == [(None, 3)]


def test_several_flavours_take_the_largest_that_still_fits():
    catalogue = Catalogue(4, 8192, FLAVOURS)
    # 9 one-cpu jobs, 7 cores left: one vm4, then a vm2 and a vm1 (a second vm4 does not fit)
    plan, _ = tick(snap(jobs(9)), CoreState(), cfg("quota.max_cores=7"), 100.0, catalogue)
    assert launches(plan) == [("vm1", 1), ("vm2", 1), ("vm4", 1)]
    # one vm4 alive and busy: 2 cores left, a vm2 takes two of the jobs
    worker = Worker("w0", "i-0", None, 4, 8192, 4, 0, 0, None)
    memory = CoreState(instances={"i-0": InstanceRecord(Lifecycle.JOINED, 0.0, 0.0, 1.0, "w0")})
    plan, _ = tick(snap(jobs(9), [worker], [running(0, "vm4")]), memory,
                   cfg("quota.max_cores=6"), 100.0, catalogue)
    assert launches(plan) == [("vm2", 1)]
    # without the quota, the same fleet gets large VMs (the quota changed the choice)
    plan, _ = tick(snap(jobs(9), [worker], [running(0, "vm4")]), memory, cfg(), 100.0,
                   catalogue)
    assert launches(plan) == [("vm1", 1), ("vm4", 2)]


def test_a_full_quota_still_cancels_drains():
    """At the quota, a draining worker's drain is cancelled for waiting jobs (it costs no
    room), and nothing is launched."""
    worker = Worker("w0", "i-0", None, 4, 8192, 0, 4, 8192, 50.0, True)
    memory = CoreState(instances={"i-0": InstanceRecord(Lifecycle.DRAINING, 0.0, 0.0, 1.0, "w0")})
    plan, _ = tick(snap(jobs(4), [worker], [running(0)]), memory, cfg("quota.max_cores=4"), 100.0)
    assert [type(a).__name__ for a in plan.actions] == ["CancelDrain"]


def fleet(rng, flavours):
    """A random fleet of ours: joined (some draining, some busy), booting, in error."""
    instances, workers, records = [], [], {}
    for i in range(rng.randint(0, 8)):
        kind = rng.choice(flavours)
        state = rng.choice([InstanceState.RUNNING] * 4 + [InstanceState.BOOTING, InstanceState.ERROR])
        instances.append(Instance(f"i-{i}", state, 0.0, CLUSTER, instance_type=kind.name))
        if state is InstanceState.RUNNING and rng.random() < 0.8:
            worker, records[f"i-{i}"] = random_worker(rng, i, kind)
            workers.append(worker)
        else:
            records[f"i-{i}"] = InstanceRecord(Lifecycle.BOOTING, 0.0, 0.0)
    return instances, workers, records


@pytest.mark.parametrize("seed", range(60))
def test_never_above_max_cores_or_max_memory_in_any_policy(seed):
    """A sweep over fleets, queues and quotas, one flavour and several, both policies: the
    launches never take the alive VMs' cores or memory above the quota."""
    rng = random.Random(seed)
    several = rng.random() < 0.5
    catalogue = Catalogue(4, 8192, FLAVOURS if several else ())
    instances, workers, records = fleet(rng, FLAVOURS if several else FLAVOURS[:1])
    max_cores = rng.choice([None, rng.randint(1, 40)])
    max_memory = rng.choice([None, rng.randint(1000, 80000)]) if max_cores else rng.randint(1000, 80000)
    max_vms = rng.randint(len(instances), 20)
    config = cfg(f"quota.min_vms={rng.randint(0, min(3, max_vms))}",
                 f"elastiq.n_jobs_per_vm={rng.choice([0, 0, 0, 2])}", max_vms=max_vms)
    config = replace(config, quota=replace(config.quota, max_cores=max_cores,
                                           max_memory_mb=max_memory))  # unchecked: any quota
    idle = [Job(f"j{n}", rng.choice((1, 1, 2, 3, 4)), rng.choice((500, 1500, 3000, 7000)), 0.0)
            for n in range(rng.randint(0, 40))]
    shot = snap(idle, workers, instances)
    for policy in (POLICY, Configured(LegacyPolicy(), config)):
        plan, _, _ = core_records.step(policy, shot, records, policy.initial_memory(),
                                       params_of(config),
                                       100.0, catalogue)
        # as with max_vms, a VM terminated in the same plan (before the launch) counts no more
        used = [SHAPES[i.instance_type] for i in instances if i.id not in plan.terminated_ids]
        new = [SHAPES[a.flavour or "vm4"] for a in plan.of(Launch) for _ in range(a.count)]
        cores = sum(s[0] for s in used + new)
        memory_mb = sum(s[1] for s in used + new)
        if new:
            assert max_cores is None or cores <= max_cores, (policy.name, plan.actions)
            assert max_memory is None or memory_mb <= max_memory, (policy.name, plan.actions)
            assert len(used) + len(new) <= config.quota.max_vms
