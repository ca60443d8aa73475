"""End to end on the real Nova: `elastiq run` (a subprocess, ``cloud_plugin: openstack``) scales
a real HTCondor pool whose ACTIVE tagged servers become startds (tests/support/instance_startds.py),
is restarted without its state and adopts its servers, and comes back to min_vms with no
server left behind; a foreign server and its startd are never touched.

Needs the OpenStack test cloud (tests/support/openstack_fixtures.py) and a real pool
(tests/support/condor_fixtures.py); skipped where either cannot run.
"""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from elastiq.adapters.openstack.translate import cluster_tag
from tests.support.condor_pool import wait_for
from tests.support.instance_startds import InstanceStartds, nova_alive
from tests.test_e2e_real_pool import ROOT, TIMINGS, actions, log_lines

JOB_S = 8


def _start(tmp_path, env, name):
    with open(tmp_path / f"{name}.err", "wb") as err:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "elastiq", "run", "--config",
                                 str(tmp_path / "elastiq.yaml")], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def _stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


@pytest.mark.timeout(600)
def test_elastiq_run_on_nova_scales_adopts_and_leaves_nothing(openstack_cloud, condor_pools,
                                                              tmp_path, record_property):
    oc, conn = openstack_cloud, openstack_cloud.conn
    cluster, max_vms = "os-e2e", 3
    tag = cluster_tag(cluster)
    pool = condor_pools(name="os-e2e")
    foreign = conn.compute.create_server(name="foreign", flavor_id=oc.flavor.id,
                                         image_id=oc.image.id, networks="none")
    foreign_startd = pool.start_startd("foreign", cpus=1, memory_mb=64,
                                       fragments=["START = False"], wait=60)
    log_path = str(tmp_path / "elastiq.log")
    worker = "#!/bin/sh\n# pool token %token%\necho worker of %ipv4%\n"
    cfg = {"elastiq": {"cluster_name": cluster, "n_jobs_per_vm": 0, "cloud_plugin": "openstack",
                       **TIMINGS, "state_dir": str(tmp_path / "state"), "log_file": log_path},
           "quota": {"min_vms": 0, "max_vms": max_vms},
           "openstack": {"cloud": "elastiq-test", "clouds_yaml": oc.clouds_yaml,
                         "image": oc.image.name, "flavour": oc.flavor.name, "networks": ["none"],
                         "user_data_b64": base64.b64encode(worker.encode()).decode()},
           "substitute": {"ipv4": "127.0.0.1", "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcyJ9.c2ln"}}
    (tmp_path / "elastiq.yaml").write_text(yaml.safe_dump(cfg))
    os.chmod(tmp_path / "elastiq.yaml", 0o600)
    env = dict(pool.env(), PYTHONPATH=ROOT)

    def explain():
        return "elastiq log:\n" + "".join(f"  {m}\n" for *_, m in log_lines(log_path)[-25:])

    def workers():
        return {s["ElastiqInstanceId"] for s in pool.collector().query(
            pool.htcondor2.AdType.Startd, constraint=f'ElastiqCluster == "{cluster}"',
            projection=["ElastiqInstanceId"])}

    daemon = _start(tmp_path, env, "first")
    try:
        with InstanceStartds(pool, nova_alive(conn, tag), cluster, cpus=1, memory_mb=64) as vms:
            submitted = time.time()
            jobs = pool.submit({"executable": "/bin/sleep", "arguments": str(JOB_S),
                                "request_cpus": "1", "request_memory": "32"}, count=max_vms)
            wait_for(lambda: vms.check() or len(workers()) == max_vms, 90,
                     f"{max_vms} workers from Nova in the pool", explain=explain)
            joined = time.time() - submitted
            # restart without the state file: the new daemon adopts the servers carrying the
            # cluster's tag and its owner id (the state directory's owner file)
            assert _stop(daemon) == 0
            (tmp_path / "state" / "state.json").rename(tmp_path / "state.json.old")
            daemon = _start(tmp_path, env, "second")
            done = wait_for(lambda: vms.check() or (lambda js: js if len(js) == max_vms else None)(
                [j for j in pool.jobs(f"ClusterId == {jobs}", ["JobStatus", "NumJobStarts"])
                 if j.get("JobStatus") == 4]), 120, "every job completed", explain=explain)
            wait_for(lambda: vms.check() or (not vms.alive() and not vms.startds),
                     TIMINGS["idle_timeout_max_s"] + 90, "back to min_vms=0", explain=explain)
            launched = len(vms.started)
        assert _stop(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        orphans = [s.id for s in conn.compute.servers(tags=tag) if s.status != "DELETED"
                   and s.task_state != "deleting"]
        for server in orphans:
            conn.compute.delete_server(server)
        conn.compute.delete_server(foreign.id)

    lines = log_lines(log_path)
    log = "".join(f"{level} {logger}: {m}\n" for _, level, logger, m in lines)
    errors = (tmp_path / "first.err").read_text() + (tmp_path / "second.err").read_text()
    figures = {"submit_to_workers_joined_s": round(joined, 1), "servers_launched": launched,
               "peak_servers": vms.peak}
    for key, value in figures.items():
        record_property(key, value)
    print(f"openstack e2e figures: {figures}")
    assert sorted(j.get("NumJobStarts") for j in done) == [1] * max_vms
    assert launched == max_vms and vms.peak <= max_vms, figures
    assert len([a for a in actions(log_path, "launch")]) == 1, log  # one create for the burst
    assert "adopt" in log.lower(), log
    assert orphans == [], f"servers left behind: {orphans}"
    assert conn.compute.get_server(foreign.id) is not None
    assert foreign.id not in log and foreign_startd.alive()
    assert "Traceback" not in log + errors, log + errors
    assert not [m for _, level, _, m in lines if level in ("ERROR", "CRITICAL")], log
    assert "eyJhbGciOiJIUzI1NiJ9" not in log + errors  # the token of the user-data
