"""Start-up reconciliation: the saved memory against what the cloud shows now.

Runs on the first observation after start in which the cloud could be listed (until then the
core makes no decision at all, so nothing can be forgotten or doubled meanwhile), and reports:

- *adopted*: alive instances carrying our cluster tag that memory does not know (state file
  lost or corrupt, crash between the launch call and the save).  They are ours: their records
  are made from the cloud state and the pool by the core's own lifecycle tracking
  (``core.lifecycle.track``), exactly as for any instance it sees for the first time, and are
  in the memory the tick starts from (so an action on them that is skipped can be undone);
- *missing*: saved records whose instance the cloud no longer lists.  The core keeps a freshly
  requested one for ``estimated_vm_deploy_time_s`` (the cloud may not list it yet) and forgets
  the others.

Everything else continues as saved: draining and terminating go on where the previous process
left them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

from ..core.lifecycle import track
from ..model import ALIVE_STATES, InstanceState, Memory, Snapshot


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


def reconcile(memory: Memory, snapshot: Snapshot, cluster: str, deploy_time_s: float,
              now: float) -> Tuple[Memory, Optional[Report]]:
    """Memory with the cloud's instances tracked, and the report; ``(memory, None)`` while the
    cloud cannot be listed."""
    if snapshot.instances is None:
        return memory, None
    listed = {i.id: i for i in snapshot.instances if i.cluster == cluster}
    adopted = tuple(sorted(
        i.id for i in listed.values()
        if i.id not in memory.instances
        and (i.state in ALIVE_STATES or i.state is InstanceState.SHUTTING_DOWN)))
    missing = tuple(sorted(i for i in memory.instances if i not in listed))
    records = track(snapshot, memory.instances, cluster, deploy_time_s, now).records
    report = Report(adopted, missing, len(memory.instances) - len(missing))
    return replace(memory, instances=records), report
