"""The simulated pool's views used by the cross-checks: running_on, a restarted collector,
and the targeted look before a termination."""
from __future__ import annotations

import pytest

from elastiq.adapters.base import TransientError
from elastiq.sim.cloud import SimPool
from tests.support.sim_world import workload


def pool_with_one_job(now=None):
    now = now or [100.0]
    pool = SimPool(lambda: now[0], workload([(0.0, 1000.0)]), start=0.0, vm_cpus=1,
                   vm_memory_mb=2048)
    pool.add_worker("i-1", 0.0)
    pool.add_worker("i-2", 0.0)
    pool.advance(10.0)
    pool.negotiate(10.0)
    return pool


def test_the_queue_names_the_workers_running_jobs():
    pool = pool_with_one_job()
    assert pool.queue().running_on == frozenset({"slot1@i-1.sim"})


def test_a_restarted_collector_lists_no_worker_until_they_advertise_again():
    now = [100.0]
    pool = pool_with_one_job(now)
    pool.restart_collector(100.0, 300.0)
    assert pool.pool().workers == () and pool.pool().collector_started == 100.0
    assert pool.workers_of(["i-1"]) == {}
    now[0] = 400.0
    assert len(pool.pool().workers) == 2 and pool.pool().collector_started == 100.0


def test_the_look_answers_for_the_instances_asked_only():
    pool = pool_with_one_job()
    found = pool.workers_of(["i-1", "i-9"])
    assert list(found) == ["i-1"] and found["i-1"].running_jobs == 1


def test_the_look_fails_like_the_pool_read():
    pool = SimPool(lambda: 0.0, workload([]), start=0.0, vm_cpus=1, vm_memory_mb=2048,
                   pool_failure=1.0)
    with pytest.raises(TransientError):
        pool.workers_of(["i-1"])


def test_the_queue_summary_follows_the_idle_jobs():
    """The summary classify reads (model.IdleJobs.by_kind) is the idle jobs' own, through
    submissions, starts and kills."""
    work = workload([(float(t), 1000.0) for t in (0, 5, 5, 9, 12)])
    pool = SimPool(lambda: 0.0, work, start=0.0, vm_cpus=2, vm_memory_mb=4096)

    def check():
        idle = pool.queue().idle
        expected = {}
        for job in idle:
            expected.setdefault((job.cpus, job.memory_mb, job.fits_worker), []).append(job.queued_since)
        assert idle.by_kind == {k: tuple(sorted(v)) for k, v in expected.items()}
        return len(idle)

    pool.advance(10.0)
    assert check() == 4
    pool.add_worker("i-1", 10.0)
    pool.negotiate(10.0)
    assert check() == 2
    pool.advance(20.0)
    assert check() == 3
    pool.remove_worker("i-1", 20.0)  # its 2 jobs are killed and wait again
    assert check() == 5
