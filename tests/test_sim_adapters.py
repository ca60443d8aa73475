"""SimCloud and SimPool: the simulated ports, driven by an injected clock."""
from __future__ import annotations

import random

import pytest

from elastiq.adapters.base import QuotaError, TransientError
from elastiq.sim.cloud import BootDelay, SimCloud, SimPool
from elastiq.model import InstanceState
from elastiq.sim.workload import Workload
from tests.support.ports import check_batch, check_cloud


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def jobs(*specs):
    """specs: (submit, runtime, cpus, memory_mb)."""
    w = Workload("test")
    for n, (submit, runtime, cpus, memory) in enumerate(specs, 1):
        w.add(f"j{n}", submit, runtime, cpus, memory)
    return w


def make(specs=(), cpus=4, memory=8192, **cloud_kw):
    clock = Clock()
    pool = SimPool(clock, jobs(*specs), start=1000.0, vm_cpus=cpus, vm_memory_mb=memory)
    cloud_kw.setdefault("boot_delay", BootDelay.parse("fixed:100"))
    cloud = SimCloud(clock, pool=pool, **cloud_kw)
    return clock, pool, cloud


def at(clock, pool, cloud, t):
    clock.now = 1000.0 + t
    pool.advance(clock.now)
    cloud.advance(clock.now)


def states(cloud):
    return {i.id: i.state for i in cloud.list_instances()}


def test_they_implement_the_ports():
    clock, pool, cloud = make(owner="simulation")
    check_cloud(cloud, "elastiq", settle=lambda: at(clock, pool, cloud, clock.now - 1000.0 + 1))
    at(clock, pool, cloud, 200)  # the instance left booted and joined
    check_batch(pool, settle=lambda: at(clock, pool, cloud, clock.now - 1000.0 + 1))


def test_pool_takes_known_ips_as_the_runtime_passes_them():
    clock, pool, cloud = make()
    (vm,) = cloud.launch(1)
    at(clock, pool, cloud, 100)
    assert pool.pool({"10.0.0.9": vm}) == pool.pool()
    assert [w.instance_id for w in pool.pool({}).workers] == [vm]


@pytest.mark.parametrize("spec, low, high", [
    ("fixed:90", 90, 90), ("120", 120, 120), ("uniform:60:180", 60, 180),
    ("lognormal:200:0.5", 0, 1e9),
])
def test_boot_delay_distributions(spec, low, high):
    delay, rng = BootDelay.parse(spec), random.Random(1)
    samples = [delay.sample(rng) for _ in range(200)]
    assert all(low <= s <= high for s in samples)
    if spec.startswith("lognormal"):
        samples.sort()
        assert 150 < samples[100] < 260  # the median is about 200


@pytest.mark.parametrize("spec", ["uniform:5", "gamma:1:2", "fixed:-1", "uniform:9:3", "x"])
def test_boot_delay_rejects(spec):
    with pytest.raises(ValueError):
        BootDelay.parse(spec)


def test_launch_boot_and_join():
    clock, pool, cloud = make()
    ids = cloud.launch(2)
    assert len(ids) == 2 and cloud.alive == 2
    listed = cloud.list_instances()
    assert {i.state for i in listed} == {InstanceState.BOOTING}
    assert all(i.cluster == "elastiq" and i.launched_at == 1000.0 for i in listed)
    at(clock, pool, cloud, 29)
    assert set(states(cloud).values()) == {InstanceState.BOOTING}
    at(clock, pool, cloud, 30)
    assert set(states(cloud).values()) == {InstanceState.RUNNING}
    assert pool.pool().workers == ()
    at(clock, pool, cloud, 100)
    workers = pool.pool().workers
    assert sorted(w.instance_id for w in workers) == sorted(ids)
    assert all(w.cpus == 4 and w.free_cpus == 4 and w.idle_since == 1100.0 for w in workers)
    assert cloud.next_event() is None


def test_never_join_and_error_shares():
    clock, pool, cloud = make(never_join_share=0.3, error_share=0.3, seed=5)
    cloud.launch(100)
    at(clock, pool, cloud, 200)
    counts = {}
    for state in states(cloud).values():
        counts[state] = counts.get(state, 0) + 1
    joined = len(pool.pool().workers)
    assert 15 < counts[InstanceState.ERROR] < 45 and cloud.in_error == counts[InstanceState.ERROR]
    assert 15 < counts[InstanceState.RUNNING] - joined < 45  # running but silent
    assert 20 < joined < 60


def test_capacity_gives_partial_grants_then_quota_error():
    clock, pool, cloud = make(capacity=3)
    assert len(cloud.launch(2)) == 2
    assert len(cloud.launch(5)) == 1
    with pytest.raises(QuotaError, match="capacity of 3"):
        cloud.launch(1)
    assert cloud.launch_calls == 3 and cloud.alive == 3
    cloud.terminate([sorted(states(cloud))[0]])
    assert len(cloud.launch(4)) == 1


def test_terminate_is_idempotent_and_instances_fade_out():
    clock, pool, cloud = make()
    (a, b) = cloud.launch(2)
    at(clock, pool, cloud, 100)
    cloud.terminate([a, "i-unknown"])
    cloud.terminate([a])
    assert cloud.alive == 1 and states(cloud)[a] is InstanceState.SHUTTING_DOWN
    assert [w.instance_id for w in pool.pool().workers] == [b]
    at(clock, pool, cloud, 130)
    assert states(cloud)[a] is InstanceState.GONE
    at(clock, pool, cloud, 130 + 3600)
    assert a not in states(cloud) and b in states(cloud)
    assert cloud.vms[a].terminated_at == 1100.0


