"""Start-up reconciliation: the saved memory against what the cloud shows now.

Runs on the first observation after start in which the cloud could be listed (until then the
core makes no decision at all, so nothing can be forgotten or doubled meanwhile), and reports:

- *adopted*: alive instances carrying our cluster tag that memory does not know (state file
  lost or corrupt, crash between the launch call and the save).  They are ours: the policy
  takes them on (``Policy.adopt``: the default one tracks them exactly as any instance it
  sees for the first time), in the memory the tick starts from (so an action on them that is
  skipped can be undone);
- *missing*: saved instances the cloud no longer lists.  The default policy keeps a freshly
  requested one for ``estimated_vm_deploy_time_s`` (the cloud may not list it yet) and forgets
  the others.

Everything else continues as saved: draining and terminating go on where the previous process
left them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ..config import Config
from ..model import Snapshot


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


def reconcile(policy, memory: Any, snapshot: Snapshot, config: Config,
              now: float) -> Tuple[Any, Optional[Report]]:
    """The policy's memory with the cloud's instances adopted, and the report;
    ``(memory, None)`` while the cloud cannot be listed."""
    if snapshot.instances is None:
        return memory, None
    memory, found = policy.adopt(memory, snapshot, config, now)
    return memory, Report(found.adopted, found.missing, found.kept)
