"""The HTCondor adapter on real ClassAds captured from an HTCondor 25.0 pool.

Only the bindings' query/locate/drain calls are faked (tests/htcondor_fake.py); the adapter,
the ad translation and the matchmaking with the real classad2 library run for real.
"""
from __future__ import annotations

import gc
import logging
import socket

import classad2
import htcondor2
import pytest

from elastiq.adapters import BATCH_SYSTEMS, load_class
from elastiq.adapters.base import ConfigError, FatalError, TransientError
from elastiq.adapters.htcondor.batch import CondorBindings, HTCondorBatch
from elastiq.adapters.htcondor.pool import aggregate_workers, candidate_ips
from htcondor_fake import SCHEDD, FakeBindings, by_id, config, fake, load
from tests.support.ports import check_batch

NOW = 1795290000.0


def batch(bindings=None, cfg=None, **kw):
    return HTCondorBatch(cfg or config(), bindings=bindings or fake(), clock=lambda: NOW, **kw)


def idle_by_id(queue):
    return {job.id.split("#")[1]: job for job in queue.idle}


# ----------------------------------------------------------------------------- queue


def test_registered_and_implements_the_protocol():
    assert load_class(BATCH_SYSTEMS, "htcondor") is HTCondorBatch
    bindings = fake()
    name = check_batch(batch(bindings))  # the port's behaviour on the captured pool
    # condor_drain addresses the startd through one of its slots (no DNS lookup of its host)
    assert [c[:2] for c in bindings.calls if "drain" in c[0]] == [("drain", f"slot1@{name}"),
                                                                  ("cancel_drain", f"slot1@{name}")]


def test_counts_idle_and_running_and_ignores_held():
    queue = batch().queue()
    jobs = idle_by_id(queue)
    assert sorted(jobs) == ["3.1", "3.2", "3.3", "4.0", "4.1", "5.0", "5.1"]
    assert queue.running == 5  # 2.0-2.2, 3.0, 7.0
    assert "6.0" not in jobs and not queue.partial
    assert all(job.id.startswith("master@vm#") for job in queue.idle)


def test_running_jobs_name_the_workers_they_run_on():
    """A worker the queue says runs a job is alive, whatever the collector lists (issue 10.2):
    RemoteHost ``slot1_2@vm-a@vm`` names the startd ``vm-a@vm``, as Worker.name does."""
    queue = batch().queue()
    assert queue.running_on == {"vm-a@vm", "vm-b@vm"}
    names = {worker.name for worker in batch().pool().workers}
    assert queue.running_on <= names


def test_the_pool_says_when_the_collector_started():
    """HTCondor 25's collector ad has no DaemonStartTime: its clock less its age."""
    ad = load("collector.long.txt")[0]
    assert batch().pool().collector_started == ad["MyCurrentTime"] - ad["MonitorSelfAge"]
    bindings = fake()
    bindings.collector_ads = lambda: [classad2.ClassAd({"DaemonStartTime": 1700000000})]
    assert HTCondorBatch(config(), bindings=bindings).pool().collector_started == 1700000000


def test_an_unreadable_collector_ad_leaves_the_start_unknown():
    bindings = fake()

    def broken():
        raise htcondor2.HTCondorException("no collector ad")

    bindings.collector_ads = broken
    pool = HTCondorBatch(config(), bindings=bindings).pool()
    assert pool.collector_started is None and len(pool.workers) == 2


def test_sizes_and_waiting_time_come_from_the_ads():
    jobs = idle_by_id(batch().queue())
    assert (jobs["3.1"].cpus, jobs["3.1"].memory_mb) == (2, 3000)
    assert (jobs["4.0"].cpus, jobs["4.0"].memory_mb) == (1, 100000)
    assert (jobs["5.0"].cpus, jobs["5.0"].memory_mb) == (1, 100)
    assert jobs["3.1"].queued_since == 1795287392.0  # EnteredCurrentStatus
    assert jobs["4.1"].queued_since == 1795287393.0


