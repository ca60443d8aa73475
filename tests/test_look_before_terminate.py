"""Issue 10.3: look at the pool right before terminating (the three windows of a kill).

Each race runs the daemon's Runtime on the simulated cloud and pool; between the observation
and the actions the world moves on (a VM joins, the negotiator matches a job).  Before the
look, each case killed one job.
"""
from __future__ import annotations

import pytest

from elastiq.adapters.base import TransientError
from elastiq.config import params_of
from elastiq.model import InstanceState, Lifecycle
from tests.support.sim_world import SimWorld


def test_a_vm_at_its_deploy_deadline_that_joins_and_gets_a_job_is_not_terminated(tmp_path):
    # min_vms 1 launches VM1 at t=0; it joins at 125 s, after its 120 s deploy deadline:
    # the tick at 120 s plans its termination; meanwhile it joins and job 1.0 starts on it.
    w = SimWorld(tmp_path, [(121.0, 1000.0)], boot_s=125.0)
    w.config = w.runtime.config
    _keep_min_vms(w, 1)
    w.tick(0.0)
    (vm,) = w.cloud.vms
    w.tick(120.0, after_observe=lambda: w.move(126.0))
    assert w.pool.jobs_killed == 0
    assert w.cloud.vms[vm].state is InstanceState.RUNNING
    assert w.lifecycle(vm) is Lifecycle.DRAINING
    assert any("held back: its worker" in d and "runs 1 job(s)" in d for d in w.decisions)


def test_a_booting_vm_no_longer_needed_that_joins_and_gets_a_job_is_not_terminated(tmp_path):
    # A (0-50 s) runs on VM1; B (40 s) makes VM2 launch; A ends, B starts on VM1, so VM2 is
    # no longer needed; before its termination it joins (70 s) and C (70.5 s) starts there.
    w = SimWorld(tmp_path, [(0.0, 20.0), (40.0, 1000.0), (70.5, 1000.0)], boot_s=30.0)
    for t in (0.0, 30.0, 40.0):
        w.tick(t)
    vm2 = sorted(w.cloud.vms)[1]
    w.tick(50.0, after_observe=lambda: w.move(71.0))
    assert any("booting, no longer needed" in d for d in w.decisions)
    assert w.pool.jobs_killed == 0 and w.cloud.vms[vm2].state is InstanceState.RUNNING


def test_a_drained_worker_matched_before_the_terminate_is_kept(tmp_path):
    w = SimWorld(tmp_path, [(0.0, 10.0), (500.0, 1000.0)], boot_s=30.0, idle_timeout_max_s=100)
    for t in (0.0, 30.0, 140.0):  # 1.0 runs 30-40; idle 100 s: drained at 140
        w.tick(t)
    (vm,) = w.cloud.vms
    assert w.lifecycle(vm) is Lifecycle.DRAINING

    def matched_anyway():  # HTCondor normally refuses this: a drained slot gets a job
        w.pool.cancel_drain(w.pool.workers[vm].name)
        w.move(500.0)
        w.pool.drain(w.pool.workers[vm].name, "again")
    w.tick(150.0, after_observe=matched_anyway)
    assert w.pool.jobs_killed == 0 and w.cloud.vms[vm].state is InstanceState.RUNNING
    w.tick(1600.0)  # the job ended at 1500: now it goes
    assert w.cloud.vms[vm].state is InstanceState.SHUTTING_DOWN and w.pool.jobs_killed == 0


def test_nothing_is_terminated_when_the_look_fails(tmp_path):
    w = SimWorld(tmp_path, [], boot_s=125.0)
    _keep_min_vms(w, 1)
    w.tick(0.0)
    (vm,) = w.cloud.vms
    w.pool.workers_of = _failing
    w.tick(120.0)
    assert w.cloud.vms[vm].state is not InstanceState.SHUTTING_DOWN
    assert any("held back: the pool cannot be read (transient error)" in d for d in w.decisions)
    assert w.lifecycle(vm) is not Lifecycle.TERMINATING  # the core decides afresh next tick


def _failing(*_args, **_kw):
    raise TransientError("collector down")


def _keep_min_vms(w: SimWorld, count: int) -> None:
    """The runtime's configuration and the core's parameters built from it, with ``min_vms``."""
    w.runtime.config = w.runtime.actuator.config = _with(w.runtime.config, quota={"min_vms": count})
    w.runtime.params = w.runtime.actuator.params = params_of(w.runtime.config)


def _with(config, **sections):
    from dataclasses import replace
    return replace(config, **{k: replace(getattr(config, k), **v) for k, v in sections.items()})


# ------------------------------------------------------------------ the HTCondor adapter


def test_htcondor_look_is_one_targeted_query():
    from tests.test_htcondor_adapter import batch, fake
    bindings = fake()
    found = batch(bindings).workers_of(["i-0a1b2c3d4e5f60002", "i-none"])
    assert list(found) == ["i-0a1b2c3d4e5f60002"]
    b = found["i-0a1b2c3d4e5f60002"]
    assert b.draining and b.running_jobs == 2
    (call,) = [c for c in bindings.calls if c[0] == "query_slots"]
    assert 'ElastiqInstanceId =?= "i-0a1b2c3d4e5f60002"' in call[1]


def test_htcondor_look_fails_as_a_transient_error():
    from tests.test_htcondor_adapter import batch, fake
    bindings = fake()
    bindings.query_slots = _failing_oserror
    with pytest.raises(TransientError, match="cannot look at the pool before terminating"):
        batch(bindings).workers_of(["i-0a1b2c3d4e5f60002"])


def _failing_oserror(*_a, **_k):
    raise OSError("connection refused")
