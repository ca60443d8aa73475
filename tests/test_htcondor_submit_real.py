"""Job ads written by a real ``condor_submit`` (HTCondor 23.9 of the Debian 13 root the CI
provisions, run from the host with ``-dump``: no schedd needed) for the master's example job
files, judged by the real adapter: docker-universe jobs are matchable exactly when the
configured workers have docker (issue 17), vanilla jobs always.

Skipped where the root is not provisioned (``$ELASTIQ_CI_ROOT``, default
``/var/lib/elastiq-ci/trixie``, complete when ``.elastiq-provisioned`` exists).
"""
from __future__ import annotations

import os
import pathlib
import platform
import re
import subprocess

import classad2
import pytest

from elastiq.adapters.htcondor.batch import HTCondorBatch
from htcondor_fake import config, fake, load

CI_ROOT = pathlib.Path(os.environ.get("ELASTIQ_CI_ROOT", "/var/lib/elastiq-ci/trixie"))
MASTER_TEMPLATE = pathlib.Path(__file__).parent.parent / "ecm" / "templates" / "master.sh.j2"
LOADER = CI_ROOT / "lib64" / "ld-linux-x86-64.so.2"

pytestmark = [pytest.mark.daemons, pytest.mark.skipif(
    not (CI_ROOT / ".elastiq-provisioned").exists() or platform.machine() != "x86_64"
    or not LOADER.exists(),
    reason=f"no provisioned HTCondor root at {CI_ROOT} (x86_64)")]


def example_job(name: str) -> str:
    """The submit file ``name`` the master's user-data writes for its users."""
    text = MASTER_TEMPLATE.read_text()
    found = re.search(rf'jobs/{re.escape(name)}" <<\'EOF_JOB\'\n(.*?)\nEOF_JOB', text, re.S)
    assert found, f"{name} not in {MASTER_TEMPLATE}"
    return found.group(1)


def condor_submit_dump(directory: pathlib.Path, name: str):
    """The job ads the root's condor_submit writes for the example job file ``name``."""
    for sub in ("log", "output", "error"):
        (directory / sub).mkdir(exist_ok=True)
    script = directory / "test.sh"
    script.write_text("#!/bin/sh\nhostname\n")
    script.chmod(0o755)
    (directory / name).write_text(example_job(name))
    (directory / "condor_config").write_text("FILESYSTEM_DOMAIN = master\nUID_DOMAIN = master\n")
    libraries = ":".join(str(CI_ROOT / d) for d in (
        "usr/lib", "usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"))
    dump = directory / f"{name}.ads"
    done = subprocess.run(
        [str(LOADER), "--library-path", libraries, str(CI_ROOT / "usr/bin/condor_submit"),
         "-dump", str(dump), name],
        cwd=directory, capture_output=True, text=True, timeout=60,
        env={"CONDOR_CONFIG": str(directory / "condor_config"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    with open(dump) as handle:
        procs = list(classad2.parseAds(handle))
    ads = []
    for proc in procs:  # the first ad is whole; the next ones hold what differs (the procs)
        ad = next(classad2.parseAds(procs[0].printOld()))
        ad.update(proc)
        ad["ClusterId"] = 10 if "docker" in name else 20  # one schedd holds both files' jobs
        ads.append(ad)
    return ads


def test_docker_jobs_of_the_real_condor_submit_need_workers_with_docker(tmp_path):
    docker = condor_submit_dump(tmp_path, "test-docker.sub")
    vanilla = condor_submit_dump(tmp_path, "test.sub")
    assert len(docker) == len(vanilla) == 10
    assert all(ad["WantDocker"] is True and "TARGET.HasDocker" in str(ad["Requirements"])
               for ad in docker)
    assert docker[0]["CondorVersion"].split()[1].startswith("23.9")
    for has_docker in (True, False):
        for slots in ([], load("startd.slots.long.txt")):  # synthetic, then learned template
            adapter = HTCondorBatch(config(has_docker=has_docker),
                                    bindings=fake(docker + vanilla, slots))
            adapter.pool()
            assert (adapter.learned_from is not None) == bool(slots)
            jobs = adapter.queue().idle
            assert len(jobs) == 20
            verdicts = {(j.id.split("#")[1].split(".")[0], j.fits_worker) for j in jobs}
            assert verdicts == {("10", has_docker), ("20", True)}, (has_docker, slots and "learned")
