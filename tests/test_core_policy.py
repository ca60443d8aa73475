"""The policy interface: what the runtime may ask of a policy, and that its memory stays opaque."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from elastiq import config
from elastiq.sim.cloud import BootDelay, SimCloud, SimPool
from elastiq.core import POLICIES, get_policy
from elastiq.core.policy import CounterPolicy, MemoryView, Policy
from elastiq.model import (Instance, InstanceRecord, InstanceState, Launch, Lifecycle,
                           LaunchOutcome, Memory, Plan, Pool, Snapshot, Worker)
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import build_runtime
from elastiq.core.reasons import Code, Reason
from tests.support.sim_world import workload

CFG = config.load(None, ["elastiq.cluster_name=test"])
NOW = 10_000.0


def rec(lifecycle, since=NOW - 100, joined_at=None, worker=None):
    return InstanceRecord(lifecycle, since, NOW - 900, joined_at, worker)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_registered_policies_keep_the_protocol_and_an_empty_start(name):
    policy = get_policy(name)
    assert isinstance(policy, Policy) and policy.name == name
    memory = policy.initial_memory()
    assert policy.load_memory(policy.dump_memory(memory)) == memory
    assert policy.owned(memory) == {} and policy.join_delays(memory, ("i-1",)) == ((), ())
    assert policy.view(memory) == MemoryView()  # nothing to show before the first tick
    assert policy.resting_vms(config.load(None, ["quota.min_vms=2"])) == 2


def test_default_policy_undoes_marks_of_actions_not_carried_out():
    policy = get_policy("default")
    before = Memory(instances={"i-a": rec(Lifecycle.JOINED, worker="w-a")})
    after = Memory(instances={"i-a": rec(Lifecycle.DRAINING, since=NOW, worker="w-a"),
                              "i-new": rec(Lifecycle.JOINED)})  # adopted this tick
    undone = policy.undo(after, before, ("i-a", "i-new"))
    assert undone.instances == before.instances


def test_default_policy_notes_a_drain_instead_of_a_terminate():
    policy = get_policy("default")
    memory = Memory(instances={"i-a": rec(Lifecycle.TERMINATING)})
    got = policy.drained_instead(memory, "i-a", "w-a", NOW).instances["i-a"]
    assert (got.lifecycle, got.worker, got.since, got.joined_at) == (Lifecycle.DRAINING, "w-a", NOW, NOW)
    assert policy.drained_instead(memory, "i-gone", "w", NOW) == memory


def test_default_policy_join_delays_and_owned():
    policy = get_policy("default")
    memory = Memory(instances={"i-j": rec(Lifecycle.JOINED, joined_at=NOW - 600, worker="w-j"),
                               "i-b": rec(Lifecycle.BOOTING)})
    assert policy.join_delays(memory, ("i-j", "i-b", "i-forgotten")) == ((300.0,), ("i-b",))
    assert policy.owned(memory) == {"i-j": "w-j", "i-b": None}
    backing_off = Memory(waiting_since=NOW - 50, failures=2, backoff_until=NOW + 60,
                         instances=memory.instances)
    assert policy.view(backing_off) == MemoryView(memory.instances, NOW - 50, 2, NOW + 60)
    assert policy.load_memory(policy.dump_memory(memory)) == memory
    with pytest.raises(ValueError, match="memory.instances.i-1.since"):
        policy.load_memory({"instances": {"i-1": {"lifecycle": "joined", "since": "x"}}})


def test_default_policy_adopts_tagged_instances():
    policy = get_policy("default")
    listing = (Instance("i-ours", InstanceState.RUNNING, NOW - 60, "test"),
               Instance("i-theirs", InstanceState.RUNNING, NOW - 60, "other"))
    snapshot = Snapshot(None, Pool((Worker("w", "i-ours"),)), listing)
    memory, found = policy.adopt(Memory(instances={"i-old": rec(Lifecycle.JOINED)}), snapshot,
                                 CFG, NOW)
    assert found.adopted == ("i-ours",) and found.missing == ("i-old",) and found.kept == 0
    assert memory.instances["i-ours"].worker == "w"


@dataclass(frozen=True)
class Sealed:
    """A memory the runtime cannot know the inside of."""

    launched: tuple = ()


class OnceThenStill(CounterPolicy):
    """Launches one VM at its first plan, then nothing; remembers the ids in its own way."""

    name = "once"

    def initial_memory(self, seed: int = 0):
        return Sealed()

    def plan(self, snapshot, memory, config_, now, catalogue=None):
        return (Plan() if memory.launched else Plan((Launch(1, Reason.of(Code.MIN_VMS, alive=0, min_vms=1)),))), memory

    def record_launch(self, memory, outcome: LaunchOutcome, config_, now):
        return Sealed(memory.launched + outcome.granted)

    def dump_memory(self, memory):
        return list(memory.launched)

    def load_memory(self, data):
        if not isinstance(data, list):
            raise ValueError("memory: expected a list")
        return Sealed(tuple(data))


def test_the_runtime_keeps_and_persists_a_memory_it_cannot_read(tmp_path):
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    pool = SimPool(clock, workload([(0.0, 60.0)]), start=0.0, vm_cpus=1, vm_memory_mb=2048)
    cloud = SimCloud(clock, cluster="test", boot_delay=BootDelay("fixed", 30.0), pool=pool)
    policy = OnceThenStill()
    store = StateStore(str(tmp_path), policy=policy)
    runtime = build_runtime(CFG, pool, cloud, store, clock=clock, policy=policy)
    runtime.tick("start")
    now[0] = 15.0
    runtime.tick("queue")
    assert runtime.state.memory == Sealed(("i-sim000001",))
    assert store.load().memory == Sealed(("i-sim000001",))  # through the policy's codec


def test_the_daemon_policy_is_chosen_by_configuration():
    assert config.load(None, ["elastiq.policy=legacy"]).elastiq.policy == "legacy"
    with pytest.raises(config.InvalidConfig, match="elastiq.policy: unknown 'nope'"):
        config.load(None, ["elastiq.policy=nope"])
