"""ec2.read_timeout_s: the EC2 client's read timeout comes from the configuration."""
from __future__ import annotations

import dataclasses
import time

import pytest

from elastiq import config
from elastiq.adapters.base import TransientError
from elastiq.adapters.ec2.cloud import EC2Cloud
from tests.support.ec2_fixtures import make_config


def test_read_timeout_is_a_configuration_key():
    assert config.Config().cloud.read_timeout_s == 30
    assert config.load(None, ["ec2.read_timeout_s=2.5"]).cloud.read_timeout_s == 2.5


def test_a_cloud_that_does_not_answer_fails_after_the_configured_read_timeout(
        moto, ec2_world, fault_proxy):
    cfg = make_config(fault_proxy.url, ec2_world)
    cfg = dataclasses.replace(cfg, cloud=dataclasses.replace(cfg.cloud, read_timeout_s=0.3))
    cloud = EC2Cloud(cfg, max_attempts=1, connect_timeout=1.0, detect=lambda names: {})
    fault_proxy.inject("timeout", action="DescribeInstances")  # holds 2 s
    started = time.monotonic()
    with pytest.raises(TransientError, match="did not answer"):
        cloud.list_instances()
    assert time.monotonic() - started < 1.5
