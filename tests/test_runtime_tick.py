"""One tick = observe -> reconcile -> decide -> act -> persist, against a fake world on a virtual clock."""
from __future__ import annotations

import logging

import pytest

from elastiq.adapters.base import AuthError, ConfigError, TransientError
from elastiq.core import get_policy
from elastiq.model import InstanceState, Lifecycle
from elastiq.runtime.metrics import Metrics
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.world import FakeBatch, make_config, world


@pytest.fixture
def env(tmp_path):
    clock, cloud, batch = world()
    cfg = make_config(tmp_path)
    store = StateStore(str(tmp_path / "state"))
    metrics = Metrics()
    rt = Runtime(cfg, get_policy("default"), batch, cloud, store, clock=clock, metrics=metrics)
    return rt, clock, cloud, batch, store


def test_launch_at_the_wake_up_the_plan_asked_for(env):
    rt, clock, cloud, batch, store = env
    t0 = clock.now
    batch.submit(5)
    wake = rt.tick("queue")
    assert wake == t0 + 40  # waiting_jobs_time_s after the demand was first seen
    assert cloud.launch_calls == []
    clock.now = wake
    rt.tick("wake")
    assert cloud.launch_calls == [(t0 + 40, 3)]  # 5 jobs, one per VM, capped by max_vms 3
    saved = store.load()
    assert sorted(saved.records) == sorted(cloud.instances)
    assert all(r.lifecycle is Lifecycle.REQUESTED for r in saved.records.values())
    launch = [d for d in saved.decisions if d.kind == "launch"]
    assert launch and launch[-1].text.startswith("launch 3: 5 jobs waiting 40 s >= 40 s")


def test_after_acting_the_next_tick_comes_after_sleep_s(env):
    rt, clock, cloud, batch, _ = env
    batch.submit(2)
    clock.now = rt.tick("queue")
    assert rt.tick("wake") == clock.now + rt.config.elastiq.recheck_after_action_s


def test_state_is_saved_right_after_a_launch_before_the_next_action(env, tmp_path):
    rt, clock, cloud, batch, store = env
    seen_at_terminate = {}

    def terminate(ids, original=cloud.terminate):
        seen_at_terminate.update(store.load().records)
        original(ids)

    cloud.terminate = terminate
    batch.submit(2)
    clock.now = rt.tick("queue")
    broken = cloud.add(InstanceState.ERROR)  # terminated in the same tick, after the launch
    rt.tick("wake")
    launched = [i for i in cloud.instances if i != broken]
    assert len(launched) == 2 and cloud.terminate_calls == [(broken,)]
    assert set(launched) <= set(seen_at_terminate)


def test_unreadable_pool_means_no_scale_down_and_the_reason_is_kept(env, caplog):
    rt, clock, cloud, batch, store = env
    cloud.add(launched_at=clock.now - 1000)  # joined long ago, idle for 970 s
    batch.faults.fail("pool", TransientError("collector timed out"))
    with caplog.at_level(logging.WARNING, logger="elastiq"):
        rt.tick("vms")
    assert batch.drain_calls == [] and cloud.terminate_calls == []
    assert "cannot read the pool (transient error): collector timed out" in caplog.text
    assert store.load().observation.problems == (
        "pool unreadable (transient error: collector timed out): retried at the next tick",)
    assert rt.metrics.errors == {"transient": 1}
    clock.advance(10)
    rt.tick("vms")  # readable again: the idle worker is drained
    assert batch.drain_calls == ["10-0-0-1"]


def test_unlistable_cloud_makes_no_decision_and_the_runtime_carries_on(env):
    rt, clock, cloud, batch, _ = env
    batch.submit(3)
    rt.tick("queue")
    clock.advance(60)
    cloud.faults.fail("list_instances", AuthError("signature rejected"))
    rt.tick("wake")
    assert cloud.launch_calls == []
    rt.tick("vms")
    assert [n for _, n in cloud.launch_calls] == [3]


def test_queue_check_reuses_the_listing_unless_demand_rose_or_we_acted(env):
    rt, clock, cloud, batch, _ = env
    rt.tick("vms")
    assert cloud.list_calls == 1
    clock.advance(5)
    rt.tick("queue")
    assert cloud.list_calls == 1  # younger than list_vms_every_s: reused
    batch.submit(2)
    clock.advance(5)
    wake = rt.tick("queue")
    assert cloud.list_calls == 2  # new demand: read at once
    clock.now = wake
    rt.tick("queue")  # launches
    calls = cloud.list_calls
    clock.advance(1)
    rt.tick("queue")
    assert cloud.list_calls == calls + 1  # we changed the cloud: read it again
    clock.advance(rt.config.elastiq.list_vms_every_s)
    rt.tick("queue")
    assert cloud.list_calls == calls + 2  # older than list_vms_every_s


def test_boot_to_join_times_of_our_launches_are_recorded(env):
    rt, clock, cloud, batch, store = env
    batch.submit(1)
    clock.now = rt.tick("queue")
    rt.tick("wake")
    assert store.load().awaiting_join == tuple(cloud.instances)
    clock.advance(batch.join_after_s)
    rt.tick("vms")
    saved = store.load()
    assert saved.join_times == (batch.join_after_s,)
    assert saved.awaiting_join == ()


def test_adopted_instances_are_not_timed(env):
    rt, clock, cloud, batch, store = env
    cloud.add(InstanceState.BOOTING, launched_at=clock.now - 5)
    batch.submit(1)  # a job that needs it: a booting VM no job needs would be cancelled
    rt.tick("start")
    clock.advance(60)
    rt.tick("vms")
    assert store.load().join_times == ()
    assert [r.lifecycle for r in store.load().records.values()] == [Lifecycle.JOINED]


