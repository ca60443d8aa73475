"""Start-up reconciliation: the saved memory against what the cloud and the pool show now.

Runs on the first observation after start in which the cloud could be listed (until then the
core makes no decision at all, so nothing can be forgotten or doubled meanwhile).

- Every alive instance carrying our cluster tag is ours.  One missing from memory (state file
  lost or corrupt, crash between the launch call and the save) is *adopted*: a record is made
  from its cloud state, and, when the pool shows its worker, it is recorded as joined.
- A record whose instance the cloud no longer lists is reported as *missing*.  The core keeps
  a freshly requested one for ``estimated_vm_deploy_time_s`` (the cloud may not list it yet)
  and forgets the others at its first tick.
- Everything else is kept as saved: the lifecycle (draining, terminating) continues where the
  previous process left it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

from ..model import (ALIVE_STATES, Instance, InstanceRecord, InstanceState, Lifecycle, Memory,
                     Snapshot, Worker)

_LIFECYCLE = {
    InstanceState.REQUESTED: Lifecycle.REQUESTED,
    InstanceState.BOOTING: Lifecycle.BOOTING,
    InstanceState.RUNNING: Lifecycle.BOOTING,
    InstanceState.ERROR: Lifecycle.ERROR,
    InstanceState.SHUTTING_DOWN: Lifecycle.TERMINATING,
}


@dataclass(frozen=True)
class Report:
    adopted: Tuple[str, ...] = ()
    missing: Tuple[str, ...] = ()
    kept: int = 0

    def lines(self) -> Tuple[str, ...]:
        out = [f"reconciled with the cloud: {self.kept} known instance(s) still there"]
        if self.adopted:
            out.append(f"adopted {len(self.adopted)} tagged instance(s) not in the saved "
                       f"state: {', '.join(self.adopted)}")
        if self.missing:
            out.append(f"{len(self.missing)} saved instance(s) not listed by the cloud: "
                       f"{', '.join(self.missing)}")
        return tuple(out)


def _adopt(instance: Instance, worker: Optional[Worker], now: float) -> InstanceRecord:
    launched_at = instance.launched_at or now
    if worker is not None and instance.state in (InstanceState.RUNNING, InstanceState.BOOTING):
        lifecycle = Lifecycle.DRAINING if worker.draining else Lifecycle.JOINED
        return InstanceRecord(lifecycle, now, launched_at, joined_at=now, worker=worker.name)
    return InstanceRecord(_LIFECYCLE[instance.state], now, launched_at)


def reconcile(memory: Memory, snapshot: Snapshot, cluster: str,
              now: float) -> Tuple[Memory, Optional[Report]]:
    """Adopt our tagged instances; None report (memory unchanged) if the cloud is unreadable."""
    if snapshot.instances is None:
        return memory, None
    workers: Dict[str, Worker] = {}
    if snapshot.pool is not None:
        workers = {w.instance_id: w for w in snapshot.pool.workers if w.instance_id}
    listed = {i.id: i for i in snapshot.instances if i.cluster == cluster}
    records = dict(memory.instances)
    adopted = []
    for instance in sorted(listed.values(), key=lambda i: i.id):
        alive = instance.state in ALIVE_STATES or instance.state is InstanceState.SHUTTING_DOWN
        if alive and instance.id not in records:
            records[instance.id] = _adopt(instance, workers.get(instance.id), now)
            adopted.append(instance.id)
    missing = tuple(sorted(i for i in memory.instances if i not in listed))
    kept = len(memory.instances) - len(missing)
    return replace(memory, instances=records), Report(tuple(adopted), missing, kept)
