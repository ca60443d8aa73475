"""A consolidation drain through the daemon's own tick (simulated cloud and pool, virtual
time): the decision log says why the worker is drained, the state records the drain as a
consolidation, and ``status`` shows the worker as consolidating, apart from idle drains."""
from __future__ import annotations

import argparse
import json

from elastiq.model import Lifecycle
from elastiq.cli import status
from tests.support.sim_world import SimWorld

# 8 one-cpu jobs at 0 on 4-cpu VMs: two workers, each left with one long job (25% used).
JOBS = [(0.0, 5000.0)] + [(0.0, 100.0)] * 3 + [(0.0, 5000.0)] + [(0.0, 100.0)] * 3


def test_consolidation_drain_is_logged_and_shown(tmp_path, capsys):
    w = SimWorld(tmp_path, JOBS, boot_s=30.0, vm={"cpus": 4, "memory_mb": 8192},
                 consolidate_below=0.5, consolidate_after_s=200, idle_timeout_max_s=3600)
    for t in range(0, 600, 15):
        w.tick(float(t))
    drains = [t for t in w.decisions if ": consolidation: " in t]
    assert len(drains) == 1 and drains[0].startswith("drain "), w.decisions
    assert w.runtime.metrics.actions.get(("drain", "consolidation")) == 1
    assert "25% used < 50% for " in drains[0] and "no job needs a new VM" in drains[0]
    assert "1 job(s) finish there" in drains[0]
    records = w.runtime.state.records
    drained = [i for i, r in records.items() if r.drain == "consolidation"]
    assert len(drained) == 1 and records[drained[0]].lifecycle is Lifecycle.DRAINING
    assert drained[0] in drains[0]

    args = argparse.Namespace(json=True, live=False, decisions=100)
    assert status.show(args, w.config) == status.EXIT_NOT_RUNNING
    shown = {v["instance_id"]: v for v in json.loads(capsys.readouterr().out)["vms"]}
    assert shown[drained[0]]["state"] == status.CONSOLIDATING
    assert shown[drained[0]]["drain"] == "consolidation"
    assert [v["state"] for i, v in shown.items() if i != drained[0]] == ["joined"]
