"""End to end on a real HTCondor pool: `elastiq run` (a subprocess) against a moto EC2 server
whose tagged running instances become real startds (tests/support/instance_startds.py), with
jobs of the test user submitted by the pool's own condor_submit and by the PyPI bindings.

Checked: the burst is launched for in one RunInstances call; every job completes with
NumJobStarts == 1; never more than max_vms instances alive; no worker drained sooner than
idle_timeout_max_s after its last job (less MARGIN_S: elastiq sees the job end at its next check);
a foreign untagged instance (with a startd of no cluster) untouched; back to min_vms;
no traceback, error or failed action in the log.  Two configurations: an explicit ``vm:``
shape, and the one ecm writes (no ``vm:`` section: the shape comes from the flavour).
The figures (jobs, launches, time to scale up, last job -> drain) are printed and recorded as
test properties.  Skipped where no real pool can run (tests/support/condor_fixtures.py).
"""
from __future__ import annotations

import datetime
import os
import re
import time

import pytest
import yaml

from ecm import render
from tests.support.condor_pool import wait_for
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
from tests.support.ec2_server import REGION
from tests.support.instance_startds import (InstanceStartds, ec2_alive, healthy,
                                            kill_if_running, start_elastiq, stop_elastiq)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE_S = 20       # elastiq.idle_timeout_max_s
CHECK_S = 1       # elastiq.check_queue_every_s
#: elastiq sees a job end at its next look at the pool (a queue check later, more on a loaded
#: machine), and CompletionDate is truncated to the second: a drain this much sooner than
#: idle_timeout_max_s after the recorded end is still correct
MARGIN_S = 3
JOB_S = 12        # each job sleeps this long
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+)\s+([\w.]+): (.*)$")
TIMINGS = {"check_queue_every_s": CHECK_S, "list_vms_every_s": 2,
           "recheck_after_action_s": 1, "waiting_jobs_time_s": 2, "idle_timeout_max_s": IDLE_S,
           "estimated_vm_deploy_time_s": 60, "launch_backoff_s": 2, "launch_backoff_max_s": 4,
           "log_level": "INFO"}


