"""Drain requests in flight: sent to a worker, not yet visible in the pool.

A drain (or its cancellation) reaches the pool's view only when the worker next reports to
the batch system.  Until then the core, seeing the worker as before, plans the same action
again; sending it again achieves nothing, and a worker that already drains refuses it (an
error in the log).  :class:`InFlight` stands between the actuator and the batch system: it
remembers each request that succeeded, and :meth:`InFlight.hold_back` drops from a plan a
repeat of one sent less than ``hold_s`` ago that the pool does not show done yet.  After
``hold_s`` a request the pool never showed is presumed lost and may be sent again.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, Dict, Optional, Tuple

from ..model import CancelDrain, Drain, Plan, Pool

log = logging.getLogger(__name__)


class InFlight:
    """The batch system as the actuator sees it: ``drain``/``cancel_drain`` pass through and
    are remembered per worker (the last one wins); ``workers_of`` and ``forget`` pass through."""

    def __init__(self, batch, clock: Callable[[], float], hold_s: float):
        self.batch, self.clock, self.hold_s = batch, clock, hold_s
        self._sent: Dict[str, Tuple[bool, float]] = {}  # worker -> (drain?, sent at)

    def drain(self, worker: str, reason: str) -> None:
        self.batch.drain(worker, reason)
        self._sent[worker] = (True, self.clock())

    def cancel_drain(self, worker: str) -> None:
        self.batch.cancel_drain(worker)
        self._sent[worker] = (False, self.clock())

    def workers_of(self, instance_ids, known_ips=None):
        """The look before a terminate goes to the pool itself (nothing to remember)."""
        return self.batch.workers_of(instance_ids, known_ips)

    def forget(self, instance_ids) -> None:
        self.batch.forget(instance_ids)

    def hold_back(self, plan: Plan, pool: Optional[Pool], now: float) -> Plan:
        """``plan`` without the drains and cancellations already in flight."""
        if not self._sent:
            return plan
        shown = {w.name: w.draining for w in pool.workers} if pool is not None else {}
        for worker, (drain, at) in list(self._sent.items()):
            if now - at >= self.hold_s or shown.get(worker) is drain:
                del self._sent[worker]  # seen done, or presumed lost
        kept = []
        for action in plan.actions:
            if isinstance(action, (Drain, CancelDrain)):
                sent = self._sent.get(action.worker)
                if sent is not None and sent[0] is isinstance(action, Drain):
                    log.debug("%s of %s sent %.0f s ago, not yet seen in the pool: not repeated",
                              "drain" if sent[0] else "drain cancellation", action.worker,
                              now - sent[1])
                    continue
            kept.append(action)
        return plan if len(kept) == len(plan.actions) else replace(plan, actions=tuple(kept))
