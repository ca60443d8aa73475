"""The actuator: one action at a time, failures isolated, dry run, abandon on shutdown."""
from __future__ import annotations

import logging

from elastiq.adapters.base import QuotaError, TransientError
from elastiq.core import get_policy
from elastiq.core.reasons import Code, Reason
from elastiq.model import (CancelDrain, Drain, InstanceRecord, Launch, Lifecycle, Memory, Plan,
                           Terminate)
from elastiq.runtime.actuator import Actuator
from elastiq.runtime.metrics import Metrics
from elastiq.runtime.state import UnknownLaunch
from tests.support.world import make_config, world

POLICY = get_policy("default")
IDLE = Reason.of(Code.IDLE, idle=700.0, timeout=600.0, basis=Reason.of(Code.IDLE_TIMEOUT_MAX))
WAITING = Reason.of(Code.JOBS_WAITING, jobs=11, held=140.0, wait=40.0, booting=1, alive=1,
                    max_vms=10)
DRAINED = Reason.of(Code.DRAINED)


def actuator(tmp_path, **kw):
    clock, cloud, batch = world()
    metrics = Metrics()
    act = Actuator(batch, cloud, POLICY, kw.pop("cfg", make_config(tmp_path)), clock, metrics, **kw)
    return act, clock, cloud, batch, metrics


def joined(clock, *ids):
    return {i: InstanceRecord(Lifecycle.JOINED, clock.now - 50, clock.now - 100, clock.now - 90,
                              f"w-{i}") for i in ids}


def test_each_failure_is_isolated_and_the_rest_still_runs(tmp_path, caplog):
    act, clock, cloud, batch, metrics = actuator(tmp_path)
    a, b = cloud.add(), cloud.add()
    batch.faults.fail("drain", TransientError("schedd busy"))
    cloud.faults.fail("launch", QuotaError("InstanceLimitExceeded"))
    plan = Plan((Drain("w1", a, IDLE), Drain("w2", b, IDLE), Launch(2, WAITING),
                 Terminate((a,), DRAINED)))
    with caplog.at_level(logging.INFO, logger="elastiq"):
        out = act.execute(plan, {}, Memory(), {})
    assert batch.drain_calls == ["w2"]  # the first drain failed, the second one ran
    assert cloud.terminate_calls == [(a,)]  # and so did the termination after the failed launch
    assert "drain w1 failed (transient error): schedd busy" in caplog.text
    assert "launch 2 VM(s) failed (quota error): InstanceLimitExceeded" in caplog.text
    assert metrics.errors == {"transient": 1, "quota": 1}
    assert out.memory.failures == 1 and out.memory.backoff_until > clock.now  # back-off started
    kinds = [d.kind for d in out.decisions]
    assert kinds == ["drain", "failed", "drain", "launch", "failed", "terminate"]
    assert out.acted == 4
    # counted by kind and reason code, failed or not (the failed drain and launch were tried)
    assert metrics.actions == {("drain", "idle"): 2, ("launch", "jobs-waiting"): 1,
                               ("terminate", "drained"): 1}


def test_each_decision_is_one_info_line_with_its_reason(tmp_path, caplog):
    """Golden: the wording of each kind of action as logged (and shown by ``status``)."""
    act, clock, cloud, batch, _ = actuator(tmp_path)
    a, b = cloud.add(), cloud.add()
    records = joined(clock, a, b)
    with caplog.at_level(logging.DEBUG, logger="elastiq"):
        act.execute(Plan((Launch(3, WAITING), Launch(1, WAITING, "m1.small"),
                          Drain(f"w-{a}", a, IDLE),
                          CancelDrain(f"w-{a}", a, Reason.of(Code.JOBS_WAITING, jobs=2)),
                          Terminate((b,), Reason.of(Code.IN_ERROR)))), records, Memory(), records)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "launch 3: 11 jobs waiting 140 s >= 40 s, 1 VM booting, 1/10 VMs",
        "launch 1 m1.small: 11 jobs waiting 140 s >= 40 s, 1 VM booting, 1/10 VMs",
        f"drain w-{a}: idle for 700 s >= 600 s (idle_timeout_max_s) ({a})",
        f"cancel drain of w-{a}: 2 jobs waiting ({a})",
        f"terminate {b}: in error"]


