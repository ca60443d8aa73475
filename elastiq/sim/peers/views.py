"""What the peer policies read from a snapshot, in one place for all of them."""
from __future__ import annotations

from typing import Dict, Optional

from ...core.decide import no_decision as _no_decision
from ...core.reasons import ReasonCode
from ...model import ALIVE_STATES, Instance, Plan, Snapshot, Worker


class LegacyCode(ReasonCode):
    """The reasons of the original elastiq's policy (:mod:`.legacy`), in its words."""

    NOT_JOINED = "not-joined", "not joined after {deploy:g} s"
    IN_ERROR = "in-error", "in error"
    REPLACE_ERROR = "replace-error", "to replace {count} in error"
    JOBS_WAITING = ("jobs-waiting", "{jobs} jobs waiting above {threshold} for more than"
                    " {wait:g} s")
    IDLE = "idle", "idle for more than {idle_for:g} s"
    MIN_VMS = "min-vms", "below min_vms {min_vms}"
    NO_LISTING = "no-listing", "cannot launch {count}: no list of instances"
    OVER_QUOTA = "over-quota", "over quota: {alive} of max_vms {max_vms}"
    NO_QUEUE = "no-queue", "cannot get the number of waiting jobs this time"
    KEPT_MIN_VMS = "kept-min-vms", "keeping {count} idle host(s) for min_vms {min_vms}"


class AutoscalerCode(ReasonCode):
    """The reasons of the cluster-autoscaler peer, in its project's words."""

    NODE_ERROR = "in-error", "node in error: deleted"
    NOT_REGISTERED = "not-joined", "not registered after max-node-provision-time {limit:g} s"
    NODE_DRAINED = "drained", "scale-down: node drained and empty"
    PENDING = ("jobs-waiting", "{jobs} pending job(s) fit no node nor upcoming node: {count}"
               " new node(s) by bin packing")
    PENDING_MAX = "max-vms", "{jobs} pending job(s) but max_vms {max_vms} reached"
    PENDING_RESOURCES = ("quota", "{jobs} pending job(s) but the cores or memory limit is"
                         " reached ({used}): --cores-total / --memory-total")
    UNNEEDED = ("idle", "scale-down: node unneeded (utilization {utilization:.2f}) for"
                " {after:g} s")


class CobaldCode(ReasonCode):
    """The reasons of the COBalD/TARDIS peer, in its projects' words."""

    DRONE_ERROR = "in-error", "drone in error: cleaned up (TARDIS CleanupState)"
    NO_POOL = "no-pool", "pool unreadable: COBalD not regulated this tick"
    DEMAND_ABOVE = ("demand-above", "COBalD demand {demand:.1f} cores above the drones'"
                    " {supply:.0f}: {count} new drone(s)")
    BOOTING_RELEASED = ("unneeded", "COBalD demand {demand:.1f} cores: booting drone released"
                        " (TARDIS CleanupState)")
    RELEASED_GONE = "left-pool", "released drone left the pool: shut down"
    RELEASED_DRAINED = "drained", "released drone drained: shut down"
    DEMAND_BELOW = ("demand-below", "COBalD demand {demand:.1f} cores below supply {supply:.0f}"
                    " (TARDIS DrainState)")
    REGULATED = ("regulated", "COBalD demand {demand:.1f} cores, supply {supply:.0f}, utilisation"
                 " {utilisation:.2f}, allocation {allocation:.2f}")


def ours(snapshot: Snapshot, cluster: str) -> Dict[str, Instance]:
    """Our alive instances (requested, booting, running, error) by id, from a readable listing."""
    return {i.id: i for i in snapshot.instances if i.cluster == cluster and i.state in ALIVE_STATES}


def workers_of(snapshot: Snapshot, instance_ids) -> Optional[Dict[str, Worker]]:
    """The pool's workers of those instances, by instance id; None when the pool is unreadable."""
    if snapshot.pool is None:
        return None
    return {w.instance_id: w for w in snapshot.pool.workers if w.instance_id in instance_ids}


def no_decision(snapshot: Snapshot) -> Plan:
    return Plan(notes=(_no_decision(snapshot),))


def ratios(worker: Worker):
    """(cpu, memory) requested over total, as TARDIS's HTCondor adapter and cluster-autoscaler
    compute a node's utilisation."""
    return ((worker.cpus - worker.free_cpus) / max(worker.cpus, 1),
            (worker.memory_mb - worker.free_memory_mb) / max(worker.memory_mb, 1))
