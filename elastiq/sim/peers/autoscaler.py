"""Kubernetes cluster-autoscaler's policy, as a policy of ``elastiq simulate``.

A pod is a job, a node a worker VM, and our VMs of one shape are the one node group
(``min_vms`` .. ``max_vms``).  Defaults, from the project's FAQ (kubernetes/autoscaler,
cluster-autoscaler/FAQ.md: "How does scale-up work?", "How does scale-down work?", "What are
the parameters to CA?"):

- ``scale-down-utilization-threshold`` 0.5: "the maximum value between the sum of cpu requests
  and sum of memory requests of all pods running on the node divided by node's corresponding
  allocatable resource, below which a node can be considered for scale down";
- ``scale-down-unneeded-time`` 10 minutes: "how long a node should be unneeded before it is
  eligible for scale down";
- ``scale-down-delay-after-add`` 10 minutes: "how long after scale up that scale down
  evaluation resumes";
- ``max-empty-bulk-delete`` 10 (empty nodes go in bulk) while "Cluster Autoscaler terminates
  one non-empty node at a time";
- ``max-node-provision-time`` 15 minutes: a VM not registered by then is removed;
- ``estimator`` binpacking, ``new-pod-scale-up-delay`` 0 s; ``scale-down-delay-after-delete``
  is the scan interval (one tick here).

Scale-up, at once: the idle jobs that fit one VM are packed first-fit decreasing into the free
cpu/memory of accepting workers and into the VMs still coming up (CA's filter of pods that fit
existing nodes, and its upcoming nodes), then onto new VMs (the binpacking estimator), within
max_vms counting every alive VM of ours, and within ``quota.max_cores``/``max_memory_mb``
counting their cores and memory (CA's ``--cores-total`` and ``--memory-total``, over every
node).  Scale-down, "if no scale-up is needed" in the same
loop: a joined worker is *unneeded* while its utilisation is below 0.5 and its running jobs fit
on the other accepting workers (simulated one candidate after the other, least utilised first,
each keeping the room it took); unneeded since is tracked during the cool-down too.  A worker
unneeded for 10 minutes, outside the 10 minutes after a scale-up, and above min_vms, is drained
(no new job) and its VM terminated once it has no claimed slot: CA evicts pods, but batch jobs
cannot move, so here they finish -- never killed.  VMs in error are deleted.

Not mirrored: the snapshot has a worker's totals, not each job's request, so its running jobs
are taken as ``running_jobs`` equal shares of its used cpus and memory (rounded up); the scan
interval is the simulation's tick (``check_queue_every_s``) instead of 10 s; no pod disruption
budgets, no unready-node limits, no ``scale-down-delay-after-failure`` (terminations do not
fail here), no scale-up to ``min_vms`` (``enforce-node-group-min-size`` is false by default).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, FrozenSet, List, Mapping, Optional

from ...config import Config
from ...core.policy import BasePolicy
from ...core.demand import by_shape, classify
from ...core.quota import room_left, used_text
from ...model import (Catalogue, Drain, InstanceState, Launch, LaunchOutcome, Plan, Snapshot,
                      Terminate)
from ...core.reasons import Reason
from .views import AutoscalerCode, no_decision, ours, ratios, workers_of

UTILIZATION_THRESHOLD = 0.5
UNNEEDED_TIME_S = 600.0
DELAY_AFTER_ADD_S = 600.0
MAX_EMPTY_BULK_DELETE = 10
MAX_NODE_PROVISION_TIME_S = 900.0


@dataclass(frozen=True)
class AutoscalerMemory:
    """``unneeded``: instance id -> since when its worker is unneeded; ``removing``: VMs drained
    for scale-down, terminated once empty; ``requested``: granted, not listed yet (id -> when)."""

    last_scale_up: Optional[float] = None
    unneeded: Mapping[str, float] = field(default_factory=dict)
    removing: FrozenSet[str] = frozenset()
    requested: Mapping[str, float] = field(default_factory=dict)


def utilization(worker) -> float:
    return max(ratios(worker))


def unneeded_now(candidates, destinations) -> List[str]:
    """CA's removal simulation: least utilised first, a candidate is unneeded when its running
    jobs fit the free room of destinations that are not themselves unneeded; the room they take
    is kept for the next candidate.  ``destinations``: instance id -> [free cpus, free MiB]."""
    room = {i: list(v) for i, v in destinations.items()}
    chosen, receiving = [], set()
    for w in sorted(candidates, key=lambda w: (utilization(w), w.instance_id)):
        if utilization(w) >= UTILIZATION_THRESHOLD or w.instance_id in receiving:
            continue
        jobs = w.running_jobs
        if jobs:
            shape = (math.ceil((w.cpus - w.free_cpus) / jobs),
                     math.ceil((w.memory_mb - w.free_memory_mb) / jobs))
            others = [i for i in sorted(room) if i != w.instance_id]
            trial = {i: list(room[i]) for i in others}
            left = jobs
            for i in others:
                b = trial[i]
                while left and b[0] >= shape[0] and b[1] >= shape[1]:
                    b[0], b[1], left = b[0] - shape[0], b[1] - shape[1], left - 1
            if left:
                continue
            receiving.update(i for i in others if trial[i] != room[i])
            room.update(trial)
        room.pop(w.instance_id, None)
        chosen.append(w.instance_id)
    return chosen


class AutoscalerPolicy(BasePolicy):
    name = "autoscaler"

    def initial_memory(self, seed: int = 0) -> AutoscalerMemory:
        return AutoscalerMemory()

    def resting_vms(self, config: Config) -> int:
        return config.quota.min_vms

    def record_launch(self, memory: AutoscalerMemory, outcome: LaunchOutcome, config: Config, now: float):
        if not outcome.granted:
            return memory
        requested = dict(memory.requested)
        requested.update((i, now) for i in outcome.granted)
        return replace(memory, last_scale_up=now, requested=requested)

    def plan(self, snapshot: Snapshot, fleet, memory: AutoscalerMemory, config: Config, now: float,
             catalogue: Optional[Catalogue] = None):
        if snapshot.instances is None:
            return no_decision(snapshot), memory
        vm, q = catalogue or Catalogue.of(config.vm), config.quota
        alive = ours(snapshot, config.elastiq.cluster_name)
        listed = {i.id for i in snapshot.instances}
        requested = {i: t for i, t in memory.requested.items() if i not in listed}
        workers = workers_of(snapshot, alive.keys())
        actions: List = []
        gone: List[str] = []
        notes: List[Reason] = []

        def terminate(ids, reason):
            if ids:
                gone.extend(ids)
                actions.append(Terminate(tuple(ids), reason))

        terminate(sorted(i for i, inst in alive.items() if inst.state is InstanceState.ERROR),
                  Reason.of(AutoscalerCode.NODE_ERROR))
        removing = {i for i in memory.removing if i in alive and i not in gone}
        accepting: List = []
        if workers is not None:
            late = [i for i, inst in alive.items() if i not in workers and i not in gone
                    and now - inst.launched_at > MAX_NODE_PROVISION_TIME_S]
            terminate(sorted(late), Reason.of(AutoscalerCode.NOT_REGISTERED, limit=MAX_NODE_PROVISION_TIME_S))
            drained = [i for i in sorted(removing)
                       if i not in workers or (workers[i].draining and not workers[i].busy)]
            terminate(drained, Reason.of(AutoscalerCode.NODE_DRAINED))
            removing.difference_update(drained)
            accepting = [w for i, w in workers.items() if not w.draining and i not in removing and i not in gone]

        scaled_up = False
        if snapshot.queue is not None and workers is not None:
            upcoming = sum(1 for i in alive if i not in workers and i not in gone) + len(requested)
            counted = [i.instance_type for i in alive.values() if i.id not in gone]
            room = room_left(q, vm, len(counted) + len(requested), counted + [None] * len(requested))
            limit = room.holds((vm.cpus, vm.memory_mb))
            jobs = classify(snapshot.queue.idle, vm.cpus, vm.memory_mb, now)
            free = [(w.free_cpus, w.free_memory_mb) for w in accepting]
            need = by_shape(jobs, free, upcoming, vm.cpus, vm.memory_mb, limit)
            if need.new_vms:
                scaled_up = True
                actions.append(Launch(need.new_vms, Reason.of(AutoscalerCode.PENDING, jobs=need.uncovered,
                                                              count=need.new_vms)))
            elif need.unplaced and room.vms <= 0:
                notes.append(Reason.of(AutoscalerCode.PENDING_MAX, jobs=need.unplaced, max_vms=q.max_vms))
            elif need.unplaced:
                notes.append(Reason.of(AutoscalerCode.PENDING_RESOURCES, jobs=need.unplaced,
                                       used=used_text(q, room)))

        unneeded = dict(memory.unneeded)
        if snapshot.complete:
            room = {w.instance_id: (w.free_cpus, w.free_memory_mb) for w in accepting}
            unneeded = {i: memory.unneeded.get(i, now) for i in unneeded_now(accepting, room)}
            cooling = memory.last_scale_up is not None and now < memory.last_scale_up + DELAY_AFTER_ADD_S
            if not scaled_up and not cooling:
                self._scale_down(workers, unneeded, removing, len(alive) - len(gone), q.min_vms, now, actions)

        new = AutoscalerMemory(memory.last_scale_up, unneeded, frozenset(removing), requested)
        return Plan(tuple(actions), tuple(notes), self._wake(new, alive, workers, gone, now)), new

    @staticmethod
    def _scale_down(workers, unneeded: Dict[str, float], removing: set, nodes: int, min_vms: int,
                    now: float, actions: List) -> None:
        """Drain the nodes unneeded for long enough: every empty one (at most 10), and one
        non-empty node when none is being drained already; never below min_vms."""
        ripe = sorted((i for i, since in unneeded.items() if now - since >= UNNEEDED_TIME_S),
                      key=lambda i: (utilization(workers[i]), i))
        room = max(0, nodes - len(removing) - min_vms)
        empty = [i for i in ripe if not workers[i].busy][:min(room, MAX_EMPTY_BULK_DELETE)]
        busy_draining = any(i in workers and workers[i].busy for i in removing)
        chosen = list(empty)
        if not busy_draining and len(chosen) < room:
            chosen += [i for i in ripe if workers[i].busy][:1]
        for i in chosen:
            removing.add(i)
            del unneeded[i]
            name = workers[i].name
            actions.append(Drain(name, i, Reason.of(AutoscalerCode.UNNEEDED, after=UNNEEDED_TIME_S,
                                                    utilization=utilization(workers[i]))))

    @staticmethod
    def _wake(m: AutoscalerMemory, alive, workers, gone, now: float) -> Optional[float]:
        """When a time-based condition changes: a node unneeded long enough (after the cool-down),
        a VM reaching max-node-provision-time."""
        wakes = []
        resume = m.last_scale_up + DELAY_AFTER_ADD_S if m.last_scale_up is not None else now
        wakes += [max(since + UNNEEDED_TIME_S, resume) for since in m.unneeded.values()]
        if workers is not None:
            wakes += [inst.launched_at + MAX_NODE_PROVISION_TIME_S for i, inst in alive.items()
                      if i not in workers and i not in gone]
        future = [w for w in wakes if w > now]
        return min(future) if future else None
