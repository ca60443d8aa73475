"""Two clusters of one name on one cloud account (issue 25, item 7): every VM carries the owner
id of the daemon that launched it (``<state_dir>/owner``); a daemon never adopts, counts or
terminates another's, and still finds its own when its state file is lost."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import yaml

from elastiq.runtime import factory
from elastiq.config import InvalidConfig
from elastiq.core import get_policy
from elastiq.model import InstanceState, Job, Queue
from elastiq.runtime import owner
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime, build_runtime
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
from tests.support.ec2_server import REGION
from tests.support.world import Clock, FakeBatch, IdleBatch, make_config, world

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY_S = 120  # make_config's estimated_vm_deploy_time_s


# ----------------------------------------------------------------------------- the owner file

def test_the_owner_id_is_made_once_and_kept(tmp_path):
    state_dir = str(tmp_path / "state")
    assert owner.read(state_dir) is None
    made = owner.load_or_create(state_dir)
    assert owner.VALID.match(made) and len(made) == 16
    assert owner.load_or_create(state_dir) == owner.read(state_dir) == made
    assert owner.load_or_create(str(tmp_path / "other")) != made  # random: unique by construction
    assert os.listdir(state_dir) == ["owner"]  # no temporary file left


def test_a_damaged_owner_file_is_refused_naming_it_never_replaced(tmp_path):
    path = tmp_path / "owner"
    path.write_text("not an id!\n")
    with pytest.raises(InvalidConfig) as err:
        owner.load_or_create(str(tmp_path))
    assert str(path) in str(err.value) and "restore the file" in str(err.value)
    assert path.read_text() == "not an id!\n"


# ----------------------------------------------------------------------------- the runtime

class Queued(IdleBatch):
    """``jobs`` idle jobs and an empty pool: the VMs launched never join."""

    def __init__(self, jobs: int = 0):
        self.jobs = tuple(Job(f"1.{n}", queued_since=0.0) for n in range(jobs))

    def queue(self) -> Queue:
        return Queue(self.jobs)



def _runtime(tmp_path, cloud, batch, clock, **quota):
    cfg = make_config(tmp_path, quota={"min_vms": 0, "max_vms": 3, **quota},
                      elastiq={"waiting_jobs_time_s": 0})
    return Runtime(cfg, get_policy("default"), batch, cloud, StateStore(str(tmp_path / "state")),
                   clock=clock)


def test_another_owners_instances_are_not_adopted_counted_or_terminated(tmp_path, caplog):
    clock, shared, _ = world()
    theirs = [shared.add(owner="b0b0b0b0b0b0b0b0") for _ in range(3)]
    cloud = shared.sharing("a1a1a1a1a1a1a1a1")
    rt = _runtime(tmp_path, cloud, Queued(2), clock)  # their workers are in their pool
    with caplog.at_level(logging.INFO):
        rt.tick("start")
        for _ in range(5):  # past the deploy time: theirs never join our pool
            clock.advance(DEPLOY_S)
            rt.tick("vms")
    assert not any(r.getMessage().startswith("adopted") for r in caplog.records)
    assert set(rt.state.records).isdisjoint(theirs)
    # not counted toward our max_vms (3): our 2 launched beside their 3
    assert cloud.launch_calls and cloud.launch_calls[0][1] == 2
    assert all(shared.instances[i].state is InstanceState.RUNNING for i in theirs)
    assert all(i not in ids for ids in cloud.terminate_calls for i in theirs)
    told = [r for r in caplog.records if "belong to another elastiq" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.WARNING  # once
    text = told[0].getMessage()
    assert "owner b0b0b0b0b0b0b0b0" in text and "this one's is a1a1a1a1a1a1a1a1" in text
    assert "rename one (elastiq.cluster_name)" in text
    assert f"write b0b0b0b0b0b0b0b0 into {tmp_path / 'state' / 'owner'}" in text


def test_instances_without_owner_are_ours_only_if_the_saved_state_knows_them(tmp_path, caplog):
    clock, old_cloud, _ = world()  # an elastiq from before owner ids
    old = _runtime(tmp_path, old_cloud, FakeBatch(clock, old_cloud), clock, min_vms=1)
    known = old_cloud.add(InstanceState.RUNNING)
    old.tick("start")  # adopts it: in the saved state from now on
    assert known in StateStore(str(tmp_path / "state")).load().records
    stranger = old_cloud.add(InstanceState.RUNNING)  # made after, by hand or another elastiq
    cloud = old_cloud.sharing("c2c2c2c2c2c2c2c2")
    rt = _runtime(tmp_path, cloud, Queued(), clock, min_vms=1)
    rt.state = StateStore(str(tmp_path / "state")).load()
    with caplog.at_level(logging.INFO):
        rt.tick("start")
        assert known in rt.state.records and stranger not in rt.state.records
        for _ in range(4):
            clock.advance(DEPLOY_S)
            rt.tick("vms")
    assert old_cloud.instances[known].state is InstanceState.GONE  # ours: it never joined
    assert old_cloud.instances[stranger].state is InstanceState.RUNNING
    told = [r.getMessage() for r in caplog.records if "carry no elastiq:owner" in r.getMessage()]
    assert len(told) == 1 and stranger in told[0] and known not in told[0]


# ----------------------------------------------------------------------------- on EC2 (moto)

def _daemon(tmp_path, name, moto, ec2_world, clock, jobs=0):
    """A Runtime built as ``elastiq run`` builds it: owner id from its state directory, the
    EC2 adapter from the factory, the state loaded from the store."""
    state_dir = str(tmp_path / name / "state")
    cfg = make_config(tmp_path / name, quota={"min_vms": 0, "max_vms": 3},
                      elastiq={"cluster_name": "elastiq", "cloud_plugin": "ec2",
                               "waiting_jobs_time_s": 0},
                      ec2={"api_url": moto.url, "region": REGION, "aws_access_key_id": ACCESS_KEY,
                           "aws_secret_access_key": SECRET_KEY, "image_id": ec2_world.image_id,
                           "flavour": "t3.micro"})
    cloud = factory.build_cloud(cfg, owner=owner.load_or_create(state_dir))
    store = StateStore(state_dir)
    return build_runtime(cfg, Queued(jobs), cloud, store, store.load(), clock=clock)


def _alive(rt):
    return {i.id: i.owner for i in rt.observer.cloud.list_instances()
            if i.state is InstanceState.RUNNING}


def _run(rt, clock, ticks=4):
    rt.tick("start")
    for _ in range(ticks):
        clock.advance(DEPLOY_S)
        rt.tick("vms")


def test_two_daemons_of_one_name_keep_to_their_own_vms(tmp_path, moto, ec2_world):
    clock = Clock()
    a = _daemon(tmp_path, "a", moto, ec2_world, clock, jobs=2)
    a.tick("start")
    launched_by_a = set(_alive(a))
    assert len(launched_by_a) == 2 and set(_alive(a).values()) == {a.observer.cloud.owner}
    b = _daemon(tmp_path, "b", moto, ec2_world, clock)  # same name, nothing to do
    _run(b, clock)
    assert not b.state.records  # nothing adopted
    assert set(_alive(b)) == launched_by_a  # nothing terminated
    assert moto.calls("TerminateInstances") == 0


def test_a_daemon_whose_state_was_lost_still_terminates_its_own_only(tmp_path, moto, ec2_world):
    clock = Clock()
    a = _daemon(tmp_path, "a", moto, ec2_world, clock, jobs=2)
    a.tick("start")
    b = _daemon(tmp_path, "b", moto, ec2_world, clock, jobs=1)
    b.tick("start")
    ours, theirs = set(a.state.records), set(b.state.records)
    assert len(ours) == 2 and len(theirs) == 1
    os.remove(a.store.path)  # the state file is lost; the owner file stays
    again = _daemon(tmp_path, "a", moto, ec2_world, clock)
    assert not again.state.records
    _run(again, clock)
    assert set(_alive(again)) == theirs  # its own terminated (never joined), theirs kept


def test_the_daemon_tags_its_launches_and_names_another_owner_in_its_log(tmp_path, moto,
                                                                         ec2_world):
    """``elastiq run --once`` as a process: it makes its owner id, its VM carries it, and the
    VM of another daemon of the same name is logged, not adopted."""
    from elastiq.adapters.ec2.cloud import EC2Cloud
    from tests.htcondor_fake import load
    from tests.support.ec2_fixtures import make_config as ec2_config

    other = EC2Cloud(ec2_config(moto.url, ec2_world, cluster="demo"), owner="0ther0wner")
    (theirs,) = other.launch(1)
    ads = tmp_path / "jobs.txt"
    job = next(a for a in load("jobs.queue.long.txt") if (a["ClusterId"], a["ProcId"]) == (3, 1))
    job.update({"RequestCpus": 1, "RequestMemory": 512})
    ads.write_text(job.printOld())
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({
        "elastiq": {"cluster_name": "demo", "state_dir": str(tmp_path / "state"),
                    "log_file": str(tmp_path / "elastiq.log"), "waiting_jobs_time_s": 0,
                    "batch_plugin": "tests.htcondor_fake:FixturePool", "cloud_plugin": "ec2"},
        "vm": {"cpus": 1, "memory_mb": 1024},
        "ec2": {"api_url": moto.url, "region": REGION, "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": SECRET_KEY, "image_id": ec2_world.image_id,
                "flavour": "t3.micro"}}))
    done = subprocess.run([sys.executable, "-m", "elastiq", "run", "--once", "--log-stderr",
                           "--config", str(path)], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, ELASTIQ_TEST_JOB_ADS=str(ads)),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    mine = (tmp_path / "state" / "owner").read_text().strip()
    listed = {i.id: i.owner for i in other.list_instances()
              if i.state is not InstanceState.GONE}
    assert sorted(listed.values()) == sorted([mine, "0ther0wner"]), listed
    assert f"belong to another elastiq (owner 0ther0wner; this one's is {mine}): {theirs}" \
        in done.stderr
    assert "adopted 1 tagged" not in done.stderr
