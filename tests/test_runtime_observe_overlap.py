"""The queue read and the cloud listing overlap when both adapters declare independent reads
(elastiq/runtime/observe.py; issue 27.4: 100,000 jobs and 2,000 instances, a tick waits for the
slower read rather than for their sum), with each read's errors noted in a fixed order and no
decision from missing data; adapters that share state (the simulator's) read in turn."""
from __future__ import annotations

import threading

import pytest

from elastiq.adapters.base import TransientError, reads_overlap
from elastiq.adapters.ec2.cloud import EC2Cloud
from elastiq.adapters.htcondor.batch import HTCondorBatch
from elastiq.adapters.openstack.cloud import OpenStackCloud
from elastiq.adapters.slurm.batch import SlurmBatch
from elastiq.core import get_policy
from elastiq.runtime.metrics import Metrics
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from elastiq.sim.cloud import SimCloud
from elastiq.sim.pool import SimPool
from tests.support.world import Clock, FakeBatch, FakeCloud, make_config

#: Seconds a read waits for the other one to be under way: only reached when they do not
#: overlap (the test then fails on the problem it leaves).
MEET_S = 5.0


class Meeting:
    """Each read waits until the other one is under way too: they only both get through when
    they run at the same time."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=MEET_S)
        self.threads = {}

    def attend(self, what: str) -> None:
        self.threads[what] = threading.current_thread()
        self.barrier.wait()


class IndependentCloud(FakeCloud):
    independent_reads = True
    meeting: Meeting

    def list_instances(self):
        self.meeting.attend("cloud")
        return super().list_instances()


class IndependentBatch(FakeBatch):
    independent_reads = True
    meeting: Meeting

    def queue(self):
        self.meeting.attend("queue")
        return super().queue()


@pytest.fixture
def env(tmp_path):
    clock, meeting = Clock(), Meeting()
    cloud = IndependentCloud(clock)
    batch = IndependentBatch(clock, cloud)
    cloud.meeting = batch.meeting = meeting
    rt = Runtime(make_config(tmp_path), get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "state")), clock=clock, metrics=Metrics())
    return rt, clock, cloud, batch, meeting


def test_the_cloud_is_listed_while_the_queue_is_read(env):
    rt, clock, cloud, batch, meeting = env
    cloud.add(launched_at=clock.now - 1000)
    batch.submit(3)
    rt.tick("vms")
    assert rt.state.observation.problems == ()
    assert meeting.threads["queue"] is threading.current_thread()
    assert meeting.threads["cloud"] is not threading.current_thread()
    assert len(rt.state.observation.vms) == 1 and rt.state.observation.idle_jobs == 3


def test_errors_of_overlapping_reads_are_noted_in_order_and_nothing_is_decided(env):
    rt, clock, cloud, batch, meeting = env
    cloud.add(launched_at=clock.now - 1000)  # idle for long: drained if the reads were whole
    batch.faults.fail("queue", TransientError("schedd timed out"))
    cloud.faults.fail("list_instances", KeyError("Reservations"))  # a bug in an adapter
    rt.tick("vms")
    assert rt.state.observation.problems == (
        "queue unreadable (transient error: schedd timed out): retried at the next tick",
        "cloud unreadable (internal error: KeyError, see the log): retried at the next tick")
    assert rt.metrics.errors == {"transient": 1, "internal": 1}
    assert batch.drain_calls == [] and cloud.launch_calls == [] and cloud.terminate_calls == []


def test_a_queue_tick_lists_the_cloud_after_the_queue_only_on_new_demand(env):
    rt, clock, cloud, batch, meeting = env
    rt.tick("vms")
    meeting.barrier = threading.Barrier(1)  # no meeting from now on: reads in turn pass
    clock.advance(5)
    rt.tick("queue")
    assert cloud.list_calls == 1  # the listing is reused: no read of it at all
    batch.submit(2)
    clock.advance(5)
    rt.tick("queue")  # new demand, known once the queue is read: the cloud is listed after it
    assert cloud.list_calls == 2 and meeting.threads["cloud"] is threading.current_thread()


def test_adapters_that_share_state_read_in_turn(tmp_path):
    clock = Clock()
    cloud = FakeCloud(clock)
    listed_in = []
    cloud.list_instances = lambda: listed_in.append(threading.current_thread()) or ()
    rt = Runtime(make_config(tmp_path), get_policy("default"), FakeBatch(clock, cloud), cloud,
                 StateStore(str(tmp_path / "state")), clock=clock)
    rt.tick("vms")
    assert listed_in == [threading.current_thread()]


def test_which_adapters_overlap_their_reads():
    assert all(reads_overlap(batch, cloud) for batch in (HTCondorBatch, SlurmBatch)
               for cloud in (EC2Cloud, OpenStackCloud))
    # the simulator's share one world and one random source: the replay stays deterministic
    assert not reads_overlap(SimPool, SimCloud)
    assert not reads_overlap(HTCondorBatch, SimCloud) and not reads_overlap(SimPool, EC2Cloud)


class Abandoned(BaseException):
    """Not an Exception: nothing in the read catches it, its thread just ends."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_listing_thread_that_dies_without_an_answer_is_a_problem_not_a_crash(env):
    rt, clock, cloud, batch, meeting = env
    cloud.faults.fail("list_instances", Abandoned())
    rt.tick("vms")
    assert rt.state.observation.problems == (
        "cloud unreadable (internal error: RuntimeError, see the log): retried at the next tick",)
    assert cloud.launch_calls == [] and cloud.terminate_calls == []
