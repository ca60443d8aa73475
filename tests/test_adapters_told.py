"""Idle jobs with a problem are told once, one line per problem naming its jobs in runs
(elastiq/adapters/told.py): 20,000 jobs alike are one line, not 20,000 (a second of a tick)."""
from __future__ import annotations

import logging

from elastiq.adapters.told import MAX_RUNS, TellOnce, jobs_named

log = logging.getLogger("test.told")
BIG = "can never run on a worker VM: requests 8 cpus, a worker VM has 4"


def told(caplog):
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    caplog.clear()
    return lines


def test_one_job_is_named_as_before():
    assert jobs_named(["s#4.7"]) == "job s#4.7"


def test_consecutive_jobs_of_a_cluster_make_one_run_in_numeric_order():
    ids = [f"s#4.{p}" for p in range(20000)] + ["s#12.3", "s#12.1", "s#12.2", "s#2.0", "t#4.5"]
    assert jobs_named(reversed(ids)) == "20005 jobs s#2.0 s#4.0-19999 s#12.1-3 t#4.5"


def test_ids_without_a_number_and_too_many_runs():
    assert jobs_named(["a#unknown-x", "b#x", "a#unknown-x"]) == "2 jobs a#unknown-x b#x"
    named = jobs_named(f"s#{c}.0" for c in range(1, 2 * MAX_RUNS + 2, 2))
    assert named.endswith(" ...") and named.count("s#") == MAX_RUNS
    assert jobs_named(["1234_7", "1234_8", "99"]) == "3 jobs 99 1234_7-8"  # Slurm's ids


def test_each_problem_is_one_line_and_told_once_per_job(caplog):
    tell = TellOnce(log)
    notes = [(f"s#4.{p}", BIG) for p in range(20000)] + [("s#5.0", "RequestCpus x")]
    with caplog.at_level(logging.INFO, logger=log.name):
        tell.tell(notes)
        assert told(caplog) == ["job s#5.0 RequestCpus x", f"20000 jobs s#4.0-19999 {BIG}"]
        tell.tell(notes + [("s#4.20000", BIG)])  # only the new job is told
        assert told(caplog) == [f"job s#4.20000 {BIG}"]


def test_a_complete_reading_forgets_the_jobs_gone_a_partial_one_does_not(caplog):
    tell = TellOnce(log)
    with caplog.at_level(logging.INFO, logger=log.name):
        tell.tell([("s#1.0", BIG), ("s#2.0", BIG)])
        tell.tell([("s#1.0", BIG)], complete=False)
        tell.tell([("s#1.0", BIG), ("s#2.0", BIG)])
        assert told(caplog) == [f"2 jobs s#1.0 s#2.0 {BIG}"]  # s#2.0 was not forgotten
        tell.tell([("s#1.0", BIG)])
        tell.tell([("s#1.0", BIG), ("s#2.0", BIG)])
        assert told(caplog) == [f"job s#2.0 {BIG}"]  # gone from a complete reading, back
