"""classify() counts each kind of job by bisecting its sorted queue times (issue 15: the core's
cost per tick with thousands of waiting jobs); it must say exactly what the one-job-at-a-time
rule says, in any queue order, with ties on the cut times."""
from __future__ import annotations

import random
import sys
from collections import Counter

import pytest

from elastiq.core.demand import classify, kinds_of
from elastiq.model import IdleJobs, Job


def reference(jobs, vm_cpus, vm_memory, fresh_after, unstarted=None):
    """The rule, one job at a time."""
    shapes, stale = Counter(), Counter()
    unmatchable = fresh = skipped = 0
    before, max_cpus, max_memory = unstarted or (float("-inf"), 0, 0)
    for job in jobs:
        if not (job.fits_worker and job.cpus <= vm_cpus and job.memory_mb <= vm_memory):
            unmatchable += 1
            continue
        shape = (max(job.cpus, 1), max(job.memory_mb, 0))
        if job.queued_since <= before and shape[0] <= max_cpus and shape[1] <= max_memory:
            skipped += 1
            continue
        shapes[shape] += 1
        if job.queued_since > fresh_after:
            fresh += 1
        else:
            stale[shape] += 1
    return shapes, unmatchable, fresh, stale, skipped


@pytest.mark.parametrize("seed", range(40))
def test_classify_matches_the_rule_in_any_order(seed):
    rng = random.Random(seed)
    jobs = [Job(f"j{i}", rng.choice([0, 1, 2, 4, 8]), rng.choice([0, 500, 2000, 9000]),
                float(rng.randrange(20)), rng.random() > 0.1) for i in range(rng.randrange(60))]
    if seed % 2:
        jobs.sort(key=lambda j: j.queued_since)  # the schedd's usual order
    fresh_after = float(rng.randrange(-1, 21))
    unstarted = None if seed % 3 == 0 else (float(rng.randrange(-1, 21)), rng.choice([1, 2, 4]),
                                            rng.choice([500, 2000]))
    got = classify(tuple(jobs), 4, 8000, fresh_after, unstarted)
    assert (got.shapes, got.unmatchable, got.fresh, got.stale, got.unstarted) == reference(
        jobs, 4, 8000, fresh_after, unstarted)
    assert classify(IdleJobs(jobs, kinds_of(jobs)), 4, 8000, fresh_after, unstarted) == got


def test_summarised_jobs_are_not_read():
    """With their summary, classify never looks at the jobs themselves (a saturated replay
    re-read tens of thousands each tick): here the jobs say nothing, the summary everything."""
    jobs = tuple(Job(f"j{i}", 1 + i % 3, 1000, float(i)) for i in range(9))
    got = classify(IdleJobs((), kinds_of(jobs)), 4, 8000, 4.0, (2.0, 1, 1000))
    assert got == classify(jobs, 4, 8000, 4.0, (2.0, 1, 1000))
    assert (got.waiting, got.unstarted, got.fresh) == (8, 1, 4)


def test_no_python_call_per_job():
    """10,000 waiting jobs of 3 shapes: the Python functions classify runs do not grow with
    the number of jobs (the per-job loop called one per job; the replay of 10,000 LPC-EGEE
    jobs with max_vms 5 went from 20.3 s to 6.5 s)."""
    jobs = tuple(Job(f"j{i}", 1 + i % 3, 1000, float(i % 7000)) for i in range(10_000))
    calls = []

    def count(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    sys.setprofile(count)
    try:
        got = classify(jobs, 4, 8000, 5_000.0, (2_000.0, 1, 1000))
    finally:
        sys.setprofile(None)
    assert got.waiting + got.unstarted == 10_000
    assert len(calls) < 100
