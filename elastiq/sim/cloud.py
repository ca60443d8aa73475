"""The simulated cloud (and, re-exported, pool) in virtual time, for ``elastiq simulate`` and tests.

Both implement the ports of :mod:`elastiq.adapters.base` (:class:`SimCloud` is a ``Cloud``,
:class:`SimPool` a ``BatchSystem``) and read the time from an injected ``clock()``; neither
moves time: the engine calls ``advance(now)`` on each before observing.

The cloud: a launched VM is *booting* (pending) for ``min(30 s, boot delay)``, then *running*;
its worker joins the pool ``boot delay`` seconds after the launch request.  A share of VMs
never joins (running but silent) and a share goes to *error* instead of running.  A capacity
quota makes ``launch`` grant fewer VMs than asked, or raise :class:`QuotaError` when none is
left.  Terminated VMs are *shutting-down* for 30 s, then *gone* (listed one more hour).

The pool (:mod:`.pool`): idle jobs are matched FIFO onto the free cpus/memory of joined,
non-draining workers; a worker whose VM is terminated while jobs run on it kills them: they go
back to the queue and are counted in ``jobs_killed``.

Observation failures: ``queue()``/``pool()``/``list_instances()`` raise TransientError with the
configured probabilities, to exercise fail-safe behaviour.
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..model import Instance, InstanceState
from ..adapters.base import NOT_SUPPORTED, ConfigError, QuotaError, TransientError

PENDING_S = 30.0
SHUTDOWN_S = 30.0
GONE_LISTED_S = 3600.0


@dataclass(frozen=True)
class BootDelay:
    """Seconds from the launch request to the worker joining the pool.

    ``fixed:S`` (or just ``S``), ``uniform:MIN:MAX``, ``lognormal:MEDIAN:SIGMA``.
    """

    kind: str = "uniform"
    a: float = 120.0
    b: float = 300.0

    @classmethod
    def parse(cls, text: str) -> "BootDelay":
        parts = text.strip().split(":")
        try:
            values = [float(p) for p in parts[1:]] if len(parts) > 1 else [float(parts[0])]
        except ValueError:
            raise ValueError(f"{text!r}: numbers expected, e.g. uniform:120:300") from None
        kind = parts[0] if len(parts) > 1 else "fixed"
        arity = {"fixed": 1, "uniform": 2, "lognormal": 2}
        if kind not in arity or len(values) != arity[kind]:
            raise ValueError(f"{text!r}: expected fixed:S, uniform:MIN:MAX or lognormal:MEDIAN:SIGMA")
        if any(v < 0 for v in values) or (kind == "uniform" and values[1] < values[0]):
            raise ValueError(f"{text!r}: delays must be >= 0 and MIN <= MAX")
        return cls(kind, values[0], values[1] if len(values) > 1 else values[0])

    def sample(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return self.a * math.exp(rng.gauss(0.0, self.b))
        return self.a


@dataclass
class _VM:
    id: str
    launched_at: float
    running_at: float
    join_at: Optional[float]  # None: never joins
    fails: bool
    state: InstanceState = InstanceState.BOOTING
    terminated_at: Optional[float] = None
    flavour: Optional[str] = None  # None: the pool's VM shape
    cpus: Optional[int] = None
    memory_mb: Optional[int] = None


class SimCloud:
    """Cloud port over simulated VMs; ``pool`` (optional) receives joins and terminations."""

    def __init__(self, clock: Callable[[], float], *, cluster: str = "elastiq",
                 owner: Optional[str] = None,
                 boot_delay: BootDelay = BootDelay(), never_join_share: float = 0.0,
                 error_share: float = 0.0, capacity: Optional[int] = None,
                 list_failure: float = 0.0, seed: int = 0, pool: Optional["SimPool"] = None,
                 flavours: Optional[Dict[str, Tuple[int, int]]] = None,
                 shape: Tuple[int, int] = (1, 2048)):
        self.clock, self.cluster, self.boot_delay, self.pool = clock, cluster, boot_delay, pool
        self.owner = owner  # the owner id every VM carries (elastiq.runtime.owner)
        self.flavours = flavours or {}  # name -> (cpus, memory_mb): launch(flavour=) takes them
        self.shape = shape  # (cpus, memory_mb) of a VM launched without a flavour
        self.never_join_share, self.error_share = never_join_share, error_share
        self.capacity, self.list_failure = capacity, list_failure
        self.rng = random.Random(seed)
        self.vms: Dict[str, _VM] = {}  # every VM ever launched (for the metrics)
        self.listed: Dict[str, _VM] = {}  # the ones list_instances still shows
        self.events: List[Tuple[float, int, str]] = []
        self.alive = 0
        self.alive_cores = self.alive_memory_mb = 0  # of the alive instances, as a quota counts
        self.in_error = 0  # alive instances in ERROR
        self.version = 0  # bumped on every change a listing could show
        self.launch_calls = 0
        self._listing: Optional[Tuple[Instance, ...]] = None

    # -- the Cloud port
    def describe_flavours(self, names) -> Dict[str, Tuple[int, int]]:
        return {name: self.flavours[name] for name in names if name in self.flavours}

    def check_settings(self) -> None:
        return NOT_SUPPORTED  # a simulated cloud launches whatever it is told

    def list_instances(self) -> Tuple[Instance, ...]:
        if self.list_failure and self.rng.random() < self.list_failure:
            raise TransientError("simulated cloud API timeout")
        if self._listing is None:
            self._listing = tuple(
                Instance(vm.id, vm.state, vm.launched_at, self.cluster, instance_type=vm.flavour,
                         owner=self.owner)
                for vm in self.listed.values()
            )
        return self._listing

    def launch(self, count: int, *, flavour: Optional[str] = None,
               request_id: Optional[str] = None) -> Tuple[str, ...]:
        """``flavour``: one of ``flavours`` (its workers join with its shape); None: the pool's
        VM shape.  ``request_id``: ignored (a simulated launch always answers)."""
        if flavour is not None and flavour not in self.flavours:
            raise ConfigError(f"simulated cloud has no flavour {flavour!r}", key="flavour")
        self.launch_calls += 1
        now = self.clock()
        if self.capacity is not None:
            count = min(count, self.capacity - self.alive)
            if count <= 0:
                raise QuotaError(f"simulated cloud capacity of {self.capacity} instances reached")
        ids = []
        for _ in range(max(count, 0)):
            delay = self.boot_delay.sample(self.rng)
            fate = self.rng.random()
            fails = fate < self.error_share
            silent = not fails and fate < self.error_share + self.never_join_share
            vm = _VM(f"i-sim{len(self.vms) + 1:06d}", now, now + min(PENDING_S, delay),
                     None if fails or silent else now + delay, fails)
            if flavour is not None:
                vm.flavour, (vm.cpus, vm.memory_mb) = flavour, self.flavours[flavour]
            self._count(vm, 1)
            self.vms[vm.id] = self.listed[vm.id] = vm
            heapq.heappush(self.events, (vm.running_at, 0, vm.id))
            if vm.join_at is not None:
                heapq.heappush(self.events, (vm.join_at, 1, vm.id))
            ids.append(vm.id)
        self.alive += len(ids)
        self._changed()
        return tuple(ids)

    def terminate(self, instance_ids: Sequence[str]) -> None:
        now = self.clock()
        for instance_id in instance_ids:
            vm = self.vms.get(instance_id)
            if vm is None or vm.terminated_at is not None:
                continue
            if vm.state is InstanceState.ERROR:
                self.in_error -= 1
            vm.terminated_at, vm.state = now, InstanceState.SHUTTING_DOWN
            self.alive -= 1
            self._count(vm, -1)
            heapq.heappush(self.events, (now + SHUTDOWN_S, 2, vm.id))
            if self.pool is not None:
                self.pool.remove_worker(vm.id, now)
            self._changed()

    # -- virtual time
    def next_event(self) -> Optional[float]:
        return self.events[0][0] if self.events else None

    def advance(self, now: float) -> None:
        """Apply every state change due at or before ``now``."""
        while self.events and self.events[0][0] <= now:
            when, kind, instance_id = heapq.heappop(self.events)
            vm = self.vms[instance_id]
            if kind == 2:
                vm.state = InstanceState.GONE
                heapq.heappush(self.events, (when + GONE_LISTED_S, 3, vm.id))
            elif kind == 3:
                del self.listed[vm.id]
            elif vm.terminated_at is not None:
                continue
            elif kind == 0:
                vm.state = InstanceState.ERROR if vm.fails else InstanceState.RUNNING
                self.in_error += vm.fails
            elif self.pool is not None:
                self.pool.add_worker(vm.id, when, vm.cpus, vm.memory_mb)
            self._changed()

    def _count(self, vm: _VM, sign: int) -> None:
        self.alive_cores += sign * (vm.cpus or self.shape[0])
        self.alive_memory_mb += sign * (vm.memory_mb or self.shape[1])

    def _changed(self) -> None:
        self.version += 1
        self._listing = None


from .pool import SimPool  # noqa: E402  (re-exported: the two simulated ports)
