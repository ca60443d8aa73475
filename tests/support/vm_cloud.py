"""A test cloud whose instances boot (issue 26): every running EC2 instance of moto tagged for
the cluster becomes a qemu VM of the Debian 13 image that ``.ci/provision-vm-image.sh`` builds,
booted with the instance's user-data as cloud-init's NoCloud seed.

    with TestNetwork() as net, VmCloud(net, ec2_alive(client, "c1"), client, workdir) as cloud:
        ...                       # something runs instances tagged c1
        cloud.booted              # instance id -> time its VM was started
        cloud.powered_off         # instance id -> time its VM powered itself off

How (the facts measured in issue 26): qemu's software emulation (``-accel tcg,thread=single,
tb-size=128 -cpu max``: this host's /dev/kvm cannot run a stock kernel, and without tb-size a
VM takes 1.5 GB), the image's kernel booted directly, a copy-on-write overlay per VM, the seed
an ISO labelled ``cidata`` holding ``user-data`` (the bytes EC2's metadata service serves: the
API's base64 removed, gzip kept; EC2's 16 KiB limit), ``meta-data`` (instance id) and
``network-config`` (the VM's own private address, and a route to EC2's metadata address
169.254.169.254 through the gateway, where tests/support/vm_services.py answers), and the test
cloud's own ``vendor-data`` when given (tests/support/vm_agent.py: test-only).  The VMs are on
a bridge inside a network namespace the test creates (tests/support/vm_network.py), reaching
only what the test serves there.
An instance terminated stops its VM (qemu killed by its pid); a VM that powers itself off
stops its instance, or terminates it when it was launched with
``InstanceInitiatedShutdownBehavior=terminate``, as EC2 shows a machine shut down from inside.
"""
from __future__ import annotations

import base64
import binascii
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest

from tests.support.vm_network import METADATA_ADDRESS, TestNetwork

IMAGE_DIR = Path(os.environ.get("ELASTIQ_CI_VM_DIR", "/var/lib/elastiq-ci/debian13-vm"))
MARKER = IMAGE_DIR / ".elastiq-provisioned"
#: The local apt repository (a partial mirror of trixie main: Debian's signed index, the
#: .deb files HTCondor, docker.io and nftables need beyond the image).
APT_REPO = IMAGE_DIR / "apt-repo"
PROGRAMS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
            "genisoimage": "genisoimage", "ip": "iproute2"}
#: EC2's limit on the raw user-data.
USER_DATA_LIMIT = 16384
QEMU_ACCEL = ["-accel", "tcg,thread=single,tb-size=128", "-cpu", "max"]


@pytest.fixture
def vms_possible():
    """Skips the test with the reason when VMs cannot boot here; fails it instead when
    ELASTIQ_REQUIRE_VMS=1 (CI)."""
    reason = unavailable()
    if reason:
        if os.environ.get("ELASTIQ_REQUIRE_VMS") == "1":
            pytest.fail(f"ELASTIQ_REQUIRE_VMS=1 but {reason}")
        pytest.skip(reason)


def unavailable() -> Optional[str]:
    """Why VMs cannot boot here (None: they can)."""
    if os.geteuid() != 0:
        return "booting VMs needs root (network namespaces, tap devices)"
    if not MARKER.exists():
        return (f"the VM image is not provisioned ({MARKER} missing): run "
                ".ci/provision-vm-image.sh as root")
    for program, package in PROGRAMS.items():
        if shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            return f"{program} is missing (Debian package {package})"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (tap devices)"
    return None


def seed_iso(path: Path, instance_id: str, user_data: bytes, address: str, mac: str,
             gateway: str, vendor_data: bytes = b"") -> None:
    """The NoCloud seed of one VM: its user-data bytes as they are, its id and address (and a
    route to the metadata address through ``gateway``), the test cloud's vendor-data."""
    folder = path.with_suffix(".d")
    folder.mkdir()
    (folder / "user-data").write_bytes(user_data)
    names = ["user-data", "meta-data", "network-config"]
    if vendor_data:
        (folder / "vendor-data").write_bytes(vendor_data)
        names.append("vendor-data")
    (folder / "meta-data").write_text(f"instance-id: {instance_id}\n"
                                      f"local-hostname: {instance_id}\n")
    (folder / "network-config").write_text(
        "version: 2\nethernets:\n  eth0:\n    match:\n"
        f"      macaddress: \"{mac}\"\n    addresses: [{address}/24]\n"
        f"    routes:\n      - to: {METADATA_ADDRESS}/32\n        via: {gateway}\n")
    subprocess.run(["genisoimage", "-quiet", "-output", str(path), "-volid", "cidata", "-joliet",
                    "-rock", *(str(folder / n) for n in names)],
                   check=True, capture_output=True, timeout=60)


