"""The worker template the matcher judges jobs on (issue 9, defect 1) and docker jobs (issue 17).

Real ClassAds captured from an HTCondor 25.0 pool, the real classad2 library and the real
adapter; only the bindings' calls are faked (tests/htcondor_fake.py).  Job ads of HTCondor
25.12+ submit are the captured ones with the Requirements that submit writes since 25.12 (the
PyPI bindings' Submit cannot print a job ad without a schedd: ``Submit.jobs`` is not
implemented in htcondor2 25.x).
"""
from __future__ import annotations

import logging

import classad2
import pytest

from elastiq.adapters.htcondor.batch import HTCondorBatch
from elastiq.adapters.htcondor.template import learned, synthetic
from elastiq.config import params_of
from elastiq.core import get_policy, records
from elastiq.model import Launch, Memory, Snapshot
from htcondor_fake import by_id, config, fake, load

NOW = 1795290000.0
#: What submit of HTCondor 25.12 and later writes instead of ``(TARGET.Disk >= RequestDisk)``.
DISK_25_12 = '(versionGE(split(TARGET.CondorVersion)[1],"25.12.0") || (TARGET.Disk >= RequestDisk))'
VANILLA_25_12 = (f'(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && {DISK_25_12} && '
                 '(TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus) && '
                 '((TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer))')
DOCKER_25_12 = (f'(TARGET.Arch == "X86_64") && TARGET.HasDocker && {DISK_25_12} && '
                '(TARGET.Memory >= RequestMemory) && (TARGET.HasFileTransfer)')
#: The Debian 12 master of the captured pool, as its bindings' configuration describes it.
LOCAL = {"OpSys": "LINUX", "OpSysAndVer": "Debian12", "OpSysMajorVer": 12, "OpSysVer": 1200,
         "OpSysName": "Debian", "Arch": "X86_64",
         "CondorVersion": "$CondorVersion: 25.14.1 2026-09-24 BuildID: UW_Python_Wheel_Build $"}


def idle_by_id(queue):
    return {job.id.split("#")[1]: job for job in queue.idle}


def jobs_with(requirements, *, docker=False, procs=("3.1",)):
    """The captured queue, with ``procs`` idle and asking ``requirements`` (a docker job
    copied from the captured docker job 5.0 when ``docker``)."""
    ads = load("jobs.queue.long.txt")
    for proc in procs:
        ad = by_id(ads, "5.0" if docker else proc)
        if docker and proc != "5.0":
            ad = next(classad2.parseAds(ad.printOld()))
            ad["ProcId"] = int(proc.split(".")[1])
            ads.append(ad)
        ad["JobStatus"] = 1
        ad["Requirements"] = classad2.ExprTree(requirements)
        ad.pop("AutoClusterId", None)
    return ads


# ----------------------------------------------------------------------- before any worker


@pytest.mark.parametrize("requirements,docker", [(VANILLA_25_12, False), (DOCKER_25_12, True)])
def test_jobs_of_current_submit_are_matchable_before_any_worker(requirements, docker, caplog):
    """Defect 1: the template had no CondorVersion, so these Requirements were ERROR and the
    jobs never caused a launch."""
    ads = jobs_with(requirements, docker=docker, procs=("5.0",) if docker else ("3.1",))
    adapter = HTCondorBatch(config(), bindings=fake(ads, slots=[]), clock=lambda: NOW)
    job = "5.0" if docker else "3.1"
    with caplog.at_level(logging.INFO):
        jobs = idle_by_id(adapter.queue())
    assert jobs[job].fits_worker, caplog.text
    assert f"#{job} can never run" not in caplog.text


