"""The core's part of one tick as the runtime runs it (:func:`elastiq.core.records.step` with
the default policy, the core's parameters built from the configuration given), for tests that
follow the records and the policy's memory together."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from elastiq.config import params_of
from elastiq.core import records
from elastiq.core.policy import DefaultPolicy
from elastiq.model import InstanceRecord, Lifecycle, Memory, Worker

POLICY = DefaultPolicy()


@dataclass(frozen=True)
class CoreState:
    """The runtime's records (``instances``) and the default policy's memory (the other
    fields, as :class:`~elastiq.model.Memory`'s), as a tick leaves them."""

    waiting_since: Optional[float] = None
    backoff_until: float = 0.0
    failures: int = 0
    instances: Mapping[str, InstanceRecord] = field(default_factory=dict)
    unstarted: Optional[Tuple[float, int, int]] = None

    @property
    def memory(self) -> Memory:
        return Memory(self.waiting_since, self.backoff_until, self.failures, self.unstarted)


def tick(snapshot, state: CoreState, config, now, catalogue=None):
    """``(plan, state after it)``, as the runtime decides (records tracked, plan, marks)."""
    plan, recs, memory = records.step(POLICY, snapshot, state.instances, state.memory,
                                      params_of(config),
                                      now, catalogue)
    return plan, CoreState(memory.waiting_since, memory.backoff_until, memory.failures, recs,
                           memory.unstarted)


def record_launch(state: CoreState, outcome, config, now) -> CoreState:
    """A launch's outcome recorded as the actuator records it."""
    memory = POLICY.record_launch(state.memory, outcome, params_of(config), now)
    return CoreState(memory.waiting_since, memory.backoff_until, memory.failures,
                     records.launched(state.instances, outcome, now), memory.unstarted)


def random_worker(rng, i: int, kind) -> Tuple[Worker, InstanceRecord]:
    """A joined worker of flavour ``kind`` on instance ``i-<i>`` (named ``w<i>``) with its
    record: some cores busy, one in five draining (for the random fleets of property tests)."""
    used, draining = rng.randint(0, kind.cpus), rng.random() < 0.2
    worker = Worker(f"w{i}", f"i-{i}", None, kind.cpus, kind.memory_mb, used, kind.cpus - used,
                    kind.memory_mb * (kind.cpus - used) // kind.cpus, None if used else 0.0,
                    draining)
    return worker, InstanceRecord(Lifecycle.DRAINING if draining else Lifecycle.JOINED,
                                  0.0, 0.0, 1.0, f"w{i}")
