"""pytest fixtures for a fake EC2 cloud: a moto server (one per session, reset for each test),
a fault proxy in front of it, and an elastiq Config pointing at it.

Loaded through ``pytest_plugins`` in ``tests/conftest.py``.  Outside pytest, use
``MotoServer`` and ``FaultProxy`` directly (both are context managers).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import pytest

from elastiq.adapters.ec2.config import Settings as EC2Section
from elastiq.config import Config, ElastiqSection
from tests.support.ec2_server import REGION, MotoServer
from tests.support.fault_proxy import FaultProxy

CLUSTER = "test-cluster"
#: elastiq's credentials in the tests: shaped like real ones so that redaction is tested.
ACCESS_KEY = "AKIAELASTIQTEST00001"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"
KEY_NAME = "elastiq-test"


@dataclasses.dataclass(frozen=True)
class World:
    """What exists in the fake cloud at the start of each test."""

    image_id: str
    key_name: str
    subnet_id: str
    security_group: str


def make_config(url: str, world: World, cluster: str = CLUSTER, substitute=None,
                **ec2: object) -> Config:
    """A Config for ``cluster`` on the endpoint ``url``; ``ec2`` overrides ec2 section fields."""
    section = EC2Section(api_url=url, region=REGION, aws_access_key_id=ACCESS_KEY,
                         aws_secret_access_key=SECRET_KEY, image_id=world.image_id,
                         flavour="t3.micro", key_name=world.key_name)
    return Config(elastiq=ElastiqSection(cluster_name=cluster),
                  cloud=dataclasses.replace(section, **ec2), substitute=dict(substitute or {}))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, emptied: no instances, no counted calls, no capacity cap."""
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="session")
def moto_image(moto_server: MotoServer) -> str:
    """One of moto's built-in images (the same ids after every reset; listing them is slow)."""
    return moto_server.client().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@pytest.fixture
def ec2_world(moto: MotoServer, moto_image: str) -> World:
    client = moto.client()
    image = moto_image
    client.create_key_pair(KeyName=KEY_NAME)
    subnet = client.describe_subnets()["Subnets"][0]["SubnetId"]
    return World(image_id=image, key_name=KEY_NAME, subnet_id=subnet, security_group="default")


@pytest.fixture
def ec2_config(moto: MotoServer, ec2_world: World) -> Config:
    return make_config(moto.url, ec2_world)


@pytest.fixture
def fault_proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url, hold_s=2.0) as proxy:
        yield proxy