def test_the_synthetic_template_defines_what_stock_requirements_reference():
    """Every TARGET attribute the Requirements of the captured jobs (and of 25.12+ submit)
    reference is defined, with the master's OS and HTCondor series."""
    machine = classad2.ClassAd(synthetic(config(), LOCAL))
    blank = classad2.ClassAd()
    refs = set()
    for ad in load("jobs.queue.long.txt") + load("jobs.history.long.txt"):
        refs |= {r.split(".", 1)[1] for r in blank.externalRefs(ad.lookup("Requirements"))
                 if r.lower().startswith("target.")}
    refs |= {"CondorVersion", "OpSysAndVer", "OpSysMajorVer", "TotalDisk", "DockerVersion"}
    assert refs >= {"Arch", "OpSys", "Disk", "Memory", "Cpus", "FileSystemDomain",
                    "HasFileTransfer", "HasDocker", "ElastiqCluster"}
    assert sorted(r for r in refs if r not in machine) == []
    assert machine["CondorVersion"].split()[1] == "25.14.1" and machine["OpSysAndVer"] == "Debian12"
    assert (machine["Cpus"], machine["Memory"], machine["Disk"]) == (4, 8192, 20000 * 1024)
    assert "DockerVersion" not in classad2.ClassAd(synthetic(config(has_docker=False), LOCAL))


def test_before_any_worker_the_version_is_the_masters_schedds():
    """The workers install the master's HTCondor series: the schedd's version beats the
    bindings' (here 25.14.1 bindings, 25.0.13 daemons)."""
    adapter = HTCondorBatch(config(), bindings=fake(slots=[]), clock=lambda: NOW, local=LOCAL)
    assert adapter.matcher.machine["CondorVersion"].split()[1] == "25.14.1"
    adapter.queue()
    assert adapter.matcher.machine["CondorVersion"] == "$CondorVersion: 25.0.13 2026-11-21 $"
    assert adapter.matcher.machine["CondorPlatform"] == "$CondorPlatform: X86_64-Debian_12 $"
    before = adapter.matcher.machine
    adapter.queue()
    assert adapter.matcher.machine is before  # built once


# ----------------------------------------------------------------------- learned from a worker


def test_the_template_is_learned_from_a_real_worker_rescaled_to_a_whole_fresh_vm(caplog):
    bindings = fake()
    adapter = HTCondorBatch(config(), bindings=bindings, clock=lambda: NOW, local=LOCAL)
    with caplog.at_level(logging.INFO):
        adapter.pool()
    machine = adapter.matcher.machine
    worker = next(s for s in load("startd.slots.long.txt") if s["Name"] == "slot1@vm-a@vm")
    for attr in ("CondorVersion", "OpSysAndVer", "OpSysMajorVer", "Microarch", "has_avx2",
                 "FileSystemDomain", "UidDomain", "StarterAbilityList"):
        assert machine[attr] == worker[attr], attr
    # vm-a's partitionable slot has 0 cpus / 3072 MB left and 77 GB disk: a fresh VM has all
    assert (machine["Cpus"], machine["Memory"], machine["Disk"]) == (4, 8192, 20000 * 1024)
    assert (machine["State"], machine["Activity"]) == ("Unclaimed", "Idle")
    assert machine["NumDynamicSlots"] == 0
    assert machine["Name"] == "slot1@elastiq-worker" and machine["ElastiqCluster"] == "demo"
    for attr in ("ElastiqInstanceId", "ChildCpus", "ChildState", "MyAddress",
                 "NumDynamicSlotsTime"):
        assert attr not in machine
    assert machine["HasDocker"] is True  # the configuration says the workers have docker
    assert adapter.learned_from == ("slot1@vm-a@vm", "$CondorVersion: 25.0.13 2026-11-21 $")
    assert "worker template learned from slot1@vm-a@vm (CondorVersion: 25.0.13 2026-11-21; " \
           "Debian12): 4 cpus, 8192 MB, 20000 MB disk, LINUX/X86_64, docker yes" in caplog.text
    slot_queries = [call for call in bindings.calls if call[0] == "query_slots"]
    adapter.pool()  # learned once: no second query of a whole slot ad
    assert len([call for call in bindings.calls if call[0] == "query_slots"]) == \
        len(slot_queries) + 1


