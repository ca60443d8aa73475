"""The simulated world behind the runtime's ports: cloud, pool and negotiator in virtual time.

:class:`World` owns the virtual clock, the :class:`~elastiq.sim.cloud.SimCloud` and the
:class:`~elastiq.sim.pool.SimPool`, and hands the runtime two ports (``batch``, ``cloud``)
over them.  What the ports add to the simulated adapters is simulation only:

- the negotiator: it matches idle jobs onto free slots once per tick, *after* the observation
  and right before the first action reaches the world (a launch, a drain, the look before a
  terminate...), or at the end of a tick without action (:meth:`World.negotiate`): the window
  in which, in a real pool, a job can start on a host about to be terminated;
- a log of every action that reached the world, ``(time, kind, what)``, to compare runs;
- what the runtime last saw: the pool's and the cloud's versions at their last reads, so the
  engine knows when the world changed since (:meth:`World.unseen`);
- the most instances alive during a tick (for ``max_vms`` violations).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from .cloud import SimCloud, SimPool


#: The owner id of the simulated daemon: every simulated VM carries it (so all are its own).
SIM_OWNER = "simulation"


class World:
    def __init__(self, workload, config, options, start: float, catalogue):
        """``catalogue``: the worker VMs' shape and flavours (``engine.sim_catalogue``)."""
        vm = catalogue
        self.now = start
        clock = self.clock
        self.pool = SimPool(clock, workload, start=start, vm_cpus=vm.cpus,
                            vm_memory_mb=vm.memory_mb, queue_failure=options.queue_failure,
                            pool_failure=options.pool_failure, seed=options.seed)
        self.sim_cloud = SimCloud(clock, cluster=config.elastiq.cluster_name, owner=SIM_OWNER,
                                  boot_delay=options.boot_delay,
                                  never_join_share=options.never_join_share,
                                  error_share=options.error_share,
                                  capacity=options.cloud_capacity,
                                  list_failure=options.list_failure, seed=options.seed,
                                  pool=self.pool,
                                  flavours={f.name: (f.cpus, f.memory_mb)
                                            for f in catalogue.flavours if f.known},
                                  shape=(vm.cpus, vm.memory_mb))
        self.batch, self.cloud = _Batch(self), _Cloud(self)
        self.actions: List[Tuple[float, str, str]] = []
        self.started = 0  # jobs the negotiator started this tick
        self.peak = 0  # most instances alive this tick
        self.peak_cores = self.peak_memory_mb = 0  # and most cores, memory
        self._negotiated = True
        self._seen_pool: Optional[int] = None
        self._seen_cloud: Optional[int] = None

    def clock(self) -> float:
        return self.now

    def advance(self, t: float) -> None:
        """Move to ``t``: jobs submitted and finished, VMs running, joining, gone."""
        self.now = t
        self.pool.advance(t)
        self.sim_cloud.advance(t)
        self._negotiated, self.started, self.peak = False, 0, self.sim_cloud.alive
        self.peak_cores, self.peak_memory_mb = self.sim_cloud.alive_cores, self.sim_cloud.alive_memory_mb

    def negotiate(self) -> None:
        """The negotiation cycle of this tick (once)."""
        if not self._negotiated:
            self._negotiated = True
            self.started = self.pool.negotiate(self.now)

    def unseen(self) -> bool:
        """The pool or the cloud changed since the runtime last read it (or a read failed)."""
        return (self._seen_pool != self.pool.version
                or self._seen_cloud != self.sim_cloud.version)

    def next_event(self) -> Optional[float]:
        """When the world changes next by itself (None: never)."""
        times = [t for t in (self.pool.next_event(), self.sim_cloud.next_event()) if t is not None]
        return min(times) if times else None

    def _act(self, kind: str, what: str) -> None:
        self.negotiate()
        self.actions.append((self.now, kind, what))


class _Batch:
    """The BatchSystem port."""

    def __init__(self, world: World):
        self.world = world

    def queue(self):
        return self.world.pool.queue()

    def pool(self, known_ips=None):
        answer = self.world.pool.pool(known_ips)
        self.world._seen_pool = self.world.pool.version
        return answer

    def workers_of(self, instance_ids, known_ips=None):
        self.world.negotiate()
        return self.world.pool.workers_of(instance_ids, known_ips)

    def forget(self, instance_ids) -> None:
        self.world.pool.forget(instance_ids)

    def drain(self, worker: str, reason: str) -> None:
        self.world._act("drain", worker)
        self.world.pool.drain(worker, reason)

    def cancel_drain(self, worker: str) -> None:
        self.world._act("cancel-drain", worker)
        self.world.pool.cancel_drain(worker)


class _Cloud:
    """The Cloud port."""

    def __init__(self, world: World):
        self.world, self.sim = world, world.sim_cloud
        self.owner = self.sim.owner

    def list_instances(self):
        answer = self.sim.list_instances()
        self.world._seen_cloud = self.sim.version
        return answer

    def launch(self, count: int, *, flavour=None, request_id=None):
        self.world._act("launch", str(count) if flavour is None else f"{count} {flavour}")
        try:
            return self.sim.launch(count, flavour=flavour)
        finally:
            world, sim = self.world, self.sim
            world.peak = max(world.peak, sim.alive)
            world.peak_cores = max(world.peak_cores, sim.alive_cores)
            world.peak_memory_mb = max(world.peak_memory_mb, sim.alive_memory_mb)

    def terminate(self, instance_ids) -> None:
        self.world._act("terminate", ",".join(instance_ids))
        self.sim.terminate(instance_ids)

    def describe_flavours(self, names):
        return self.sim.describe_flavours(names)

    def check_settings(self):
        return self.sim.check_settings()
