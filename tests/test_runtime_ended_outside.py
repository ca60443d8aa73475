"""VMs that end without elastiq terminating them (deleted by an administrator, powered off by
a worker's safety net) are said once, at INFO, and forgotten at once when the cloud no longer
lists them (issue 25, item 6): before, such a VM vanished with no log line, and one deleted
while still "requested" stayed so until estimated_vm_deploy_time_s had passed."""
from __future__ import annotations

import logging
from dataclasses import replace

from elastiq.core import get_policy
from elastiq.model import InstanceState, Lifecycle
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.world import make_config, world


def runtime(tmp_path):
    clock, cloud, batch = world()
    rt = Runtime(make_config(tmp_path), get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "state")), clock=clock)
    return clock, cloud, batch, rt


def said(caplog, text):
    return [r for r in caplog.records if r.levelno == logging.INFO and text in r.getMessage()]


def test_a_vm_deleted_outside_elastiq_is_said_once_and_forgotten(tmp_path, caplog):
    clock, cloud, batch, rt = runtime(tmp_path)
    iid = cloud.add(launched_at=clock.now - 900)
    rt.tick("start")
    assert rt.state.records[iid].listed_at == clock.now
    del cloud.instances[iid]  # OpenStack lists a deleted server no more
    with caplog.at_level(logging.INFO, logger="elastiq"):
        for _ in range(3):
            clock.advance(60)
            rt.tick("check")
    lines = said(caplog, "ended without elastiq terminating it")
    assert [r.getMessage() for r in lines] == [
        f"{iid} ended without elastiq terminating it: deleted outside elastiq, or powered off "
        "by a safety net"]
    assert iid not in rt.state.records


def test_a_vm_shutting_down_by_itself_is_said_once_and_ours_are_not(tmp_path, caplog):
    """EC2 lists an instance ended outside as shutting-down, then terminated."""
    clock, cloud, batch, rt = runtime(tmp_path)
    outside, ours = cloud.add(launched_at=clock.now - 900), cloud.add(launched_at=clock.now - 900)
    rt.tick("start")
    cloud.instances[outside] = replace(cloud.instances[outside], state=InstanceState.SHUTTING_DOWN)
    cloud.terminate([ours])  # as elastiq's terminate would
    records = dict(rt.state.records)
    records[ours] = replace(records[ours], lifecycle=Lifecycle.TERMINATING)
    rt.state = replace(rt.state, records=records)
    with caplog.at_level(logging.INFO, logger="elastiq"):
        clock.advance(60)
        rt.tick("check")
        cloud.instances[outside] = replace(cloud.instances[outside], state=InstanceState.GONE)
        clock.advance(60)
        rt.tick("check")
    assert len(said(caplog, f"{outside} ended without elastiq")) == 1
    assert not said(caplog, ours)


def test_a_requested_vm_deleted_after_being_listed_is_forgotten_at_once(tmp_path, caplog):
    clock, cloud, batch, rt = runtime(tmp_path)
    iid = cloud.add(state=InstanceState.REQUESTED)  # young: well within the deploy time
    batch.submit(1)  # a job waits for it: it is kept
    rt.tick("start")
    assert rt.state.records[iid].lifecycle is Lifecycle.REQUESTED
    del cloud.instances[iid]
    with caplog.at_level(logging.INFO, logger="elastiq"):
        clock.advance(30)
        rt.tick("check")
    assert iid not in rt.state.records  # before: kept "requested" for 600 s more
    assert said(caplog, f"{iid} ended without elastiq terminating it")