def explicit_config(tmp_path, moto, world, cluster, flavour, cpus, memory_mb, min_vms, max_vms):
    """A hand-written configuration with a ``vm:`` section."""
    return {"elastiq": {"cluster_name": cluster, "n_jobs_per_vm": 0, **TIMINGS},
            "quota": {"min_vms": min_vms, "max_vms": max_vms},
            "ec2": {"api_url": moto.url, "region": REGION, "image_id": world.image_id,
                    "flavour": flavour, "key_name": world.key_name,
                    "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
            "vm": {"cpus": cpus, "memory_mb": memory_mb}}


def ecm_config(tmp_path, moto, world, cluster, flavour, cpus, memory_mb, min_vms, max_vms):
    """What ecm writes into the master's elastiq.yaml (no ``vm:`` section), test timings."""
    cfg = render.elastiq_config(render.Answers(
        os_id="almalinux9", image_id=world.image_id, cluster_name=cluster, flavour=flavour,
        min_vms=min_vms, max_vms=max_vms, jobs_per_vm=0, idle_time_s=IDLE_S,
        key_name=world.key_name, signing_key="k" * 64, api_url=moto.url, region=REGION,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY))
    assert "vm" not in cfg
    cfg["elastiq"].update(TIMINGS)
    # what the master's boot fills in: its address and a worker IDTOKEN (shape only: the
    # emulated startds do not authenticate with it)
    cfg["substitute"] = {"ipv4": "127.0.0.1",
                         "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlMmUifQ.c2lnbmF0dXJlLWUyZQ"}
    return cfg


#: name -> (config writer, flavour, its cpus and MB, min_vms, max_vms, jobs as
#: (tool, count, request_cpus, request_memory))
SCENARIOS = {
    "vm-section": (explicit_config, "t3.small", 2, 2048, 0, 3,
                   [("condor_submit", 4, 1, 256), ("htcondor2", 4, 1, 256)]),
    "ecm-config": (ecm_config, "t3.medium", 2, 4096, 1, 2,
                   [("condor_submit", 2, 2, 1024), ("htcondor2", 1, 2, 1024)]),
}


def log_lines(path):
    """(epoch seconds, level, logger, message) of each line of elastiq's log file."""
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = LOG_LINE.match(line.rstrip("\n"))
                if match:
                    when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
                    out.append((when.timestamp(), match.group(2), match.group(3), match.group(4)))
    return out


def actions(path, verb):
    """(time, target, message) of the actions ``verb`` (launch, drain, terminate) elastiq did."""
    return [(t, msg.split()[1].rstrip(":"), msg) for t, _, logger, msg in log_lines(path)
            if logger == "elastiq.runtime.actuator" and msg.startswith(verb + " ")]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_elastiq_scales_a_real_pool(scenario, condor_pools, tmp_path, moto, ec2_world,
                                    record_property):
    writer, flavour, cpus, memory_mb, min_vms, max_vms, batches = SCENARIOS[scenario]
    cluster = f"e2e-{scenario}"
    pool = condor_pools(name="e2e")
    client = moto.client()
    foreign = client.run_instances(ImageId=ec2_world.image_id, MinCount=1, MaxCount=1,
                                   InstanceType=flavour)["Instances"][0]["InstanceId"]
    foreign_startd = pool.start_startd("foreign", cpus=1, memory_mb=512, fragments=["START = False"],
                                       wait=60)
    cfg = writer(tmp_path, moto, ec2_world, cluster, flavour, cpus, memory_mb, min_vms, max_vms)
    log_path = str(tmp_path / "elastiq.log")
    cfg["elastiq"].update(state_dir=str(tmp_path / "state"), log_file=log_path)
    (tmp_path / "elastiq.yaml").write_text(yaml.safe_dump(cfg))
    os.chmod(tmp_path / "elastiq.yaml", 0o600)

    def explain():
        return "elastiq log:\n" + "".join(
            f"  {m}\n" for _, level, _, m in log_lines(log_path)[-25:])

    def our_slots():
        return pool.collector().query(pool.htcondor2.AdType.Startd,
                                      constraint=f'ElastiqCluster == "{cluster}"',
                                      projection=["Name", "ElastiqInstanceId"])

    daemon = start_elastiq(str(tmp_path / "elastiq.yaml"), pool.env())
    try:
        with InstanceStartds(pool, ec2_alive(client, cluster), cluster, cpus, memory_mb) as vms:

            if min_vms:  # the kept workers first, as on a cluster at rest
                wait_for(healthy(vms, daemon, lambda: len({s["ElastiqInstanceId"] for s in our_slots()}) == min_vms),
                         60, f"{min_vms} worker(s) of min_vms in the pool", explain=explain)
            launches_before = moto.calls("RunInstances")
            submitted_at = time.time()
            clusters = []
            for tool, count, request_cpus, request_memory in batches:
                how = pool.submit if tool == "condor_submit" else pool.submit_with_bindings
                clusters.append(how({"executable": "/bin/sleep", "arguments": str(JOB_S),
                                     "request_cpus": str(request_cpus),
                                     "request_memory": str(request_memory)}, count=count))
            n_jobs = sum(b[1] for b in batches)
            need = sum(b[1] * b[2] for b in batches)  # cpus asked for, in whole VMs below
            expect_vms = min(max_vms, -(-need // cpus))

            wait_for(healthy(vms, daemon, lambda: len(vms.started) >= expect_vms), 45,
                     f"{expect_vms} VMs launched for {n_jobs} waiting jobs", explain=explain)
            launched_at = min(t for t, *_ in actions(log_path, "launch")
                              if t >= submitted_at - 1)
            wait_for(healthy(vms, daemon, lambda: len({s["ElastiqInstanceId"] for s in our_slots()}) >= expect_vms),
                     60, f"{expect_vms} workers in the pool", explain=explain)
            joined_at = time.time()
            constraint = " || ".join(f"ClusterId == {c}" for c in clusters)
            done = wait_for(healthy(vms, daemon, lambda: (lambda jobs: jobs if len(jobs) == n_jobs else None)(
                [j for j in pool.jobs(constraint, ["ClusterId", "ProcId", "JobStatus", "NumJobStarts",
                                                   "CompletionDate", "LastRemoteHost"])
                 if j.get("JobStatus") == 4 and j.get("CompletionDate")])), 150,
                f"all {n_jobs} jobs completed", explain=explain)
            wait_for(healthy(vms, daemon, lambda: len(vms.alive()) == min_vms and len(vms.startds) == min_vms),
                     IDLE_S + 60, f"back to min_vms={min_vms}", explain=explain)
            launch_calls = moto.calls("RunInstances") - launches_before
        err = stop_elastiq(daemon)
    finally:
        kill_if_running(daemon)
    lines = log_lines(log_path)
    log = "".join(f"{level} {logger}: {m}\n" for _, level, logger, m in lines)

    last_job = {}  # instance -> when its last job completed
    for job in done:
        host = str(job.get("LastRemoteHost") or "")  # slot1_1@<instance>@<host>
        instance = host.split("@")[1] if host.count("@") >= 2 else None
        last_job[instance] = max(last_job.get(instance, 0), job["CompletionDate"])
    drains = {}  # instance -> its first drain
    for t, target, _ in actions(log_path, "drain"):
        drains.setdefault(target.split("@")[0], t)
    gaps = {i: round(drains[i] - last_job[i], 1) for i in drains if i in last_job}
    figures = {"scenario": scenario, "jobs": n_jobs, "launch_calls": launch_calls,
               "instances_launched": len(vms.started) - min_vms, "peak_instances": vms.peak,
               "submit_to_launch_s": round(launched_at - submitted_at, 1),
               "submit_to_workers_joined_s": round(joined_at - submitted_at, 1),
               "last_job_to_drain_s": gaps}
    for key, value in figures.items():
        record_property(key, value)
    print(f"e2e real pool figures: {figures}")

    # every job ran once, to completion
    assert sorted(j.get("NumJobStarts") for j in done) == [1] * n_jobs, [dict(j) for j in done]
    # the burst in one call, never above max_vms
    assert launch_calls == 1, f"{launch_calls} RunInstances calls for one burst\n{log}"
    assert vms.peak <= max_vms, f"{vms.peak} instances alive at once > max_vms {max_vms}"
    # drains: no sooner than idle_timeout_max_s after the worker's last job
    assert drains and set(drains) <= set(vms.started), (drains, log)
    too_soon = {i: g for i, g in gaps.items() if g < IDLE_S - MARGIN_S}
    assert not too_soon, (f"drained sooner than idle_timeout_max_s={IDLE_S} s after the last job "
                          f"(s): {too_soon}\n" + "".join(m + "\n" for _, _, m in actions(log_path, "drain")))
    # the foreign instance and its startd untouched
    state = client.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "running"
    assert foreign not in log and "foreign@" not in " ".join(t for _, t, _ in actions(log_path, "drain"))
    assert foreign_startd.alive() and "drain" not in foreign_startd.log("StartLog").lower()
    # a clean run
    assert daemon.returncode == 0, err
    assert "Traceback" not in log + err, log + err
    assert not [m for _, level, _, m in lines if level in ("ERROR", "CRITICAL")], log
    assert not [m for _, _, _, m in lines if " failed (" in m], log
