"""Time one decision of the default policy on large snapshots; print one JSON object.

    python3 benchmarks/bench_decide.py [--sizes 10000,100000,1000000] [--workers 10000] [--repeat 3]

Jobs have a realistic mix of shapes (1-8 cpus, 512 MB-16 GB, a few unmatchable); workers are
4-cpu/16 GB VMs, a third idle.  Goal: 100,000 idle jobs + 10,000 workers < 0.5 s, linear growth.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elastiq.config import load, params_of  # noqa: E402
from elastiq.core import get_policy, records as core_records  # noqa: E402
from elastiq.model import (  # noqa: E402
    Instance,
    InstanceRecord,
    InstanceState,
    Job,
    Lifecycle,
    Memory,
    Pool,
    Queue,
    Snapshot,
    Worker,
)

NOW = 1_000_000.0


def build(n_jobs: int, n_workers: int, seed: int = 1):
    rng = random.Random(seed)
    shapes = [(1, 512), (1, 1024), (1, 2048), (2, 4096), (4, 8192), (8, 16384), (1, 3000)]
    jobs = tuple(
        Job(f"s/{i}.0", *rng.choice(shapes), NOW - rng.uniform(0, 3600), rng.random() > 0.02)
        for i in range(n_jobs)
    )
    workers, instances, records = [], [], {}
    for k in range(n_workers):
        iid = f"i-{k:08x}"
        claimed = 0 if k % 3 == 0 else rng.randint(1, 4)
        workers.append(Worker(f"vm{k}", iid, f"10.{k >> 16}.{(k >> 8) & 255}.{k & 255}", 4, 16384,
                              claimed, 4 - claimed, 16384 - 4096 * claimed,
                              NOW - rng.uniform(0, 7200) if not claimed else None, False))
        instances.append(Instance(iid, InstanceState.RUNNING, NOW - 9000, "bench"))
        records[iid] = InstanceRecord(Lifecycle.JOINED, NOW - 8000, NOW - 9000, NOW - 8000, f"vm{k}", NOW - 10)
    snapshot = Snapshot(Queue(jobs, n_workers), Pool(tuple(workers)), tuple(instances))
    return snapshot, records, Memory(waiting_since=NOW - 600)


def time_one(n_jobs: int, n_workers: int, repeat: int) -> dict:
    config = load(None, ["elastiq.cluster_name=bench", f"quota.max_vms={n_workers + 500}",
                         "vm.cpus=4", "vm.memory_mb=16384"])
    snapshot, records, memory = build(n_jobs, n_workers)
    policy = get_policy("default")
    best = float("inf")
    plan = None
    for _ in range(repeat):
        start = time.perf_counter()
        plan, _, _ = core_records.step(policy, snapshot, records, memory, params_of(config), NOW)
        best = min(best, time.perf_counter() - start)
    return {"jobs": n_jobs, "workers": n_workers, "seconds": round(best, 4),
            "launch": plan.launch_count, "actions": len(plan.actions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [time_one(int(n), args.workers, args.repeat) for n in args.sizes.split(",")]
    by_size = {r["jobs"]: r["seconds"] for r in runs}
    result = {
        "benchmark": "decide",
        "runs": runs,
        "goal_s": 0.5,
        "seconds_at_100k": by_size.get(100000),
        "meets_goal": by_size[100000] < 0.5 if 100000 in by_size else None,
    }
    sizes = sorted(by_size)
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        result["growth_ratio"] = round(by_size[hi] / by_size[lo], 2)
        result["size_ratio"] = hi / lo
    print(json.dumps(result))


if __name__ == "__main__":
    main()