def test_a_learned_template_changes_cached_verdicts():
    """A job that needs what only a real worker advertises (has_avx2, Microarch): unmatchable
    on the synthetic template, matchable once the template is learned -- the cached verdict
    does not outlive the template."""
    ads = jobs_with('TARGET.has_avx2 =?= true && TARGET.Microarch == "x86_64-v3"')
    adapter = HTCondorBatch(config(), bindings=fake(ads), clock=lambda: NOW, local=LOCAL)
    assert not idle_by_id(adapter.queue())["3.1"].fits_worker
    adapter.pool()
    assert idle_by_id(adapter.queue())["3.1"].fits_worker


def with_version(slots, version, machines=("vm-a@vm", "vm-b@vm")):
    for ad in slots:
        if ad["Name"].split("@", 1)[1] in machines:
            ad["CondorVersion"] = f"$CondorVersion: {version} 2026-11-28 $"
    return slots


def test_the_template_is_learned_again_when_the_workers_run_another_version():
    ads = jobs_with('versionGE(split(TARGET.CondorVersion)[1], "25.12.0")')
    bindings = fake(ads)
    adapter = HTCondorBatch(config(), bindings=bindings, clock=lambda: NOW, local=LOCAL)
    adapter.pool()
    assert not idle_by_id(adapter.queue())["3.1"].fits_worker  # 25.0.13 workers
    with_version(bindings.slots, "25.14.1", machines=("vm-b@vm",))
    adapter.pool()  # a mix: the template of vm-a still describes a worker of ours
    assert adapter.learned_from[0] == "slot1@vm-a@vm"
    with_version(bindings.slots, "25.14.1")
    adapter.pool()  # no worker runs 25.0.13 any more: a new image
    assert adapter.learned_from[1].split()[1] == "25.14.1"
    assert idle_by_id(adapter.queue())["3.1"].fits_worker


def test_a_worker_ad_that_cannot_be_read_keeps_the_template(caplog):
    bindings = fake()
    adapter = HTCondorBatch(config(), bindings=bindings, clock=lambda: NOW, local=LOCAL)
    before = adapter.matcher.machine
    calls = []

    def query_slots(constraint, projection, original=bindings.query_slots):
        calls.append(constraint)
        if len(calls) == 2:
            raise OSError("collector went away")
        return original(constraint, projection)

    bindings.query_slots = query_slots
    with caplog.at_level(logging.WARNING):
        assert len(adapter.pool().workers) == 2
    assert adapter.matcher.machine is before and adapter.learned_from is None
    assert "worker template not learned: cannot read the slot ad of slot1@vm-a@vm" in caplog.text
    adapter.pool()  # tried again
    assert adapter.learned_from is not None


def test_workers_of_another_cluster_are_not_learned_from():
    adapter = HTCondorBatch(config(cluster="other"), bindings=fake(), clock=lambda: NOW,
                            local=LOCAL)
    adapter.pool()
    assert adapter.learned_from is None


# ----------------------------------------------------------------------- docker jobs (issue 17)


@pytest.mark.parametrize("learn", [False, True], ids=["synthetic", "learned"])
def test_docker_jobs_are_matchable_exactly_when_the_workers_have_docker(learn):
    """The captured docker-universe jobs (5.x: WantDocker, TARGET.HasDocker), one written by
    25.12+ submit, and one of a job transform that sets WantDocker without HasDocker in its
    Requirements; the captured workers have no docker, so what is learned from them must not
    decide it: ``htcondor.has_docker`` does."""
    ads = jobs_with(DOCKER_25_12, docker=True, procs=("5.7",))
    ads += jobs_with('(TARGET.Arch == "X86_64") && (TARGET.Memory >= RequestMemory)', docker=True,
                     procs=("5.8",))[-1:]
    docker_jobs = ("5.0", "5.1", "5.7", "5.8")
    for has_docker in (True, False):
        adapter = HTCondorBatch(config(has_docker=has_docker), bindings=fake(ads),
                                clock=lambda: NOW, local=LOCAL)
        if learn:
            adapter.pool()
            assert adapter.learned_from is not None
        jobs = idle_by_id(adapter.queue())
        assert {j: jobs[j].fits_worker for j in docker_jobs} == dict.fromkeys(docker_jobs, has_docker)
        assert jobs["3.1"].fits_worker  # vanilla jobs either way