def test_queries_use_a_constraint_and_a_projection_never_whole_ads():
    bindings = fake()
    batch(bindings).queue()
    queries = [c for c in bindings.calls if c[0] == "group_jobs"]  # all groups name their jobs
    assert [c[0] for c in bindings.calls if "jobs" in c[0]] == ["group_jobs"]
    assert queries and all(c[2] == "JobStatus == 1 || JobStatus == 2" and c[3] for c in queries)
    assert {"JobStatus", "ClusterId", "RequestMemory", "Requirements", "EnteredCurrentStatus"} \
        <= set(queries[0][3])
    assert not {"Cmd", "Environment", "ProcId", "GlobalJobId"} & set(queries[0][3])


def test_matchability_against_the_worker_vm_shape():
    jobs = idle_by_id(batch().queue())
    assert {k for k, j in jobs.items() if j.fits_worker} == {"3.1", "3.2", "3.3", "5.0", "5.1"}
    assert not jobs["4.0"].fits_worker  # 100000 MB on an 8192 MB VM
    assert not jobs["4.1"].fits_worker  # OpSys == "WINDOWS"


def test_docker_jobs_need_docker_on_the_vm():
    assert idle_by_id(batch(cfg=config(has_docker=True)).queue())["5.0"].fits_worker
    assert not idle_by_id(batch(cfg=config(has_docker=False)).queue())["5.0"].fits_worker


def test_a_smaller_vm_makes_the_big_jobs_unmatchable(caplog):
    with caplog.at_level(logging.INFO):
        jobs = idle_by_id(batch(cfg=config(cpus=1, memory_mb=4096)).queue())
    assert not jobs["3.1"].fits_worker and jobs["5.0"].fits_worker
    assert "3 jobs master@vm#3.1-3 can never run on a worker VM: requests 2 cpus, a worker VM has 1" \
        in caplog.text  # the jobs alike in one line
    jobs = idle_by_id(batch(cfg=config(disk_mb=1000)).queue())  # 3.x want 2 GB of disk
    assert not jobs["3.1"].fits_worker and jobs["5.0"].fits_worker


def test_requirements_on_the_cluster_name_match_only_our_cluster():
    ads = load("jobs.queue.long.txt")
    by_id(ads, "7.0")["JobStatus"] = 1  # requires TARGET.ElastiqCluster =?= "demo"
    assert idle_by_id(batch(fake(ads)).queue())["7.0"].fits_worker
    ads = load("jobs.queue.long.txt")
    by_id(ads, "7.0")["JobStatus"] = 1
    assert not idle_by_id(batch(fake(ads), config(cluster="other")).queue())["7.0"].fits_worker


def test_unmatchable_jobs_are_logged_once_with_the_reason(caplog):
    adapter = batch()
    with caplog.at_level(logging.INFO, logger="elastiq.adapters.htcondor.batch"):
        adapter.queue()
        adapter.queue()
    lines = [r.getMessage() for r in caplog.records if "can never run" in r.getMessage()]
    assert len(lines) == 2
    assert any("#4.0" in l and "requests 100000 MB memory, a worker VM has 8192 MB" in l
               for l in lines)
    assert any("#4.1" in l and "Requirements are false" in l and "WINDOWS" in l for l in lines)


def test_matchability_is_cached_per_kind_of_job():
    ads = load("jobs.queue.long.txt")
    template = by_id(ads, "3.1")
    for proc in range(4, 504):
        copy = next(classad2.parseAds(template.printOld()))
        copy["ProcId"] = proc
        ads.append(copy)
    adapter = batch(fake(ads))
    queue = adapter.queue()
    assert len(queue.idle) == 507
    # one verdict per kind: 3.x (now 503 jobs), 4.0, 4.1, 5.x
    assert adapter.matcher.evaluations == 4


def test_a_referenced_attribute_that_is_an_expression_is_not_cached_by_its_text():
    ads = load("jobs.queue.long.txt")
    template = by_id(ads, "3.1")
    for proc, image_size in ((10, 100000), (11, 1000)):  # Need: 200000 MB, then 2000 MB
        copy = next(classad2.parseAds(template.printOld()))
        copy.update({"ProcId": proc, "ImageSize": image_size,
                     "Need": classad2.ExprTree("ImageSize * 2"),
                     "Requirements": classad2.ExprTree("TARGET.Memory >= MY.Need")})
        copy.pop("AutoClusterId", None)
        ads.append(copy)
    jobs = idle_by_id(batch(fake(ads)).queue())
    assert not jobs["3.10"].fits_worker and jobs["3.11"].fits_worker