def test_observation_failures_raise_transient_errors():
    clock = Clock()
    pool = SimPool(clock, jobs(), start=1000.0, vm_cpus=1, vm_memory_mb=1024,
                   queue_failure=1.0, pool_failure=1.0)
    cloud = SimCloud(clock, list_failure=1.0)
    for call in (pool.queue, pool.pool, cloud.list_instances):
        with pytest.raises(TransientError):
            call()
    half = SimPool(clock, jobs(), start=1000.0, vm_cpus=1, vm_memory_mb=1024, queue_failure=0.5)
    outcomes = []
    for _ in range(200):
        try:
            half.queue()
            outcomes.append(True)
        except TransientError:
            outcomes.append(False)
    assert 60 < sum(outcomes) < 140


def test_fifo_matching_on_free_cpus_and_memory():
    # submit times 0..4: a 4-cpu job first, then small ones; one worker of 4 cpus / 8 GiB
    clock, pool, cloud = make([(0, 50, 4, 1024), (1, 50, 1, 1024), (2, 50, 1, 7000),
                               (3, 50, 1, 1024), (4, 50, 1, 1024)])
    cloud.launch(1)
    at(clock, pool, cloud, 100)
    assert [j.id for j in pool.queue().idle] == ["j1", "j2", "j3", "j4", "j5"]
    assert all(j.queued_since == 1000.0 + n for n, j in enumerate(pool.queue().idle))
    assert pool.negotiate(clock.now) == 1  # j1 takes the whole worker
    assert [j.id for j in pool.queue().idle] == ["j2", "j3", "j4", "j5"]
    worker = pool.pool().workers[0]
    assert worker.running_jobs == 1 and worker.free_cpus == 0 and worker.idle_since is None
    at(clock, pool, cloud, 150)  # j1 done
    assert pool.completed == 1 and pool.pool().workers[0].idle_since == 1150.0
    # j2 (1 GiB) and j3 (7000 MiB) start; 168 MiB are left, too little for j4 and j5
    assert pool.negotiate(clock.now) == 2
    started = [pool.w.ids[i] for i, s in enumerate(pool.started) if s == clock.now]
    assert started == ["j2", "j3"]
    assert [j.id for j in pool.queue().idle] == ["j4", "j5"]


def test_fifo_order_and_memory_limit_exactly():
    clock, pool, cloud = make([(0, 50, 1, 1024), (1, 50, 1, 7000), (2, 50, 1, 1024),
                               (3, 50, 1, 100)])
    cloud.launch(1)
    at(clock, pool, cloud, 100)
    assert pool.negotiate(clock.now) == 3
    started = [pool.w.ids[i] for i, s in enumerate(pool.started) if s is not None]
    # j3 (1024 MiB) no longer fits after j1 + j2 (8024 of 8192 MiB); j4 (100 MiB) still does
    assert started == ["j1", "j2", "j4"]
    assert [j.id for j in pool.queue().idle] == ["j3"]
    assert pool.pool().workers[0].free_memory_mb == 68 and pool.pool().workers[0].free_cpus == 1


def test_depth_first_filling_and_draining_workers_get_nothing():
    clock, pool, cloud = make([(0, 500, 1, 10)] * 3 + [(200, 500, 1, 10)])
    cloud.launch(2)
    at(clock, pool, cloud, 100)
    first, second = (w.name for w in pool.pool().workers)
    pool.negotiate(clock.now)
    by_name = {w.name: w for w in pool.pool().workers}
    assert by_name[first].running_jobs == 3 and by_name[second].running_jobs == 0
    pool.drain(first, "test")
    at(clock, pool, cloud, 200)
    pool.negotiate(clock.now)
    by_name = {w.name: w for w in pool.pool().workers}
    assert by_name[first].draining and by_name[first].running_jobs == 3
    assert by_name[second].running_jobs == 1
    pool.cancel_drain(first)
    assert not {w.name: w for w in pool.pool().workers}[first].draining


def test_terminating_a_busy_worker_kills_and_requeues_its_jobs():
    clock, pool, cloud = make([(0, 500, 1, 10), (5, 500, 2, 10)])
    (vm,) = cloud.launch(1)
    at(clock, pool, cloud, 100)
    pool.negotiate(clock.now)
    assert pool.running == 2
    at(clock, pool, cloud, 160)
    cloud.terminate([vm])
    assert pool.jobs_killed == 2 and pool.running == 0 and pool.kills == [1, 1]
    assert [j.id for j in pool.queue().idle] == ["j1", "j2"]  # original queue order kept
    assert pool.started == [None, None]
    assert pool.busy_s == 60.0
    (vm2,) = cloud.launch(1)
    at(clock, pool, cloud, 260)
    pool.negotiate(clock.now)
    at(clock, pool, cloud, 760)
    assert pool.completed == 2 and pool.all_done()
    assert pool.finished == [1760.0, 1760.0]  # the old finish events were discarded


def test_queue_and_pool_views_are_cached_until_something_changes():
    clock, pool, cloud = make([(0, 50, 1, 10)])
    at(clock, pool, cloud, 0)
    q1, p1 = pool.queue(), pool.pool()
    assert pool.queue() is q1 and pool.pool() is p1
    version = pool.version
    cloud.launch(1)
    at(clock, pool, cloud, 100)
    assert pool.version > version and pool.pool() is not p1
    pool.negotiate(clock.now)
    assert pool.queue() is not q1 and pool.queue().idle == () and pool.queue().running == 1
