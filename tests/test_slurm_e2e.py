"""End to end on real Slurm: `elastiq run` (a subprocess) with the slurm plugin against a moto
EC2 server whose tagged running instances become real slurmd dynamic nodes
(tests/support/slurm_cluster.py: InstanceNodes), jobs of the test user submitted with sbatch.

Checked (issue 28's "Done when"): 6 jobs (4 one-core, 2 ``--exclusive``) each run once
(COMPLETED, never requeued); the burst launched in one RunInstances call; never more than
max_vms instances alive; no worker drained sooner than idle_for_time_s after its last job; a
foreign untagged instance and a node of no cluster untouched; the workers drained, terminated
and their nodes deleted from Slurm right after the terminate (``BatchSystem.forget``; the
cluster's SlurmdTimeout is 300 s, so nothing waits for slurmctld to find them not
responding); back to min_vms; no traceback, error or failed action.  Twice: with a
hand-written configuration, and with the one ``ecm --batch slurm`` writes (the worker shape
from the cloud's flavour).  The log helpers and timings are the HTCondor end-to-end test's (tests/test_e2e_real_pool.py).
"""
from __future__ import annotations

import os
import time

import pytest
import yaml

from tests.support.instance_startds import (ec2_alive, healthy, kill_if_running, start_elastiq,
                                            stop_elastiq)
from tests.support.slurm_cluster import InstanceNodes, SlurmCluster, require_slurm, wait_for
from ecm import render
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
from tests.support.ec2_server import REGION
from tests.test_e2e_real_pool import (IDLE_S, MARGIN_S, TIMINGS, actions, explicit_config,
                                      log_lines)

pytestmark = pytest.mark.daemons
CPUS, MEMORY_MB, FLAVOUR = 2, 2048, "t3.small"
MIN_VMS, MAX_VMS = 0, 3
JOB_S = 10
#: Longer than the test waits for the nodes to go: only forget() can delete them in time.
SLURMD_TIMEOUT_S = 300
#: A node is deleted this soon after its VM's terminate (one scontrol read and delete).
FORGET_S = 10


def ecm_config(tmp_path, moto, world, cluster, flavour, cpus, memory_mb, min_vms, max_vms):
    """What ``ecm --batch slurm`` writes into the master's elastiq.yaml (no ``vm:`` section:
    the flavour's shape comes from the cloud), test timings, and what the master's boot adds
    (its address and the munge key)."""
    cfg = render.elastiq_config(render.Answers(
        os_id="debian13", batch="slurm", image_id=world.image_id, cluster_name=cluster,
        flavour=flavour, min_vms=min_vms, max_vms=max_vms, jobs_per_vm=0, idle_time_s=IDLE_S,
        key_name=world.key_name, signing_key="m" * 64, api_url=moto.url, region=REGION,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY))
    assert "vm" not in cfg and cfg["elastiq"]["batch_plugin"] == "slurm"
    cfg["elastiq"].update(TIMINGS)
    cfg["substitute"] = {"ipv4": "127.0.0.1", "munge_key": "m" * 64}
    return cfg


