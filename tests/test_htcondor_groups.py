"""The queue read from the schedd's grouped answer (``QueryOpt.GroupBy``) is the queue read job
by job: same jobs, ids, sizes, waiting times, verdicts, running count and notes.  On the
captured ads (tests/fixtures/htcondor) with the fake's grouping (tests/htcondor_fake.py);
A big schedd is read in parts (:func:`groups.query_parts`) as in one query.
test_htcondor_live.py checks the real schedd's grouping and the parts' child processes."""
from __future__ import annotations

import logging

import classad2
import pytest

from elastiq.adapters.htcondor import ads as ads_of
from elastiq.adapters.htcondor import groups
from elastiq.adapters.htcondor.batch import HTCondorBatch
from elastiq.adapters.htcondor.groups import group_procs

from htcondor_fake import FakeBindings, config, fake, load
from htcondor_fake import by_id as ad_of

NOW = 1795290000.0


class JobByJob(FakeBindings):
    """A schedd whose groups name no cluster: the adapter reads every job on its own."""

    def group_jobs(self, schedd, constraint, projection):
        self.calls.append(("group_jobs", schedd["Name"], constraint, tuple(projection)))
        return [classad2.ClassAd({"JobStatus": 1, "JobCount": 1})]


def job_by_job(ads):
    plain = fake(ads)
    return JobByJob(plain.jobs, plain.slots, plain.startds)


def read(bindings, caplog=None):
    adapter = HTCondorBatch(config(), bindings=bindings, clock=lambda: NOW)
    if caplog is not None:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="elastiq.adapters.htcondor.batch"):
            queue = adapter.queue()
        told = (r.getMessage() for r in caplog.records)
        return queue, sorted(m for m in told if m.startswith("job "))
    return adapter.queue(), None


def copies(ads, job, procs, **changes):
    template = ad_of(ads, job)
    for proc in procs:
        copy = next(classad2.parseAds(template.printOld()))
        copy.update(dict(changes, ProcId=proc))
        ads.append(copy)
    return ads


@pytest.mark.parametrize("ads", [
    load("jobs.queue.long.txt"),
    copies(load("jobs.queue.long.txt"), "3.1", range(4, 300)),  # one contiguous group of 299
    copies(load("jobs.queue.long.txt"), "4.0", (2, 5, 9)),  # gaps: cluster 4 read job by job
    copies(load("jobs.queue.long.txt"), "4.1", (3,), RequestMemory=100000),  # a group of one
], ids=["captured", "contiguous", "gaps", "single"])
def test_grouped_read_equals_the_job_by_job_read(ads, caplog):
    grouped, told = read(fake(ads), caplog)
    plain, plain_told = read(job_by_job(ads), caplog)
    def by_id(jobs):
        return sorted(jobs, key=lambda job: job.id)

    assert by_id(grouped.idle) == by_id(plain.idle) and len(grouped.idle) == len(plain.idle)
    assert (grouped.running, grouped.running_on) == (plain.running, plain.running_on)
    assert told == plain_told and len(grouped.idle) >= 7


def test_a_cluster_with_gaps_is_read_job_by_job_and_counted_once():
    ads = copies(load("jobs.queue.long.txt"), "4.0", (2, 5, 9))
    bindings = fake(ads)
    queue, _ = read(bindings)
    calls = [c for c in bindings.calls if c[0] in ("group_jobs", "query_jobs")]
    assert [c[0] for c in calls] == ["group_jobs", "query_jobs"]
    assert calls[1][2] == "(JobStatus == 1 || JobStatus == 2) && (ClusterId == 4)"
    ids = sorted(j.id.split("#")[1] for j in queue.idle)
    assert ids == ["3.1", "3.2", "3.3", "4.0", "4.1", "4.2", "4.5", "4.9", "5.0", "5.1"]
    assert queue.running == 5


def test_contiguous_groups_need_no_job_by_job_query():
    bindings = fake(copies(load("jobs.queue.long.txt"), "3.1", range(4, 300)))
    queue, _ = read(bindings)
    assert [c[0] for c in bindings.calls if "jobs" in c[0]] == ["group_jobs"]
    assert len(queue.idle) == 4 + 299


