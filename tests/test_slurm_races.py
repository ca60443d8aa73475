"""Never kill on Slurm: the daemon's Runtime (real EC2 adapter on moto, the slurm adapter on
real 24.11 daemons, virtual time for the core) when the world moves between the observation
and the actions, as in the HTCondor race tests (tests/test_look_before_terminate.py): a
drained idle worker, chosen for termination, is given a job before the terminate (an
operator resumes it and a job starts there).  The look before terminating asks slurmctld: the
VM is kept and the job runs to its end, never requeued."""
from __future__ import annotations

import time

import pytest

from elastiq.adapters.ec2.cloud import EC2Cloud
from elastiq.adapters.slurm.batch import SlurmBatch
from elastiq.core import get_policy
from elastiq.model import Lifecycle
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.ec2_fixtures import ACCESS_KEY, REGION, SECRET_KEY
from tests.support.slurm_cluster import SlurmCluster, require_slurm, wait_for
from tests.support.world import make_config

pytestmark = pytest.mark.daemons
CLUSTER = "race"


class _Late(SlurmBatch):
    """The slurm adapter, with the world moving on right after the pool is observed."""

    after_observe = None

    def pool(self, known_ips=None):
        answer = super().pool(known_ips)
        hook, self.after_observe = self.after_observe, None
        if hook is not None:
            hook()
        return answer


def test_a_drained_worker_given_a_job_before_the_terminate_is_kept(tmp_path, moto, ec2_world):
    require_slurm()
    slurm = SlurmCluster.start(name="race", worker_cpus=1, worker_memory_mb=1024)
    try:
        now = [time.time()]
        cfg = make_config(
            tmp_path, elastiq={"cluster_name": CLUSTER, "batch_plugin": "slurm",
                               "waiting_jobs_time_s": 0, "n_jobs_per_vm": 0},
            quota={"min_vms": 0, "max_vms": 1}, vm={"cpus": 1, "memory_mb": 1024},
            ec2={"api_url": moto.url, "region": REGION, "image_id": ec2_world.image_id,
                 "flavour": "t3.micro", "key_name": ec2_world.key_name,
                 "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
            slurm={"bin_dir": slurm.bin_dir})
        batch = _Late(cfg, clock=lambda: now[0])
        runtime = Runtime(cfg, get_policy("default"), batch, EC2Cloud(cfg),
                          StateStore(str(tmp_path / "state")), clock=lambda: now[0])

        def tick(advance_s):
            now[0] += advance_s
            runtime.tick("vms")

        first = slurm.sbatch(["-c1", "--wrap", "sleep 1"])
        tick(1)
        (vm,) = [i.id for i in EC2Cloud(cfg).list_instances()]
        slurm.start_node(vm, 1, 1024, cluster=CLUSTER, instance_id=vm, wait=30)
        wait_for(lambda: slurm.jobs()[first]["job_state"] == ["COMPLETED"], 60, "the first job",
                 explain=slurm.explain)
        tick(1)
        tick(200)  # idle for longer than idle_for_time_s (100 s): drained
        assert runtime.state.records[vm].lifecycle is Lifecycle.DRAINING
        second = []

        def given_a_job():
            slurm.run(["scontrol", "update", f"nodename={vm}", "state=resume"], check=True)
            second.append(slurm.sbatch(["-c1", "-w", vm, "--wrap", "sleep 8"]))
            wait_for(lambda: slurm.jobs()[second[0]]["job_state"] == ["RUNNING"], 30,
                     "the second job running", explain=slurm.explain)
            slurm.run(["scontrol", "update", f"nodename={vm}", "state=drain",
                       "reason=elastiq: again"], check=True)

        batch.after_observe = given_a_job
        tick(10)  # the tick that plans the termination of the drained, idle worker
        assert second, "the race did not happen"
        (reservation,) = moto.client().describe_instances(InstanceIds=[vm])["Reservations"]
        state = reservation["Instances"][0]
        assert state["State"]["Name"] == "running"
        assert any("held back" in d.text for d in runtime.state.decisions), \
            [d.text for d in runtime.state.decisions]
        done = wait_for(lambda: (lambda j: j if j["job_state"] == ["COMPLETED"] else None)(
            slurm.jobs()[second[0]]), 60, "the second job done", explain=slurm.explain)
        assert done["restart_cnt"] == 0
    finally:
        slurm.stop()
