"""One `elastiq run --once` tick against a big real pool: its time, split into queue read, pool
read, decision and the rest, and the process's peak memory.

    sudo python3 benchmarks/bench_real_pool_tick.py [--jobs 100000] [--slots 2000]
                                                    [--cluster-size N]

A real HTCondor 23.9 central manager and schedd from the provisioned Debian trixie root
(tests/support/condor_pool.py; no startd, no negotiation): the schedd holds ``--jobs`` idle
jobs of three owners (the unprivileged test user and two of the root's system accounts), each
in five shapes (1-8 cpus, 512 MB-16 GB, a docker one: one cluster per shape, or
``--cluster-size`` jobs per cluster, as DAGMan's one job per node), the
collector ``--slots`` partitionable slot ads of our cluster advertised with ``condor_advertise``
(two thirds idle, the rest with claimed dynamic slots), each naming one of ``--slots``
instances of the moto EC2 server tagged for the cluster.  ``elastiq run --once`` runs as a
process, as on a master; a small wrapper times ``HTCondorBatch.queue``/``pool``, the policy's
``plan``, the cloud listing and launch, the observation (``observe_s``: the queue read and the
cloud listing overlap, so it is less than their sum), the whole ``Runtime.tick``, and botocore's
HTTP round trips within the cloud calls (``cloud_server_s``: the time the EC2 server, here
moto, takes to answer; no client-side parsing).  ``rest_s`` is the tick less the observation,
the decision and the launch.  The tick runs twice, each as a daemon's first tick (no saved
state), against the EC2 server through a loopback proxy that keeps its answers: the figures at
the top, then with every answer from memory, as a cloud answering at once would: moto renders
2,000 instances far slower than a real cloud answers, and on this machine it takes CPU from
the schedd meanwhile (``without_cloud_server``, its tick ``tick_without_cloud_server_s``: the
client's own work is left, HTTP and parsing; ``forwarded_requests`` 0 says moto was not
asked).  Peak memory is the process's maximum resident set (``wait4``), ``process_cpu_s`` its
CPU time (start-up included; with ``load_average``, to read wall times taken on a busy
machine).
Goal: the tick < 2 s, the process < 500 MB.

Prints one JSON object; ``{"skipped": reason}`` where no real pool can run (not root, root not
provisioned).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import yaml  # noqa: E402

from elastiq.adapters.ec2.request import CLUSTER_TAG, OWNER_TAG  # noqa: E402
from elastiq.runtime import owner  # noqa: E402
from elastiq.runtime.state import StateStore  # noqa: E402
from tests.support.condor_daemons import TEST_USER, unavailable  # noqa: E402
from tests.support.condor_pool import CondorPool  # noqa: E402
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY, World  # noqa: E402
from tests.support.ec2_server import REGION, MotoServer  # noqa: E402
from tests.support.fault_proxy import FaultProxy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = "bench-tick"
GOAL_TICK_S, GOAL_RSS_MB = 2.0, 500
#: The parts of the tick in turn; the rest is the tick less these.  The observation holds the
#: queue read, the cloud listing (the two overlap) and the pool read.
SPLIT = ("observe_s", "cloud_launch_s", "decision_s")
#: The jobs' owners: the test user and two of the root's own accounts (it has no other users;
#: jobs of theirs are never run here).
OWNERS = (TEST_USER, "daemon", "mail")
#: (request_cpus, request_memory MB, docker) of the job shapes, submitted in equal shares.
SHAPES = ((1, 512, False), (1, 2048, False), (2, 4096, False), (4, 8192, True), (8, 16000, False))
FRAGMENTS = ("MAX_JOBS_PER_OWNER = 10000000", "MAX_JOBS_PER_SUBMISSION = 10000000",
             "MAX_JOBS_SUBMITTED = 10000000", "NEGOTIATOR_INTERVAL = 86400",
             "SCHEDD_INTERVAL = 5")
#: Runs `elastiq run --once` with timers around the calls that make up a tick; the totals go
#: to the file named by argv[1] at exit.
TIMED_RUN = """
import atexit, json, runpy, sys, time
from elastiq.adapters.ec2.cloud import EC2Cloud
from elastiq.adapters.htcondor.batch import HTCondorBatch
from elastiq.core import records
from elastiq.runtime.observe import Observer
from elastiq.runtime.tick import Runtime
from botocore.endpoint import Endpoint
spent, out, inside = {}, sys.argv.pop(1), []  # inside: the tick and cloud calls under way
def timed(cls, name, key):
    call = getattr(cls, name)
    marks = key in ("tick_s", "cloud_list_s", "cloud_launch_s")
    def wrapper(*args, **kwargs):
        if key == "cloud_server_s" and not ("tick_s" in inside and len(inside) > 1):
            return call(*args, **kwargs)  # the server's time in the tick's cloud calls only
        inside.extend([key] if marks else [])
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
            del inside[len(inside) - marks:]
    setattr(cls, name, wrapper)
