"""The HTCondor adapter against a real pool, through the real bindings.

The pool is the ``condor_pool`` fixture (Debian's HTCondor 23.9 daemons from the provisioned
root, see tests/support/condor_pool.py) plus one execute node of our cluster (2 cpus, 2048 MB,
``ElastiqInstanceId``); skipped where no pool can run, a failure under
``ELASTIQ_REQUIRE_REAL_POOL=1``.  Jobs are submitted as the unprivileged test user, with the
pool's own condor_submit and with the htcondor2 bindings from PyPI (removed afterwards).
Waiting on real daemons is polling with a deadline.
"""
from __future__ import annotations

import logging
import re

import classad2
import pytest

from elastiq.adapters.htcondor import groups
from elastiq.adapters.htcondor.batch import CondorBindings, HTCondorBatch
from elastiq.config import Config, ElastiqSection, VMSection

MARK = "ElastiqLiveTest"  # only our template advertises it: such jobs stay idle yet matchable
CLUSTER = "elastiq-live"
INSTANCE = "i-0live00000000001"
WAIT_S = 60


@pytest.fixture(scope="module")
def live_pool(condor_pool):
    """The module's pool with one worker of our cluster, and the bindings configured for it."""
    condor_pool.start_startd("live-worker", cpus=2, memory_mb=2048, cluster=CLUSTER,
                             instance_id=INSTANCE, wait=WAIT_S)
    return condor_pool


@pytest.fixture
def adapter(live_pool):
    live_pool.htcondor2  # CONDOR_CONFIG of this process: the pool's client configuration
    config = Config(elastiq=ElastiqSection(cluster_name=CLUSTER),
                    vm=VMSection(cpus=2, memory_mb=4096, disk_mb=20000))
    return HTCondorBatch(config, machine_attrs={MARK: True})


@pytest.fixture(params=["condor_submit", "htcondor2"])
def submit(request, live_pool):
    """Submit as the test user, with the pool's condor_submit or the PyPI bindings."""
    clusters = []

    def _submit(count=1, **description):
        base = {"executable": "/bin/sleep", "arguments": "300", "request_cpus": "1",
                "request_memory": "64", "request_disk": "1024"}
        base.update(description)
        how = live_pool.submit if request.param == "condor_submit" else live_pool.submit_with_bindings
        clusters.append(how(base, count=count))
        return clusters[-1]

    yield _submit
    schedd = live_pool.schedd()
    for cluster in clusters:
        schedd.act(live_pool.htcondor2.JobAction.Remove, f"ClusterId == {cluster}")


def ours(queue, cluster):
    """Idle jobs of one cluster (ids are ``<schedd>#<cluster>.<proc>``)."""
    return {j.id: j for j in queue.idle if j.id.rsplit("#", 1)[1].split(".")[0] == str(cluster)}


def test_queue_sees_idle_jobs_and_judges_them(adapter, submit, live_pool):
    fits = submit(count=2, requirements=f"TARGET.{MARK} =?= true")
    too_big = submit(request_memory="10000000", requirements=f"TARGET.{MARK} =?= true")
    held = submit(hold="true")
    queue = live_pool.wait_for(lambda: (lambda q: q if len(ours(q, fits)) == 2 else None)(adapter.queue()),
                               WAIT_S, "the submitted jobs idle in the queue")
    assert [(j.fits_worker, j.memory_mb) for j in ours(queue, fits).values()] == [(True, 64)] * 2, \
        [j for j in ours(queue, fits).values()]
    assert [j.fits_worker for j in ours(queue, too_big).values()] == [False]
    assert ours(queue, held) == {}


def test_jobs_that_can_never_run_are_told_in_one_line(adapter, submit, live_pool, caplog):
    """The real schedd's groups: three jobs alike that can never run make one INFO line
    naming them as a run (elastiq/adapters/told.py), once."""
    big = submit(count=3, request_memory="10000000", requirements=f"TARGET.{MARK} =?= true")
    with caplog.at_level(logging.INFO, logger="elastiq.adapters.htcondor.batch"):
        live_pool.wait_for(lambda: len(ours(adapter.queue(), big)) == 3, WAIT_S,
                           "the submitted jobs idle in the queue")
        adapter.queue()
    lines = [r.getMessage() for r in caplog.records if f"#{big}." in r.getMessage()]
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"3 jobs \S+#{big}\.0-2 can never run on a worker VM: requests "
                        r"10000000 MB memory, a worker VM has 4096 MB", lines[0]), lines


class JobByJob(CondorBindings):
    """The real bindings, but a grouped query that names no cluster: every job read alone."""

    def group_jobs(self, schedd, constraint, projection):
        return [classad2.ClassAd({"JobStatus": 1, "JobCount": 1})]


def test_the_schedds_groups_name_the_jobs_as_the_job_by_job_read(adapter, submit, live_pool):
    """The real schedd's QueryOpt.GroupBy: a contiguous cluster is named from its JobIds, a
    cluster whose jobs differ (request_memory per proc) is a group per job, a cluster with a
    gap (a held job in the middle) is read job by job; all as the plain read."""
    whole = submit(count=4, requirements=f"TARGET.{MARK} =?= true")
    varied = submit(count=3, requirements=f"TARGET.{MARK} =?= true", request_memory="6$(Process)")
    gap = submit(count=3, requirements=f"TARGET.{MARK} =?= true", request_memory="10000000")
    live_pool.schedd().act(live_pool.htcondor2.JobAction.Hold, f"ClusterId == {gap} && ProcId == 1")
    live_pool.wait_for(lambda: len(ours(adapter.queue(), gap)) == 2, WAIT_S, "the held job out")
    grouped = adapter.queue()
    plain = HTCondorBatch(adapter._config, bindings=JobByJob(),
                          machine_attrs={MARK: True}).queue()
    for cluster, procs in ((whole, range(4)), (gap, (0, 2)), (varied, range(3))):
        named = ours(grouped, cluster)
        assert sorted(int(k.rsplit(".", 1)[1]) for k in named) == list(procs)
        assert sorted(named.items()) == sorted(ours(plain, cluster).items())
    assert {j.fits_worker for j in ours(grouped, gap).values()} == {False}
    assert sorted(j.memory_mb for j in ours(grouped, varied).values()) == [60, 61, 62]


