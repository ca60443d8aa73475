"""The booting test cloud (issue 26, item 1): moto's instances tagged for the cluster boot as
qemu VMs of the provisioned Debian 13 image, cloud-init runs their user-data (gzip-compressed,
as EC2 would serve it), each VM reaches the test's own server on the namespace network; a VM
that powers itself off shows as a stopped instance, and a terminated instance's VM is stopped.
Skipped with the reason when the image or root is missing; failed instead when
ELASTIQ_REQUIRE_VMS=1 (CI).  Times and memory are printed (pytest -s)."""
from __future__ import annotations

import gzip
import os
import time

import pytest

from elastiq.adapters.ec2.request import CLUSTER_TAG
from tests.support import vm_cloud, vm_network, vm_services
from tests.support.instance_startds import ec2_alive
from tests.support.vm_cloud import vms_possible  # noqa: F401 (fixture)

pytestmark = pytest.mark.daemons
CLUSTER = "boot-1"
PORT = 8099
#: Cloud-init runs this: it reports the instance id it was given, asks the test what to do,
#: and powers off when told so.
USER_DATA = f"""#!/bin/sh
set -eu
id=$(cat /var/lib/cloud/data/instance-id)
gw={{gateway}}
curl -fsS -m 20 --retry 5 -X POST --data-binary "ran as $(id -u) on $(hostname)" "http://$gw:{PORT}/ran/$id"
fate=$(curl -fsS -m 20 --retry 5 "http://$gw:{PORT}/fate/$id")
if [ "$fate" = poweroff ]; then poweroff; fi
"""

def reports_handler(ran: dict, fates: dict):
    """Records ``POST /ran/<id>`` (time, body) in ``ran``; answers ``GET /fate/<id>`` from
    ``fates`` ("stay" by default)."""

    class Handler(vm_services.QuietHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ran[self.path.rsplit("/", 1)[-1]] = (time.time(), body.decode())
            self.answer(200, b"ok")

        def do_GET(self):
            self.answer(200, fates.get(self.path.rsplit("/", 1)[-1], "stay").encode())

    return Handler


def _wait(check, timeout: float, what: str, explain):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"no {what} within {timeout:.0f} s\n{explain()}")


def test_instances_boot_run_their_user_data_power_off_and_are_stopped(
        vms_possible, moto, moto_image, tmp_path):
    client = moto.client()
    with vm_network.TestNetwork() as net:
        user_data = gzip.compress(USER_DATA.format(gateway=net.gateway).encode(), mtime=0)
        ids = sorted(i["InstanceId"] for i in client.run_instances(
            ImageId=moto_image, MinCount=2, MaxCount=2, InstanceType="t3.micro",
            UserData=user_data, TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": CLUSTER_TAG, "Value": CLUSTER}]}])["Instances"])
        leaver, stayer = ids
        ran: dict = {}
        load = os.getloadavg()
        with vm_services.NamespaceServer(net, PORT, reports_handler(ran, {leaver: "poweroff"})), \
                vm_cloud.VmCloud(net, ec2_alive(client, CLUSTER), client, tmp_path) as cloud:
            def explain():
                cloud.check()
                return "\n".join(f"--- {i}\n{vm.console_tail()}" for i, vm in cloud.vms.items())

            _wait(lambda: set(ran) == set(ids), 600, "user-data run on both VMs", explain)
            for instance_id in ids:
                assert ran[instance_id][1] == f"ran as 0 on {instance_id}", ran[instance_id]
            _wait(lambda: leaver in cloud.powered_off, 180, f"power-off of {leaver}", explain)
            state = client.describe_instances(InstanceIds=[leaver])
            assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"
            stayer_vm = cloud.vms[stayer]
            assert stayer_vm.running()
            client.terminate_instances(InstanceIds=[stayer])
            _wait(lambda: stayer in cloud.stopped, 60, f"VM of {stayer} stopped", explain)
            assert stayer_vm.proc.poll() is not None and not cloud.running_vms()
            for instance_id in ids:
                print(f"{instance_id}: user-data ran {ran[instance_id][0] - cloud.booted[instance_id]:.0f}"
                      f" s after qemu started, peak RSS {cloud.peak_rss_mb[instance_id]:.0f} MB "
                      f"(load before {load[0]:.2f})")

