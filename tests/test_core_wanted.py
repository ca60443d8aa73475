"""One rule for 'is this idle worker wanted', idle time from the last job, and an empty pool.

Issue 9 (defect 2) and issue 10 (cases 1 and 2): each test drives the pure core tick by tick
through a tiny world that applies the plan (drains take effect, terminations remove the VM).
"""
from __future__ import annotations

from dataclasses import replace

from elastiq.core.wanted import COLLECTOR_GRACE_S
from elastiq.model import (CancelDrain, Drain, Job, Lifecycle, Pool, Queue, Snapshot,
                           Terminate)
from elastiq.core.reasons import Code, Reason

from tests.test_core_decide import cfg, inst, joined, worker
from tests.support.core_tick import CoreState, tick

IDLE_FOR = 600  # BASE config of test_core_decide


class World:
    """Workers and instances that obey the plan; nothing ever matches a job."""

    def __init__(self, n, idle_since=0.0, jobs=(), running_on=frozenset(), running=None):
        self.workers = {f"i-{i}": worker(i, idle_since=idle_since) for i in range(1, n + 1)}
        self.instances = {f"i-{i}": inst(i) for i in range(1, n + 1)}
        self.jobs, self.running_on = tuple(jobs), frozenset(running_on)
        self.running = len(self.running_on) if running is None else running
        self.counts = {"Drain": 0, "CancelDrain": 0, "Terminate": 0, "Launch": 0}
        self.memory = CoreState(instances={f"i-{i}": joined(i) for i in range(1, n + 1)})
        self.hidden = False
        self.collector_started = None

    def snapshot(self):
        workers = () if self.hidden else tuple(self.workers.values())
        return Snapshot(Queue(self.jobs, self.running, running_on=self.running_on),
                        Pool(workers, collector_started=self.collector_started),
                        tuple(self.instances.values()))

    def tick(self, config, now):
        plan, self.memory = tick(self.snapshot(), self.memory, config, now)
        for action in plan.actions:
            self.counts[type(action).__name__] += 1
            if isinstance(action, (Drain, CancelDrain)):
                w = self.workers[action.instance_id]
                self.workers[action.instance_id] = replace(w, draining=isinstance(action, Drain))
            elif isinstance(action, Terminate):
                for iid in action.instance_ids:
                    self.workers.pop(iid, None)
                    self.instances.pop(iid, None)
        return plan


def stale_jobs(n, queued=0.0):
    return tuple(Job(f"j{i}", 1, 1000, queued) for i in range(n))


def test_jobs_the_pool_never_starts_release_idle_workers_without_flapping():
    """Issue 10.1: six jobs wait longer than idle_for on three idle workers that do not
    match them.  Before: 72 drains and 72 cancel-drains over 48 ticks, no termination."""
    world = World(3, jobs=stale_jobs(6))
    config = cfg("elastiq.waiting_jobs_time_s=0")
    notes = []
    for t in range(48):
        notes += world.tick(config, 1000.0 + 30 * t).notes
    assert world.counts == {"Drain": 3, "CancelDrain": 0, "Terminate": 1, "Launch": 0}
    assert not world.instances  # released: min_vms is 0
    assert Reason.of(Code.UNSTARTED, count=6, idle_for=IDLE_FOR) in notes


def test_unstarted_jobs_are_not_launched_for_again_but_new_jobs_are():
    world = World(1, jobs=stale_jobs(6))
    config = cfg("elastiq.waiting_jobs_time_s=0")
    for t in range(20):
        world.tick(config, 1000.0 + 30 * t)
    assert world.counts["Launch"] == 0 and not world.instances
    world.jobs += (Job("new", 1, 1000, 1700.0),)
    plan = world.tick(config, 1701.0)
    assert plan.launch_count == 1


def test_fresh_jobs_keep_an_idle_worker_and_cancel_its_drain_by_the_same_rule():
    world = World(1, jobs=stale_jobs(2, queued=990.0))
    config = cfg("elastiq.waiting_jobs_time_s=0")
    world.tick(config, 1000.0)
    assert world.counts["Drain"] == 0  # jobs that may still start keep it
    world.workers["i-1"] = replace(world.workers["i-1"], draining=True)  # drained by hand
    world.memory = replace(world.memory, instances={"i-1": joined(1, lifecycle=Lifecycle.DRAINING)})
    world.tick(config, 1010.0)
    assert world.counts["CancelDrain"] == 1