class Vm:
    """One qemu VM booted from the image on its own overlay; ``console`` is its serial log."""

    def __init__(self, net: TestNetwork, folder: Path, instance_id: str, user_data: bytes,
                 memory_mb: int = 512, vendor_data: bytes = b""):
        if len(user_data) > USER_DATA_LIMIT:
            raise ValueError(f"{instance_id}: {len(user_data)} bytes of user-data, more than "
                             f"EC2's {USER_DATA_LIMIT}")
        self.instance_id = instance_id
        folder.mkdir(parents=True)
        self.console = folder / "console.log"
        overlay = folder / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        str(IMAGE_DIR / "debian13.qcow2"), str(overlay)], check=True,
                       capture_output=True, timeout=60)
        tap, self.address, mac = net.new_tap()
        seed = folder / "seed.iso"
        seed_iso(seed, instance_id, user_data, self.address, mac, net.gateway, vendor_data)
        argv = ["qemu-system-x86_64", *QEMU_ACCEL, "-m", str(memory_mb), "-smp", "1",
                "-display", "none", "-monitor", "none", "-no-reboot",
                "-serial", f"file:{self.console}",
                "-kernel", str(IMAGE_DIR / "vmlinuz"), "-initrd", str(IMAGE_DIR / "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0",
                # A throw-away disk: its flushes (dpkg's fsyncs) are not passed on to the host.
                "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
                "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
                "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,mac={mac}"]
        with open(folder / "qemu.out", "wb") as out:
            self.proc = subprocess.Popen(net.command(argv), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.time()

    def running(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        """The qemu process's resident memory on the host."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        """Pull the plug: SIGTERM qemu by its pid, SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def console_tail(self, lines: int = 30) -> str:
        return tail(self.console, lines)


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a VM's serial console log."""
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(no console: {err.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def instance_user_data(client, instance_id: str) -> bytes:
    """The bytes the metadata service would serve: the API's base64 removed, gzip kept."""
    value = client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    encoded = value.get("UserData", {}).get("Value", "")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as err:
        raise ValueError(f"{instance_id}: the API's user-data is not base64: {err}") from None


class VmCloud(threading.Thread):
    """Boots a VM per running instance that ``alive`` reports (instance id -> running), at most
    ``max_vms`` at once (more is an error: this host has 2 cores); stops the VM of an instance
    no longer running; stops (or terminates: :meth:`shut_down`) the instance of a VM that
    powered off.  A background thread does it
    every ``every`` seconds; its error is raised again by :meth:`check` and on leaving."""

    def __init__(self, net: TestNetwork, alive: Callable[[], Dict[str, bool]], client,
                 folder: Path, max_vms: int = 2, every: float = 1.0, memory_mb: int = 512,
                 vendor_data: Optional[Callable[[str], bytes]] = None):
        super().__init__(daemon=True, name=f"vm-cloud-{net.name}")
        self.net, self.alive, self.client, self.folder = net, alive, client, Path(folder)
        self.max_vms, self.every, self.memory_mb = max_vms, every, memory_mb
        self.vendor_data = vendor_data or (lambda instance_id: b"")
        #: instance id -> its VM's address (kept after the VM is gone)
        self.addresses: Dict[str, str] = {}
        self.vms: Dict[str, Vm] = {}
        self.booted: Dict[str, float] = {}
        self.powered_off: Dict[str, float] = {}
        self.stopped: Dict[str, float] = {}
        self.peak_rss_mb: Dict[str, float] = {}
        self.error: Optional[BaseException] = None
        self._done = threading.Event()

    def step(self) -> None:
        alive = self.alive()
        for instance_id, running in sorted(alive.items()):
            if running and instance_id not in self.booted:
                if len(self.running_vms()) >= self.max_vms:
                    raise RuntimeError(f"{instance_id}: more than {self.max_vms} VMs at once")
                vm = Vm(self.net, self.folder / instance_id, instance_id,
                        instance_user_data(self.client, instance_id), self.memory_mb,
                        self.vendor_data(instance_id))
                self.vms[instance_id] = vm
                self.addresses[instance_id] = vm.address
                self.booted[instance_id] = time.time()
        for instance_id, vm in list(self.vms.items()):
            if vm.running():
                self.peak_rss_mb[instance_id] = max(self.peak_rss_mb.get(instance_id, 0.0),
                                                    vm.rss_mb())
            if not alive.get(instance_id):
                vm.stop()
                self.stopped[instance_id] = time.time()
                del self.vms[instance_id]
            elif not vm.running():
                self.powered_off[instance_id] = time.time()
                self.shut_down(instance_id)
                del self.vms[instance_id]

    def shut_down(self, instance_id: str) -> None:
        """What EC2 does to an instance whose machine powered itself off: stops it, or
        terminates it when it was launched with InstanceInitiatedShutdownBehavior=terminate
        (as elastiq launches its workers)."""
        behaviour = self.client.describe_instance_attribute(
            InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
        if behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate":
            self.client.terminate_instances(InstanceIds=[instance_id])
        else:
            self.client.stop_instances(InstanceIds=[instance_id])

    def console_tail(self, instance_id: str, lines: int = 30) -> str:
        """The end of the serial console of the instance's VM (also once it is gone)."""
        return tail(self.folder / instance_id / "console.log", lines)

    def instance_at(self, address: str) -> Optional[str]:
        """The instance whose VM has (or had) ``address``."""
        return next((i for i, a in list(self.addresses.items()) if a == address), None)

    def running_vms(self) -> Dict[str, Vm]:
        return {i: vm for i, vm in self.vms.items() if vm.running()}

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.step()
            except BaseException as exc:  # raised again in the test's thread by check()
                self.error = exc
                return
            self._done.wait(self.every)

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the VM cloud failed: {self.error!r}") from self.error

    def __enter__(self) -> "VmCloud":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join(60)
        for vm in self.vms.values():
            vm.stop()
        self.vms.clear()
        if exc[0] is None:
            self.check()
