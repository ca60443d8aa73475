"""Each timing knob does what its name says (issue 24 item 3): counted calls on the daemon's
road -- the Runtime as ``elastiq run`` builds it, ticked by the daemon's Scheduler -- over a
virtual clock moved from one scheduler moment to the next."""
from __future__ import annotations

from typing import List, Tuple

import pytest

from elastiq import config
from elastiq.core import get_policy
from elastiq.runtime.scheduler import Scheduler, checks
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.world import make_config, world

HOUR = 3600.0


class Road:
    """The daemon's runtime and scheduler on a test world; counts the reads of each port."""

    def __init__(self, tmp_path, cfg, policy="default"):
        self.clock, self.cloud, self.batch = world()
        self.t0 = self.clock.now
        self.cfg = cfg
        self.queue_reads = 0
        self.drains: List[Tuple[float, str]] = []
        self.ticks: List[Tuple[float, str]] = []
        self.listed: List[int] = []  # the cloud's listings so far, after each tick
        queue, drain = self.batch.queue, self.batch.drain

        def counted_queue():
            self.queue_reads += 1
            return queue()

        def timed_drain(worker, reason):
            self.drains.append((self.clock.now - self.t0, worker))
            drain(worker, reason)

        self.batch.queue, self.batch.drain = counted_queue, timed_drain
        self.runtime = Runtime(cfg, get_policy(policy), self.batch, self.cloud,
                               StateStore(str(tmp_path / "state")), clock=self.clock)
        self.scheduler = Scheduler(self.tick, checks(cfg), clock=self.clock)
        self.scheduler.wake_at(self.t0, kind="start")  # as Scheduler.start() does

    def tick(self, kind):
        self.ticks.append((self.clock.now - self.t0, kind))
        wake = self.runtime.tick(kind)
        self.listed.append(self.cloud.list_calls)
        return wake

    def run(self, until_s: float) -> None:
        while True:
            t = self.scheduler.next_moment()
            if t - self.t0 > until_s:
                return
            self.clock.now = t
            self.scheduler.run_due()


def quiet_hour(tmp_path, **elastiq) -> Road:
    road = Road(tmp_path, make_config(tmp_path, elastiq=elastiq))
    road.run(HOUR)
    return road


@pytest.mark.parametrize("every, listings", [(15, 241), (60, 61), (300, 13), (HOUR, 2)])
def test_list_vms_every_s_is_how_often_the_cloud_is_listed(tmp_path, every, listings):
    road = quiet_hour(tmp_path, check_queue_every_s=15, list_vms_every_s=every)
    assert road.cloud.list_calls == listings  # at start, then one per interval
    assert road.queue_reads == 241  # the queue every 15 s whatever the listing interval


def test_check_queue_every_s_is_how_often_the_queue_is_read(tmp_path):
    road = quiet_hour(tmp_path, check_queue_every_s=60, list_vms_every_s=HOUR)
    assert road.queue_reads == 61 and road.cloud.list_calls == 2


def test_raising_the_old_check_vms_every_s_spares_the_listing(tmp_path):
    """The defect: with check_vms_every_s 3600 the cloud was still listed every ~20 s (by
    check_vms_in_error_every_s); the old name is now read as the listing interval."""
    path = tmp_path / "elastiq.yaml"
    path.write_text("elastiq: {check_vms_every_s: 3600, check_queue_every_s: 15}\n")
    cfg = config.load(str(path))
    road = Road(tmp_path, cfg)
    road.run(HOUR)
    assert road.cloud.list_calls == 2 and road.queue_reads == 241


@pytest.mark.parametrize("recheck", [3, 9])
def test_recheck_after_action_s_is_when_the_tick_after_an_action_comes(tmp_path, recheck):
    cfg = make_config(tmp_path, elastiq={"check_queue_every_s": 60, "list_vms_every_s": 60,
                                         "recheck_after_action_s": recheck})
    road = Road(tmp_path, cfg)
    road.batch.submit(2)
    road.run(59)  # before the first periodic check
    (launched_at, _), = road.cloud.launch_calls  # at the wake-up waiting_jobs_time_s asked for
    launched_at -= road.t0
    assert road.ticks == [(0, "start"), (launched_at, "wake"), (launched_at + recheck, "wake")]
    assert road.listed == [1, 2, 3]  # the re-check lists the cloud to see the launched VMs


BOOT_TO_JOIN_S = 30.0  # FakeBatch.join_after_s: a VM's worker joins 30 s after its launch


@pytest.mark.parametrize("knobs, timeout", [
    ({"idle_timeout_max_s": 300, "idle_timeout_boot_factor": 0}, 300),  # fixed: the maximum
    ({"idle_timeout_max_s": 300, "idle_timeout_boot_factor": 4, "idle_timeout_min_s": 60},
     4 * BOOT_TO_JOIN_S),  # adaptive: the factor x the boot-to-join time
    ({"idle_timeout_max_s": 300, "idle_timeout_boot_factor": 1, "idle_timeout_min_s": 60},
     60),  # never below the minimum
    ({"idle_timeout_max_s": 300, "idle_timeout_boot_factor": 20, "idle_timeout_min_s": 60},
     300),  # never above the maximum
])
def test_the_idle_timeout_knobs_decide_when_an_idle_worker_is_drained(tmp_path, knobs, timeout):
    cfg = make_config(tmp_path, elastiq={"check_queue_every_s": 5, "list_vms_every_s": 5,
                                         **knobs})
    road = Road(tmp_path, cfg)
    # ours (tagged, adopted at start), launched 30 s ago: idle in the pool since now
    road.cloud.add(launched_at=road.t0 - BOOT_TO_JOIN_S)
    road.run(400)
    (drained_at, _), = road.drains  # drained once
    assert timeout <= drained_at < timeout + 5  # by the first tick the timeout allows
