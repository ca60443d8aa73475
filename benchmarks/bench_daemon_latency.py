"""How long after the waiting threshold is reached does elastiq call launch?

The real runtime (observe -> core -> actuator -> state store) runs against the test world on a
virtual clock, driven by the scheduler's contract: the periodic checks at their configured
intervals (``scheduler.checks``) plus the wake-ups the ticks ask for (``Plan.next_check``),
the earliest pending wake-up winning, one tick at a time.  Jobs arrive at random moments.

Printed (one JSON object):
- ``virtual_delay_s``: launch call time minus (first seen waiting + waiting_jobs_time_s),
  with the wake-ups (what elastiq does) and without them (periodic checks only, as the
  original elastiq);
- ``tick_wall_ms``: real time of the tick that launches, up to and including the launch call;
- ``apscheduler_wake_lateness_ms``: how late the real apscheduler-based Scheduler fires a
  requested wake-up (measured with real time, 20 wake-ups 20 ms ahead).
Goal: virtual delay 0 and tick + lateness well under 1 s.
"""
from __future__ import annotations

import heapq
import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from elastiq.core import get_policy  # noqa: E402
from elastiq.runtime.scheduler import Scheduler, checks  # noqa: E402
from elastiq.runtime.state import StateStore  # noqa: E402
from elastiq.runtime.tick import Runtime  # noqa: E402
from tests.support.world import make_config, world  # noqa: E402

TRIALS = 200


def trial(rng: random.Random, use_wakes: bool, directory: str):
    cfg = make_config(elastiq={"state_dir": directory, "n_jobs_per_vm": 1})
    clock, cloud, batch = world()
    timed = {"wall": None}
    original_launch = cloud.launch

    def launch(count, **kw):  # the Cloud port's flavour= and request_id=
        timed["wall"] = time.perf_counter() - timed["tick_started"]
        return original_launch(count, **kw)

    cloud.launch = launch
    rt = Runtime(cfg, get_policy("default"), batch, cloud, StateStore(directory), clock=clock)
    t0 = clock.now
    submit_at = t0 + rng.uniform(0, 100)
    queue = [(t0, 0, "start")]
    for n, (kind, interval) in enumerate(checks(cfg), start=1):
        queue.append((t0 + interval, n, kind))
    heapq.heapify(queue)
    wake = None
    seq = 10
    first_seen = None
    submitted = False
    while queue:
        at, _, kind = heapq.heappop(queue)
        if kind == "wake":
            if wake != at:
                continue  # superseded by an earlier wake-up
            wake = None
        clock.now = at
        if not submitted and at >= submit_at:
            batch.submit(rng.randint(1, 5))
            submitted = True
        timed["tick_started"] = time.perf_counter()
        next_time = rt.tick(kind)
        if first_seen is None and rt.state.memory.waiting_since is not None:
            first_seen = rt.state.memory.waiting_since
        if cloud.launch_calls:
            launched_at = cloud.launch_calls[0][0]
            return launched_at - (first_seen + cfg.elastiq.waiting_jobs_time_s), timed["wall"]
        if kind != "wake":
            seq += 1
            interval = dict(checks(cfg))[kind] if kind in dict(checks(cfg)) else None
            if interval:
                heapq.heappush(queue, (at + interval, seq, kind))
        if use_wakes and next_time is not None and (wake is None or next_time < wake):
            wake = max(next_time, at)
            seq += 1
            heapq.heappush(queue, (wake, seq, "wake"))
    raise RuntimeError("no launch")


def summary(values):
    values = sorted(values)
    return {"mean": round(statistics.fmean(values), 6), "median": round(statistics.median(values), 6),
            "p99": round(values[int(0.99 * (len(values) - 1))], 6), "max": round(values[-1], 6)}


def wake_lateness_ms(count: int = 20, ahead_s: float = 0.02):
    late, done = [], threading.Event()
    target = {}

    def run(kind):
        if kind == "wake":
            late.append((time.time() - target["at"]) * 1000)
        if len(late) >= count:
            done.set()
            return None
        target["at"] = time.time() + ahead_s
        return target["at"]

    sched = Scheduler(run, ())
    sched.start()
    done.wait(30)
    sched.stop()
    return summary(late)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=TRIALS,
                        help=f"trials with and without wake-ups (default {TRIALS})")
    parser.add_argument("--wakes", type=int, default=20,
                        help="real wake-ups timed for the lateness (default 20)")
    args = parser.parse_args(argv)
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as directory:
        with_wakes = [trial(rng, True, directory) for _ in range(args.trials)]
        without = [trial(rng, False, directory)[0] for _ in range(args.trials)]
    print(json.dumps({
        "benchmark": "daemon_latency",
        "trials": args.trials,
        "intervals_s": dict(checks(make_config())),
        "waiting_jobs_time_s": make_config().elastiq.waiting_jobs_time_s,
        "virtual_delay_s": {"with_next_check": summary([d for d, _ in with_wakes]),
                            "periodic_checks_only": summary(without)},
        "tick_wall_ms": summary([w * 1000 for _, w in with_wakes]),
        "apscheduler_wake_lateness_ms": wake_lateness_ms(args.wakes),
    }))


if __name__ == "__main__":
    main()
