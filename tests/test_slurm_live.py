"""The slurm adapter against real Slurm 24.11 daemons (tests/support/slurm_cluster.py): jobs
of the test user submitted with sbatch, dynamic nodes carrying cluster and instance id, drains
and undrains seen by slurmctld, the look before terminating, gone nodes deleted.  Skipped
where no cluster can run (failed under ELASTIQ_REQUIRE_SLURM=1)."""
from __future__ import annotations

import pytest

from elastiq import config
from elastiq.adapters.base import AuthError
from elastiq.adapters.slurm.batch import SlurmBatch
from tests.support.condor_daemons import TEST_USER
from tests.support.ports import check_batch
from tests.support.slurm_cluster import SlurmCluster, require_slurm, wait_for
from tests.support.slurm_daemons import holding_files_under

pytestmark = pytest.mark.daemons


@pytest.fixture
def cluster():
    require_slurm()
    running = SlurmCluster.start(worker_cpus=2, worker_memory_mb=2048)
    try:
        yield running
    finally:
        running.stop()


def adapter(cluster, bin_dir=None):
    cfg = config.from_dict({"elastiq": {"cluster_name": "c1", "batch_plugin": "slurm"},
                            "slurm": {"bin_dir": bin_dir or cluster.bin_dir,
                                      "partitions": ["main"]},
                            "vm": {"cpus": 2, "memory_mb": 2048}})
    return SlurmBatch(cfg)


def node_state(cluster, name):
    nodes = cluster.json(["scontrol", "show", "node", name, "--json"])["nodes"]
    return set(nodes[0]["state"]), nodes[0]["reason"]


def test_queue_pool_drain_and_removal_on_real_daemons(cluster):
    batch = adapter(cluster)
    one = cluster.sbatch(["-c1", "--wrap", "sleep 4"])
    whole = cluster.sbatch(["--exclusive", "--wrap", "sleep 1"])
    held = cluster.sbatch(["--hold", "--wrap", "true"])
    queue = batch.queue()
    jobs = {j.id: j for j in queue.idle}
    assert {i for i, j in jobs.items() if j.fits_worker} == {str(one), str(whole)}
    assert not jobs[str(held)].fits_worker and jobs[str(whole)].cpus == 2
    assert batch.pool().workers == ()

    cluster.start_node("w1", 2, 2048, cluster="c1", instance_id="i-01", wait=30)
    cluster.start_node("elsewhere", 2, 2048, wait=30)  # no cluster: never ours
    busy = wait_for(lambda: [w for w in batch.pool().workers if w.busy], 60, "a busy worker",
                    explain=cluster.explain)
    assert [(w.name, w.instance_id) for w in busy] == [("w1", "i-01")]
    assert "w1" in batch.queue().running_on

    batch.drain("w1", "test drain")
    state, reason = node_state(cluster, "w1")
    assert "DRAIN" in state and reason == "elastiq: test drain"
    assert batch.workers_of(["i-01"])["i-01"].draining
    batch.cancel_drain("w1")
    assert "DRAIN" not in node_state(cluster, "w1")[0]
    batch.cancel_drain("w1")  # idempotent

    wait_for(lambda: all(cluster.jobs()[j]["job_state"] == ["COMPLETED"] for j in (one, whole)),
             60, "both jobs done", explain=cluster.explain)
    batch.drain("w1", "idle")
    cluster.stop_node(cluster.nodes["w1"])  # the VM is terminated
    wait_for(lambda: batch.pool() and "w1" not in cluster.node_names(), 60,
             "w1 deleted once not responding", every=1, explain=cluster.explain)
    assert "elsewhere" in cluster.node_names()


def test_forget_deletes_the_nodes_of_terminated_vms_at_once(tmp_path):
    """Issue 28: right after the terminate, not once slurmctld finds the slurmd gone
    (SlurmdTimeout, 300 s here): only our node of that instance is deleted."""
    require_slurm()
    cluster = SlurmCluster.start(worker_cpus=2, worker_memory_mb=2048, slurmd_timeout=300)
    try:
        batch = adapter(cluster)
        cluster.start_node("w1", 2, 2048, cluster="c1", instance_id="i-01", wait=30)
        cluster.start_node("w2", 2, 2048, cluster="c1", instance_id="i-02", wait=30)
        cluster.start_node("other", 2, 2048, cluster="c2", instance_id="i-01", wait=30)
        batch.drain("w1", "idle")
        cluster.stop_node(cluster.nodes["w1"])  # the VM is terminated
        assert {w.name for w in batch.pool().workers} == {"w1", "w2"}  # still listed
        batch.forget(["i-01", "i-never-joined"])
        assert sorted(n for n in cluster.node_names() if not n.startswith("elastiq-shape")) \
            == ["other", "w2"]
        assert [w.name for w in batch.pool().workers] == ["w2"]
        batch.forget([])  # nothing to do: no call
    finally:
        cluster.stop()


def test_the_look_before_terminating_asks_slurmctld(cluster):
    batch = adapter(cluster)
    cluster.start_node("w1", 2, 2048, cluster="c1", instance_id="i-01", wait=30)
    assert check_batch(batch) == "w1"  # the port contract of every batch system
    seen = batch.pool().workers
    assert [w.busy for w in seen] == [False]
    job = cluster.sbatch(["-c1", "--wrap", "sleep 30"])  # matched after the observation
    wait_for(lambda: cluster.jobs()[job]["job_state"] == ["RUNNING"], 30, "the job running",
             explain=cluster.explain)
    assert batch.workers_of(["i-01"])["i-01"].busy
    cluster.run(["scancel", str(job)], check=True)


def test_a_user_slurm_refuses_node_changes_reads_but_gets_an_auth_error(cluster):
    """Draining needs root, the SlurmUser or an operator: elastiq run as anyone else reads the
    queue and the pool and is told what to fix when it drains, and nothing changes."""
    batch = adapter(cluster, cluster.clients_as(TEST_USER))
    cluster.start_node("w1", 2, 2048, cluster="c1", instance_id="i-01", wait=30)
    assert [w.name for w in batch.pool().workers] == ["w1"] and batch.queue().idle == ()
    with pytest.raises(AuthError, match="Invalid user id.*root or the SlurmUser"):
        batch.drain("w1", "idle")
    assert "DRAIN" not in node_state(cluster, "w1")[0]


def test_stopping_the_cluster_leaves_no_process(cluster):
    """slurmstepd outlives slurmd by design (its own session, waiting for slurmctld): the
    cluster's stop ends the jobs and their steps too."""
    cluster.start_node("w1", 1, 1024, cluster="c1", instance_id="i-01", wait=30)
    job = cluster.sbatch(["--wrap", "sleep 300"])
    wait_for(lambda: cluster.jobs()[job]["job_state"] == ["RUNNING"], 30, "the job running",
             explain=cluster.explain)
    assert holding_files_under(cluster.host_dir + "/")  # the step holds its log files
    cluster.stop(keep=True)
    try:
        assert holding_files_under(cluster.host_dir + "/") == []
    finally:
        cluster.stop()  # removes the directory
