"""Property tests of the default policy over random snapshots and memories."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from elastiq.config import load
from elastiq.model import (
    ALIVE_STATES,
    CancelDrain,
    Drain,
    Instance,
    InstanceRecord,
    InstanceState,
    Job,
    Lifecycle,
    Pool,
    Queue,
    Snapshot,
    Terminate,
    Worker,
)
from elastiq.core.reasons import Reason
from tests.support.core_tick import CoreState, tick

OURS = "ours"
NOW = 10_000.0
IDS = [f"i-{k}" for k in range(12)]

times = st.floats(min_value=0, max_value=NOW, allow_nan=False)
rarely = st.sampled_from([False] * 7 + [True])  # failed or partial observations, 1 in 8


@st.composite
def configs(draw):
    max_vms = draw(st.integers(0, 8))
    min_vms = draw(st.integers(0, max_vms))
    return load(None, [
        f"elastiq.cluster_name={OURS}", f"quota.max_vms={max_vms}", f"quota.min_vms={min_vms}",
        f"elastiq.n_jobs_per_vm={draw(st.sampled_from([0, 0, 1, 4]))}",
        f"elastiq.waiting_jobs_threshold={draw(st.integers(0, 3))}",
        f"elastiq.waiting_jobs_time_s={draw(st.sampled_from([0, 40, 600]))}",
        f"elastiq.idle_timeout_max_s={draw(st.sampled_from([0, 60, 3600]))}",
        f"elastiq.estimated_vm_deploy_time_s={draw(st.sampled_from([0, 300, 900]))}",
        f"vm.cpus={draw(st.sampled_from([1, 2, 4]))}", "vm.memory_mb=8000",
    ])


@st.composite
def worlds(draw):
    ids = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=10))
    instances = tuple(
        Instance(i, draw(st.sampled_from(list(InstanceState))), draw(times),
                 draw(st.sampled_from([OURS, OURS, OURS, "other", None])))
        for i in ids
    )
    workers = []
    mapped = draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
    for i in mapped + draw(st.lists(st.sampled_from(IDS), unique=True, max_size=2)):
        claimed = draw(st.integers(0, 3))
        workers.append(Worker(
            f"w-{i}", i, None, 4, 8000, claimed, draw(st.integers(0, 4)), draw(st.integers(0, 8000)),
            None if claimed else draw(st.one_of(st.none(), times)), draw(st.booleans())))
    idle = tuple(
        Job(f"j{n}", draw(st.integers(1, 8)), draw(st.sampled_from([0, 500, 3000, 9000])),
            draw(times), draw(st.booleans()))
        for n in range(draw(st.integers(0, 30)))
    )
    queue = Queue(idle, draw(st.integers(0, 5)), draw(rarely))
    pool = Pool(tuple(workers), draw(rarely))
    queue, pool, listed = (None if draw(rarely) else x for x in (queue, pool, instances))
    records = {
        i: InstanceRecord(draw(st.sampled_from(list(Lifecycle))), draw(times), draw(times),
                          draw(st.one_of(st.none(), times)), None, draw(st.one_of(st.none(), times)))
        for i in draw(st.lists(st.sampled_from(IDS), unique=True, max_size=6))
    }
    memory = CoreState(draw(st.one_of(st.none(), times)), draw(st.sampled_from([0.0, NOW + 50])),
                    draw(st.integers(0, 3)), records)
    return Snapshot(queue, pool, listed), memory


def alive_before(snapshot, memory, config):
    """Ids of the instances we own that cost money: listed alive, or launched and not yet listed."""
    listed = {i.id: i for i in snapshot.instances if i.cluster == OURS}
    alive = {i.id for i in listed.values() if i.state in ALIVE_STATES}
    ghosts = {
        i for i, r in memory.instances.items()
        if i not in listed and r.lifecycle is Lifecycle.REQUESTED
        and NOW - r.launched_at < config.elastiq.estimated_vm_deploy_time_s
    }
    return alive | ghosts


@settings(max_examples=400, deadline=None)
@given(worlds(), configs())
def test_invariants(world, config):
    snapshot, memory = world
    plan, new_memory = tick(snapshot, memory, config, NOW)
    assert all(isinstance(a.reason, Reason) for a in plan.actions)
    if snapshot.instances is None:
        assert plan.actions == () and new_memory == memory
        return

    # never above max_vms, counting requested, booting and in-error instances we own
    before = len(alive_before(snapshot, memory, config))
    if plan.launch_count:
        assert before + plan.launch_count <= config.quota.max_vms

    ours = {i.id for i in snapshot.instances if i.cluster == OURS}
    claimed = {w.instance_id for w in (snapshot.pool.workers if snapshot.pool else ()) if w.busy}
    for action in plan.actions:
        if isinstance(action, Terminate):
            assert set(action.instance_ids) <= ours, "terminated a VM we do not own"
            assert not set(action.instance_ids) & claimed, "terminated a worker with a claimed slot"
        if isinstance(action, Drain):
            assert action.instance_id in ours and action.instance_id not in claimed

    if not snapshot.complete:
        assert not plan.of(Terminate) and not plan.of(Drain), "scaled down on a failed observation"

    # one fate per instance per plan: never cancel a drain (or drain) and terminate together
    touched = [a.instance_id for a in plan.actions if isinstance(a, (Drain, CancelDrain))]
    touched += list(plan.terminated_ids)
    assert len(touched) == len(set(touched)), plan.actions


@settings(max_examples=200, deadline=None)
@given(worlds(), configs(), st.integers(1, 40), st.sampled_from([None, 8000, 20000, 40000]))
def test_never_above_max_cores_or_max_memory(world, config, max_cores, max_memory):
    """As max_vms: every alive VM we own counts with the worker shape (the catalogue knows
    no other flavour here), booting, requested and in error included."""
    config = replace(config, quota=replace(config.quota, max_cores=max_cores,
                                           max_memory_mb=max_memory))
    snapshot, memory = world
    plan, _ = tick(snapshot, memory, config, NOW)
    if snapshot.instances is not None and plan.launch_count:
        vms = len(alive_before(snapshot, memory, config)) + plan.launch_count
        assert vms * config.vm.cpus <= max_cores
        assert max_memory is None or vms * config.vm.memory_mb <= max_memory


def quiet(snapshot):
    """The same world with everything read and no job waiting: where scale-down is allowed."""
    pool = snapshot.pool or Pool()
    return Snapshot(Queue(), Pool(pool.workers), snapshot.instances or ())


def drains_keep_min_vms(snapshot, memory, config) -> bool:
    """Asserts that the plan's drains leave at least min_vms instances staying; whether it
    drained at all."""
    plan, new_memory = tick(snapshot, memory, config, NOW)
    if not plan.of(Drain):
        return False
    alive = alive_before(snapshot, memory, config)
    leaving = {i for i, r in new_memory.instances.items()
               if r.lifecycle in (Lifecycle.DRAINING, Lifecycle.TERMINATING)}
    assert len(alive - leaving) >= config.quota.min_vms
    return True


def test_min_vms_respected_by_drains():
    drained = []

    # derandomized: the examples are the same every run, so the check below that some world
    # made the core drain cannot fail by chance (it did, now and then, with random examples)
    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(worlds(), configs())
    def check(world, config):
        snapshot, memory = world
        drained.append(drains_keep_min_vms(snapshot, memory, config))
        drained.append(drains_keep_min_vms(quiet(snapshot), memory, config))

    check()
    assert any(drained), "no world made the core drain: the property was never checked"


@settings(max_examples=300, deadline=None)
@given(worlds(), configs())
def test_invariants_on_complete_quiet_observations(world, config):
    """Same invariants where scale-down is allowed: everything read, no jobs waiting."""
    snapshot, memory = world
    test_invariants.hypothesis.inner_test((quiet(snapshot), memory), config)
