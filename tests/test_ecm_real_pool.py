"""The HTCondor units of a rendered master and worker user-data, run for real (part 2 of issue
12) with Debian trixie's HTCondor 23.9 from the shared provisioned root: the master's central
manager and schedd with the cluster's own signing key; a worker startd holding only the worker
token joins over IDTOKENS and advertises ElastiqInstanceId/ElastiqCluster; a startd without a
token, or with a second cluster's token, is refused; an unprivileged user's vanilla job runs;
elastiq's token reads the queue and the pool and drains, a user without it cannot; the safety
nets (STARTD_NOCLAIM_SHUTDOWN and the poweroff hook, the master watch) fire; the docker part
parses with condor_config_val.  Skipped with the reason when the root or root privileges are
missing; failed instead when ELASTIQ_REQUIRE_REAL_POOL=1 (CI)."""
from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from ecm import render
from tests.support import ecm_root as R
from tests.support.tools import skip_or_fail
from tests.test_ecm_render import answers

CLUSTER, OTHER = "physics-c1", "other-c2"
pytestmark = pytest.mark.daemons


@pytest.fixture(scope="module")
def cluster():
    skip_or_fail(R.unavailable(), "ELASTIQ_REQUIRE_REAL_POOL", "the ecm root")
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _key() -> str:
    return secrets.token_urlsafe(48)


class Cluster:
    """A master and workers from the units of one rendered user-data, plus the second
    cluster's token (minted by that cluster's own units, no daemons)."""

    def __init__(self):
        # The root is Debian 13 with Debian's HTCondor 23.9: the OS debian13 installs.
        self.a = answers("debian13", cluster_name=CLUSTER, signing_key=_key())
        self.master_units = render.units(render.render_master(self.a))
        self.worker_units = render.units(render.render_worker(self.a))
        self.base, self.port = R.new_base(), R.free_port()
        self.nodes = []

    def master_node(self, name: str, cluster: str, key: str) -> R.Node:
        node = R.Node(self.base, name, self.port)
        node.run(self.master_units["master-condor-config"], MASTER_IP="127.0.0.1",
                 CLUSTER_NAME=cluster, CONDOR_ETC=node.path)
        node.run(self.master_units["master-signing-key"], POOL_SIGNING_KEY=key,
                 CONDOR_ETC=node.path)
        return node

    def token(self, node: R.Node, cluster: str) -> str:
        return node.run(self.master_units["master-worker-token"] + 'printf %s "$WORKER_TOKEN"',
                        CLUSTER_NAME=cluster).stdout

    def worker(self, name: str, token: str, noclaim_s: int = 0, extra: str = "") -> R.Node:
        node = R.Node(self.base, name, self.port, f"NUM_CPUS = 1\nMEMORY = 512\n"
                      f"MASTER_NAME = {name}\nSTARTD_NAME = {name}\n{extra}")
        node.run(self.worker_units["worker-condor"], MASTER_ADDRESS="127.0.0.1",
                 WORKER_TOKEN=token or "none", CLUSTER_NAME=CLUSTER, INSTANCE_ID=f"i-{name}",
                 NOCLAIM_SHUTDOWN_S=str(noclaim_s), CONDOR_ETC=node.path, SBIN=f"{node.path}/sbin")
        node.run(self.worker_units["worker-poweroff"], SBIN=f"{node.path}/sbin")
        if not token:
            os.unlink(f"{node.host}/tokens.d/elastiq-worker.token")
        self.nodes.append(node.start())
        return node

    def start(self) -> None:
        self.master = self.master_node("master", CLUSTER, self.a.signing_key)
        self.worker_token = self.token(self.master, CLUSTER)
        other = self.master_node("other-master", OTHER, _key())   # never started
        self.other_token = self.token(other, OTHER)
        self.nodes.append(self.master.start())
        self.w1 = self.worker("w1", self.worker_token)
        self.worker("w2", "")                   # no token
        self.worker("w3", self.other_token)     # the second cluster's token

    def stop(self) -> None:
        """Every condor_master by its pid, then the test's directory in the root."""
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(R.ROOT + self.base, ignore_errors=True)

    def q(self, command: str, user=None, check=True, **env) -> str:
        return self.master.run(command, user=user, check=check, **env).stdout

    def startds(self) -> dict:
        out = self.q("condor_status -startd -af Name ElastiqInstanceId ElastiqCluster "
                     "AuthenticationMethod AuthenticatedIdentity", check=False)
        return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}

    def explain(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log('MasterLog')[-1200:]}\n{n.log('StartLog')[-1200:]}"
                         for n in self.nodes) + "\n--- collector\n" + self.master.log("CollectorLog")[-1500:]


