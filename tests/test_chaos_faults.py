"""Chaos suite (issue 10.4), in-process part: the daemon's tick against moto through the fault
proxy and a simulated pool, in virtual time, seeded; each scenario asserts its counts.

Scenarios: 30% faults on every cloud call kind (launch, describe, terminate, tag) with lost
answers; the pool unreadable for 60 s; the pool empty (collector restart) for 200 s; the
world moving on between observation and action (races).  Every one must end with 0 orphans,
0 instances over max_vms, 0 jobs killed and 0 flaps, and converge back to min_vms (0).
The kill -9 part is tests/test_e2e_crash.py.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.support.chaos import Chaos
from tests.support.fault_proxy import FaultProxy

SEED = 20261129
MAX_VMS = 4
#: Two bursts of one-cpu jobs (submit offset, run time): more than max_vms VMs would hold.
JOBS = [(10.0 + i, 300.0) for i in range(8)] + [(700.0 + i, 200.0) for i in range(6)]
FAULTS = {
    "RunInstances": ("500", "throttle", "timeout", "500-after", "timeout-after", "strip-tags"),
    "DescribeInstances": ("500", "throttle", "timeout"),
    "TerminateInstances": ("500", "timeout", "500-after", "timeout-after"),
    "CreateTags": ("500", "500-after", "timeout"),
}
TABLE = os.environ.get("ELASTIQ_CHAOS_TABLE")  # a file to append each scenario's row to


def run(chaos: Chaos, ticks: int, during=None) -> None:
    for _ in range(ticks):
        if during:
            during(chaos)
        chaos.tick()


def converge(chaos: Chaos, limit: int = 120) -> None:
    """Ticks until the jobs are done and the cluster is back to min_vms (0)."""
    for _ in range(limit):
        if chaos.sim.all_done() and not chaos.alive():
            return
        chaos.tick()
    raise AssertionError(f"no convergence: {len(chaos.alive())} alive, "
                         f"{len(chaos.sim.idle)} idle jobs, {chaos.sim.running} running")


def check(chaos: Chaos, name: str, faults: int = 0) -> dict:
    row = {"scenario": name, "kills": 0, "faults": faults, "ticks": chaos.ticks,
           "orphans": chaos.orphans(), "over_max": max(0, chaos.peak - MAX_VMS),
           "jobs_killed": chaos.sim.jobs_killed, "flaps": chaos.flaps,
           "jobs_done": chaos.sim.completed}
    if TABLE:
        with open(TABLE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
    assert (row["orphans"], row["over_max"], row["jobs_killed"], row["flaps"]) == (0, 0, 0, 0), row
    assert chaos.peak == MAX_VMS, "the limit was reached, and held"
    assert row["jobs_done"] == len(JOBS)
    return row


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto.url, hold_s=0.3) as p:
        yield p


@pytest.mark.parametrize("seed", [SEED])
def test_30_percent_faults_on_every_cloud_call(tmp_path, moto, ec2_world, proxy, seed):
    chaos = Chaos(tmp_path, moto, ec2_world, "chaos", JOBS, max_vms=MAX_VMS, proxy_url=proxy.url)
    proxy.chaos(0.3, FAULTS, seed)
    # and, whatever the dice say: lost answers of a launch and a termination, a launch
    # answered without our tags (so the adapter tags late), a failed tagging call
    proxy.inject("500-after", "strip-tags", action="RunInstances")
    proxy.inject("500-after", action="TerminateInstances")
    proxy.inject("500", action="CreateTags")
    run(chaos, 80)  # 1600 s
    proxy.chaos(0.0, {}, seed)
    converge(chaos)
    faults = [(a, f) for a, f in proxy.seen if f != "pass"]
    kinds = {a for a, _ in faults}
    assert set(FAULTS) <= kinds, kinds
    check(chaos, f"cloud faults 30% (seed {seed})", len(faults))


def test_pool_unreadable_makes_no_drain_and_no_termination(tmp_path, moto, ec2_world):
    chaos = Chaos(tmp_path, moto, ec2_world, "chaos", JOBS, max_vms=MAX_VMS)
    run(chaos, 34)  # both bursts ran: workers idle, about to go
    before = (len(chaos.drained), moto.calls("TerminateInstances"))
    chaos.unreadable = {"pool"}
    run(chaos, 3)  # 60 s
    assert (len(chaos.drained), moto.calls("TerminateInstances")) == before
    chaos.unreadable = set()
    converge(chaos)
    check(chaos, "pool unreadable 60 s", 3)


def test_pool_empty_after_a_collector_restart_kills_nothing(tmp_path, moto, ec2_world):
    chaos = Chaos(tmp_path, moto, ec2_world, "chaos", JOBS, max_vms=MAX_VMS)
    run(chaos, 5)  # jobs of the first burst run (300 s)
    assert chaos.sim.running == MAX_VMS
    chaos.sim.restart_collector(chaos.now, 200.0)
    before = (len(chaos.drained), moto.calls("TerminateInstances"))
    run(chaos, 9)  # 180 s of an empty pool, longer than estimated_vm_deploy_time_s
    assert (len(chaos.drained), moto.calls("TerminateInstances")) == before
    converge(chaos)
    check(chaos, "pool empty 200 s (collector restart)", 1)


def test_races_between_observation_and_action(tmp_path, moto, ec2_world):
    chaos = Chaos(tmp_path, moto, ec2_world, "chaos", JOBS, max_vms=MAX_VMS, race_s=19.0,
                  join_s=40.0, estimated_vm_deploy_time_s=40)
    run(chaos, 80)
    converge(chaos)
    check(chaos, "races (world moves 19 s between observe and act)")
