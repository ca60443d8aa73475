"""The policy interface: everything the runtime (daemon and simulator) asks of a decision core.

The runtime never reads or writes inside a policy's memory: it keeps it between ticks, hands
it back, and persists it.  Every operation is pure (``now`` is a parameter):

- ``initial_memory(seed)``: the memory of a fresh start (``seed``: of any random choice);
- ``plan(snapshot, memory, config, now) -> (Plan, memory)``: the decision of one tick;
- ``record_launch(memory, outcome, config, now)``: fold a launch's result in at once;
- ``adopt(memory, snapshot, config, now) -> (memory, Adoption)``: after a start, the saved
  memory against the cloud's first listing (tagged instances it does not know, known ones
  the cloud no longer lists);
- ``undo(memory, before, instance_ids)``: an action the plan decided was not carried out
  (dry run, shutdown, the pool could not be looked at): those instances' records go back to
  ``before`` (the memory the tick started from);
- ``drained_instead(memory, instance_id, worker, now)``: a planned termination found the
  instance's worker accepting or running jobs and drained it instead;
- ``join_delays(memory, instance_ids) -> (seconds, still_waiting)``: boot-to-join times of
  those instances that joined, and the ones still awaited (forgotten ones are in neither);
- ``owned(memory)``: the instances the policy owns, each with the name of the worker it last
  saw on it, or None (for the log);
- ``view(memory) -> MemoryView``: what ``status`` shows of the memory (per-VM records, the
  launch back-off);
- ``resting_vms(config)``: the VMs it keeps while nothing runs;
- ``dump_memory(memory)`` / ``load_memory(data)``: the memory as JSON data and back, for the
  state file (ValueError naming the bad field).

:class:`RecordsPolicy` implements them for memories holding per-instance lifecycle records
(:class:`~elastiq.model.Memory`, the default policy); :class:`CounterPolicy` for policies that
keep no per-instance records (the legacy one, the simulator's peers): there is nothing to adopt,
undo or time.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import (TYPE_CHECKING, Any, Dict, Iterable, Mapping, Optional, Protocol, Tuple,
                    runtime_checkable)

from ..model import (ALIVE_STATES, Catalogue, InstanceRecord, InstanceState, LaunchOutcome,
                     Lifecycle, Plan, Snapshot)
from . import decide, legacy
from .lifecycle import track
from .memory_codec import dump_memory, load_memory

if TYPE_CHECKING:  # annotations only: the configuration imports the core's registry
    from ..config import Config


@dataclass(frozen=True)
class Adoption:
    """What :meth:`Policy.adopt` found: tagged instances taken on, saved ones not listed, and
    how many saved ones are still there."""

    adopted: Tuple[str, ...] = ()
    missing: Tuple[str, ...] = ()
    kept: int = 0


@dataclass(frozen=True)
class MemoryView:
    """What ``status`` shows of a policy's memory: the lifecycle record of each VM it owns
    (none for a policy without records), since when demand is above the threshold, and the
    launch back-off (``failures`` in a row, backing off until ``backoff_until``)."""

    records: Mapping[str, InstanceRecord] = field(default_factory=dict)
    waiting_since: Optional[float] = None
    failures: int = 0
    backoff_until: float = 0.0


@runtime_checkable
class Policy(Protocol):
    name: str

    def initial_memory(self, seed: int = 0) -> Any: ...

    def plan(self, snapshot: Snapshot, memory: Any, config: Config, now: float,
             catalogue: Optional[Catalogue] = None) -> Tuple[Plan, Any]:
        """``catalogue``: the worker VMs' shape and flavours (None: the configuration's own)."""

    def record_launch(self, memory: Any, outcome: LaunchOutcome, config: Config,
                      now: float) -> Any: ...

    def adopt(self, memory: Any, snapshot: Snapshot, config: Config,
              now: float) -> Tuple[Any, Adoption]: ...

    def undo(self, memory: Any, before: Any, instance_ids: Iterable[str]) -> Any: ...

    def drained_instead(self, memory: Any, instance_id: str, worker: str, now: float) -> Any: ...

    def join_delays(self, memory: Any, instance_ids: Iterable[str]
                    ) -> Tuple[Tuple[float, ...], Tuple[str, ...]]: ...

    def owned(self, memory: Any) -> Mapping[str, Optional[str]]: ...

    def view(self, memory: Any) -> MemoryView: ...

    def resting_vms(self, config: Config) -> int: ...

    def dump_memory(self, memory: Any) -> Any: ...

    def load_memory(self, data: Any) -> Any: ...


class CounterPolicy:
    """The memory operations of a policy without per-instance records.  Subclasses give
    ``initial_memory``, ``plan`` and ``record_launch``."""

    name = "policy"

    def adopt(self, memory, snapshot: Snapshot, config: Config, now: float):
        return memory, Adoption()

    def undo(self, memory, before, instance_ids):
        return memory

    def drained_instead(self, memory, instance_id: str, worker: str, now: float):
        return memory

    def join_delays(self, memory, instance_ids):
        return (), ()

    def owned(self, memory) -> Mapping[str, Optional[str]]:
        return {}

    def view(self, memory) -> MemoryView:
        return MemoryView()

    def resting_vms(self, config: Config) -> int:
        return config.quota.min_vms

    def dump_memory(self, memory) -> Any:
        """Nothing is kept across a restart (as the original elastiq, which had no state)."""
        return None

    def load_memory(self, data: Any):
        return self.initial_memory()


class RecordsPolicy(CounterPolicy):
    """The memory operations over :class:`~elastiq.model.Memory`'s lifecycle records.

    ``adopt`` tracks the listed instances with the core's own lifecycle tracking, exactly as
    for any instance seen for the first time; a saved record the cloud does not list is kept
    while freshly requested (``estimated_vm_deploy_time_s``: the cloud may not list it yet)."""

    def adopt(self, memory, snapshot: Snapshot, config: Config, now: float):
        e = config.elastiq
        listed = {i.id: i for i in snapshot.instances if i.cluster == e.cluster_name}
        adopted = tuple(sorted(
            i.id for i in listed.values()
            if i.id not in memory.instances
            and (i.state in ALIVE_STATES or i.state is InstanceState.SHUTTING_DOWN)))
        missing = tuple(sorted(i for i in memory.instances if i not in listed))
        records = track(snapshot, memory.instances, e.cluster_name,
                        e.estimated_vm_deploy_time_s, now).records
        return (replace(memory, instances=records),
                Adoption(adopted, missing, len(memory.instances) - len(missing)))

    def undo(self, memory, before, instance_ids):
        records: Dict = dict(memory.instances)
        for instance_id in instance_ids:
            if instance_id in before.instances:
                records[instance_id] = before.instances[instance_id]
            else:  # adopted this very tick: adopted again at the next one
                records.pop(instance_id, None)
        return replace(memory, instances=records)

    def drained_instead(self, memory, instance_id: str, worker: str, now: float):
        record = memory.instances.get(instance_id)
        if record is None:
            return memory
        records = dict(memory.instances)
        records[instance_id] = replace(record, lifecycle=Lifecycle.DRAINING, since=now,
                                       worker=worker, joined_at=record.joined_at or now,
                                       missing_since=None)
        return replace(memory, instances=records)

    def join_delays(self, memory, instance_ids):
        joins, waiting = [], []
        for instance_id in instance_ids:
            record = memory.instances.get(instance_id)
            if record is None:
                continue  # gone before it joined
            if record.joined_at is not None:
                joins.append(max(0.0, record.joined_at - record.launched_at))
            else:
                waiting.append(instance_id)
        return tuple(joins), tuple(waiting)

    def owned(self, memory) -> Mapping[str, Optional[str]]:
        return {i: r.worker for i, r in memory.instances.items()}

    def view(self, memory) -> MemoryView:
        return MemoryView(memory.instances, memory.waiting_since, memory.failures,
                          memory.backoff_until)

    def dump_memory(self, memory) -> Any:
        return dump_memory(memory)

    def load_memory(self, data: Any):
        return load_memory(data)


class DefaultPolicy(RecordsPolicy):
    """elastiq's policy (:mod:`.decide`)."""

    name = "default"

    def initial_memory(self, seed: int = 0):
        return decide.initial_memory()

    def plan(self, snapshot, memory, config, now, catalogue=None):
        return decide.plan(snapshot, memory, config, now, catalogue)

    def record_launch(self, memory, outcome, config, now):
        return decide.record_launch(memory, outcome, config, now)


class LegacyPolicy(CounterPolicy):
    """The original elastiq's algorithm (:mod:`.legacy`), for comparison."""

    name = "legacy"

    def initial_memory(self, seed: int = 0):
        return legacy.initial_memory(seed)

    def plan(self, snapshot, memory, config, now, catalogue=None):
        return legacy.plan(snapshot, memory, config, now, catalogue)

    def record_launch(self, memory, outcome, config, now):
        return legacy.record_launch(memory, outcome, config, now)

    def drained_instead(self, memory, instance_id, worker, now):
        return legacy.drained_instead(memory, instance_id)
