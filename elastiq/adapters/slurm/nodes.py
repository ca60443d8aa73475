"""Our workers from ``scontrol show node --json`` (Slurm 24.11): pure.

A worker is a dynamic node (``slurmd -Z``) registered with the features ``elastiq``,
``elastiq-cluster-<cluster>`` and ``elastiq-instance-<instance id>``.  Features, because they
are part of the one registration line (``slurmd -Z --conf "... Features=..."``): in 24.11
``--conf`` takes no ``Extra``, ``Comment`` or ``InstanceId`` (those need a later
``scontrol update`` by an administrator, and a node would be seen without them until then).
Nodes of no cluster or another cluster are not ours and never touched; a node of ours that
names no instance is reported with ``instance_id=None`` (the core never touches it).

States (a node's ``state`` is a list of flags): busy while ALLOCATED, MIXED or COMPLETING or
any CPU allocated; ``draining`` with DRAIN (Slurm's draining and drained both); IDLE, DOWN and
NOT_RESPONDING nodes are idle workers.  A node is *gone* (:func:`gone`) when we drained it
(its reason starts with :data:`DRAIN_PREFIX`), it runs nothing and slurmd no longer answers
(NOT_RESPONDING or DOWN): its VM was terminated, and the node is deleted from Slurm.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Set, Tuple

from ...model import Worker
from .jobs import number

CLUSTER_FEATURE = "elastiq-cluster-"
INSTANCE_FEATURE = "elastiq-instance-"
#: Every drain reason elastiq sets starts with this.
DRAIN_PREFIX = "elastiq: "
BUSY = frozenset({"ALLOCATED", "MIXED", "COMPLETING"})


def _feature(node: Mapping[str, Any], prefix: str) -> Optional[str]:
    for feature in node.get("features") or ():
        if feature.startswith(prefix) and len(feature) > len(prefix):
            return feature[len(prefix):]
    return None


def is_ours(node: Mapping[str, Any], cluster: str) -> bool:
    return _feature(node, CLUSTER_FEATURE) == cluster


def _busy(node: Mapping[str, Any]) -> bool:
    return bool(set(node.get("state") or ()) & BUSY) or (number(node.get("alloc_cpus")) or 0) > 0


def gone(node: Mapping[str, Any]) -> bool:
    """Drained by us, idle, and its slurmd does not answer: its VM is gone."""
    state = set(node.get("state") or ())
    return ("DRAIN" in state and bool(state & {"NOT_RESPONDING", "DOWN"}) and not _busy(node)
            and (node.get("reason") or "").startswith(DRAIN_PREFIX))


def worker(node: Mapping[str, Any], running_jobs: int) -> Worker:
    """The Worker of one node of ours; ``running_jobs``: jobs the queue shows on it."""
    cpus = number(node.get("cpus")) or 1
    memory = number(node.get("real_memory")) or 1
    busy = _busy(node)
    return Worker(
        name=node["name"], instance_id=_feature(node, INSTANCE_FEATURE),
        address=node.get("address") or None, cpus=cpus, memory_mb=memory,
        running_jobs=max(running_jobs, 1) if busy else 0,
        free_cpus=max(0, cpus - (number(node.get("alloc_cpus")) or 0)),
        free_memory_mb=max(0, memory - (number(node.get("alloc_memory")) or 0)),
        idle_since=None if busy else float(number(node.get("last_busy")) or 0),
        draining="DRAIN" in (node.get("state") or ()))


def names_of(data: Mapping[str, Any], cluster: str, instance_ids: Set[str]) -> List[str]:
    """The names of our cluster's nodes of these instances."""
    return [node["name"] for node in data.get("nodes") or ()
            if isinstance(node, dict) and node.get("name") and is_ours(node, cluster)
            and _feature(node, INSTANCE_FEATURE) in instance_ids]


def read_nodes(data: Mapping[str, Any], cluster: str,
               jobs_on: Mapping[str, int]) -> Tuple[List[Worker], List[str], int]:
    """``(workers, names of gone nodes, malformed entries)`` of our cluster's nodes; gone
    nodes are not workers."""
    workers, dead, malformed = [], [], 0
    for node in data.get("nodes") or ():
        if not isinstance(node, dict) or not node.get("name"):
            malformed += 1
            continue
        if not is_ours(node, cluster):
            continue
        if gone(node):
            dead.append(node["name"])
        else:
            workers.append(worker(node, jobs_on.get(node["name"], 0)))
    return workers, dead, malformed
