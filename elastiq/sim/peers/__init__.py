"""Policies of other projects, for ``elastiq simulate`` only: the field's tools side by side.

- ``cobald``: COBalD's own ``LinearController`` driving TARDIS-like drones (:mod:`.cobald_pool`);
- ``cobald-relative``: the same with COBalD's ``RelativeSupplyController``;
- ``autoscaler``: Kubernetes cluster-autoscaler's policy (:mod:`.autoscaler`).

Each is a policy object with the three pure functions of :mod:`elastiq.core`
(``initial_memory``, ``plan``, ``record_launch``) and ``resting_vms(config)``: how many VMs it
keeps when nothing runs.  They live outside ``elastiq.core`` because the COBalD ones import the
third-party ``cobald`` package (the extra ``elastiq[peers]``).
"""
from __future__ import annotations

from typing import Dict, Optional

from ...model import ALIVE_STATES, Instance, Plan, Snapshot, Worker

NAMES = ("cobald", "cobald-relative", "autoscaler")


class PolicyUnavailable(Exception):
    """A peer policy cannot run here (its package is missing); the message says what to install."""


def get_peer(name: str):
    """The policy object registered under ``name`` (KeyError if unknown)."""
    if name not in NAMES:
        raise KeyError(name)
    if name == "autoscaler":
        from .autoscaler import AutoscalerPolicy
        return AutoscalerPolicy()
    try:
        from .cobald_pool import CobaldPolicy
    except ImportError as err:
        raise PolicyUnavailable(
            f"--policy {name} needs the cobald package ({err}): pip install 'elastiq[peers]'") from None
    return CobaldPolicy("relative" if name == "cobald-relative" else "linear")


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
