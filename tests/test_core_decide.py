"""Table-driven tests of the default policy: (snapshot, memory, now) -> expected Plan."""
from __future__ import annotations

import pytest

from elastiq.config import load
from elastiq.model import (
    Drain,
    Instance,
    InstanceRecord,
    InstanceState,
    Job,
    Launch,
    LaunchOutcome,
    Lifecycle,
    Pool,
    Queue,
    Snapshot,
    Terminate,
    Worker,
)
from elastiq.core.reasons import Code, Reason
from tests.support.core_tick import CoreState, record_launch, tick

CLUSTER = "c1"
BASE = [f"elastiq.cluster_name={CLUSTER}", "quota.max_vms=5", "vm.cpus=4", "vm.memory_mb=8000",
        "elastiq.waiting_jobs_time_s=40", "elastiq.idle_timeout_max_s=600",
        "elastiq.estimated_vm_deploy_time_s=300"]


def cfg(*extra):
    return load(None, BASE + list(extra))


def jobs(n, cpus=1, memory=1000, fits_worker=True, prefix="j"):
    return tuple(Job(f"{prefix}{i}", cpus, memory, 0.0, fits_worker) for i in range(n))


def inst(i, state=InstanceState.RUNNING, launched=0.0, cluster=CLUSTER):
    return Instance(f"i-{i}", state, launched, cluster, f"10.0.0.{i}")


