"""How long the HTCondor adapter takes to turn ClassAds into a snapshot.

Synthesizes job ads (70% idle, 30% running; a dozen kinds of Requirements and request sizes,
some unmatchable, RequestDisk often an expression as condor_submit writes it) and slot ads
(workers with one partitionable slot and up to 7 dynamic slots) as classad2.ClassAd objects,
the way the bindings return them, and feeds them through a fake of the bindings' query calls.
Times ``queue()`` + ``pool()`` on a fresh adapter (cold matchability cache, the daemon's first
tick) and again (warm).  Goal: < 1 s at 100,000 jobs + 10,000 slot ads, linear growth.
Wall and CPU time (best of N) are both printed: on a shared machine wall time also counts
other processes.

    python3 benchmarks/bench_htcondor_snapshot.py [--repeat 5] [--sizes 10000:1000,100000:10000]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import classad2  # noqa: E402

from elastiq.adapters.htcondor.batch import HTCondorBatch  # noqa: E402
from elastiq.config import Config, ElastiqSection, VMSection  # noqa: E402

SIZES = ((10_000, 1_000), (50_000, 5_000), (100_000, 10_000))
BASE = ('(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk)'
        ' && (TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus)'
        ' && ((TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer))')
EXTRA = ("", " && TARGET.HasDocker", ' && (TARGET.ElastiqCluster =?= "bench")',
         ' && (OpSys == "WINDOWS")', " && (TARGET.HasGPU =?= true)", " && (TARGET.Cpus >= 2)")
MEMORY = (512, 1024, 2000, 3000, 6000, 100_000)


def job_ads(count: int):
    ads = []
    for i in range(count):
        kind = i % 97
        ad = classad2.ClassAd({
            "ClusterId": 1 + i // 100, "ProcId": i % 100, "JobStatus": 1 if i % 10 < 7 else 2,
            "Owner": f"user{kind % 13}", "JobUniverse": 5, "RequestCpus": 1 + kind % 4,
            "RequestMemory": MEMORY[kind % len(MEMORY)], "QDate": 1_700_000_000 + i,
            "EnteredCurrentStatus": 1_700_000_000 + i, "DiskUsage": 45, "ImageSize": 2500,
            "FileSystemDomain": "bench.local",
            "Requirements": classad2.ExprTree(BASE + EXTRA[kind % len(EXTRA)]),
        })
        ad["RequestDisk"] = classad2.ExprTree("DiskUsage") if kind % 3 else 2_097_152
        if i % 10 != 0:  # as on a real schedd: idle jobs the negotiator has seen are grouped
            ad["AutoClusterId"] = kind + 1
        ads.append(ad)
    return ads


def slot_ads(count: int):
    ads, machine = [], 0
    while len(ads) < count:
        host, dynamic = f"10-1-{machine // 250}-{machine % 250}.bench", machine % 8
        common = {"Machine": host, "ElastiqCluster": "bench" if machine % 10 else "other",
                  "ElastiqInstanceId": f"i-{machine:017x}", "EnteredCurrentState": 1_700_000_000,
                  "StartdIpAddr": f"<10.1.{machine // 250}.{machine % 250}:9618?addrs="
                                  f"10.1.{machine // 250}.{machine % 250}-9618&alias={host}>"}
        ads.append(classad2.ClassAd(dict(common, Name=f"slot1@{host}", SlotType="Partitionable",
                                         PartitionableSlot=True, State="Unclaimed", Activity="Idle",
                                         Cpus=8 - dynamic, Memory=16384 - 2048 * dynamic,
                                         TotalSlotCpus=8, TotalSlotMemory=16384,
                                         NumDynamicSlotsTime=1_700_000_100)))
        for d in range(1, dynamic + 1):
            ads.append(classad2.ClassAd(dict(common, Name=f"slot1_{d}@{host}", SlotType="Dynamic",
                                             DynamicSlot=True, State="Claimed", Activity="Busy",
                                             Cpus=1, Memory=2048)))
        machine += 1
    return ads[:count]


class Bindings:
    """The bindings' query calls, answering with prebuilt ads (the schedd did the filtering)."""

    def __init__(self, jobs, slots):
        self.jobs, self.slots = jobs, slots

    def locate_schedds(self):
        return [classad2.ClassAd({"Name": "bench-schedd", "MyAddress": "<127.0.0.1:9618>"})]

    def group_jobs(self, schedd, constraint, projection):
        return [classad2.ClassAd({"JobStatus": 1})]  # names no cluster: read job by job

    def query_jobs(self, schedd, constraint, projection):
        return self.jobs

    def query_slots(self, constraint, projection):
        return self.slots

    def collector_ads(self):
        return []


def measure(jobs: int, slots: int, repeat: int) -> dict:
    config = Config(elastiq=ElastiqSection(cluster_name="bench"),
                    vm=VMSection(cpus=8, memory_mb=16384, disk_mb=40000))  # htcondor.has_docker: true
    bindings = Bindings(job_ads(jobs), slot_ads(slots))
    cold, warm, cold_cpu, warm_cpu = [], [], [], []
    for _ in range(repeat):
        batch = HTCondorBatch(config, bindings=bindings)
        for wall, cpu in ((cold, cold_cpu), (warm, warm_cpu)):
            start, start_cpu = time.perf_counter(), time.process_time()
            queue, pool = batch.queue(), batch.pool()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return {
        "job_ads": jobs, "slot_ads": slots, "idle": len(queue.idle), "running": queue.running,
        "unmatchable": sum(not j.fits_worker for j in queue.idle), "workers": len(pool.workers),
        "requirement_evaluations": batch.matcher.evaluations,
        "cold_s": round(min(cold), 4), "warm_s": round(min(warm), 4),
        "cold_cpu_s": round(min(cold_cpu), 4), "warm_cpu_s": round(min(warm_cpu), 4),
        "us_per_job_ad_cold": round(min(cold) / jobs * 1e6, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs (default 5)")
    parser.add_argument("--sizes", default=",".join(f"{j}:{s}" for j, s in SIZES),
                        help="job ads:slot ads, comma-separated (default %(default)s)")
    args = parser.parse_args()
    sizes = [tuple(int(n) for n in size.split(":")) for size in args.sizes.split(",")]
    runs = [measure(jobs, slots, args.repeat) for jobs, slots in sizes]
    small, large = runs[0], runs[-1]
    scale = large["job_ads"] / small["job_ads"]
    print(json.dumps({
        "benchmark": "htcondor_snapshot", "python": platform.python_version(),
        "classad": classad2.version(), "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "runs": runs, "goal_s": 1.0,
        "goal_met": large["cold_s"] < 1.0, "goal_met_cpu": large["cold_cpu_s"] < 1.0,
        # time per ad at the largest size / at the smallest: 1.0 is linear
        "linearity_cold": round(large["cold_s"] / small["cold_s"] / scale, 2),
        "linearity_cold_cpu": round(large["cold_cpu_s"] / small["cold_cpu_s"] / scale, 2),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
