"""The policy interface: what the runtime may ask of a policy, and that its memory stays opaque."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from elastiq import config
from elastiq.sim.cloud import BootDelay, SimCloud, SimPool
from elastiq.core import POLICIES, get_policy
from elastiq.core.policy import BasePolicy, MemoryView, Policy
from elastiq.model import Launch, LaunchOutcome, Lifecycle, Memory, Plan
from elastiq.sim import engine, peers
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import build_runtime
from elastiq.core.reasons import Code, Reason
from tests.support.sim_world import workload

CFG = config.load(None, ["elastiq.cluster_name=test"])
PARAMS = config.params_of(CFG)
NOW = 10_000.0


@pytest.mark.parametrize("name", sorted(POLICIES) + list(peers.NAMES))
def test_every_policy_keeps_the_protocol_and_an_empty_start(name):
    try:
        policy = engine.policy_for(name, resting := config.load(None, ["quota.min_vms=2"]))
    except peers.PolicyUnavailable:
        pytest.skip(f"{name}: its package is not installed")
    assert isinstance(policy, Policy) and policy.name == name
    memory = policy.initial_memory()
    assert policy.load_memory(policy.dump_memory(memory)) == memory
    assert policy.view(memory) == MemoryView()  # nothing to show before the first tick
    assert policy.drained_instead(memory, "i-1", NOW) is not None
    assert policy.resting_vms(config.params_of(resting)) == 2


def test_the_default_policy_shows_and_stores_its_own_memory():
    policy = get_policy("default")
    backing_off = Memory(waiting_since=NOW - 50, failures=2, backoff_until=NOW + 60,
                         unstarted=(NOW - 900, 4, 8000))
    assert policy.view(backing_off) == MemoryView(NOW - 50, 2, NOW + 60)
    assert policy.load_memory(policy.dump_memory(backing_off)) == backing_off
    assert "instances" not in policy.dump_memory(backing_off)  # the records are the runtime's
    with pytest.raises(ValueError, match="memory.failures"):
        policy.load_memory({"failures": -1})


def test_a_launch_that_failed_backs_off_in_the_memory_and_records_nothing():
    policy = get_policy("default")
    failed = policy.record_launch(Memory(), LaunchOutcome(2, (), "quota"), PARAMS, NOW)
    assert failed.failures == 1 and failed.backoff_until == NOW + CFG.elastiq.launch_backoff_s
    assert policy.record_launch(Memory(), LaunchOutcome(2, ("i-1",)), PARAMS, NOW) == Memory()


@dataclass(frozen=True)
class Sealed:
    """A memory the runtime cannot know the inside of."""

    launched: tuple = ()


class OnceThenStill(BasePolicy):
    """Launches one VM at its first plan, then nothing; remembers the ids in its own way."""

    name = "once"

    def initial_memory(self, seed: int = 0):
        return Sealed()

    def plan(self, snapshot, fleet, memory, params, now, catalogue=None):
        return (Plan() if memory.launched else Plan((Launch(1, Reason.of(Code.MIN_VMS, alive=0, min_vms=1)),))), memory

    def record_launch(self, memory, outcome: LaunchOutcome, params, now):
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
    # the records are the runtime's, for a policy that reads none too
    assert [r.lifecycle for r in store.load().records.values()] == [Lifecycle.BOOTING]


def test_the_daemon_policy_is_chosen_by_configuration():
    assert config.load(None, ["elastiq.policy=default"]).elastiq.policy == "default"
    with pytest.raises(config.InvalidConfig, match="elastiq.policy: unknown 'nope'"):
        config.load(None, ["elastiq.policy=nope"])


def test_the_original_elastiqs_policy_is_a_baseline_the_daemon_refuses_with_a_reason():
    with pytest.raises(config.InvalidConfig) as err:
        config.load(None, ["elastiq.policy=legacy"])
    assert "elastiq.policy" in str(err.value) and "elastiq simulate --policy legacy" in str(err.value)
    assert engine.get_policy("legacy").name == "legacy"  # the simulator still runs it
