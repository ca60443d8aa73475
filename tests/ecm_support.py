"""A moto EC2 server on 127.0.0.1 with realistically named images, for the ecm wizard tests.

Kept apart from any shared EC2 test support so the two can be merged later: everything here is
named ``ecm_``/``EcmMoto`` and has no state outside the fixture.
"""
from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: Image names as the publishers spell them (AWS and OpenStack styles), plus releases that must
#: not be offered for the supported systems.
ECM_IMAGE_NAMES = (
    "AlmaLinux OS 9.4.20240805 x86_64",
    "AlmaLinux OS 8.10.20240819 x86_64",
    "Rocky-9-EC2-Base-9.4-20240509.0.x86_64",
    "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240801",
    "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801",
    "debian-12-amd64-20240717-1811",
    "debian-11-amd64-20240717-1811",
)


@dataclass
class EcmMoto:
    url: str
    images: Dict[str, str] = field(default_factory=dict)  # name -> image id

    def client(self):
        return boto3.client("ec2", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def enforce_auth(self, enabled: bool) -> None:
        """moto's own switch: with it on, unknown access keys get AuthFailure."""
        body = b"0" if enabled else b"inf"
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=body,
                                         method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def register_ecm_images(server: EcmMoto) -> None:
    ec2 = server.client()
    for name in ECM_IMAGE_NAMES:
        image = ec2.register_image(Name=name, RootDeviceName="/dev/sda1",
                                   Architecture="x86_64", VirtualizationType="hvm")
        server.images[name] = image["ImageId"]


@pytest.fixture(scope="module")
def ecm_moto() -> Iterator[EcmMoto]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        moto = EcmMoto(f"http://{host}:{port}")
        register_ecm_images(moto)
        yield moto
    finally:
        server.stop()
