"""What only a replay needs: which periodic ticks a quiet stretch skips and which of them last
served each check (pure, over the daemon's :class:`~elastiq.runtime.scheduler.Agenda`: its
``due_at``, ``intervals``, ``pace`` and ``window``; the daemon itself only ever asks the agenda
for the next tick), and an observer that notes the listing those ticks would have read."""
from __future__ import annotations

import math
from typing import Dict, Optional

from ..runtime.observe import Observer
from ..runtime.scheduler import Agenda


class ReplayObserver(Observer):
    """The daemon's observer, which can also note a listing read during a skipped stretch."""

    def relisted(self, now: float) -> None:
        """The cloud was listed again at ``now`` and showed the listing the observer holds
        (the last tick of a quiet stretch the simulator skips because the world is as last
        read): later ticks reuse it as read then."""
        self._listing, self._listed_at = self._ours(self.cloud.list_instances()), now


def tick_at_or_after(agenda: Agenda, when: float) -> float:
    """The first periodic tick at or after ``when`` (the next one if ``when`` is past)."""
    first, every = agenda.due_at[agenda.pace], agenda.intervals[agenda.pace]
    return first + max(0, math.ceil((when - first) / every - 1e-9)) * every


def last_tick_before(agenda: Agenda, when: float) -> Optional[float]:
    """The last periodic tick before ``when``, None when the next one is not before it."""
    if agenda.due_at[agenda.pace] >= when:
        return None
    return tick_at_or_after(agenda, when) - agenda.intervals[agenda.pace]


def last_served(agenda: Agenda, until: float) -> Dict[str, float]:
    """For each check, the tick that last served it if the periodic ticks up to the tick
    ``until`` all run (checks not due by then are left out)."""
    served = {}
    for kind, at in agenda.due_at.items():
        if at <= until + agenda.window:
            every = agenda.intervals[kind]
            last_due = at + math.floor((until + agenda.window - at) / every) * every
            served[kind] = tick_at_or_after(agenda, last_due - agenda.window)
    return served
