"""COBalD/TARDIS as a policy of ``elastiq simulate``: COBalD's own code, called in virtual time.

The pipeline is the one of TARDIS's documentation, built from cobald 0.14's own classes::

    LinearController | RelativeSupplyController      cobald.controller
      -> Limiter(minimum)                            cobald.decorator.limiter
      -> Standardiser(maximum = max_vms * cpus)      TARDIS's site quota, in cores (within
                                                     quota.max_cores / max_memory_mb)
      -> FactoryPool(drones, factory=new drone)      cobald.composite.factory
           -> Drone: one per VM of ours              below, after tardis.resources.drone.Drone

Each ``plan`` call is one tick: the controller's ``regulate(interval)`` (interval: the virtual
time since its last call, at most one tick: it is not called while the engine skips ticks at
a fixed point), then the factory's adjustment as ``FactoryPool.run`` does it (``_shrink`` when
supply exceeds demand, else ``_grow``).  No asyncio or trio runtime runs; nothing sleeps.

A drone, as cobald-tardis 0.9 defines it (resources/drone.py, dronestates.py, the HTCondor
batch-system adapter): its demand is the VM's cores from its creation; its supply is those
cores only while its worker is available (AvailableState), 0 while booting or draining; its
utilisation and allocation are the min and max of its cpu and memory ratios (requested over
total: TARDIS's ``cpu_ratio`` and ``memory_ratio``).  The FactoryPool averages them over the
drones with supply, and reports 1.0 when none has any (so an empty pool grows).

TARDIS behaviour mirrored when the factory releases a drone (``demand = 0``, the lowest
``supply * utilisation`` first):

- its VM still booting: terminated at once (BootingState -> CleanupState);
- its worker available: drained (DrainState, ``condor_drain -graceful``), and the VM
  terminated once drained, i.e. no claimed slot left (Draining -> Drained -> ShutDown): a
  running job is never killed; a drain is never cancelled;
- its VM running but its worker not joined yet: it waits to join (IntegratingState does not
  look at demand), then drains;
- a VM in error is terminated and its drone leaves the factory (CleanupState -> DownState);
  the factory spawns another one if demand is still there.

Not mirrored: the timing (TARDIS regulates every second and adjusts the factory every 30 s;
here both run at every tick, ``check_queue_every_s``); the two WeightedComposite layers (one
site, one machine type: they pass demand through unchanged), Logger, SqliteRegistry,
heartbeats, ``drone_minimum_lifetime`` (off by default), retries of failed API calls, drones
restored at start; a VM that never joins is kept, as IntegratingState keeps it (no deploy
timeout).  As in TARDIS, the quota clamps demand, and draining drones have demand 0: while
they drain, new drones can take the VMs alive above max_vms, or above quota.max_cores /
max_memory_mb (counted as violations).

Parameters: LinearController with COBalD's defaults (low_utilisation 0.5, high_allocation 0.5;
TARDIS's example uses 0.9/0.9) and a rate of ``cpus / 8`` cores per second (TARDIS's example:
rate 1 for 8-core machines, one machine's worth every 8 s); RelativeSupplyController with its
defaults (0.5, 0.5, low_scale 0.9, high_scale 1.1); Limiter minimum ``max(1, min_vms * cpus)``
cores (TARDIS's example keeps 1 core, hence one VM at rest).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional

from cobald.composite.factory import FactoryPool
from cobald.controller.linear import LinearController
from cobald.controller.relative_supply import RelativeSupplyController
from cobald.decorator.limiter import Limiter
from cobald.decorator.standardiser import Standardiser
from cobald.interfaces import Pool

from ...config import Config
from ...core.policy import BasePolicy
from ...model import (Catalogue, Drain, InstanceState, Launch, LaunchOutcome, Plan, Snapshot,
                      Terminate)
from ...core.reasons import Reason
from .views import CobaldCode, no_decision, ours, ratios, workers_of

LOW_UTILISATION = HIGH_ALLOCATION = 0.5
SECONDS_PER_VM_OF_RATE = 8.0  # rate = cpus / 8 cores per second


class Drone(Pool):
    """One VM as a TARDIS drone shows it to COBalD.  ``instance_id`` None: spawned this tick.

    ``rank`` is its hash: the FactoryPool keeps drones in a set and breaks ties between equally
    used drones by the set's order (in TARDIS, memory addresses); small-integer hashes make that
    order the same in every run."""

    #: COBalD's abstract properties, as plain attributes (set per drone in ``__init__``; the
    #: controller sets ``demand``).
    supply = demand = utilisation = allocation = 0.0

    def __init__(self, instance_id: Optional[str], cores: int, worker=None, rank: int = 0):
        self.instance_id, self.rank = instance_id, rank
        self.demand = float(cores)
        available = worker is not None and not worker.draining
        self.supply = float(cores) if available else 0.0
        cpu, memory = ratios(worker) if available else (0.0, 0.0)
        self.utilisation, self.allocation = min(cpu, memory), max(cpu, memory)

    def __hash__(self) -> int:
        return self.rank


@dataclass(frozen=True)
class CobaldMemory:
    """``demand``: the factory's demand as the controller left it; ``released``: VMs whose drone
    was released (draining, or waiting to join then drain); ``draining``: those told to drain;
    ``requested``: granted VMs not listed by the cloud yet; ``regulated_at``: last regulation."""

    demand: float = 0.0
    released: FrozenSet[str] = frozenset()
    draining: FrozenSet[str] = frozenset()
    requested: FrozenSet[str] = frozenset()
    regulated_at: Optional[float] = None


def quota_cores(config: Config, cpus: int, memory_mb: int) -> int:
    """TARDIS's site quota, in cores: ``max_vms`` VMs of ``cpus``, within ``max_cores``, and
    as many VMs' cores as ``max_memory_mb`` holds VMs of ``memory_mb`` (TARDIS counts cores
    only)."""
    q = config.quota
    limits = [q.max_vms * cpus]
    if q.max_cores is not None:
        limits.append(q.max_cores // cpus * cpus)
    if q.max_memory_mb is not None:
        limits.append(q.max_memory_mb // memory_mb * cpus)
    return min(limits)


def pipeline(factory: FactoryPool, config: Config, cpus: int, memory_mb: int = 0):
    """TARDIS's documented pipeline below the controller: Limiter(minimum) -> quota -> factory
    (``cpus``, ``memory_mb``: of one worker VM)."""
    quota = Standardiser(factory, maximum=quota_cores(config, cpus, memory_mb or 1))
    return Limiter(quota, minimum=max(1, config.quota.min_vms * cpus))


class CobaldPolicy(BasePolicy):
    """``controller``: "linear" (LinearController) or "relative" (RelativeSupplyController)."""

    def __init__(self, controller: str = "linear"):
        if controller not in ("linear", "relative"):
            raise ValueError(f"unknown COBalD controller {controller!r}")
        self.kind = controller
        self.name = "cobald-relative" if controller == "relative" else "cobald"

    def controller(self, target, config: Config, cpus: int):
        interval = config.elastiq.check_queue_every_s
        if self.kind == "relative":
            return RelativeSupplyController(target, LOW_UTILISATION, HIGH_ALLOCATION, interval=interval)
        rate = cpus / SECONDS_PER_VM_OF_RATE
        return LinearController(target, LOW_UTILISATION, HIGH_ALLOCATION, rate=rate, interval=interval)

    def initial_memory(self, seed: int = 0) -> CobaldMemory:
        return CobaldMemory()

    def resting_vms(self, config: Config) -> int:
        """The Limiter's minimum (at least 1 core) keeps this many drones when nothing runs."""
        return max(1, config.quota.min_vms)

    def record_launch(self, memory: CobaldMemory, outcome: LaunchOutcome, config: Config, now: float):
        """Granted VMs are drones from now on; a failed launch leaves the demand to spawn again."""
        return CobaldMemory(memory.demand, memory.released, memory.draining,
                            memory.requested | frozenset(outcome.granted), memory.regulated_at)

    def plan(self, snapshot: Snapshot, fleet, memory: CobaldMemory, config: Config, now: float,
             catalogue: Optional[Catalogue] = None):
        if snapshot.instances is None:
            return no_decision(snapshot), memory
        vm = catalogue or Catalogue.of(config.vm)
        cpus = vm.cpus
        tick = config.elastiq.check_queue_every_s
        alive = ours(snapshot, config.elastiq.cluster_name)
        listed = {i.id for i in snapshot.instances}
        requested = frozenset(i for i in memory.requested if i not in listed)
        released = set(memory.released & alive.keys())
        draining = set(memory.draining & released)
        actions: List = []
        gone: List[str] = []

        def terminate(ids, reason):
            ids = [i for i in ids if i not in gone]
            if ids:
                gone.extend(ids)
                actions.append(Terminate(tuple(ids), reason))

        terminate(sorted(i for i, inst in alive.items() if inst.state is InstanceState.ERROR),
                  Reason.of(CobaldCode.DRONE_ERROR))
        workers = workers_of(snapshot, alive.keys())
        if workers is None:
            new = CobaldMemory(memory.demand, frozenset(released - set(gone)),
                               frozenset(draining - set(gone)), requested, memory.regulated_at)
            return Plan(tuple(actions), (Reason.of(CobaldCode.NO_POOL),)), new

        ids = [i for i in sorted(alive) if i not in released and i not in gone] + sorted(requested)
        drones = [Drone(i, cpus, workers.get(i), rank) for rank, i in enumerate(ids)]
        factory = FactoryPool(*drones, factory=lambda: Drone(None, cpus, rank=len(drones)))
        factory.demand = memory.demand
        interval = tick if memory.regulated_at is None else min(now - memory.regulated_at, tick)
        self.controller(pipeline(factory, config, cpus, vm.memory_mb), config, cpus).regulate(interval)
        supply, demand = factory.supply, factory.demand  # FactoryPool.run, one iteration
        if supply > demand:
            factory._shrink(target=demand)
        else:
            factory._grow(target=demand)

        spawned = sum(1 for d in factory.children if d.instance_id is None)
        if spawned:
            actions.append(Launch(spawned, Reason.of(CobaldCode.DEMAND_ABOVE, demand=demand, count=spawned,
                                                     supply=sum(d.demand for d in drones))))
        dropped = [d.instance_id for d in drones if d.demand <= 0]
        booting = [i for i in dropped if i in requested or alive[i].state in
                   (InstanceState.REQUESTED, InstanceState.BOOTING)]
        terminate(booting, Reason.of(CobaldCode.BOOTING_RELEASED, demand=demand))
        released.update(i for i in dropped if i not in booting)
        for instance_id in sorted(released - set(gone)):
            worker = workers.get(instance_id)
            if worker is None:
                if instance_id in draining:  # left the pool after its drain: ShutDownState
                    terminate([instance_id], Reason.of(CobaldCode.RELEASED_GONE))
            elif worker.draining and instance_id in draining:
                if not worker.busy:
                    terminate([instance_id], Reason.of(CobaldCode.RELEASED_DRAINED))
            else:
                draining.add(instance_id)
                actions.append(Drain(worker.name, instance_id,
                                     Reason.of(CobaldCode.DEMAND_BELOW, demand=demand, supply=supply)))

        moved = demand != memory.demand
        new = CobaldMemory(demand, frozenset(released - set(gone)), frozenset(draining - set(gone)),
                           requested, now)
        notes = (Reason.of(CobaldCode.REGULATED, demand=demand, supply=supply,
                           utilisation=factory.utilisation, allocation=factory.allocation),)
        return Plan(tuple(actions), notes, now + tick if moved or actions else None), new