class Recorded(CondorBindings):
    """The real bindings, recording whether each grouped query was made apart."""

    def __init__(self):
        super().__init__()
        self.apart = []

    def group_jobs(self, schedd, constraint, projection, apart=False):
        self.apart.append(apart)
        return super().group_jobs(schedd, constraint, projection, apart=apart)


def test_a_big_schedd_is_read_apart_in_parts_as_in_one_query(adapter, submit, live_pool,
                                                             monkeypatch):
    """The real schedd read as one holding more than SPLIT_ABOVE_JOBS jobs is (its ad's
    TotalJobAds): two grouped queries at once, each by a child process; the jobs are those
    of one query in this process."""
    clusters = [submit(count=3, requirements=f"TARGET.{MARK} =?= true"),
                submit(count=2, requirements=f"TARGET.{MARK} =?= true", request_memory="128")]
    live_pool.wait_for(lambda: len(ours(adapter.queue(), clusters[1])) == 2, WAIT_S,
                       "the submitted jobs idle in the queue")
    whole = adapter.queue()
    monkeypatch.setattr(groups, "SPLIT_ABOVE_JOBS", -1)  # any schedd whose ad counts its jobs
    bindings = Recorded()
    parted = HTCondorBatch(adapter._config, bindings=bindings, machine_attrs={MARK: True}).queue()
    assert bindings.apart == [True] * groups.QUERY_PARTS
    for cluster, count in zip(clusters, (3, 2)):
        assert ours(parted, cluster) == ours(whole, cluster) and len(ours(whole, cluster)) == count


def test_a_query_apart_that_fails_says_why(adapter, live_pool):
    """A schedd that does not answer: the child process's one line, as an adapter error."""
    nobody = CondorBindings().locate_schedds()[0]
    nobody["MyAddress"] = "<127.0.0.1:1>"
    with pytest.raises(RuntimeError, match=r"^the schedd query failed \(exit code 1\): "
                                           r"Failed to fetch ads from schedd"):
        CondorBindings().group_jobs(nobody, "true", ["ClusterId"], apart=True)


def test_a_runnable_job_is_seen_idle_or_running(adapter, submit, live_pool):
    before = adapter.queue().running
    cluster = submit(arguments="120")
    assert live_pool.wait_for(lambda: ours(adapter.queue(), cluster) or adapter.queue().running > before,
                              WAIT_S, "the job idle or running")


def test_pool_lists_the_workers(adapter):
    pool = adapter.pool(known_ips={})
    assert not pool.partial
    assert [(w.instance_id, w.cpus, w.memory_mb) for w in pool.workers] == [(INSTANCE, 2, 2048)]


def test_drain_then_cancel(adapter, live_pool):
    workers = adapter.pool(known_ips={}).workers
    worker = sorted(workers, key=lambda w: (w.draining, w.running_jobs))[0]
    if worker.draining:
        pytest.fail(f"every worker already drains ({worker.name}): nothing to test on")

    def state():
        found = [w for w in adapter.pool(known_ips={}).workers if w.name == worker.name]
        return found[0].draining if found else None

    adapter.drain(worker.name, "elastiq live test")
    try:
        live_pool.wait_for(lambda: state() is True, WAIT_S, f"{worker.name} showing Draining")
        adapter.drain(worker.name, "again")  # idempotent
    finally:
        adapter.cancel_drain(worker.name)
    live_pool.wait_for(lambda: state() is False, WAIT_S, f"{worker.name} no longer draining")


def test_drain_a_worker_as_booted_workers_are(adapter, live_pool):
    """A worker as ecm's template makes one: the startd named after its host, a host name no
    DNS knows (networks of private addresses without DNS), and administration only through the
    capability it gave the collector (SEC_ENABLE_REMOTE_ADMINISTRATION; its own
    ALLOW_ADMINISTRATOR names nobody here).  The drain reaches it and is cancelled."""
    host = "worker-7.nodns.invalid"
    startd = live_pool.start_startd("booted", cpus=1, memory_mb=1024, cluster=CLUSTER,
                                    instance_id="i-0live0000000booted", fragments=[
                                        "STARTD_NAME =", "MASTER_NAME =", f"NETWORK_HOSTNAME = {host}",
                                        "SEC_ENABLE_REMOTE_ADMINISTRATION = True",
                                        "ALLOW_ADMINISTRATOR = nobody@nowhere.invalid"])
    try:
        def draining():
            found = [w for w in adapter.pool(known_ips={}).workers if w.name == host]
            return found[0].draining if found else None

        live_pool.wait_for(lambda: draining() is False, WAIT_S, f"{host} in the pool")
        adapter.drain(host, "elastiq live test")
        live_pool.wait_for(lambda: draining() is True, WAIT_S, f"{host} showing Draining")
        assert 'DrainReason = "elastiq live test"' in startd.log("StartLog")
        adapter.cancel_drain(host)
        live_pool.wait_for(lambda: draining() is False, WAIT_S, f"{host} no longer draining")
    finally:
        live_pool.stop_startd(startd)
