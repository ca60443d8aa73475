"""Several flavours on a real EC2 API (moto server over HTTP): launch a given instance type,
describe several in one call, unknown ones named by their entry, the daemon's catalogue."""
from __future__ import annotations

import dataclasses

import pytest

from elastiq.adapters.base import ConfigError
from elastiq.config import params_of
from elastiq.runtime.factory import read_catalogue
from elastiq.core import get_policy, records
from elastiq.model import Job, Memory, Pool, Queue, Snapshot
from elastiq.runtime.actuator import Actuator
from tests.support.ec2_fixtures import make_config
from tests.test_ec2_adapter import cloud_for, states

TYPES = ("c5.xlarge", "c5.large", "t3.micro")


def types_of(client, ids):
    pages = client.get_paginator("describe_instances").paginate(InstanceIds=list(ids))
    return {i["InstanceId"]: i["InstanceType"]
            for page in pages for r in page["Reservations"] for i in r["Instances"]}


def test_launch_takes_the_flavour_and_defaults_to_the_first(moto, ec2_world):
    cloud = cloud_for(make_config(moto.url, ec2_world, flavour=TYPES))
    small = cloud.launch(2, flavour="t3.micro")
    first = cloud.launch(1)
    found = types_of(moto.client(), small + first)
    assert [found[i] for i in small] == ["t3.micro", "t3.micro"]
    assert found[first[0]] == "c5.xlarge"
    listed = {i.id: i.instance_type for i in cloud.list_instances()}
    assert listed[small[0]] == "t3.micro"  # the core reads a booting VM's size from here
    with pytest.raises(ConfigError) as err:
        cloud.launch(1, flavour="m5.large")  # not one of ec2.flavour's: never launched
    assert err.value.key == "ec2.flavour"
    assert moto.stats()["alive"] == 3


def test_describe_several_instance_types_in_one_call(moto, ec2_world):
    cloud = cloud_for(make_config(moto.url, ec2_world, flavour=TYPES))
    before = moto.calls("DescribeInstanceTypes")
    shapes = cloud.describe_flavours(TYPES)
    assert moto.calls("DescribeInstanceTypes") == before + 1
    assert shapes == {"c5.xlarge": (4, 8192), "c5.large": (2, 4096), "t3.micro": (2, 1024)}


def test_an_unknown_instance_type_is_named_by_its_entry(moto, ec2_world):
    cloud = cloud_for(make_config(moto.url, ec2_world, flavour=("c5.xlarge", "c5.large", "m9.huge")))
    with pytest.raises(ConfigError) as err:
        cloud.describe_flavours(["c5.xlarge", "c5.large", "m9.huge"])
    assert err.value.key == "ec2.flavour[2]" and "unknown instance type 'm9.huge'" in str(err.value)


def test_the_daemon_launches_the_mix_through_ec2(moto, ec2_world):
    """build_adapters reads the shapes from the cloud; the core's plan goes through the
    actuator to RunInstances with each flavour."""
    cfg = make_config(moto.url, ec2_world, flavour=("c5.xlarge", "c5.large"))
    cfg = dataclasses.replace(cfg, quota=dataclasses.replace(cfg.quota, max_vms=10))
    cloud = cloud_for(cfg)
    catalogue = read_catalogue(cfg, cloud)
    assert [(f.name, f.cpus, f.memory_mb, f.price) for f in catalogue.flavours] == \
        [("c5.xlarge", 4, 8192, 1.0), ("c5.large", 2, 4096, 0.5)]
    idle = tuple(Job(f"j{i}", 1, 1000, 0.0) for i in range(6))
    snapshot = Snapshot(Queue(idle), Pool(()), cloud.list_instances())
    policy = get_policy("default")
    plan, recs, memory = records.step(policy, snapshot, {}, Memory(waiting_since=0.0),
                                      params_of(cfg), 100.0, catalogue)
    assert sorted((a.flavour, a.count) for a in plan.actions) == [("c5.large", 1), ("c5.xlarge", 1)]
    outcome = Actuator(None, cloud, policy, cfg, lambda: 100.0).execute(plan, recs, memory, {})
    found = types_of(moto.client(), outcome.launched)
    assert sorted(found.values()) == ["c5.large", "c5.xlarge"]
    assert {outcome.records[i].flavour for i in outcome.launched} == \
        {"c5.large", "c5.xlarge"}
    assert set(states(moto.client(), outcome.launched).values()) <= {"pending", "running"}