def test_launch_outcome_is_recorded_and_persisted_at_once(tmp_path):
    act, clock, cloud, batch, metrics = actuator(tmp_path)
    cloud.capacity = 2
    persisted = []
    out = act.execute(Plan((Launch(3, WAITING),)), {}, Memory(), {},
                      persist=lambda records, memory, granted: persisted.append((records, granted)))
    assert len(out.launched) == 2 and metrics.launches == 2
    assert persisted == [(out.records, out.launched)]
    assert {i: r.lifecycle for i, r in out.records.items()} == \
        {i: Lifecycle.REQUESTED for i in out.launched}


def test_a_failing_multi_instance_terminate_is_retried_one_by_one(tmp_path):
    act, clock, cloud, batch, metrics = actuator(tmp_path)
    ids = (cloud.add(), cloud.add(), cloud.add())
    cloud.faults.fail("terminate", TransientError("one id is bad"))  # the batch call
    original = cloud.terminate

    def terminate(instance_ids):
        if instance_ids == (ids[1],):
            raise TransientError(f"cannot terminate {ids[1]}")
        original(instance_ids)

    cloud.terminate = terminate
    out = act.execute(Plan((Terminate(ids, DRAINED),)), {}, Memory(), {})
    assert cloud.terminate_calls == [(ids[0],), (ids[2],)]
    assert metrics.terminations == 2
    assert out.decisions[-1].text == f"terminate failed for {ids[1]}"
    assert batch.forget_calls == [(ids[0], ids[2])]  # the batch system forgets those gone


def test_the_batch_system_forgets_the_workers_of_the_vms_terminated_and_only_those(
        tmp_path, caplog):
    """Issue 28: after a terminate the cloud accepted, ``BatchSystem.forget`` (Slurm deletes
    the nodes at once); not after a failed one; its own failure is logged, the terminate
    stays done."""
    act, clock, cloud, batch, metrics = actuator(tmp_path)
    a, b, c = cloud.add(), cloud.add(), cloud.add()
    act.execute(Plan((Terminate((a, b), DRAINED),)), {}, Memory(), {})
    assert batch.forget_calls == [(a, b)]
    cloud.faults.fail("terminate", TransientError("API down"))
    out = act.execute(Plan((Terminate((c,), DRAINED),)), {}, Memory(), {})
    assert batch.forget_calls == [(a, b)] and out.decisions[-1].kind == "failed"
    batch.faults.fail("forget", TransientError("slurmctld busy"))
    with caplog.at_level(logging.WARNING, logger="elastiq"):
        out = act.execute(Plan((Terminate((c,), DRAINED),)), {}, Memory(), {})
    assert [d.kind for d in out.decisions] == ["terminate"] and metrics.terminations == 3
    assert f"forget the workers of {c} failed (transient error): slurmctld busy" in caplog.text


def test_dry_run_changes_nothing_and_undoes_the_cores_marks(tmp_path, caplog):
    act, clock, cloud, batch, _ = actuator(tmp_path, cfg=make_config(
        tmp_path, debug={"dry_run_boot_vms": True, "dry_run_shutdown_vms": True}))
    a, b = cloud.add(), cloud.add()
    before = joined(clock, a, b)
    marked = {
        a: InstanceRecord(Lifecycle.DRAINING, clock.now, clock.now - 100, clock.now - 90, f"w-{a}"),
        b: InstanceRecord(Lifecycle.TERMINATING, clock.now, clock.now - 100, clock.now - 90, f"w-{b}"),
    }
    plan = Plan((Launch(2, WAITING), Drain(f"w-{a}", a, IDLE),
                 CancelDrain(f"w-{a}", a, WAITING), Terminate((b,), DRAINED)))
    with caplog.at_level(logging.INFO, logger="elastiq"):
        out = act.execute(plan, marked, Memory(), before)
    assert cloud.launch_calls == [] and cloud.terminate_calls == []
    assert batch.drain_calls == [] and batch.cancel_calls == [] and batch.forget_calls == []
    assert dict(out.records) == before
    assert "dry run, would launch 2: 11 jobs waiting" in caplog.text
    assert f"dry run, would terminate {b}: drained, no claimed slot" in caplog.text
    assert out.acted == 0 and not out.changed_cloud and act.metrics.actions == {}


def test_dry_run_boot_only_still_shuts_down(tmp_path):
    act, clock, cloud, batch, _ = actuator(tmp_path, dry_run_boot=True)
    a = cloud.add()
    act.execute(Plan((Launch(1, WAITING), Terminate((a,), DRAINED))), {}, Memory(), {})
    assert cloud.launch_calls == [] and cloud.terminate_calls == [(a,)]