def test_reconcile_waits_for_a_listing_then_adopts(env, caplog):
    rt, clock, cloud, batch, store = env
    ours = cloud.add(launched_at=clock.now - 500)
    cloud.add(cluster="someone-else")
    cloud.faults.fail("list_instances", TransientError("503"))
    rt.tick("start")
    assert not rt.reconciled and rt.state.records == {}
    clock.advance(20)
    with caplog.at_level(logging.INFO, logger="elastiq"):
        rt.tick("vms")
    assert rt.reconciled
    assert list(store.load().records) == [ours]
    assert f"adopted 1 tagged instance(s) not in the saved state: {ours}" in caplog.text
    assert any(ours in d.text for d in store.load().decisions if d.kind == "note")


def test_notes_are_info_when_they_change_and_debug_while_they_repeat(env, caplog):
    rt, clock, cloud, batch, _ = env
    batch.submit(2)
    with caplog.at_level(logging.DEBUG, logger="elastiq.runtime.tick"):
        rt.tick("queue")
        clock.advance(15)
        rt.tick("queue")
    notes = [(r.levelno, r.getMessage()) for r in caplog.records if "before launching" in r.getMessage()]
    assert notes == [(logging.INFO, "2 jobs waiting for 0 s of 40 s before launching"),
                     (logging.DEBUG, "2 jobs waiting for 15 s of 40 s before launching")]


def test_a_crashed_adapter_call_is_isolated_like_an_adapter_error(env, caplog):
    rt, clock, cloud, batch, store = env
    batch.faults.fail("queue", KeyError("ClusterId"))  # a bug in an adapter
    with caplog.at_level(logging.ERROR, logger="elastiq"):
        rt.tick("vms")
    assert "cannot read the queue (unexpected KeyError)" in caplog.text
    assert store.load().observation.problems == (
        "queue unreadable (internal error: KeyError, see the log): retried at the next tick",)


def test_a_permanent_read_error_says_retrying_cannot_help(env):
    """Issue 25.6: the cause and whether retrying can help are in the state (status)."""
    rt, clock, cloud, batch, store = env
    batch.faults.fail("queue", ConfigError("HTCondor's configuration names no collector"))
    rt.tick("vms")
    assert store.load().observation.problems == (
        "queue unreadable (config error: HTCondor's configuration names no collector):"
        " retrying cannot help until that is fixed",)


def test_the_pool_is_read_with_the_addresses_of_the_listed_instances(env):
    rt, clock, cloud, batch, _ = env
    a, b = cloud.add(), cloud.add(InstanceState.BOOTING)
    rt.tick("vms")
    assert batch.known_ips == {"10.0.0.1": a, "10.0.0.2": b}
    cloud.faults.fail("list_instances", TransientError("down"))
    rt.tick("vms")
    assert batch.known_ips == {}


class LaggingPool(FakeBatch):
    """A collector that shows a drain (or its cancellation) ``lag_s`` after it was sent, and a
    startd that refuses a second drain while it drains, as HTCondor's do."""

    lag_s = 8.0

    def __init__(self, clock, cloud):
        super().__init__(clock, cloud)
        self.sent = {}  # worker -> (draining, at)

    def drain(self, worker, reason):
        self.drain_calls.append(worker)
        if self.sent.get(worker, (False,))[0]:
            raise TransientError("Startd failed to start draining jobs")
        self.sent[worker] = (True, self.clock())

    def cancel_drain(self, worker):
        self.cancel_calls.append(worker)
        self.sent[worker] = (False, self.clock())

    def pool(self, known_ips=None):
        now = self.clock()
        self.draining = {w for w, (on, at) in self.sent.items() if on and now - at >= self.lag_s}
        return super().pool(known_ips)


def test_a_drain_in_flight_is_not_sent_again_before_the_pool_shows_it(tmp_path, caplog):
    """Issue 9, defect 3: a drain just sent is not repeated by the next ticks while the pool
    does not show the worker draining yet; once the pool shows it, the drain goes on."""
    clock, cloud, _ = world()
    batch = LaggingPool(clock, cloud)
    rt = Runtime(make_config(tmp_path), get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "state")), clock=clock)
    cloud.add(launched_at=clock.now - 1000)  # joined long ago, idle for 970 s
    with caplog.at_level(logging.WARNING, logger="elastiq"):
        rt.tick("vms")
        for step in (0.05, 0.05, 5, 2):  # the ticks right after, before the pool shows it
            clock.advance(step)
            rt.tick("queue")
        assert batch.drain_calls == ["10-0-0-1"]
        clock.advance(1)
        rt.tick("queue")  # the pool shows it draining now
    assert batch.drain_calls == ["10-0-0-1"]
    assert "failed" not in caplog.text
    assert [r.lifecycle for r in rt.state.records.values()] == [Lifecycle.TERMINATING]


def test_a_drain_the_pool_never_shows_is_sent_again_after_every_check_ran(tmp_path):
    clock, cloud, _ = world()
    batch = LaggingPool(clock, cloud)
    batch.lag_s = float("inf")  # lost
    rt = Runtime(make_config(tmp_path), get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "state")), clock=clock)
    cloud.add(launched_at=clock.now - 1000)
    batch.sent = {}
    rt.tick("vms")
    clock.advance(19)
    rt.tick("vms")
    assert len(batch.drain_calls) == 1
    batch.sent = {}  # the startd forgot it (restarted)
    clock.advance(1)  # list_vms_every_s (20 s, the longest interval) after the first
    rt.tick("vms")
    assert batch.drain_calls == ["10-0-0-1", "10-0-0-1"]