def test_a_cluster_without_docker_never_launches_for_docker_jobs():
    """The adapter's queue of only docker jobs, through the real decision core."""
    from tests.support.world import make_config

    ads = [ad for ad in load("jobs.queue.long.txt") if ad.get("WantDocker") is True]
    assert len(ads) == 2 and all(ad["JobStatus"] == 1 for ad in ads)
    policy = get_policy("default")
    for has_docker in (False, True):
        cfg = make_config(elastiq={"cluster_name": "demo", "waiting_jobs_time_s": 0},
                          vm={"cpus": 4, "memory_mb": 8192}, htcondor={"has_docker": has_docker})
        adapter = HTCondorBatch(cfg, bindings=fake(ads, slots=[]), clock=lambda: NOW, local=LOCAL)
        snapshot = Snapshot(queue=adapter.queue(), pool=adapter.pool(), instances=())
        kept, memory, launches = {}, Memory(), []
        for now in (NOW, NOW + 1, NOW + 3600):
            plan, kept, memory = records.step(policy, snapshot, kept, memory, params_of(cfg), now)
            launches += [a for a in plan.actions if isinstance(a, Launch)]
        assert bool(launches) is has_docker, plan.notes


def test_the_learned_template_keeps_a_workers_docker_when_configured():
    worker = next(s for s in load("startd.slots.long.txt") if s["Name"] == "slot1@vm-a@vm")
    worker.update({"HasDocker": True,
                   "DockerVersion": "Docker version 26.1.5+dfsg1, build a72d7cd"})
    assert learned(worker, config())["DockerVersion"].startswith("Docker version 26.1.5")
    without = learned(worker, config(has_docker=False))
    assert without["HasDocker"] is False and "DockerVersion" not in without


# ------------------------------------------------------- shared files (should_transfer_files = NO)

#: What submit writes for ``should_transfer_files = NO``: the worker must share the files.
NO_TRANSFER = (f'(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && {DISK_25_12} && '
               '(TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus) && '
               '(TARGET.FileSystemDomain == MY.FileSystemDomain)')


def _no_transfer_job(domain):
    """The captured job 3.1 alone in the queue, idle, transferring no files."""
    ad = by_id(jobs_with(NO_TRANSFER), "3.1")
    ad["ShouldTransferFiles"] = "NO"
    ad["FileSystemDomain"] = domain  # the schedd's FILESYSTEM_DOMAIN
    return [ad]


@pytest.mark.parametrize("configured,fits", [(None, False), ("physics-c1", True),
                                              ("elsewhere", False)])
def test_a_job_without_file_transfer_launches_the_first_worker_only_on_a_shared_domain(
        configured, fits):
    """Issue 28: before any worker is seen, a job that transfers no files fits the workers
    (and launches the first one) only when ``htcondor.filesystem_domain`` (ecm
    --shared-home: the cluster name, which master and workers set as FILESYSTEM_DOMAIN) is
    its schedd's domain; unset, the synthetic worker's domain is one no job has."""
    from tests.support.world import make_config

    cfg = make_config(elastiq={"cluster_name": "demo", "waiting_jobs_time_s": 0},
                      vm={"cpus": 4, "memory_mb": 8192},
                      htcondor={} if configured is None else {"filesystem_domain": configured})
    adapter = HTCondorBatch(cfg, bindings=fake(_no_transfer_job("physics-c1"), slots=[]),
                            clock=lambda: NOW, local=LOCAL)
    queue = adapter.queue()
    assert idle_by_id(queue)["3.1"].fits_worker is fits
    snapshot = Snapshot(queue=queue, pool=adapter.pool(), instances=())
    kept, memory, launches = {}, Memory(), []
    for now in (NOW, NOW + 1, NOW + 3600):
        plan, kept, memory = records.step(get_policy("default"), snapshot, kept, memory,
                                           params_of(cfg), now)
        launches += [a for a in plan.actions if isinstance(a, Launch)]
    assert bool(launches) is fits, plan.notes