def test_projection_grows_to_the_attributes_requirements_reference():
    ads = load("jobs.queue.long.txt")
    job = by_id(ads, "7.0")  # carries +ProjectName = "physics", not in our projection
    job["JobStatus"] = 1
    job["Requirements"] = classad2.ExprTree('MY.ProjectName == "physics" && TARGET.HasDocker')
    bindings = fake(ads)
    adapter = batch(bindings)
    assert idle_by_id(adapter.queue())["7.0"].fits_worker
    queries = [c for c in bindings.calls if c[0] == "group_jobs"]
    assert len(queries) == 2 and "ProjectName" not in queries[0][3] and "ProjectName" in queries[1][3]
    adapter.queue()  # remembered: one query from now on
    assert len([c for c in bindings.calls if c[0] == "group_jobs"]) == 3


# ----------------------------------------------------------------------------- failures


def test_one_schedd_down_gives_a_partial_queue(caplog):
    bindings = FakeBindings({SCHEDD: load("jobs.queue.long.txt"),
                             "other@vm": htcondor2.HTCondorException("Failed to connect to schedd")},
                            load("startd.slots.long.txt"), load("startd.daemons.long.txt"))
    with caplog.at_level(logging.WARNING):
        queue = batch(bindings).queue()
    assert queue.partial and len(queue.idle) == 7 and queue.running == 5
    assert any("other@vm" in r.getMessage() and "partial" in r.getMessage() for r in caplog.records)


def test_every_schedd_down_is_a_transient_error():
    bindings = FakeBindings({SCHEDD: OSError("connection refused")}, [], [])
    with pytest.raises(TransientError, match="no schedd could be read"):
        batch(bindings).queue()


def test_collector_down_is_a_transient_error_for_queue_and_pool():
    bindings = fake()
    bindings.collector_error = htcondor2.HTCondorException("Failed communication with collector.")
    adapter = batch(bindings)
    with pytest.raises(TransientError, match="collector.*Failed communication"):
        adapter.queue()
    with pytest.raises(TransientError, match="collector"):
        adapter.pool()


def test_no_collector_configured_is_a_configuration_error_not_a_transient_one():
    """Issue 25.6: a master with no HTCondor configuration: retrying cannot help."""
    bindings = fake()
    bindings.collector_error = htcondor2.HTCondorException("Unable to determine collector host.")
    adapter = batch(bindings)
    for read in (adapter.queue, adapter.pool):
        with pytest.raises(ConfigError, match="names no collector.*COLLECTOR_HOST") as err:
            read()
        assert not isinstance(err.value, TransientError)


def test_an_error_without_text_is_named_by_its_type():
    bindings = fake()
    bindings.collector_error = htcondor2.HTCondorException()
    with pytest.raises(TransientError, match="startd ads: HTCondorException$"):
        batch(bindings).pool()


def test_no_schedd_known_is_a_transient_error():
    with pytest.raises(TransientError, match="knows no schedd"):
        batch(FakeBindings({}, [], [])).queue()


def test_the_garbage_collector_is_left_as_it_was():
    adapter = batch()
    adapter.queue()
    assert gc.isenabled()
    gc.disable()
    try:
        adapter.queue()
        adapter.pool()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_unexpected_errors_become_fatal_errors_not_tracebacks():
    bindings = fake()
    bindings.collector_error = ValueError("boom")
    with pytest.raises(FatalError, match="unexpected ValueError: boom"):
        batch(bindings).pool()


def test_real_bindings_against_a_closed_port_raise_transient_errors():
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = HTCondorBatch(config(), bindings=CondorBindings(f"127.0.0.1:{port}"))
    for call in (adapter.queue, adapter.pool, lambda: adapter.drain("vm-a@vm", "test")):
        with pytest.raises(TransientError):
            call()


# ----------------------------------------------------------------------------- bad input


def idle(ads, job):
    ad = by_id(ads, job)
    ad["JobStatus"] = 1
    return ad