for cls, name, key in ((HTCondorBatch, "queue", "queue_read_s"), (HTCondorBatch, "pool", "pool_read_s"),
                       (records, "step", "decision_s"), (EC2Cloud, "list_instances", "cloud_list_s"),
                       (EC2Cloud, "launch", "cloud_launch_s"), (Endpoint, "_send", "cloud_server_s"),
                       (Observer, "observe", "observe_s"), (Runtime, "tick", "tick_s")):
    timed(cls, name, key)
atexit.register(lambda: open(out, "w").write(json.dumps(spent)))
sys.argv = ["elastiq"] + sys.argv[1:]
runpy.run_module("elastiq", run_name="__main__")
"""


class AnswerCache(FaultProxy):
    """A loopback proxy in front of the EC2 server that keeps its answers by request; with
    ``replaying`` set, a request seen before is answered from memory."""

    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.answers: dict = {}
        self.replaying, self.forwarded = False, 0

    def _forward(self, handler, body: bytes):
        key = (handler.command, handler.path, body)
        if self.replaying and key in self.answers:
            return self.answers[key]
        self.forwarded += 1
        self.answers[key] = answer = super()._forward(handler, body)
        return answer


def submit_jobs(pool: CondorPool, jobs: int, cluster_size: int = 0) -> float:
    """``jobs`` idle jobs, shared equally by the OWNERS, each owner's in the SHAPES in equal
    shares: one cluster per shape, or with ``cluster_size`` clusters of that many jobs (as
    DAGMan submits, one per node), each of one shape in turn, submitted with the bindings of
    the root."""
    start = time.perf_counter()
    for o, owner in enumerate(OWNERS):
        share = jobs // len(OWNERS) + (o < jobs % len(OWNERS))
        if cluster_size:
            code = ("import htcondor2\nschedd = htcondor2.Schedd()\n"
                    f"shapes = [htcondor2.Submit(d) for d in "
                    f"{[description(*s) for s in SHAPES]!r}]\n"
                    f"for n, first in enumerate(range(0, {share}, {cluster_size})):\n"
                    f"    schedd.submit(shapes[n % {len(SHAPES)}], "
                    f"count=min({cluster_size}, {share} - first))\n")
            done = pool.run_in_root(["python3", "-c", code], user=owner, timeout=3600)
            assert done.returncode == 0, done.stderr
            continue
        for n, shape in enumerate(SHAPES):
            count = share // len(SHAPES) + (n < share % len(SHAPES))
            text = "".join(f"{k} = {v}\n" for k, v in description(*shape).items())
            if count:  # pool.submit's, with a time limit for tens of thousands of jobs
                done = pool.run_in_root(["condor_submit", "-terse", "-"], user=owner,
                                        input=text + f"queue {count}\n", timeout=1800)
                assert done.returncode == 0, done.stderr
    return time.perf_counter() - start


def description(cpus: int, memory: int, docker: bool) -> dict:
    """A submit description of one of the SHAPES."""
    found = {"executable": "/bin/sleep", "arguments": "600", "request_cpus": str(cpus),
             "request_memory": str(memory), "request_disk": "1GB"}
    if docker:
        found.update(universe="docker", docker_image="debian:trixie")
    return found


def publish_schedd(pool: CondorPool, jobs: int) -> None:
    """Wait for the schedd's ad in the collector to count the jobs (it is sent every
    ``SCHEDD_INTERVAL``): elastiq reads there how many jobs the schedd holds, as on a master
    whose jobs have been queued for a while.  (``condor_reschedule`` would send it at once,
    but starts a negotiation cycle, which keeps the schedd busy during the tick.)"""
    pool.wait_for(lambda: any(ad.get("TotalJobAds") == jobs for ad in pool.collector().query(
        pool.htcondor2.AdType.Schedd, projection=["TotalJobAds"])), 120,
        f"the schedd's ad counting {jobs} jobs")


def slot_ad(n: int, instance_id: str, now: int) -> str:
    """One partitionable slot of our cluster, as a worker's startd advertises it."""
    busy = n % 3 == 0
    ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return "\n".join((
        'MyType = "Machine"', f'Name = "slot1@w{n}"', f'Machine = "w{n}"',
        'SlotType = "Partitionable"', "PartitionableSlot = true", 'State = "Unclaimed"',
        'Activity = "Idle"', f"Cpus = {1 if busy else 4}", f"Memory = {2048 if busy else 8192}",
        "TotalSlotCpus = 4", "TotalSlotMemory = 8192", f"NumDynamicSlots = {3 if busy else 0}",
        f"EnteredCurrentState = {now - 900}", f"EnteredCurrentActivity = {now - 900}",
        f"NumDynamicSlotsTime = {now - 300}", f'ElastiqCluster = "{CLUSTER}"',
        f'ElastiqInstanceId = "{instance_id}"', f'StartdIpAddr = "<{ip}:9618>"',
        f'MyAddress = "<{ip}:9618>"', 'CondorVersion = "$CondorVersion: 23.9.6 $"',
        "HasDocker = true", f"UpdateSequenceNumber = {now}"))