def stopped_during_first_drain(tmp_path):
    """An actuator whose stop request (SIGTERM) arrives while its first drain runs."""
    stopping = []
    act, clock, cloud, batch, store = actuator(tmp_path, should_stop=lambda: bool(stopping))
    original = batch.drain

    def drain(worker, reason):
        original(worker, reason)
        stopping.append(True)

    batch.drain = drain
    return act, clock, cloud, batch, store


def test_stop_request_abandons_the_remaining_actions(tmp_path, caplog):
    act, clock, cloud, batch, _ = stopped_during_first_drain(tmp_path)
    a, b = cloud.add(), cloud.add()
    with caplog.at_level(logging.INFO, logger="elastiq"):
        out = act.execute(Plan((Drain("w1", a, IDLE), Drain("w2", b, IDLE), Terminate((a,), DRAINED))),
                          {}, Memory(), {})
    assert batch.drain_calls == ["w1"] and cloud.terminate_calls == []
    assert out.abandoned == 2
    assert "shutting down: 2 planned action(s) abandoned" in caplog.text


def test_abandoned_actions_leave_no_lifecycle_mark(tmp_path):
    """An abandoned Terminate must not survive the restart as 'terminating': the core decides
    afresh (its reason may no longer hold); the drain that was carried out keeps its mark."""
    act, clock, cloud, batch, _ = stopped_during_first_drain(tmp_path)
    a, b = cloud.add(), cloud.add()
    before = {i: InstanceRecord(Lifecycle.JOINED, 0.0, 0.0, 1.0, w)
              for i, w in ((a, "w1"), (b, "w2"))}
    marked = {a: InstanceRecord(Lifecycle.DRAINING, 5.0, 0.0, 1.0, "w1"),
              b: InstanceRecord(Lifecycle.TERMINATING, 5.0, 0.0, 1.0, "w2")}
    out = act.execute(Plan((Drain("w1", a, IDLE), Terminate((b,), DRAINED))), marked, Memory(),
                      before)
    assert out.abandoned == 1 and cloud.terminate_calls == []
    assert out.records[a].lifecycle is Lifecycle.DRAINING
    assert out.records[b] == before[b]


def test_a_launch_whose_answer_was_lost_is_asked_again_until_its_outcome_is_known(tmp_path):
    """A transient launch error leaves the outcome unknown; the same request is asked again
    (same id, count, flavour), its failure is not counted twice, and it is given up after
    ``estimated_vm_deploy_time_s`` (a VM it made is adopted from the listing by then)."""
    act, clock, cloud, batch, metrics = actuator(tmp_path)
    asked = []
    launch = cloud.launch

    def recording(count, **kw):
        asked.append((count, kw["flavour"], kw["request_id"]))
        return launch(count, **kw)

    cloud.launch = recording
    cloud.faults.fail("launch", TransientError("read timeout"), times=2)
    out = act.execute(Plan((Launch(2, WAITING, "m1.small"),)), {}, Memory(), {})
    (lost,) = out.unknown
    assert (lost.count, lost.flavour) == (2, "m1.small") and out.memory.failures == 1
    records, memory, left, decisions = act.retry_unknown(out.unknown, out.records, out.memory)
    assert left == (lost,) and memory.failures == 1  # failed again: still unknown, counted once
    clock.advance(10)
    records, memory, left, decisions = act.retry_unknown(left, records, memory)
    assert left == () and len(asked) == 3 and len(set(asked)) == 1  # the same request each time
    assert [r.lifecycle for r in records.values()] == [Lifecycle.REQUESTED] * 2
    assert decisions[0].text == f"launch 2 m1.small: retry of launch request {lost.request_id}," \
                                " whose outcome is unknown"
    assert metrics.actions[("launch", "retry")] == 2
    # while one is unknown, a new launch waits: should the retry launch after all, the two
    # together could exceed max_vms
    held = act.execute(Plan((Launch(1, WAITING),)), records, memory, records, hold_launches=True)
    assert len(asked) == 3 and held.acted == 0 and held.memory is memory
    assert [d.text for d in held.decisions] == [
        "launch 1 held back: an earlier launch's outcome is not known yet"]
    deploy = act.config.elastiq.estimated_vm_deploy_time_s
    assert act.retry_unknown((UnknownLaunch("r-1", 1, None, clock.now - deploy),), records,
                             memory)[2] == ()
    assert len(asked) == 4  # still asked at the deadline ...
    late = UnknownLaunch("r-2", 1, None, clock.now - deploy - 1)  # ... given up after it
    assert act.retry_unknown((late,), records, memory)[2:] == ((), ()) and len(asked) == 4
