"""``ecm --shared-home`` on a real HTCondor pool (issue 28): the HTCondor units of a master and
a worker rendered with it (tests/test_ecm_real_pool.py's rig, Debian 13's HTCondor 23.9) give
both the cluster's FILESYSTEM_DOMAIN, so a job submitted with ``should_transfer_files = NO``
carries the domain the worker advertises (and elastiq's template, from the elastiq.yaml the
master writes), and runs there in the submit directory.  Master and worker share one file
system here, as NFS makes them share /home.  Skipped like tests/test_ecm_real_pool.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from ecm import render
from elastiq import config as elastiq_config
from tests.support import ecm_root as R
from tests.support.tools import skip_or_fail
from tests.test_ecm_real_pool import CLUSTER, Cluster
from tests.test_ecm_render import answers

pytestmark = pytest.mark.daemons


class SharedHomeCluster(Cluster):
    def __init__(self):
        super().__init__()
        self.a = answers("debian13", cluster_name=CLUSTER, signing_key=self.a.signing_key,
                         shared_home=True)
        self.master_units = render.units(render.render_master(self.a))
        self.worker_units = render.units(render.render_worker(self.a))

    def start(self) -> None:
        self.master = self.master_node("master", CLUSTER, self.a.signing_key)
        self.worker_token = self.token(self.master, CLUSTER)
        self.nodes.append(self.master.start())
        self.w1 = self.worker("w1", self.worker_token)


@pytest.fixture(scope="module")
def cluster():
    skip_or_fail(R.unavailable(), "ELASTIQ_REQUIRE_REAL_POOL", "the ecm root")
    c = SharedHomeCluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_a_job_without_file_transfer_runs_on_a_worker_of_the_same_filesystem_domain(cluster):
    R.wait_for(lambda: cluster.startds().get("w1@vm"), 90, "w1's startd", cluster.explain)
    advertised = cluster.q("condor_status -startd -af FileSystemDomain UidDomain").split()
    assert advertised == [CLUSTER, CLUSTER]
    expected = elastiq_config.from_dict(yaml.safe_load(render.elastiq_yaml(cluster.a)))
    assert expected.batch.filesystem_domain == CLUSTER  # what elastiq matches jobs against
    jobs = Path(f"{cluster.master.host}/jobs")
    jobs.mkdir()
    os.chown(jobs, *R._root_ids(R.USER))
    (jobs / "job.sub").write_text(
        "universe = vanilla\nexecutable = /bin/sh\narguments = \"-c 'pwd; echo shared'\"\n"
        "should_transfer_files = NO\noutput = out.txt\nerror = err.txt\nlog = job.log\n"
        "request_cpus = 1\nrequest_memory = 64MB\nqueue\n")
    path = f"{cluster.master.path}/jobs"
    cluster.q(f"cd {path} && condor_submit job.sub", user=R.USER)
    job = cluster.q("condor_q -all -af FileSystemDomain ShouldTransferFiles Requirements",
                    user=R.USER)
    assert job.startswith(f"{CLUSTER} NO ") and "TARGET.HasFileTransfer" not in job, job
    R.wait_for(lambda: (jobs / "out.txt").exists() and (jobs / "out.txt").read_text(), 120,
               "the job's output", lambda: cluster.q("condor_q -better-analyze -all",
                                                     check=False) + cluster.explain())
    assert (jobs / "out.txt").read_text() == f"{path}\nshared\n"  # ran in the submit directory
    history = cluster.q("condor_history -af JobStatus LastRemoteHost", user=R.USER)
    assert history.split()[0] == "4" and "w1@vm" in history