def test_missing_and_odd_requests_are_counted_conservatively(caplog):
    ads = load("jobs.queue.long.txt")
    del idle(ads, "3.1")["RequestMemory"]
    idle(ads, "3.2")["RequestCpus"] = "two"
    held = idle(ads, "6.0")  # RequestMemory is an expression of MemoryUsage / ImageSize
    idle(ads, "3.3")["RequestMemory"] = classad2.ExprTree('"lots" + 1')
    del idle(ads, "5.0")["DiskUsage"]  # RequestDisk = DiskUsage: undefined
    with caplog.at_level(logging.INFO):
        jobs = idle_by_id(batch(fake(ads)).queue())
    assert (jobs["3.1"].cpus, jobs["3.1"].memory_mb) == (2, 1024)
    assert (jobs["3.2"].cpus, jobs["3.2"].memory_mb) == (1, 3000)
    assert jobs["3.3"].memory_mb == 1024
    assert jobs["6.0"].memory_mb == (held["ImageSize"] + 1023) // 1024 and jobs["6.0"].fits_worker
    assert jobs["3.1"].fits_worker and jobs["3.2"].fits_worker and jobs["3.3"].fits_worker
    text = caplog.text
    assert "#3.1 RequestMemory missing is not a number: counted as 1024 MB" in text
    assert "#3.2 RequestCpus 'two' is not a number: counted as 1 cpu" in text
    assert "#5.0 RequestDisk 'DiskUsage' is not a number: counted as 0 KB" in text
    assert jobs["5.0"].fits_worker


def test_requirements_that_evaluate_to_error_or_undefined_are_not_matchable(caplog):
    ads = load("jobs.queue.long.txt")
    idle(ads, "3.1")["Requirements"] = classad2.ExprTree('TARGET.Memory + "x" > 1')
    idle(ads, "3.2")["Requirements"] = classad2.ExprTree("TARGET.HasGPU && TARGET.Memory > 1")
    idle(ads, "3.3")["Requirements"] = classad2.ExprTree('"a string"')
    for proc in ("3.1", "3.2", "3.3"):  # different Requirements: no longer one autocluster
        del idle(ads, proc)["AutoClusterId"]
    del idle(ads, "5.0")["Requirements"]
    with caplog.at_level(logging.INFO):
        jobs = idle_by_id(batch(fake(ads)).queue())
    assert not jobs["3.1"].fits_worker and not jobs["3.2"].fits_worker and not jobs["3.3"].fits_worker
    assert jobs["5.0"].fits_worker  # no Requirements: its requests fit, as for a pslot
    assert "evaluate to ERROR" in caplog.text
    assert "UNDEFINED for a worker VM (nobody defines TARGET.HasGPU)" in caplog.text
    assert "evaluate to a non-boolean" in caplog.text


def test_jobs_without_ids_or_times_still_count():
    ads = load("jobs.queue.long.txt")
    ad = by_id(ads, "3.1")
    for attr in ("ClusterId", "ProcId", "EnteredCurrentStatus", "QDate"):
        del ad[attr]
    jobs = {j.id: j for j in batch(fake(ads)).queue().idle}
    assert jobs["master@vm#3.1#1795287393"].queued_since == NOW  # GlobalJobId, the clock
    assert len(jobs) == 7


# ----------------------------------------------------------------------------- pool


def workers(pool):
    return {w.name: w for w in pool.workers}


def test_pool_aggregates_slots_per_worker():
    pool = batch().pool()
    found = workers(pool)
    assert sorted(found) == ["vm-a@vm", "vm-b@vm"] and not pool.partial
    a, b = found["vm-a@vm"], found["vm-b@vm"]
    assert (a.cpus, a.memory_mb, a.running_jobs, a.free_cpus, a.free_memory_mb) == (4, 8192, 3, 0, 3072)
    assert (b.cpus, b.memory_mb, b.running_jobs, b.free_cpus, b.free_memory_mb) == (2, 4096, 2, 0, 2560)
    assert a.idle_since is None and b.idle_since is None
    assert not a.draining and b.draining
    assert (a.instance_id, b.instance_id) == ("i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002")
    assert a.address == "127.0.0.1"


def test_pool_query_uses_a_projection_and_our_cluster():
    bindings = fake()
    adapter = batch(bindings)
    adapter.pool()
    adapter.pool()
    call, learn, again = [c for c in bindings.calls if c[0] == "query_slots"]
    assert call[1] == again[1] == 'ElastiqCluster =?= undefined || ElastiqCluster =?= "demo"'
    assert "State" in call[2] and "ElastiqInstanceId" in call[2] and "Disk" not in call[2]
    # the worker template is learned once from one whole slot ad (see tests/test_htcondor_template.py)
    assert learn[1:] == ('Name == "slot1@vm-a@vm"', ())


