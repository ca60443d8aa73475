"""Cores and memory quotas in the simulator: measured (quota_violations, peaks) and honoured
by elastiq's policies and the peers alike."""
from __future__ import annotations

import pytest

from elastiq import config
from elastiq.sim import engine
from elastiq.sim.compare import comparison_table
from elastiq.sim.metrics import summary_table
from elastiq.sim.workload import synthetic

BASE = ["vm.cpus=4", "vm.memory_mb=8192", "elastiq.idle_timeout_max_s=600"]
POLICIES = ["default", "legacy", "autoscaler", "cobald"]


def replay(policy, *sets, work=None):
    sim = engine.Simulation(work or synthetic(0), config.load(None, BASE + list(sets)),
                            engine.SimOptions(policy=policy, timeline=False))
    return sim, sim.run()


def test_the_default_policy_keeps_a_cores_quota_that_binds():
    _, free = replay("default", "quota.max_vms=40")
    assert free["cores_peak"] > 20  # without it the workload takes more than 20 cores
    _, r = replay("default", "quota.max_vms=40", "quota.max_cores=20")
    assert r["quota_violations"] == 0 and r["cores_peak"] == 20 and r["vms_peak"] == 5
    assert r["jobs_completed"] == r["jobs"] and r["jobs_killed"] == 0
    assert r["knobs"]["max_cores"] == 20
    line, = (t for t in summary_table(r).splitlines() if t.startswith("quota violations"))
    assert "0 ticks over max_cores 20" in line and line.endswith("ok")
    assert "ticks over quota" in comparison_table({"default": r})


def test_several_flavours_fill_a_cores_quota_with_smaller_vms():
    family = "ec2.flavour=vm8:8:16384,vm4:4:8192,vm2:2:4096"
    _, r = replay("default", "quota.max_vms=40", "quota.max_cores=22", family,
                  "vm.cpus=8", "vm.memory_mb=16384")
    assert r["quota_violations"] == 0 and r["cores_peak"] <= 22
    assert r["jobs_completed"] == r["jobs"] and r["jobs_killed"] == 0
    assert len(r["by_size"]) > 1  # the family was used, not only the 8-cpu flavour


def test_the_metric_counts_ticks_over_the_quota():
    """The recorder judges by its own configuration: a policy run without the quota, judged
    against it, is seen over it."""
    cfg = config.load(None, BASE + ["quota.max_vms=40"])
    sim = engine.Simulation(synthetic(0), cfg, engine.SimOptions(timeline=False))
    sim.config = config.load(None, BASE + ["quota.max_vms=40", "quota.max_memory_mb=40960"])
    r = sim.run()
    assert r["quota_violations"] > 0 and r["memory_mb_peak"] > 40960


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_counts_a_cores_quota_as_the_vm_quota_it_equals(policy):
    """One flavour of 4 cpus / 8 GiB: max_cores 20 (or max_memory_mb 40960) with room for 40
    VMs decides exactly as max_vms 5: every policy counts the same alive VMs."""
    pytest.importorskip("cobald") if policy == "cobald" else None
    by_vms, r_vms = replay(policy, "quota.max_vms=5")
    by_cores, r_cores = replay(policy, "quota.max_vms=40", "quota.max_cores=20")
    by_memory, _ = replay(policy, "quota.max_vms=40", "quota.max_memory_mb=40960")
    assert by_cores.world.actions == by_vms.world.actions == by_memory.world.actions
    assert r_cores["cores_peak"] == r_vms["cores_peak"]
    if policy != "cobald":  # COBalD/TARDIS lets new drones start while others drain
        assert r_cores["quota_violations"] == 0 and r_cores["cores_peak"] <= 20
    else:
        assert r_cores["quota_violations"] == r_vms["max_vms_violations"] > 0
