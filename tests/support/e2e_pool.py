"""A simulated HTCondor pool for end-to-end tests of the real `elastiq run` process.

Configured as ``elastiq.batch_plugin: tests.support.e2e_pool:E2EPool``.  It survives the daemon
being killed and restarted because everything it knows lives outside the process:

* the workers are derived from the cloud: every running instance tagged with our cluster joins
  ``join_after_s`` after its launch time (read with its own boto3 client from the moto server
  at ``ec2.api_url``);
* the scripted load is ``control.json`` in the directory named by ``$E2E_POOL_DIR``, written by
  the test and changed while the daemon runs: ``idle_jobs`` waiting in the queue, and
  ``claim_one_in``: an instance is *claimed* (runs a job forever) when a hash of its id falls in
  that fraction -- a fixed property of the instance, known to the test as well;
* every instance it ever reported as claimed is appended to ``claims.log`` and the drained
  workers are kept in ``drains.json``, so the test can check that no claimed worker was
  terminated and a drain outlives the daemon (as it does in HTCondor);
* ``drain_gate``: a drain call creates ``drain.entered`` and then waits until the test has
  created the file ``drain.open``, so that the test stops the daemon in the middle of an action.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Dict, List, Mapping, Optional, Tuple

import boto3

from elastiq.adapters.base import forgets_by_itself, look_in_pool
from elastiq.adapters.ec2.request import CLUSTER_TAG
from elastiq.model import Job, Pool, Queue, Worker


def tagged_instances(client, cluster: str, states: Tuple[str, ...] = ()) -> List[dict]:
    """The descriptions of the instances tagged with ``cluster`` (only those in ``states``)."""
    filters = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
    if states:
        filters.append({"Name": "instance-state-name", "Values": list(states)})
    pages = client.get_paginator("describe_instances").paginate(Filters=filters)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def is_claimed(instance_id: str, claim_one_in: int) -> bool:
    """The scripted load: fixed per instance, shared by the pool and the test."""
    if claim_one_in <= 0:
        return False
    return int(hashlib.sha256(instance_id.encode()).hexdigest()[:8], 16) % claim_one_in == 0


def worker_name(private_ip: str) -> str:
    return private_ip.replace(".", "-")


class E2EPool:
    def __init__(self, config, **_):
        self.directory = os.environ["E2E_POOL_DIR"]
        self.cluster = config.elastiq.cluster_name
        self.client = boto3.client(
            "ec2", endpoint_url=config.cloud.api_url, region_name=config.cloud.region or "us-east-1",
            aws_access_key_id="AKIDE2EPOOL000000000", aws_secret_access_key="e2e-pool-not-secret")

    # ------------------------------------------------------------------ files

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def control(self) -> dict:
        with open(self._path("control.json"), encoding="utf-8") as handle:
            return json.load(handle)

    def _drains(self) -> List[str]:
        try:
            with open(self._path("drains.json"), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return []

    def _save_drains(self, drains: List[str]) -> None:
        tmp = self._path(f"drains.json.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(sorted(set(drains)), handle)
        os.replace(tmp, self._path("drains.json"))

    def _record_claims(self, ids: List[str]) -> None:
        if ids:
            with open(self._path("claims.log"), "a", encoding="utf-8") as handle:
                handle.write("".join(f"{i}\n" for i in ids))

    # ------------------------------------------------------------------ BatchSystem

    def _running(self) -> List[Tuple[str, str, float]]:
        return [(i["InstanceId"], i.get("PrivateIpAddress") or i["InstanceId"],
                 i["LaunchTime"].timestamp())
                for i in tagged_instances(self.client, self.cluster, ("running",))]

    def _workers(self) -> Tuple[List[Worker], List[str]]:
        control = self.control()
        now, drains = time.time(), set(self._drains())
        joined_after, one_in = float(control["join_after_s"]), int(control["claim_one_in"])
        workers, claimed = [], []
        for instance_id, address, launched in self._running():
            if now - launched < joined_after:
                continue
            name = worker_name(address)
            busy = is_claimed(instance_id, one_in)
            if busy:
                claimed.append(instance_id)
            workers.append(Worker(name, instance_id, address, 1, 2048, int(busy), 0 if busy else 1,
                                  0 if busy else 2048, None if busy else launched + joined_after,
                                  name in drains))
        return workers, claimed

    def queue(self) -> Queue:
        now = time.time()
        idle = tuple(Job(f"1.{n}", 1, 1024, now) for n in range(int(self.control()["idle_jobs"])))
        return Queue(idle, len(self._workers()[1]))

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        workers, claimed = self._workers()
        self._record_claims(claimed)
        return Pool(tuple(workers))

    def drain(self, worker: str, reason: str) -> None:
        if self.control().get("drain_gate"):
            open(self._path("drain.entered"), "a").close()
            deadline = time.monotonic() + 120  # the test failed meanwhile: do not hang
            while not os.path.exists(self._path("drain.open")) and time.monotonic() < deadline:
                time.sleep(0.01)
        self._save_drains(self._drains() + [worker])

    def cancel_drain(self, worker: str) -> None:
        self._save_drains([w for w in self._drains() if w != worker])

    workers_of = look_in_pool
    forget = forgets_by_itself


def claimed_ids(directory: str) -> Dict[str, int]:
    """Instance id -> how many times the pool reported it claimed."""
    counts: Dict[str, int] = {}
    try:
        with open(os.path.join(directory, "claims.log"), encoding="utf-8") as handle:
            for line in handle:
                counts[line.strip()] = counts.get(line.strip(), 0) + 1
    except FileNotFoundError:
        pass
    return counts