def test_worker_with_the_token_joins_over_idtokens_with_the_elastiq_attributes(cluster):
    found = R.wait_for(lambda: cluster.startds().get("w1@vm"), 90, "w1's startd in the pool",
                       cluster.explain)
    assert found == ["i-w1", CLUSTER, "IDTOKENS", f"condor@{CLUSTER}"]


def test_a_startd_without_the_token_or_with_another_clusters_is_refused(cluster):
    R.wait_for(lambda: cluster.startds().get("w1@vm"), 90, "w1's startd", cluster.explain)
    for node in cluster.nodes[2:4]:   # both have tried for as long as w1 needed, and more
        R.wait_for(lambda: "Failed to authenticate" in node.log("StartLog")
                   or "PERMISSION DENIED" in cluster.master.log("CollectorLog"), 60,
                   f"{node.name} refused", cluster.explain)
    time.sleep(3)
    assert set(cluster.startds()) == {"w1@vm"}


def test_an_unprivileged_users_vanilla_job_runs_on_the_worker(cluster):
    R.wait_for(lambda: cluster.startds().get("w1@vm"), 90, "w1's startd", cluster.explain)
    jobs = Path(f"{cluster.master.host}/jobs")
    jobs.mkdir()
    uid, gid = R._root_ids(R.USER)
    os.chown(jobs, uid, gid)
    (jobs / "job.sub").write_text(
        "universe = vanilla\nexecutable = /bin/echo\narguments = hello from the worker\n"
        "transfer_executable = false\nshould_transfer_files = YES\n"
        "when_to_transfer_output = ON_EXIT\noutput = out.txt\nerror = err.txt\nlog = job.log\n"
        "request_cpus = 1\nrequest_memory = 64MB\nqueue\n")
    path = f"{cluster.master.path}/jobs"
    cluster.q(f"cd {path} && condor_submit job.sub", user=R.USER)
    R.wait_for(lambda: (jobs / "out.txt").exists() and (jobs / "out.txt").read_text(), 120,
               "the job's output", lambda: cluster.q("condor_q -better-analyze -all",
                                                     check=False) + cluster.explain())
    assert (jobs / "out.txt").read_text() == "hello from the worker\n"
    history = cluster.q("condor_history -af Owner JobStatus LastRemoteHost", user=R.USER)
    assert history.split()[:2] == [R.USER, "4"] and "w1@vm" in history


