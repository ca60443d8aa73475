"""What the peer policies read from a snapshot, in one place for all of them."""
from __future__ import annotations

from typing import Dict, Optional

from ...model import ALIVE_STATES, Instance, Plan, Snapshot, Worker


def ours(snapshot: Snapshot, cluster: str) -> Dict[str, Instance]:
    """Our alive instances (requested, booting, running, error) by id, from a readable listing."""
    return {i.id: i for i in snapshot.instances if i.cluster == cluster and i.state in ALIVE_STATES}


def workers_of(snapshot: Snapshot, instance_ids) -> Optional[Dict[str, Worker]]:
    """The pool's workers of those instances, by instance id; None when the pool is unreadable."""
    if snapshot.pool is None:
        return None
    return {w.instance_id: w for w in snapshot.pool.workers if w.instance_id in instance_ids}


def no_decision(snapshot: Snapshot) -> Plan:
    return Plan(notes=(f"no decision this tick: {'; '.join(snapshot.problems) or 'cloud unreadable'}",))


def ratios(worker: Worker):
    """(cpu, memory) requested over total, as TARDIS's HTCondor adapter and cluster-autoscaler
    compute a node's utilisation."""
    return ((worker.cpus - worker.free_cpus) / max(worker.cpus, 1),
            (worker.memory_mb - worker.free_memory_mb) / max(worker.memory_mb, 1))