def advertise(pool: CondorPool, instance_ids) -> float:
    """Our slot ads into the collector, with condor_advertise from the root; the seconds."""
    now = int(time.time())
    path = os.path.join(pool.directory, "slots.ads")  # inside the root
    with open(pool.root + path, "w", encoding="utf-8") as handle:
        handle.write("\n\n".join(slot_ad(n, iid, now) for n, iid in enumerate(instance_ids)))
        handle.write("\n")
    start = time.perf_counter()
    done = pool.run_in_root(["condor_advertise", "-multiple", "UPDATE_STARTD_AD", path],
                            user=None, timeout=600)
    assert done.returncode == 0, done.stderr
    want = len(instance_ids)
    pool.wait_for(lambda: len(pool.collector().query(
        pool.htcondor2.AdType.Startd, constraint=f'ElastiqCluster == "{CLUSTER}"',
        projection=["Name"])) >= want, 120, f"{want} slot ads in the collector")
    return time.perf_counter() - start


def run_once(pool: CondorPool, config_path: str, directory: str) -> dict:
    timings = os.path.join(directory, "timings.json")
    env = dict(pool.env(), PYTHONPATH=ROOT)
    start = time.perf_counter()
    # --dry-run: the tick decides to launch for the waiting jobs but calls no RunInstances
    proc = subprocess.Popen([sys.executable, "-c", TIMED_RUN, timings, "run", "--once", "--dry-run",
                             "--config", config_path], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"elastiq run --once exited {proc.returncode}: {err[-2000:]}")
    with open(timings, encoding="utf-8") as handle:
        spent = json.load(handle)
    tick = spent.pop("tick_s")
    parts = {k: round(v, 3) for k, v in sorted(spent.items())}
    rest = tick - sum(spent.get(k, 0.0) for k in SPLIT)
    return {"tick_s": round(tick, 3), **parts, "rest_s": round(rest, 3),
            "process_wall_s": round(wall, 3),
            "process_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "load_average": round(os.getloadavg()[0], 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def bench(jobs: int, slots: int, cluster_size: int = 0) -> dict:
    with MotoServer() as moto, AnswerCache(moto.url) as cache, \
            tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        client = moto.client()
        image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        client.create_key_pair(KeyName="bench")
        world = World(image_id=image, key_name="bench", subnet_id="", security_group="default")
        # the daemon's own instances: its cluster tag and its owner id (made here, as its first
        # start would, so that it takes them for its own)
        owner_id = owner.load_or_create(os.path.join(tmp, "state"))
        tag = [{"ResourceType": "instance", "Tags": [{"Key": CLUSTER_TAG, "Value": CLUSTER},
                                                     {"Key": OWNER_TAG, "Value": owner_id}]}]
        ids = [i["InstanceId"] for i in client.run_instances(
            ImageId=world.image_id, MinCount=slots, MaxCount=slots, InstanceType="m1.large",
            TagSpecifications=tag)["Instances"]] if slots else []
        pool = CondorPool.start(name="bench-tick", fragments=FRAGMENTS)
        try:
            submit_s = submit_jobs(pool, jobs, cluster_size)
            publish_schedd(pool, jobs)
            advertise_s = advertise(pool, ids)
            cfg = {"elastiq": {"cluster_name": CLUSTER, "state_dir": os.path.join(tmp, "state"),
                               "log_file": os.path.join(tmp, "elastiq.log"), "log_level": "INFO"},
                   "quota": {"min_vms": 0, "max_vms": slots + 50},
                   "ec2": {"api_url": cache.url, "region": REGION, "image_id": world.image_id,
                           "flavour": "m1.large", "key_name": world.key_name,
                           "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
                   "vm": {"cpus": 4, "memory_mb": 8192}}
            path = os.path.join(tmp, "elastiq.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                yaml.safe_dump(cfg, handle)
            os.chmod(path, 0o600)
            tick = run_once(pool, path, tmp)
            seen = StateStore(os.path.join(tmp, "state")).load().observation
            tick.update(idle_jobs_seen=seen.idle_jobs, vms_seen=len(seen.vms),
                        problems=list(seen.problems))
            os.remove(os.path.join(tmp, "state", "state.json"))  # the same first tick again
            cache.replaying, cache.forwarded = True, 0
            again = run_once(pool, path, tmp)
            again.update(forwarded_requests=cache.forwarded, problems=list(
                StateStore(os.path.join(tmp, "state")).load().observation.problems))
            tick.update(tick_without_cloud_server_s=again["tick_s"], without_cloud_server=again)
        finally:
            pool.stop()
    return {"jobs": jobs, "jobs_per_cluster": cluster_size or None, "slot_ads": slots,
            "instances": len(ids), "submit_s": round(submit_s, 1),
            "advertise_s": round(advertise_s, 1), **tick, "goal_tick_s": GOAL_TICK_S,
            "goal_rss_mb": GOAL_RSS_MB, "goal_met": tick["tick_s"] < GOAL_TICK_S
            and tick["peak_rss_mb"] < GOAL_RSS_MB,
            "goal_met_without_cloud_server": tick["tick_without_cloud_server_s"] < GOAL_TICK_S
            and tick["without_cloud_server"]["peak_rss_mb"] < GOAL_RSS_MB}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100000, help="idle jobs in the schedd")
    parser.add_argument("--slots", type=int, default=2000, help="slot ads of our cluster")
    parser.add_argument("--cluster-size", type=int, default=0, metavar="N",
                        help="jobs per cluster (default: one cluster per job shape)")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(json.dumps({"benchmark": "real_pool_tick", "skipped": reason}))
        return 0
    result = bench(args.jobs, args.slots, args.cluster_size)
    print(json.dumps({"benchmark": "real_pool_tick", **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
