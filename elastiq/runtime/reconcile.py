"""Start-up reconciliation: the saved records against what the cloud shows now.

Runs on the first observation after start in which the cloud could be listed (until then the
core makes no decision at all, so nothing can be forgotten or doubled meanwhile), and reports:

- *adopted*: alive instances carrying our cluster tag that memory does not know (state file
  lost or corrupt, crash between the launch call and the save).  They are ours: the records
  take them on (:func:`elastiq.core.records.adopt` tracks them exactly as any instance seen
  for the first time), in the records the tick starts from (so an action on them that is
  skipped can be undone);
- *missing*: saved instances the cloud no longer lists.  A freshly requested one is kept for
  ``estimated_vm_deploy_time_s`` (the cloud may not list it yet), the others are forgotten.

Everything else continues as saved: draining and terminating go on where the previous process
left them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..core.params import Params
from ..core.records import Records, adopt
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


def reconcile(records: Records, snapshot: Snapshot, params: Params,
              now: float) -> Tuple[Records, Optional[Report]]:
    """The records with the cloud's instances adopted, and the report; ``(records, None)``
    while the cloud cannot be listed."""
    if snapshot.instances is None:
        return records, None
    records, found = adopt(records, snapshot, params, now)
    return records, Report(found.adopted, found.missing, found.kept)