@pytest.mark.timeout(400)
@pytest.mark.parametrize("writer", [explicit_config, ecm_config], ids=["vm-section", "ecm"])
def test_elastiq_scales_a_real_slurm_cluster(writer, tmp_path, moto, ec2_world, record_property):
    require_slurm()
    name = "e2e-slurm"
    slurm = SlurmCluster.start(name="e2e", worker_cpus=CPUS, worker_memory_mb=MEMORY_MB,
                               slurmd_timeout=SLURMD_TIMEOUT_S)
    client = moto.client()
    foreign = client.run_instances(ImageId=ec2_world.image_id, MinCount=1, MaxCount=1,
                                   InstanceType=FLAVOUR)["Instances"][0]["InstanceId"]
    slurm.start_node("foreign", 1, 512, wait=30)  # a node of no cluster
    cfg = writer(tmp_path, moto, ec2_world, name, FLAVOUR, CPUS, MEMORY_MB, MIN_VMS, MAX_VMS)
    log_path = str(tmp_path / "elastiq.log")
    cfg["elastiq"].update(state_dir=str(tmp_path / "state"), log_file=log_path,
                          batch_plugin="slurm")
    cfg.setdefault("slurm", {}).update(bin_dir=slurm.bin_dir, partitions=["main"])
    (tmp_path / "elastiq.yaml").write_text(yaml.safe_dump(cfg))
    os.chmod(tmp_path / "elastiq.yaml", 0o600)

    def explain():
        return "elastiq log:\n" + "".join(f"  {m}\n" for _, _, _, m in log_lines(log_path)[-25:]) \
            + slurm.explain()

    def our_nodes():
        return [n for n in slurm.node_names() if n.startswith("i-")]

    daemon = start_elastiq(str(tmp_path / "elastiq.yaml"), os.environ)
    try:
        with InstanceNodes(slurm, ec2_alive(client, name), name, CPUS, MEMORY_MB) as vms:

            launches_before = moto.calls("RunInstances")
            submitted_at = time.time()
            jobs = [slurm.sbatch(["-c1", "--wrap", f"sleep {JOB_S}"]) for _ in range(4)]
            jobs += [slurm.sbatch(["--exclusive", "--wrap", f"sleep {JOB_S}"]) for _ in range(2)]
            wait_for(healthy(vms, daemon, lambda: len(vms.started) >= MAX_VMS), 45,
                     f"{MAX_VMS} VMs launched for 6 waiting jobs", explain=explain)
            done = wait_for(healthy(vms, daemon, lambda: (lambda known: known if all(
                known[j]["job_state"] == ["COMPLETED"] for j in jobs) else None)(slurm.jobs())),
                180, "all 6 jobs completed", every=1, explain=explain)
            wait_for(healthy(vms, daemon, lambda: not vms.startds and not our_nodes()
                             and len([i for i, up in vms.alive().items() if up]) == MIN_VMS),
                     IDLE_S + 90, f"back to min_vms={MIN_VMS}, nodes deleted", every=1,
                     explain=explain)
            launch_calls = moto.calls("RunInstances") - launches_before
            foreign_node = slurm.json(["scontrol", "show", "node", "foreign", "--json"])["nodes"][0]
        err = stop_elastiq(daemon)
    finally:
        kill_if_running(daemon)
        slurm.stop()
    lines = log_lines(log_path)
    log = "".join(f"{level} {logger}: {m}\n" for _, level, logger, m in lines)

    last_job = {}  # node (= instance id) -> when its last job ended
    for job in (done[j] for j in jobs):
        last_job[job["nodes"]] = max(last_job.get(job["nodes"], 0), job["end_time"]["number"])
    drains = {}
    for t, target, _ in actions(log_path, "drain"):
        drains.setdefault(target, t)
    gaps = {i: round(drains[i] - last_job[i], 1) for i in drains if i in last_job}
    terminated = {i: t for t, _, msg in actions(log_path, "terminate")
                  for i in msg.split(":")[0].split(" ", 1)[1].split(", ")}
    deleted = {m.split()[1]: t for t, _, logger, m in lines
               if logger == "elastiq.adapters.slurm.batch" and m.startswith("node ")
               and " deleted from Slurm" in m}
    forget_s = {i: round(deleted[i] - terminated[i], 1) for i in deleted if i in terminated}
    figures = {"jobs": len(jobs), "launch_calls": launch_calls, "instances": len(vms.started),
               "peak_instances": vms.peak, "last_job_to_drain_s": gaps,
               "terminate_to_node_deleted_s": forget_s,
               "submit_to_all_done_s": round(max(last_job.values()) - submitted_at, 1)}
    for key, value in figures.items():
        record_property(key, value)
    print(f"e2e slurm figures: {figures}")

    assert all(done[j]["restart_cnt"] == 0 for j in jobs), [done[j]["restart_cnt"] for j in jobs]
    for whole in jobs[4:]:  # an --exclusive job ran alone on its worker
        w = done[whole]
        beside = [j for j in jobs if j != whole and done[j]["nodes"] == w["nodes"]
                  and done[j]["start_time"]["number"] < w["end_time"]["number"]
                  and done[j]["end_time"]["number"] > w["start_time"]["number"]]
        assert not beside, (whole, beside)
    assert launch_calls == 1, f"{launch_calls} RunInstances calls for one burst\n{log}"
    assert vms.peak <= MAX_VMS, f"{vms.peak} instances alive at once > max_vms {MAX_VMS}"
    assert drains and set(drains) <= set(vms.started), (drains, log)
    too_soon = {i: g for i, g in gaps.items() if g < IDLE_S - MARGIN_S}
    assert not too_soon, f"drained sooner than idle_for_time_s={IDLE_S} s: {too_soon}\n{log}"
    assert set(vms.stopped) == set(vms.started)  # every worker's VM terminated
    assert set(deleted) == set(vms.started) == set(forget_s), (deleted, terminated, log)
    assert all(0 <= s <= FORGET_S for s in forget_s.values()), (forget_s, log)
    state = client.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "running" and foreign not in log
    assert "foreign" not in drains and "DRAIN" not in foreign_node["state"]
    assert daemon.returncode == 0, err
    assert "Traceback" not in log + err, log + err
    assert not [m for _, level, _, m in lines if level in ("ERROR", "CRITICAL")], log
    assert not [m for _, _, _, m in lines if " failed (" in m], log