class BigSchedd(FakeBindings):
    """A schedd whose ad in the collector counts more jobs than one query reads."""

    def locate_schedds(self):
        ads = super().locate_schedds()
        for ad in ads:
            ad["TotalJobAds"] = groups.SPLIT_ABOVE_JOBS + 1
        return ads


def test_a_big_schedd_is_read_in_parts_apart_as_one_query_reads_it(caplog):
    ads = copies(load("jobs.queue.long.txt"), "3.1", range(4, 300))
    plain = fake(ads)
    big = BigSchedd(plain.jobs, plain.slots, plain.startds)
    whole, told = read(plain, caplog)
    parted, parted_told = read(big, caplog)
    calls = [c for c in big.calls if c[0] == "group_jobs"]
    assert [(c[2], c[-1]) for c in calls] == [
        (f"({ads_of.JOB_CONSTRAINT}) && ClusterId % 2 == {part}", "apart") for part in (0, 1)]
    assert parted.idle == whole.idle and len(whole.idle) == 4 + 299
    assert (parted.running, parted.running_on, parted_told) == (whole.running, whole.running_on,
                                                                told)


@pytest.mark.parametrize("total, last, parts", [
    (None, None, 1), ("many", None, 1), (0, None, 1), (groups.SPLIT_ABOVE_JOBS, None, 1),
    (groups.SPLIT_ABOVE_JOBS + 1, None, groups.QUERY_PARTS),
    (groups.SPLIT_ABOVE_JOBS + 1, groups.MANY_GROUPS, groups.QUERY_PARTS),
    (groups.SPLIT_ABOVE_JOBS + 1, groups.MANY_GROUPS + 1, 1)])
def test_only_a_schedd_known_to_be_big_is_read_in_parts(total, last, parts):
    found = groups.query_parts("JobStatus == 1", total, last)
    assert len(found) == parts
    if parts > 1:
        assert found == [f"(JobStatus == 1) && ClusterId % {parts} == {n}" for n in range(parts)]


def test_a_big_schedd_whose_answer_was_many_groups_is_read_in_one_query(monkeypatch):
    """One-job clusters: their groups parsed from a child's text cost more than the parts
    save; the next read is one query in this process."""
    monkeypatch.setattr(groups, "MANY_GROUPS", 2)  # the captured queue's groups are more
    plain = fake()
    big = BigSchedd(plain.jobs, plain.slots, plain.startds)
    adapter = HTCondorBatch(config(), bindings=big, clock=lambda: NOW)
    first, second = adapter.queue(), adapter.queue()
    calls = [c for c in big.calls if c[0] == "group_jobs"]
    assert [c[-1] == "apart" for c in calls] == [True] * groups.QUERY_PARTS + [False]
    assert first == second and len(first.idle) >= 7


@pytest.mark.parametrize("attrs, expected", [
    ({"ClusterId": 3, "JobCount": 3, "JobIds": "3.1 ... 3.3"}, (3, range(1, 4))),
    ({"ClusterId": 3, "JobCount": 1, "JobIds": "3.7"}, (3, range(7, 8))),
    ({"ClusterId": 3, "JobCount": 2, "JobIds": "3.1 ... 3.3"}, None),  # a gap
    ({"ClusterId": 3, "JobCount": 2, "JobIds": "3.1 ... 4.0"}, None),  # two clusters
    ({"ClusterId": 4, "JobCount": 1, "JobIds": "3.1"}, None),
    ({"ClusterId": 3, "JobCount": 1, "JobIds": "3.x"}, None),
    ({"ClusterId": 3, "JobCount": 1}, None),
    ({"JobCount": 1, "JobIds": "3.1"}, None),
    ({"ClusterId": 3, "JobCount": 0, "JobIds": "3.1"}, None),
])
def test_group_procs_names_the_jobs_only_when_it_can(attrs, expected):
    assert group_procs(classad2.ClassAd(attrs)) == expected
