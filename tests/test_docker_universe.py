"""Docker-universe jobs on a real pool, run by a startd configured from the rendered worker
user-data (its DOCKER lines and its elastiq-docker-check), as the unprivileged test user.

Rootful podman stands in for the docker engine and CLI (tests/support/docker_pool.py): what this
proves is HTCondor's docker path with our worker configuration and check, not docker's own
engine nor image pulls (no registry is reachable: the image is ``localhost/debian:trixie``).
Skipped where no pool or no podman can run, a failure under ``ELASTIQ_REQUIRE_REAL_POOL=1``.
"""
from __future__ import annotations

import os
import re

import pytest

from ecm import render
from elastiq.adapters.htcondor import pool as pool_ads
from tests.support import docker_pool
from tests.support.condor_pool import CondorPool
from tests.support.tools import skip_or_fail
from tests.test_ecm_render import answers

pytestmark = [pytest.mark.timeout(600), pytest.mark.daemons]
WORKER = render.render_worker(answers("debian12"))
MASTER = render.render_master(answers("debian12"))
WAIT_S = 180
HELD, COMPLETED = 5, 4


@pytest.fixture(scope="module")
def pool():
    skip_or_fail(docker_pool.unavailable(), "ELASTIQ_REQUIRE_REAL_POOL", "a docker pool")
    pool = CondorPool.start(name="docker")
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="module")
def worker(pool):
    """A worker whose docker works (podman through the condor user's sudo)."""
    return docker_pool.start_docker_startd(pool, "docker-ok", WORKER)


def example_docker_job() -> dict:
    """The master's example docker job file (``~/jobs/test-docker.sub``), as a description."""
    (text,) = [body for body in docker_pool.heredocs(MASTER, "EOF_JOB")
               if re.search(r"^universe\s*=\s*docker$", body, re.M)]
    return dict(re.match(r"(\w+)\s*=\s*(.*)", line).groups()
                for line in text.splitlines() if "=" in line and not line.startswith("queue"))


def submit_example(pool, image: str) -> int:
    """Submit the example docker job with ``image`` (no registry here) as the test user."""
    user = pool.user
    for sub in ("log", "output", "error"):
        path = f"{pool.root}{pool.job_dir}/{sub}"
        os.makedirs(path, exist_ok=True)
        os.chown(path, user.pw_uid, user.pw_gid)
    return pool.submit({**example_docker_job(), "docker_image": image}, count=1)


def final_ad(pool, cluster: int, status: int) -> dict:
    """The job's ad once it reached ``status`` (AssertionError with its hold reason otherwise)."""
    def look():
        ads = pool.jobs(f"ClusterId == {cluster}", ["JobStatus", "HoldReason", "HoldReasonCode",
                                                     "ExitCode", "Iwd", "Out", "Err"])
        done = [ad for ad in ads if ad.get("JobStatus") in (HELD, COMPLETED)]
        return done[0] if done else None
    ad = pool.wait_for(look, WAIT_S, f"job {cluster} held or completed",
                       logs=("SchedLog", "ShadowLog"))
    assert ad["JobStatus"] == status, dict(ad)
    return ad


def test_the_example_docker_job_runs_in_a_container(pool, worker):
    assert "docker works for jobs" in docker_pool.verdict(pool, "docker-ok")
    assert [ad.get("HasDocker") for ad in worker.slots()] == [True]
    cluster = submit_example(pool, docker_pool.IMAGE)
    ad = final_ad(pool, cluster, COMPLETED)
    assert ad["ExitCode"] == 0
    with open(f"{pool.root}{ad['Iwd']}/{ad['Out']}", encoding="utf-8") as handle:
        assert "VERSION_CODENAME=trixie" in handle.read()
    starter_logs = sorted(n for n in os.listdir(f"{worker.host_dir}/local/log") if n.startswith("StarterLog"))
    created = [line for name in starter_logs for line in worker.log(name).splitlines()
               if f"{docker_pool.PODMAN_DOCKER} create" in line]
    assert created and docker_pool.IMAGE in created[-1] and "/bin/cat" in created[-1], created


def test_a_missing_image_holds_the_job_with_the_reason(pool, worker):
    missing = "localhost/elastiq-no-such-image:1"
    ad = final_ad(pool, submit_example(pool, missing), HELD)
    assert missing in ad["HoldReason"], ad["HoldReason"]


def test_a_worker_whose_docker_fails_for_condor_does_not_advertise_it(pool):
    """The template's DOCKER (/usr/bin/docker: podman-docker, run by the condor user, i.e.
    rootless podman, which cannot clone here) passes HTCondor's own detection, run as root:
    without the check the worker advertises HasDocker and would hold every docker job; with it,
    no."""
    unchecked = docker_pool.start_docker_startd(pool, "docker-unchecked", WORKER, docker=None,
                                                check=False)
    checked = docker_pool.start_docker_startd(pool, "docker-broken", WORKER, docker=None)
    try:
        assert [ad.get("HasDocker") for ad in unchecked.slots()] == [True]
        assert "DOCKER =\n" in docker_pool.verdict(pool, "docker-broken")
        ads = checked.slots()
        assert [ad.get("HasDocker") for ad in ads] == [None], ads
        assert "/usr/bin/docker load as condor" in ads[0]["ElastiqDockerProblem"], ads[0]
        problems = pool_ads.docker_problems(ads)  # what elastiq warns of, from the real ads
        assert list(problems) == [pool_ads.startd_name(ads[0])] and \
            problems[pool_ads.startd_name(ads[0])] == ads[0]["ElastiqDockerProblem"]
    finally:
        pool.stop_startd(unchecked)
        pool.stop_startd(checked)


def test_a_docker_slower_than_htcondors_own_test_is_still_advertised(pool):
    """HTCondor's own docker test gives ``docker load`` 20 s, which a small VM still busy after
    its boot can miss; its startd then never advertises HasDocker (a booted CI cluster: neither
    worker did).  The worker leaves the test to elastiq-docker-check (120 s per step): a docker
    whose ``load`` takes 25 s is advertised; with HTCondor's own test on, it is not."""
    slow = "slow-docker"
    with open(f"{pool.host_dir}/{slow}", "w", encoding="utf-8") as handle:
        handle.write(f'#!/bin/sh\n[ "$1" != load ] || sleep 25\n'
                     f'exec {docker_pool.PODMAN_DOCKER} "$@"\n')
    os.chmod(f"{pool.host_dir}/{slow}", 0o755)
    docker = f"{pool.directory}/{slow}"
    htcondor_tests = WORKER.replace("DOCKER_PERFORM_TEST = False", "DOCKER_PERFORM_TEST = True")
    assert htcondor_tests != WORKER
    checked = docker_pool.start_docker_startd(pool, "docker-slow", WORKER, docker=docker)
    unchecked = docker_pool.start_docker_startd(pool, "docker-slow-htcondor-test",
                                                htcondor_tests, docker=docker, check=False)
    try:
        assert "docker works for jobs" in docker_pool.verdict(pool, "docker-slow")
        assert [ad.get("HasDocker") for ad in checked.slots()] == [True]
        assert [ad.get("HasDocker") for ad in unchecked.slots()] in ([None], [False])
        probe = unchecked.log("StarterLog.testing")  # the starter's probe, which the startd runs
        assert "slow-docker load -i" in probe and "Declaring a hung docker" in probe, probe
    finally:
        pool.stop_startd(checked)
        pool.stop_startd(unchecked)
