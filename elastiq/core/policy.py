"""The policy interface: what the runtime (daemon and simulator) asks of a decision core.

A policy plans; the runtime keeps the per-instance lifecycle records for every policy
(:mod:`.records`) and hands them to ``plan`` as the tracked :class:`~.lifecycle.Fleet`.  A
policy may keep a small memory of its own between ticks (the default one: since when jobs
wait, the launch back-off; the original elastiq's: its counters), which the runtime keeps,
hands back and persists without reading it.  Every operation is pure (``now`` is a parameter):

- ``plan(snapshot, fleet, memory, params, now, catalogue) -> (Plan, memory)``: the decision of
  one tick (``fleet`` None: the cloud could not be listed; ``params``: the settings the core
  reads, :class:`~.params.Params`; ``catalogue``: the worker VMs' shape and flavours, None:
  the configured one);
- ``record_launch(memory, outcome, params, now)``: a launch's result, folded in at once;
- ``drained_instead(memory, instance_id, now)``: a planned termination found the instance's
  worker accepting or running jobs and drained it instead;
- ``initial_memory(seed)``, ``dump_memory(memory)`` / ``load_memory(data)``: the memory of a
  fresh start (``seed``: of any random choice) and its JSON form in the state file
  (ValueError naming the bad field);
- ``view(memory) -> MemoryView``: what ``status`` shows of it;
- ``resting_vms(params)``: the VMs it keeps while nothing runs.

:class:`BasePolicy` gives the memory operations of a policy that needs none of them (nothing
kept across a restart, nothing to show): a policy then writes ``initial_memory``, ``plan`` and
``record_launch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Tuple, runtime_checkable

from ..model import Catalogue, LaunchOutcome, Plan, Snapshot
from . import decide
from .lifecycle import Fleet
from .memory_codec import dump_memory, load_memory
from .params import Params


@dataclass(frozen=True)
class MemoryView:
    """What ``status`` shows of a policy's memory: since when demand is above the threshold,
    and the launch back-off (``failures`` in a row, backing off until ``backoff_until``)."""

    waiting_since: Optional[float] = None
    failures: int = 0
    backoff_until: float = 0.0


@runtime_checkable
class Policy(Protocol):
    name: str

    def initial_memory(self, seed: int = 0) -> Any: ...

    def plan(self, snapshot: Snapshot, fleet: Optional[Fleet], memory: Any, params: Params,
             now: float, catalogue: Optional[Catalogue] = None) -> Tuple[Plan, Any]: ...

    def record_launch(self, memory: Any, outcome: LaunchOutcome, params: Params,
                      now: float) -> Any: ...

    def drained_instead(self, memory: Any, instance_id: str, now: float) -> Any: ...

    def view(self, memory: Any) -> MemoryView: ...

    def resting_vms(self, params: Params) -> int: ...

    def dump_memory(self, memory: Any) -> Any: ...

    def load_memory(self, data: Any) -> Any: ...


class BasePolicy:
    """The operations of a policy whose memory needs no care: a drain instead of a
    termination changes nothing in it, nothing of it is shown or kept across a restart (as
    the original elastiq, which had no state), and it rests at ``min_vms``."""

    name: str

    def drained_instead(self, memory, instance_id: str, now: float):
        return memory

    def view(self, memory) -> MemoryView:
        return MemoryView()

    def resting_vms(self, params: Params) -> int:
        return params.limits.min_vms

    def dump_memory(self, memory) -> Any:
        return None

    def load_memory(self, data: Any):
        return self.initial_memory()


class DefaultPolicy(BasePolicy):
    """elastiq's policy (:mod:`.decide`)."""

    name = "default"

    def initial_memory(self, seed: int = 0):
        return decide.initial_memory()

    def plan(self, snapshot, fleet, memory, params, now, catalogue=None):
        return decide.plan(snapshot, fleet, memory, params, now, catalogue)

    def record_launch(self, memory, outcome, params, now):
        return decide.record_launch(memory, outcome, params, now)

    def view(self, memory) -> MemoryView:
        return MemoryView(memory.waiting_since, memory.failures, memory.backoff_until)

    def dump_memory(self, memory) -> Any:
        return dump_memory(memory)

    def load_memory(self, data: Any):
        return load_memory(data)
