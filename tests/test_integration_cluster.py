"""Across the boundaries: what ecm writes is what elastiq runs with.

The master user-data's own lines write /etc/elastiq/elastiq.yaml (run here with bash); elastiq
loads it, the EC2 adapter launches workers with it on the moto server, and the worker user-data
the cloud received has the master's address and the worker token filled in, is valid shell, and
advertises the cluster name that the HTCondor adapter maps workers by.
"""
from __future__ import annotations

import base64
import re
import subprocess

import pytest

from ecm import render
from elastiq import config
from elastiq.adapters.ec2.cloud import EC2Cloud
from tests.support import tools
from tests.support.ec2_fixtures import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.local  # processes: see tests/conftest.py

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb25kb3JAcGh5c2ljcyJ9.c2lnbmF0dXJl"


def master_writes_config(master: str, tmp_path) -> str:
    """Run the master's elastiq.yaml lines (between its umask 077 / umask 022) with bash."""
    block = re.search(r"^umask 077\n(.*?)^umask 022\n", master, re.S | re.M).group(1)
    target = tmp_path / "elastiq.yaml"
    subprocess.run(["bash", "-euc", block.replace("/etc/elastiq/elastiq.yaml", str(target))],
                   check=True, env={"MASTER_IP": "10.20.30.40", "WORKER_TOKEN": TOKEN,
                                    "PATH": "/usr/bin:/bin"})
    return str(target)


@pytest.mark.parametrize("os_id", ["almalinux9", "ubuntu2404"])
def test_ecm_output_drives_elastiq_launches(tmp_path, moto, ec2_world, os_id):
    answers = render.Answers(
        os_id=os_id, image_id=ec2_world.image_id, cluster_name="physics-2024",
        flavour="t3.micro", min_vms=0, max_vms=5, jobs_per_vm=0, idle_time_s=1800,
        key_name=ec2_world.key_name, signing_key="k" * 64, api_url=moto.url, region=REGION,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    cfg = config.load(master_writes_config(render.render_master(answers), tmp_path))
    assert config.summary(cfg).startswith("cluster 'physics-2024': 0-5 VMs of t3.micro")

    cloud = EC2Cloud(cfg)
    launched = cloud.launch(3)
    assert len(launched) == 3
    listed = {i.id: i for i in cloud.list_instances()}
    assert set(launched) <= set(listed) and {listed[i].cluster for i in launched} == {"physics-2024"}

    client = moto.client()
    raw = client.describe_instance_attribute(InstanceId=launched[0], Attribute="userData")
    worker = base64.b64decode(raw["UserData"]["Value"]).decode("utf-8")
    expected = render.render_worker(answers).replace("%ipv4%", "10.20.30.40")
    assert worker == expected.replace("%token%", TOKEN)
    assert not re.search(r"%[a-z_]+%", worker), "a placeholder was left unfilled"
    assert "physics-2024" in worker  # ElastiqCluster, as the HTCondor adapter expects it

    script = tmp_path / "worker.sh"
    script.write_text(worker)
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = tools.require("shellcheck", tools.SHELLCHECK_HINT)
    subprocess.run([shellcheck, "-S", "warning", str(script)], check=True)