def without_dynamic_slots(machine):
    """vm-a after its jobs finished: the dynamic slots are gone, the pslot has it all back."""
    slots = [s for s in load("startd.slots.long.txt")
             if not (s["Name"].endswith("@" + machine) and s.get("DynamicSlot") is True)]
    for s in slots:
        if s["Name"] == "slot1@" + machine:
            s.update({"Cpus": 4, "Memory": 8192, "NumDynamicSlots": 0,
                      "NumDynamicSlotsTime": 1795289000})
    return slots


def test_an_unclaimed_worker_is_idle_since_its_last_slot_change():
    a = workers(batch(fake(slots=without_dynamic_slots("vm-a@vm"))).pool())["vm-a@vm"]
    assert a.running_jobs == 0 and (a.free_cpus, a.free_memory_mb) == (4, 8192)
    assert a.idle_since == 1795289000  # the last dynamic slot went away then


def test_a_slot_whose_state_cannot_be_read_counts_as_claimed():
    slots = without_dynamic_slots("vm-a@vm")
    del next(s for s in slots if s["Name"] == "slot1@vm-a@vm")["State"]
    a = workers(batch(fake(slots=slots)).pool())["vm-a@vm"]
    assert a.running_jobs == 1 and a.idle_since is None


def test_slot_ads_without_a_name_make_the_pool_partial():
    slots = load("startd.slots.long.txt")
    del slots[0]["Name"], slots[0]["Machine"]
    pool = batch(fake(slots=slots)).pool()
    assert pool.partial and len(pool.workers) == 2


def as_plain_worker(slots, machine, host, ip):
    """Slots of ``machine`` as a worker that advertises no Elastiq* attribute (an image
    without the elastiq user-data), named the NO_DNS way."""
    for s in slots:
        if s["Name"].endswith("@" + machine):
            for attr in ("ElastiqCluster", "ElastiqInstanceId"):
                del s[attr]
            s["Name"] = s["Name"].split("@")[0] + "@" + host
            s["Machine"] = host
            s["StartdIpAddr"] = s["MyAddress"] = f"<{ip}:9618?addrs={ip}-9618&alias={host}>"
    return slots


def test_ip_fallback_maps_workers_without_instance_ids():
    slots = as_plain_worker(load("startd.slots.long.txt"), "vm-a@vm", "10-64-22-215.INFN-PD",
                            "10.64.22.215")
    adapter = batch(fake(slots=slots))
    assert "10-64-22-215.INFN-PD" not in workers(adapter.pool())  # not known: left alone
    found = workers(adapter.pool(known_ips={"10.64.22.215": "i-0fallback"}))
    w = found["10-64-22-215.INFN-PD"]
    assert (w.instance_id, w.address, w.running_jobs) == ("i-0fallback", "10.64.22.215", 3)
    assert found["vm-b@vm"].instance_id == "i-0a1b2c3d4e5f60002"


def test_ip_fallback_reads_no_dns_dashed_names_when_the_address_is_private():
    slots = as_plain_worker(load("startd.slots.long.txt"), "vm-a@vm", "10-64-22-215.INFN-PD",
                            "127.0.0.1")
    w = workers(batch(fake(slots=slots)).pool(known_ips={"10.64.22.215": "i-0dashed"}))
    assert w["10-64-22-215.INFN-PD"].instance_id == "i-0dashed"


def test_workers_of_another_cluster_are_left_alone():
    slots = load("startd.slots.long.txt")
    for s in slots:
        if s["Name"].endswith("@vm-b@vm"):
            s["ElastiqCluster"] = "someone-else"
    adapter = batch(fake(slots=slots))
    assert sorted(workers(adapter.pool(known_ips={"127.0.0.1": "i-x"}))) == ["vm-a@vm"]
    # even if the collector did not filter, the adapter would not take them
    found, notes, malformed = aggregate_workers(slots, "demo", {"127.0.0.1": "i-x"})
    assert [w.name for w in found] == ["vm-a@vm"] and malformed == 0
    assert any("someone-else" in n for n in notes)


