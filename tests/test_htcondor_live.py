"""The HTCondor adapter against a running pool, through the real bindings.

Runs only when ``ELASTIQ_TEST_CONDOR_CONFIG`` names the condor_config of a running pool
(CONDOR_CONFIG is set from it); skipped otherwise.  It submits a few jobs (removed afterwards)
and drains one worker for a moment (the drain is cancelled afterwards): use a test pool.
Workers that advertise ``ElastiqCluster`` are taken as the cluster; otherwise every startd is
mapped through the IP fallback.  Waiting on real daemons is polling with a deadline.
"""
from __future__ import annotations

import os
import re
import time

import pytest

from elastiq.adapters.htcondor import HTCondorBatch
from elastiq.config import Config, ElastiqSection, VMSection

CONFIG = os.environ.get("ELASTIQ_TEST_CONDOR_CONFIG")
pytestmark = pytest.mark.skipif(
    not CONFIG, reason="ELASTIQ_TEST_CONDOR_CONFIG does not name the condor_config of a running pool")
MARK = "ElastiqLiveTest"  # only our template advertises it: such jobs stay idle yet matchable


@pytest.fixture(scope="module")
def htcondor2():
    if not os.path.isfile(CONFIG):
        pytest.fail(f"ELASTIQ_TEST_CONDOR_CONFIG={CONFIG}: no such file")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONDOR_CONFIG", CONFIG)
        import htcondor2 as bindings

        bindings.reload_config()
        yield bindings
    bindings.reload_config()


@pytest.fixture(scope="module")
def pool_view(htcondor2):
    """(cluster name, ip -> fake instance id for startds without ElastiqCluster)."""
    slots = htcondor2.Collector().query(htcondor2.AdType.Startd,
                                        projection=["Name", "ElastiqCluster", "StartdIpAddr"])
    if not slots:
        pytest.fail("the pool has no startd: start at least one execute node")
    clusters = {s.get("ElastiqCluster") for s in slots} - {None}
    ips = {m for s in slots for m in re.findall(r"<([\d.]+):", s.get("StartdIpAddr") or "")}
    return (sorted(clusters)[0] if clusters else "elastiq-live"), {ip: f"i-{ip}" for ip in ips}


@pytest.fixture
def adapter(pool_view):
    cluster, _ = pool_view
    config = Config(elastiq=ElastiqSection(cluster_name=cluster),
                    vm=VMSection(cpus=2, memory_mb=4096, disk_mb=20000))
    return HTCondorBatch(config, machine_attrs={MARK: True})


@pytest.fixture
def submit(htcondor2):
    schedd = htcondor2.Schedd(htcondor2.Collector().locate(htcondor2.DaemonType.Schedd))
    clusters = []

    def _submit(count=1, **description):
        base = {"executable": "/bin/sleep", "arguments": "300", "request_cpus": "1",
                "request_memory": "64", "request_disk": "1024"}
        base.update(description)
        result = schedd.submit(htcondor2.Submit(base), count=count)
        clusters.append(result.cluster())
        return result.cluster()

    yield _submit
    for cluster in clusters:
        schedd.act(htcondor2.JobAction.Remove, f"ClusterId == {cluster}")


def wait_for(check, seconds=90.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.0)
    return check()


def ours(queue, cluster):
    """Idle jobs of one cluster (ids are ``<schedd>#<cluster>.<proc>``)."""
    return {j.id: j for j in queue.idle if j.id.rsplit("#", 1)[1].split(".")[0] == str(cluster)}


def test_queue_sees_idle_jobs_and_judges_them(adapter, submit):
    fits = submit(count=2, requirements=f"TARGET.{MARK} =?= true")
    too_big = submit(request_memory="10000000", requirements=f"TARGET.{MARK} =?= true")
    held = submit(hold="true")
    queue = wait_for(lambda: (lambda q: q if len(ours(q, fits)) == 2 else None)(adapter.queue()))
    assert queue is not None, "the submitted jobs never showed up idle"
    assert all(j.matchable and j.memory_mb == 64 for j in ours(queue, fits).values())
    assert [j.matchable for j in ours(queue, too_big).values()] == [False]
    assert ours(queue, held) == {}


def test_a_runnable_job_is_seen_idle_or_running(adapter, submit):
    before = adapter.queue().running
    cluster = submit(arguments="120")
    seen = wait_for(lambda: ours(adapter.queue(), cluster) or adapter.queue().running > before)
    assert seen


def test_pool_lists_the_workers(adapter, pool_view, htcondor2):
    _, known_ips = pool_view
    pool = adapter.pool(known_ips=known_ips)
    assert pool.workers and not pool.partial
    assert all(w.cpus > 0 and w.memory_mb > 0 and w.instance_id for w in pool.workers)


def test_drain_then_cancel(adapter, pool_view):
    _, known_ips = pool_view
    workers = adapter.pool(known_ips=known_ips).workers
    worker = sorted(workers, key=lambda w: (w.draining, w.claimed_slots))[0]
    if worker.draining:
        pytest.fail(f"every worker already drains ({worker.name}): nothing to test on")

    def state():
        found = [w for w in adapter.pool(known_ips=known_ips).workers if w.name == worker.name]
        return found[0].draining if found else None

    adapter.drain(worker.name, "elastiq live test")
    try:
        assert wait_for(lambda: state() is True), f"{worker.name} never showed Draining"
        adapter.drain(worker.name, "again")  # idempotent
    finally:
        adapter.cancel_drain(worker.name)
    assert wait_for(lambda: state() is False), f"{worker.name} still drains after the cancel"
