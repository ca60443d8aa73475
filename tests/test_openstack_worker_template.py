"""The worker user-data advertises the instance id of the cloud it was written for: the Nova
server UUID (OpenStack metadata service, meta_data.json) or the EC2 instance id.  The rendered
``instance_id`` function is run by bash, with ``curl`` answering as each metadata service does.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from ecm import render
from tests.test_ecm_render import answers

UUID = "5b1d4c1e-2f0a-4e8e-9c39-0d4a3c2b1a00"
#: meta_data.json of a Nova server, as the metadata service serves it (several lines)
META_DATA = json.dumps({"uuid": UUID, "name": "physics-2024-worker-1", "hostname": "w1",
                        "availability_zone": "nova", "project_id": "0" * 32,
                        "meta": {"elastiq:cluster": "physics-2024"}}, indent=2)
#: curl as the metadata services answer: Nova's JSON document, EC2's IMDSv2 token and id
CURL = {
    "openstack": f"""curl() {{ case "$*" in *openstack/latest/meta_data.json*) cat <<'JSON'
{META_DATA}
JSON
;; *) return 22 ;; esac; }}""",
    "ec2": """curl() { case "$*" in *api/token*) echo tok ;; *meta-data/instance-id*)
echo i-0123456789abcdef0 ;; *) return 22 ;; esac; }""",
}


def _instance_id_function(user_data: str) -> str:
    match = re.search(r"^instance_id\(\) \{\n.*?^\}\n", user_data, re.M | re.S)
    assert match, "no instance_id() in the worker user-data"
    return match.group(0)


@pytest.mark.parametrize("cloud,expected", [("openstack", UUID), ("ec2", "i-0123456789abcdef0")])
def test_the_worker_reads_the_id_of_its_cloud(cloud, expected):
    user_data = render.render_worker(answers(cloud=cloud))
    function = _instance_id_function(user_data)
    script = f"set -euo pipefail\n{CURL[cloud]}\n{function}instance_id\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
    other = "meta-data/instance-id" if cloud == "openstack" else "meta_data.json"
    assert other not in user_data
    assert re.fullmatch(r"[A-Za-z0-9-]+", expected)  # what the worker's check accepts


def test_the_default_cloud_stays_ec2():
    assert render.render_worker(answers()) == render.render_worker(answers(cloud="ec2"))