def test_elastiqs_token_reads_queue_and_pool_and_drains_a_user_cannot(cluster):
    R.wait_for(lambda: cluster.startds().get("w1@vm"), 90, "w1's startd", cluster.explain)
    home = f"{cluster.master.path}/elastiq-home"
    cluster.master.run(cluster.master_units["master-elastiq-token"], CLUSTER_NAME=CLUSTER,
                       ELASTIQ_HOME=home, ELASTIQ_USER=R.USER)
    # The hardened unit's PrivateTmp rules filesystem authentication out: elastiq has its token.
    as_elastiq = {"_CONDOR_SEC_TOKEN_DIRECTORY": f"{home}/.condor/tokens.d",
                  "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS": "IDTOKENS"}
    no_token = {"_CONDOR_SEC_TOKEN_DIRECTORY": f"{home}/nothing-here"}
    refused = cluster.master.run("condor_drain slot1@w1@vm", user=R.USER, check=False,
                                 **no_token)
    assert refused.returncode != 0 and "Sent request" not in refused.stdout
    assert "Can't find address" not in refused.stderr, refused.stderr  # found, then refused
    assert "w1@vm" in cluster.q("condor_status -startd -af Name", user=R.USER, **as_elastiq)
    cluster.q("condor_q -all -totals", user=R.USER, **as_elastiq)
    assert "Sent request to drain" in cluster.q("condor_drain slot1@w1@vm", user=R.USER,
                                                **as_elastiq)
    R.wait_for(lambda: {"Drained", "true"} & set(cluster.q(
        "condor_status -startd -af State Draining", check=False).split()), 60, "w1 draining",
        cluster.explain)


def test_docker_part_parses_with_condor_config_val(cluster):
    w1 = cluster.nodes[1]
    got = w1.run("condor_config_val DOCKER DOCKER_IMAGE_CACHE_SIZE DOCKER_DROP_ALL_CAPABILITIES "
                 "DOCKER_PERFORM_TEST")
    assert got.stdout.split() == ["/usr/bin/docker", "8", "true", "False"]


def test_unclaimed_worker_exits_and_its_master_runs_the_poweroff_hook(cluster):
    calls = "/poweroff-calls"
    node = cluster.worker("w4", cluster.worker_token, noclaim_s=5,
                          extra="ELASTIQ_SHUTDOWN_GRACE = 5\nSTART = False\n")
    stub = Path(f"{node.host}/bin/systemctl")
    stub.write_text(f'#!/bin/sh\necho "$*" >> {node.path}{calls}\n[ "$1" = show ] && echo active\n'
                    "exit 0\n")
    stub.chmod(0o755)
    R.wait_for(lambda: not node.alive(), 120, "w4's condor_master to exit", cluster.explain)
    assert "resources are free, exiting" in node.log("StartLog")  # STARTD_NOCLAIM_SHUTDOWN
    assert "poweroff" in Path(node.host + calls).read_text().split("\n")[-2]


def test_master_watch_powers_off_only_after_the_master_is_gone_for_its_limit(cluster):
    w1 = cluster.nodes[1]
    w1.run(cluster.worker_units["worker-master-watch"], MASTER_ADDRESS="127.0.0.1",
           MASTER_LOST_SHUTDOWN_S="600", ELASTIQ_ETC=f"{w1.path}/etc",
           WATCH_STATE_DIR=f"{w1.path}/watch", SBIN=f"{w1.path}/sbin",
           SYSTEMD_DIR=f"{w1.path}/etc")
    with open(f"{w1.host}/etc/worker.env", "a") as env_file:
        env_file.write(f"MASTER_PORT={cluster.port}\n")
    Path(f"{w1.host}/bin/logger").write_text("#!/bin/sh\nexit 0\n")
    Path(f"{w1.host}/bin/logger").chmod(0o755)

    def watch(now: int) -> str:
        Path(f"{w1.host}/bin/date").write_text(f"#!/bin/sh\necho {now}\n")
        Path(f"{w1.host}/bin/date").chmod(0o755)
        Path(f"{w1.host}/bin/systemctl").write_text(f'#!/bin/sh\necho "$*" > {w1.path}/watch-calls\n')
        Path(f"{w1.host}/bin/systemctl").chmod(0o755)
        calls = Path(f"{w1.host}/watch-calls")
        calls.unlink(missing_ok=True)
        w1.run(f"{w1.path}/sbin/elastiq-master-watch")
        return calls.read_text() if calls.exists() else ""

    assert watch(1000) == ""                  # the central manager answers
    cluster.master.stop()
    assert watch(1300) == "" and watch(1599) == ""
    assert watch(1600) == "poweroff\n"