def worker(i, claimed=0, idle_since=None, draining=False, cpus=4, memory=8000, free=None):
    free_cpus = cpus - claimed if free is None else free
    return Worker(f"w{i}", f"i-{i}", f"10.0.0.{i}", cpus, memory, claimed, free_cpus,
                  memory * free_cpus // cpus, idle_since, draining)


def joined(i, since=0.0, lifecycle=Lifecycle.JOINED):
    return InstanceRecord(lifecycle, since, 0.0, joined_at=since, worker=f"w{i}")


def snap(idle=(), workers=(), instances=(), partial_pool=False, partial_queue=False):
    return Snapshot(Queue(tuple(idle), 0, partial_queue), Pool(tuple(workers), partial_pool),
                    tuple(instances))


def kinds(plan):
    return [type(a).__name__ for a in plan.actions]


CASES = [
    # name, config extras, snapshot, memory, now, expected actions (type, count or ids)
    ("no jobs, nothing to do", (), snap(), CoreState(), 100, []),
    ("above threshold but not long enough", (), snap(jobs(11)), CoreState(), 100, []),
    ("held long enough: pack 11 one-core jobs onto 4-core VMs -> 3",
     (), snap(jobs(11)), CoreState(waiting_since=50), 100, [("Launch", 3)]),
    ("n_jobs_per_vm sizing as the original: ceil(11/2) = 6, capped at max_vms 5",
     ("elastiq.n_jobs_per_vm=2",), snap(jobs(11)), CoreState(waiting_since=0), 100, [("Launch", 5)]),
    ("memory decides the packing: 3000 MB jobs, 2 per 8000 MB VM",
     (), snap(jobs(6, memory=3000)), CoreState(waiting_since=0), 100, [("Launch", 3)]),
    ("unmatchable jobs never launch", (),
     snap(jobs(5, fits_worker=False) + jobs(3, cpus=8, prefix="big") + jobs(2, memory=9000, prefix="fat")),
     CoreState(waiting_since=0), 100, []),
    ("threshold: 3 jobs not above waiting_jobs_threshold 3",
     ("elastiq.waiting_jobs_threshold=3",), snap(jobs(3)), CoreState(waiting_since=0), 100, []),
    ("free room on joined workers covers the jobs", (),
     snap(jobs(3), [worker(1, claimed=1)], [inst(1)]),
     CoreState(waiting_since=0, instances={"i-1": joined(1)}), 100, []),
    ("booting VMs count as capacity", (),
     snap(jobs(8), [], [inst(1, InstanceState.BOOTING, 90), inst(2, InstanceState.RUNNING, 90)]),
     CoreState(waiting_since=0), 100, []),
    ("requested but not yet listed ids count against max_vms", (),
     snap(jobs(40)), CoreState(waiting_since=0, instances={
         f"i-{k}": InstanceRecord(Lifecycle.REQUESTED, 95, 95) for k in range(4)}),
     100, [("Launch", 1)]),
    ("min_vms kept with an empty queue", ("quota.min_vms=2",), snap(), CoreState(), 100, [("Launch", 2)]),
    ("back-off holds launches", (), snap(jobs(4)),
     CoreState(waiting_since=0, backoff_until=200, failures=1), 100, []),
    ("idle long enough -> drain, biggest first, not terminate", (),
     snap([], [worker(1, idle_since=0, cpus=2, memory=4000), worker(2, idle_since=0)],
          [inst(1), inst(2)]),
     CoreState(instances={"i-1": joined(1), "i-2": joined(2)}), 700, [("Drain", "i-2"), ("Drain", "i-1")]),
    ("idle but not long enough", (),
     snap([], [worker(1, idle_since=500)], [inst(1)]),
     CoreState(instances={"i-1": joined(1)}), 700, []),
    ("min_vms keeps idle workers", ("quota.min_vms=1",),
     snap([], [worker(1, idle_since=0), worker(2, idle_since=0)], [inst(1), inst(2)]),
     CoreState(instances={"i-1": joined(1), "i-2": joined(2)}), 700, [("Drain", "i-1")]),
    ("drained and unclaimed -> terminate", (),
     snap([], [worker(1, idle_since=0, draining=True)], [inst(1)]),
     CoreState(instances={"i-1": joined(1, 600, Lifecycle.DRAINING)}), 700, [("Terminate", ("i-1",))]),
    ("draining but a slot still claimed -> wait", (),
     snap([], [worker(1, claimed=1, draining=True)], [inst(1)]),
     CoreState(instances={"i-1": joined(1, 600, Lifecycle.DRAINING)}), 700, []),
    ("demand returns while draining -> cancel the drain instead of launching", (),
     snap(jobs(4), [worker(1, claimed=1, draining=True, free=3)], [inst(1)]),
     CoreState(waiting_since=0, instances={"i-1": joined(1, 600, Lifecycle.DRAINING)}), 700,
     [("CancelDrain", "i-1")]),
    ("never joined within the deploy time -> terminate", (),
     snap([], [], [inst(1, InstanceState.RUNNING, 1)]), CoreState(), 302, [("Terminate", ("i-1",))]),
    ("in error -> terminate", (),
     snap([], [], [inst(1, InstanceState.ERROR, 0)]), CoreState(), 10, [("Terminate", ("i-1",))]),
    ("foreign and untagged instances are invisible", (),
     snap([], [], [inst(1, launched=0, cluster="other"), inst(2, launched=0, cluster=None)]),
     CoreState(), 1000, []),
    ("partial pool: no scale-down", (),
     snap([], [worker(1, idle_since=0)], [inst(1), inst(2, launched=0)], partial_pool=True),
     CoreState(instances={"i-1": joined(1)}), 700, []),
    ("partial queue: no scale-down", (),
     snap([], [worker(1, idle_since=0)], [inst(1)], partial_queue=True),
     CoreState(instances={"i-1": joined(1)}), 700, []),
    ("worker just gone from the pool: noted, not terminated yet", (),
     snap([], [], [inst(1)]), CoreState(instances={"i-1": joined(1, 0)}), 301, []),
    ("worker gone from the pool for the deploy time is terminated", (),
     snap([], [], [inst(1)]),
     CoreState(instances={"i-1": InstanceRecord(Lifecycle.JOINED, 0, 0, 0, "w1", missing_since=1.0)}),
     301, [("Terminate", ("i-1",))]),
]


@pytest.mark.parametrize("name,extra,snapshot,memory,now,expected", CASES, ids=[c[0] for c in CASES])
def test_plan_table(name, extra, snapshot, memory, now, expected):
    plan, _ = tick(snapshot, memory, cfg(*extra), now)
    got = []
    for action in plan.actions:
        if isinstance(action, Launch):
            got.append(("Launch", action.count))
        elif isinstance(action, Terminate):
            got.append(("Terminate", action.instance_ids))
        else:
            got.append((type(action).__name__, action.instance_id))
    assert got == expected, plan
    assert all(isinstance(a.reason, Reason) for a in plan.actions)


def test_waiting_timer_starts_then_fires_at_next_check():
    config = cfg()
    plan, memory = tick(snap(jobs(5)), CoreState(), config, 100)
    assert plan.actions == () and memory.waiting_since == 100 and plan.next_check == 140
    assert plan.notes[0] == Reason.of(Code.WAITING, count=5, held=0, wait=40)
    plan, memory = tick(snap(jobs(5)), memory, config, plan.next_check)
    assert plan.launch_count == 2
    assert plan.actions[0].reason == Reason.of(Code.JOBS_WAITING, jobs=5, held=40, wait=40,
                                               booting=0, alive=0, max_vms=5)


def test_waiting_timer_resets_when_demand_goes():
    _, memory = tick(snap(jobs(5)), CoreState(), cfg(), 100)
    _, memory = tick(snap(), memory, cfg(), 120)
    assert memory.waiting_since is None


def test_unreadable_cloud_makes_no_decision_and_keeps_memory():
    memory = CoreState(waiting_since=0, instances={"i-1": joined(1)})
    plan, after = tick(Snapshot(Queue(jobs(50)), Pool(), None, ("cloud: timeout",)),
                       memory, cfg("quota.min_vms=3"), 1000)
    assert plan.actions == () and after == memory
    assert plan.notes[0] == Reason.of(Code.NO_DECISION, problems="cloud: timeout")


def test_unreadable_pool_still_keeps_min_vms_but_never_scales_down():
    snapshot = Snapshot(Queue(jobs(50)), None, (inst(1, launched=0),), ("pool: collector down",))
    plan, _ = tick(snapshot, CoreState(waiting_since=0), cfg("quota.min_vms=3"), 1000)
    assert [type(a) for a in plan.actions] == [Launch]
    assert plan.launch_count == 2  # to min_vms only: no demand is computed without the pool
    assert any(n.code is Code.NO_SCALE_DOWN and "collector down" in n["cause"]["problems"]
               for n in plan.notes)


def test_failed_launches_back_off_exponentially_with_a_cap():
    config = cfg("elastiq.launch_backoff_s=60", "elastiq.launch_backoff_max_s=300")
    memory = CoreState(waiting_since=0)
    delays = []
    for attempt in range(5):
        memory = record_launch(memory, LaunchOutcome(2, (), "quota"), config, 1000)
        delays.append(memory.backoff_until - 1000)
    assert delays == [60, 120, 240, 300, 300]
    plan, _ = tick(snap(jobs(4)), memory, config, 1299)
    assert plan.actions == () and plan.notes[-1].code is Code.BACKOFF
    assert plan.notes[-1]["failures"] == 5
    assert plan.next_check == 1300
    plan, _ = tick(snap(jobs(4)), memory, config, 1300)
    assert plan.launch_count == 1


def test_never_joined_counts_as_failure_and_join_resets_it():
    config = cfg()
    plan, memory = tick(snap([], [], [inst(1, launched=1)]), CoreState(), config, 400)
    assert plan.terminated_ids == ("i-1",) and memory.failures == 1 and memory.backoff_until == 460
    assert memory.instances["i-1"].lifecycle is Lifecycle.TERMINATING
    memory = record_launch(memory, LaunchOutcome(1, ("i-2",)), config, 500)
    _, memory = tick(snap([], [worker(2)], [inst(2, launched=500)]), memory, config, 520)
    assert memory.failures == 0 and memory.instances["i-2"].lifecycle is Lifecycle.JOINED


def test_drain_then_terminate_over_three_ticks():
    config = cfg()
    memory = CoreState(instances={"i-1": joined(1)})
    plan, memory = tick(snap([], [worker(1, idle_since=0)], [inst(1)]), memory, config, 700)
    assert [type(a) for a in plan.actions] == [Drain]
    assert memory.instances["i-1"].lifecycle is Lifecycle.DRAINING
    # the drain took effect but a job was matched just before: keep waiting
    plan, memory = tick(snap([], [worker(1, claimed=1, draining=True)], [inst(1)]), memory, config, 715)
    assert plan.actions == ()
    plan, memory = tick(snap([], [worker(1, idle_since=900, draining=True)], [inst(1)]), memory, config, 930)
    assert plan.terminated_ids == ("i-1",)


def test_drain_that_did_not_take_effect_is_reconsidered():
    memory = CoreState(instances={"i-1": joined(1)})
    _, memory = tick(snap([], [worker(1, idle_since=0)], [inst(1)]), memory, cfg(), 700)
    plan, memory = tick(snap([], [worker(1, idle_since=0)], [inst(1)]), memory, cfg(), 715)
    assert memory.instances["i-1"].lifecycle is Lifecycle.DRAINING
    assert [type(a) for a in plan.actions] == [Drain]


def test_no_drain_while_launching():
    memory = CoreState(waiting_since=0, instances={"i-1": joined(1)})
    snapshot = snap(jobs(8, cpus=4, memory=1000), [worker(1, idle_since=0, cpus=2, memory=4000)], [inst(1)])
    plan, _ = tick(snapshot, memory, cfg(), 700)
    assert kinds(plan) == ["Launch"]
    assert Code.KEPT_LAUNCHING in [n.code for n in plan.notes]


def test_max_vms_never_exceeded_when_already_full():
    instances = [inst(k, InstanceState.BOOTING, 990) for k in range(5)]
    plan, _ = tick(snap(jobs(100), [], instances), CoreState(waiting_since=0), cfg(), 1000)
    assert plan.launch_count == 0
    assert any(n.code in (Code.MAX_VMS, Code.NO_ROOM) and n["max_vms"] == 5 for n in plan.notes)


def test_unmatchable_jobs_are_reported():
    plan, _ = tick(snap(jobs(2, fits_worker=False)), CoreState(), cfg(), 1)
    assert plan.notes == (Reason.of(Code.UNMATCHABLE, count=2),)


def test_a_drain_cancelled_for_waiting_jobs_is_not_terminated_in_the_same_plan():
    """Drained, unclaimed, and jobs arrive: the drain is cancelled at once (it costs nothing,
    so without waiting for waiting_jobs_time_s) and the worker stays."""
    memory = CoreState(instances={"i-1": joined(1, 600, Lifecycle.DRAINING)})
    snapshot = snap(jobs(2), [worker(1, idle_since=0, draining=True)], [inst(1)])
    plan, memory = tick(snapshot, memory, cfg(), 700)
    assert kinds(plan) == ["CancelDrain"]
    assert plan.actions[0].reason == Reason.of(Code.JOBS_WAITING, jobs=2)
    assert memory.instances["i-1"].lifecycle is Lifecycle.JOINED


def test_fresh_waiting_jobs_keep_idle_workers_but_stale_ones_do_not():
    memory = CoreState(instances={"i-1": joined(1)})
    idle_worker = worker(1, idle_since=0)
    fresh = (Job("j", 1, 1000, 650.0),)  # waiting 50 s: the negotiator will give it to w1
    plan, _ = tick(snap(fresh, [idle_worker], [inst(1)]), memory, cfg(), 700)
    assert plan.actions == () and Reason.of(Code.KEPT_FOR_JOBS, count=1, jobs=1) in plan.notes
    stale = (Job("j", 1, 1000, 50.0),)  # waiting longer than idle_for: something else holds it
    plan, _ = tick(snap(stale, [idle_worker], [inst(1)]), memory, cfg(), 700)
    assert kinds(plan) == ["Drain"]


def test_booting_vms_no_job_needs_any_more_are_cancelled_newest_first():
    """Three VMs were launched for three 4-core jobs; two jobs found room on a worker that
    freed up: the two newest booting VMs go, the oldest stays for the remaining job."""
    memory = CoreState(instances={"i-1": joined(1)})
    instances = [inst(1), inst(2, InstanceState.BOOTING, 100), inst(3, InstanceState.BOOTING, 110),
                 inst(4, InstanceState.BOOTING, 120)]
    snapshot = snap(jobs(1, cpus=4), [worker(1, claimed=2, free=0)], instances)
    plan, memory = tick(snapshot, memory, cfg(), 200)
    assert plan.terminated_ids == ("i-4", "i-3")
    assert plan.actions[0].reason.code is Code.UNNEEDED
    assert memory.failures == 0  # not a failure: no back-off


def test_a_booting_vm_stays_when_the_free_room_is_a_claim_the_pool_has_not_heard_of():
    """The schedd runs a job on w1 (RemoteHost) while w1's slot ad still shows it free (the
    collector hears of the claim later): that room is not counted, so the booting VM launched
    for the two jobs still waiting stays (CI: it was terminated, and relaunched 3 s later)."""
    memory = CoreState(instances={"i-1": joined(1)})
    instances = [inst(1), inst(2, InstanceState.BOOTING, 100), inst(3, InstanceState.BOOTING, 110)]
    stale = worker(1)  # its ad: unclaimed, its 4 cpus free
    queue = Queue(jobs(2, cpus=4), 1, running_on=frozenset({"w1"}))
    plan, _ = tick(Snapshot(queue, Pool((stale,)), tuple(instances)), memory, cfg(), 200)
    assert plan.terminated_ids == ()
    told = Queue(jobs(2, cpus=4), 1)  # no job on w1 as far as the schedd says: its room counts
    plan, _ = tick(Snapshot(told, Pool((stale,)), tuple(instances)), memory, cfg(), 200)
    assert plan.terminated_ids == ("i-3",) and plan.actions[0].reason.code is Code.UNNEEDED


def test_booting_surplus_respects_min_vms_and_spares_unlisted_launches():
    memory = CoreState(instances={"i-9": InstanceRecord(Lifecycle.REQUESTED, 190, 190)})
    snapshot = snap([], [], [inst(1, InstanceState.BOOTING, 100), inst(2, InstanceState.BOOTING, 150)])
    plan, _ = tick(snapshot, memory, cfg("quota.min_vms=2"), 200)
    assert plan.terminated_ids == ("i-2",)  # 3 alive, min 2: one goes, never the unlisted i-9