def test_candidate_ips():
    assert candidate_ips(["<10.0.0.7:9618?addrs=10.0.0.7-9618+[fe80::1]-9618&alias=w>"], []) == \
        ["10.0.0.7", "fe80::1"]
    assert candidate_ips([], ["slot1@10-64-22-215.INFN-PD", "300-1-1-1.x", "node-1"]) == \
        ["10.64.22.215"]
    assert candidate_ips(["garbage"], ["10-1-2-3"]) == ["10.1.2.3"]


# ----------------------------------------------------------------------------- drain


def test_drain_is_graceful_and_shows_in_the_pool(caplog):
    bindings = fake()
    adapter = batch(bindings)
    with caplog.at_level(logging.INFO, logger="elastiq"):
        adapter.drain("vm-a@vm", "elastiq: idle for 3600 s")
        adapter.cancel_drain("vm-a@vm")
        adapter.drain("vm-a@vm", "elastiq: idle for 3600 s")
    assert ("drain", "slot1@vm-a@vm", "elastiq: idle for 3600 s") in bindings.calls
    assert workers(adapter.pool())["vm-a@vm"].draining
    assert caplog.records == []  # the actuator's INFO line is the one (the adapter's: DEBUG)


def test_drain_and_cancel_are_idempotent():
    bindings = fake()
    adapter = batch(bindings)
    adapter.drain("vm-b@vm", "again")  # already draining: the startd refuses, that is fine
    adapter.cancel_drain("vm-b@vm")
    assert not workers(adapter.pool())["vm-b@vm"].draining
    adapter.cancel_drain("vm-b@vm")  # nothing to cancel: fine too
    assert [c[0] for c in bindings.calls].count("cancel_drain") == 2


def test_drain_of_an_unknown_worker_is_a_transient_error():
    with pytest.raises(TransientError, match="cannot drain ghost@vm"):
        batch().drain("ghost@vm", "test")


def test_a_drained_worker_reports_no_claimed_slot():
    slots = without_dynamic_slots("vm-a@vm")
    adapter = batch(fake(slots=slots))
    adapter.drain("vm-a@vm", "idle")
    a = workers(adapter.pool())["vm-a@vm"]
    assert a.draining and not a.busy  # drained: the cloud adapter may terminate it


def test_jobs_of_one_autocluster_are_judged_once():
    """The schedd groups jobs identical for matchmaking (AutoClusterId): within one answer the
    verdict of the first job of an autocluster holds for the others, unread.  3.1-3.3 share
    autocluster 3; were 3.3 judged on its own, its (tampered) Requirements would exclude it."""
    ads = load("jobs.queue.long.txt")
    assert len({idle(ads, p)["AutoClusterId"] for p in ("3.1", "3.2", "3.3")}) == 1
    idle(ads, "3.3")["Requirements"] = classad2.ExprTree('OpSys == "WINDOWS"')
    jobs = idle_by_id(batch(fake(ads)).queue())
    assert all(jobs[p].fits_worker for p in ("3.1", "3.2", "3.3"))
    del idle(ads, "3.3")["AutoClusterId"]
    jobs = idle_by_id(batch(fake(ads)).queue())
    assert jobs["3.1"].fits_worker and not jobs["3.3"].fits_worker


def test_a_worker_whose_docker_check_failed_is_told_once(caplog):
    """Its startd advertises ElastiqDockerProblem (elastiq-docker-check) instead of HasDocker:
    one warning naming the worker and why, again only when it comes back after a fix."""
    slots = load("startd.slots.long.txt")
    why = "a test container started by condor exited 125, not 37: permission denied"
    broken = [s for s in slots if s["Name"].endswith("@vm-a@vm")]
    bindings = fake(slots=slots)
    adapter = batch(bindings)

    def warned():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="elastiq.adapters.htcondor.batch"):
            adapter.pool(known_ips={"127.0.0.1": "i-x"})
        return [r.getMessage() for r in caplog.records if "docker" in r.getMessage()]

    assert warned() == []
    for s in broken:
        s["ElastiqDockerProblem"] = why
    assert warned() == [f"worker vm-a@vm runs no docker-universe job (no HasDocker): its "
                        f"docker check says: {why}"]
    assert warned() == []
    for s in broken:
        del s["ElastiqDockerProblem"]
    assert warned() == []
    for s in broken:
        s["ElastiqDockerProblem"] = why
    assert len(warned()) == 1
