"""Placement on a real pool (HTCondor 23.9 daemons, tests/support/condor_pool.py) is what the
simulator assumes (elastiq/sim/pool.py): with the negotiator lines the master template
writes, jobs fill the worker that joined first before the next one is touched.

The negotiator's knobs are read from the rendered master user-data (its HTCondor unit), not
copied here; only the cycle interval is left out (the test pool cycles every 2 s).  The workers
join in an order that is neither their names' order nor their sizes' (HTCondor's own default
ranks the fullest slot first: the 2-cpu worker would take jobs before the first-joined 4-cpu
one).  The prediction is the simulated pool's, given the same workers and batches of jobs.

Each batch fits on the workers the simulator fills with it; a batch that HTCondor must spread
over several workers in one cycle is not placed exactly as simulated (the schedd starts jobs on
every worker it was matched with as their claims come back: 5 jobs on workers of 4 and 2 cpus
ran 3 + 2 instead of 4 + 1).
"""
from __future__ import annotations

import re
import time
from collections import Counter

from ecm import render
from elastiq.sim.pool import SimPool
from elastiq.sim.workload import Workload
from tests.test_ecm_render import answers

#: (name, cpus) in join order
WORKERS = [("w-c", 4), ("w-a", 2), ("w-b", 3)]
BATCHES = [4, 2]  # jobs of 1 cpu, submitted one batch after the other is running
WAIT_S = 90


def template_negotiator_lines() -> list:
    """The NEGOTIATOR_* lines of the master's HTCondor configuration, as ecm renders it."""
    unit = render.units(render.render_master(answers("debian12")))["master-condor-config"]
    body = unit.split("<<'EOF_CONDOR'\n", 1)[1].split("\nEOF_CONDOR", 1)[0]
    return [line for line in body.splitlines()
            if line.startswith("NEGOTIATOR_") and not line.startswith("NEGOTIATOR_INTERVAL")]


def simulated_placement() -> list:
    """Where the simulated pool puts each batch, workers joined in the same order."""
    work = Workload("placement")
    for when, count in enumerate(BATCHES):
        for n in range(count):
            work.add(f"job{when}.{n}", 100.0 * when, 3600.0, 1, 64)
    pool = SimPool(lambda: 0.0, work, start=0.0, vm_cpus=4, vm_memory_mb=1024)
    for when, (name, cpus) in enumerate(WORKERS):
        pool.add_worker(name, float(when), cpus=cpus, memory_mb=1024)
    placed, before = [], Counter()
    for when in range(len(BATCHES)):
        pool.advance(100.0 * when)
        pool.negotiate(100.0 * when)
        now = Counter({name: len(pool.workers[name].running) for name, _ in WORKERS})
        placed.append(+(now - before))
        before = now
    return placed


def test_template_ranks_workers_by_join_order():
    lines = template_negotiator_lines()
    assert any(line.startswith("NEGOTIATOR_PRE_JOB_RANK") and "DaemonStartTime" in line
               for line in lines), lines
    assert "NEGOTIATOR_DEPTH_FIRST = True" in lines


def test_jobs_land_where_the_simulator_puts_them(condor_pools):
    pool = condor_pools(fragments=template_negotiator_lines(), name="placement")
    started = []
    for name, cpus in WORKERS:
        if started:  # join in distinct seconds: DaemonStartTime orders them
            pool.wait_for(lambda: time.time() >= started[-1] + 1, 5, "the next second")
        startd = pool.start_startd(name, cpus=cpus, memory_mb=1024, wait=WAIT_S)
        started.append(startd.slots()[0]["DaemonStartTime"])
    assert started == sorted(set(started)), started

    actual = []
    for count in BATCHES:
        cluster = pool.submit({"executable": "/bin/sleep", "arguments": "600",
                               "request_cpus": "1", "request_memory": "64",
                               "request_disk": "1024"}, count=count)

        def placed():
            ads = pool.jobs(f"ClusterId == {cluster}", ["JobStatus", "RemoteHost"])
            hosts = [ad["RemoteHost"] for ad in ads if ad.get("JobStatus") == 2 and "RemoteHost" in ad]
            return hosts if len(hosts) == count else None

        hosts = pool.wait_for(placed, WAIT_S, f"{count} jobs of cluster {cluster} running")
        actual.append(Counter(re.match(r"slot[0-9_]+@([^@]+)@", h).group(1) for h in hosts))
    expected = simulated_placement()
    assert expected == [Counter({"w-c": 4}), Counter({"w-a": 2})]
    assert actual == expected
