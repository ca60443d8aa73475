"""The test network of the booted VMs (issue 26): a network namespace the test creates, with a
bridge at a private address and a tap device per VM; servers bind inside it
(:meth:`TestNetwork.socket_inside`), commands run inside it (:meth:`TestNetwork.command`), and
EC2's metadata address is local to it.  Deleting the namespace removes it all."""
from __future__ import annotations

import ctypes
import secrets
import subprocess
import threading
from typing import Callable

_CLONE_NEWNET = 0x40000000
#: EC2's metadata service address (tests/support/vm_services.py answers on it).
METADATA_ADDRESS = "169.254.169.254"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=30)


class TestNetwork:
    """A network namespace with a bridge at ``<prefix>.1/24`` (a private range), a tap device
    per VM on it; deleting the namespace removes them all."""

    def __init__(self, prefix: str = "10.26.0"):
        self.name = f"elq-{secrets.token_hex(4)}"
        self.prefix, self.gateway = prefix, f"{prefix}.1"
        self.taps = 0

    def __enter__(self) -> "TestNetwork":
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.name, "addr", "add", f"{self.gateway}/24", "dev", "br0")
            _ip("-n", self.name, "link", "set", "br0", "up")
            # EC2's metadata address, local to the namespace: the VMs route it via the bridge.
            _ip("-n", self.name, "addr", "add", f"{METADATA_ADDRESS}/32", "dev", "lo")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)

    def new_tap(self) -> tuple:
        """A tap device on the bridge: (its name, the VM's address, the VM's MAC)."""
        self.taps += 1
        n = self.taps
        if n > 200:
            raise RuntimeError("more than 200 VMs on one test network")
        tap = f"tap{n}"
        _ip("-n", self.name, "tuntap", "add", tap, "mode", "tap")
        _ip("-n", self.name, "link", "set", tap, "master", "br0", "up")
        return tap, f"{self.prefix}.{10 + n}", f"52:54:00:26:{n // 256:02x}:{n % 256:02x}"

    def command(self, argv) -> list:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def socket_inside(self, make: Callable):
        """``make()`` (e.g. a bound socket) created inside the namespace, from a thread of its
        own that enters it (setns changes only the calling thread's namespace)."""
        box: dict = {}

        def enter_and_make():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open(f"/run/netns/{self.name}", "rb") as ns:
                    if libc.setns(ns.fileno(), _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns into " + self.name)
                box["value"] = make()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=enter_and_make, name=f"in-{self.name}")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]
