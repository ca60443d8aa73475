"""A launch whose answer was lost, across ticks and a restart, against the moto server: the
next tick asks for the same request again (EC2's ClientToken) and learns the VMs the first
attempt made, instead of launching as many again while EC2's listing still lags behind."""
from __future__ import annotations

import dataclasses

from elastiq.adapters.base import forgets_by_itself, look_in_pool
from elastiq.adapters.ec2.cloud import EC2Cloud
from elastiq.core import get_policy
from elastiq.model import Job, Lifecycle, Pool, Queue
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.ec2_fixtures import make_config
from tests.support.world import Clock


class _Waiting:
    """Two one-cpu jobs waiting and no worker yet (the batch side is not under test)."""

    def __init__(self, clock):
        self.jobs = tuple(Job(f"1.{i}", queued_since=clock() - 100) for i in range(2))

    def queue(self):
        return Queue(self.jobs)

    def pool(self, known_ips=None):
        return Pool(())

    def drain(self, worker, reason):
        raise AssertionError("nothing to drain")

    def cancel_drain(self, worker):
        raise AssertionError("nothing to cancel")

    workers_of = look_in_pool
    forget = forgets_by_itself


def _daemon(url, world, store, clock):
    cfg = make_config(url, world)
    cfg = dataclasses.replace(cfg, elastiq=dataclasses.replace(
        cfg.elastiq, waiting_jobs_time_s=0))
    cloud = EC2Cloud(cfg, max_attempts=1, connect_timeout=1.0, read_timeout=5.0,
                     detect=lambda names: {})
    return Runtime(cfg, get_policy("default"), _Waiting(clock), cloud, store, store.load(),
                   clock=clock)


def test_a_lost_launch_answer_is_learnt_by_asking_again_not_launched_twice(
        moto, ec2_world, fault_proxy, tmp_path):
    clock, store = Clock(), StateStore(str(tmp_path / "state"))
    fault_proxy.inject("500-after", action="RunInstances")  # EC2 launched; the answer is lost
    _daemon(fault_proxy.url, ec2_world, store, clock).tick("start")
    assert moto.stats()["alive"] == 2
    (unknown,) = store.load().unknown_launches  # persisted: it survives a restart
    assert unknown.count == 2 and not store.load().records

    # the daemon restarts after the launch back-off (60 s); EC2's listing does not show the
    # new instances yet
    clock.advance(90)
    fault_proxy.inject("hide-instances", action="DescribeInstances")
    _daemon(fault_proxy.url, ec2_world, store, clock).tick("start")
    assert moto.calls("RunInstances") == 2  # asked again, with the same ClientToken ...
    assert moto.stats()["alive"] == 2  # ... so nothing was launched twice
    state = store.load()
    assert state.unknown_launches == ()
    ids = {i for i, r in state.records.items() if r.lifecycle is Lifecycle.REQUESTED}
    assert len(ids) == 2 and set(state.awaiting_join) == ids
    launches = [d.text for d in state.decisions if d.kind == "launch"]
    assert len(launches) == 2 and unknown.request_id in launches[1]  # the retry, said so