def test_idle_time_counts_from_the_last_tick_the_worker_was_seen_busy():
    """Issue 9.2: the slot's idle_since (0) does not move when dynamic slots come and go;
    the worker ran a job at t=1000, so it is not drained before 1000 + idle_for."""
    world = World(1, idle_since=0.0)
    config = cfg()
    world.workers["i-1"] = worker(1, claimed=1)
    world.tick(config, 1000.0)
    world.workers["i-1"] = worker(1, idle_since=0.0)  # the job ended; the hint did not move
    plan = world.tick(config, 1040.0)
    assert world.counts["Drain"] == 0
    assert plan.next_check == 1000.0 + IDLE_FOR
    world.tick(config, 1000.0 + IDLE_FOR - 1)
    assert world.counts["Drain"] == 0
    plan = world.tick(config, 1000.0 + IDLE_FOR)
    assert world.counts["Drain"] == 1
    assert plan.actions[0].reason.code is Code.IDLE and plan.actions[0].reason["idle"] == 600


def test_after_a_restart_without_memory_the_pools_idle_since_is_used():
    world = World(1, idle_since=0.0)
    world.memory = CoreState()
    world.tick(cfg(), 1000.0)
    assert world.counts["Drain"] == 1


def _pool_hidden_with_one_busy_worker(world) -> list:
    """i-1's worker runs a job; after one tick the pool answers empty for 20 minutes (past the
    deploy time): the notes of those ticks."""
    world.workers["i-1"] = worker(1, claimed=1)
    config = cfg()
    world.tick(config, 1000.0)
    world.hidden = True
    notes = []
    for t in range(1, 40):
        notes += world.tick(config, 1000.0 + 30 * t).notes
    return notes


def test_a_worker_missing_from_the_pool_but_running_a_job_is_not_terminated():
    """Issue 10.2: the collector lists none of our workers while the schedd still reports
    the job running on w1.  Before: every VM terminated after the deploy time (1 job
    killed)."""
    world = World(2, running_on={"w1"})
    notes = _pool_hidden_with_one_busy_worker(world)
    assert world.counts["Terminate"] == 0 and "i-1" in world.instances
    assert Reason.of(Code.NO_SCALE_DOWN, cause=Reason.of(Code.LOST_RUN_JOBS, count=1,
                                                          workers=("w1",))) in notes


def test_running_jobs_the_pool_does_not_show_hold_scale_down_without_their_hosts():
    """Issue 25.8: the queue gives the running count but no host, and the pool answers
    empty.  Before: all 4 workers terminated after the deploy time, the busy one too."""
    world = World(4, running=1)
    notes = _pool_hidden_with_one_busy_worker(world)
    assert world.counts["Terminate"] == 0 and len(world.instances) == 4
    assert Reason.of(Code.NO_SCALE_DOWN, cause=Reason.of(Code.RUNNING_UNSEEN, count=1,
                                                          lost=4)) in notes


def test_running_jobs_the_pool_shows_do_not_hold_scale_down():
    world = World(2, running=1)
    world.workers["i-1"] = worker(1, claimed=1)
    config = cfg()
    world.tick(config, 1000.0)
    del world.workers["i-2"]  # gone from the pool; i-1, shown, runs the one job
    for t in range(1, 40):
        world.tick(config, 1000.0 + 30 * t)
    assert "i-2" not in world.instances and "i-1" in world.instances


def test_right_after_a_collector_restart_missing_workers_are_not_gone():
    world = World(2)
    config = cfg()
    world.tick(config, 1000.0)
    world.hidden, world.collector_started = True, 1010.0
    for t in range(1, 12):  # 330 s < COLLECTOR_GRACE_S, > estimated_vm_deploy_time_s 300
        world.tick(config, 1000.0 + 30 * t)
    assert world.counts["Terminate"] == 0
    world.tick(config, 1010.0 + COLLECTOR_GRACE_S)  # never came back: gone after all
    assert world.counts["Terminate"] == 1 and not world.instances


def test_busy_at_survives_the_state_file():
    from elastiq.runtime.state import State, decode, encode
    memory = CoreState(instances={"i-1": replace(joined(1), busy_at=12.5)}, unstarted=(3.0, 4, 8000))
    back = decode(encode(State(memory=memory.memory, records=memory.instances)))
    assert back.records["i-1"].busy_at == 12.5 and back.memory.unstarted == (3.0, 4, 8000)
