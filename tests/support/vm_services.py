"""What the booted VMs reach on the test network (issue 26), each inside its namespace:

* :class:`NamespaceServer`: an HTTP server on the bridge's gateway address (or another address
  local to the namespace);
* :class:`Forwarder`: a TCP port on the bridge's gateway address whose connections go to a
  port of the host's 127.0.0.1 (moto's EC2 and S3 endpoint);
* :func:`directory_handler`: static files (the local apt repository, the wheel index), for a
  :class:`NamespaceServer`;
* :func:`wheel_index`: a PEP 503 index of the wheels a VM's pip needs for some requirements,
  fetched once on the host with ``pip download`` (the machine's own pip configuration) for the
  VM's Python and platform, cached under /var/lib/elastiq-ci;
* :func:`metadata_handler`: the instance id at EC2's metadata path, by the asking VM's address.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional

CACHE = Path(os.environ.get("ELASTIQ_CI_VM_CACHE", "/var/lib/elastiq-ci/vm-cache"))


class NamespaceServer:
    """An HTTP server (threads per request) on ``net.gateway:port`` (or ``address:port``) inside
    the namespace: what the VMs reach.  ``handler`` is a BaseHTTPRequestHandler class."""

    def __init__(self, net, port: int, handler, address: Optional[str] = None):
        address = address or net.gateway

        def bound():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            return sock

        self.url = f"http://{address}:{port}"
        self.server = http.server.ThreadingHTTPServer((address, port), handler,
                                                      bind_and_activate=False)
        self.server.socket.close()  # made in the host's namespace: replaced
        self.server.socket = net.socket_inside(bound)
        self.server.server_activate()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> "NamespaceServer":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Forwarder:
    """``net.gateway:port`` inside the namespace, forwarded to ``127.0.0.1:target`` outside."""

    def __init__(self, net, port: int, target: int):
        def bound():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((net.gateway, port))
            sock.listen(64)
            return sock

        self.url = f"http://{net.gateway}:{port}"
        self.target = target
        self.listener = net.socket_inside(bound)
        self.connections = 0
        self._open: set = set()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"fwd-{port}")
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                inside, _ = self.listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", self.target), timeout=30)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            with self._lock:
                self.connections += 1
                self._open.update((inside, outside))
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def __enter__(self) -> "Forwarder":
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        with self._lock:
            for sock in self._open:
                sock.close()
        self.thread.join(10)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with :meth:`answer` (the test servers
    the VMs talk to: metadata, the agent, the boot test's reports)."""

    def answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def directory_handler(folder: Path):
    """Static files of ``folder`` (directory listings serve as PEP 503 pages)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    return functools.partial(Handler, directory=str(folder))


def metadata_handler(instance_of: Callable[[str], Optional[str]]):
    """``GET /latest/meta-data/instance-id`` answers ``instance_of(client address)``; IMDSv2's
    token request is not offered (the worker template then asks without a token)."""

    class Handler(QuietHandler):
        def do_GET(self):
            instance_id = instance_of(self.client_address[0])
            if self.path.rstrip("/") == "/latest/meta-data/instance-id" and instance_id:
                return self.answer(200, instance_id.encode())
            self.answer(404, b"not found")

        def do_PUT(self):
            self.answer(405, b"")

    return Handler


_NAME = re.compile(r"[-_.]+")


def wheel_index(requirements: Iterable[str], python: str = "3.13",
                timeout: float = 900) -> Path:
    """The ``simple/`` folder of a PEP 503 index holding the wheels of ``requirements`` (and
    their dependencies) for CPython ``python`` on x86_64 Linux; cached by the requirements."""
    wanted = sorted(set(requirements))
    digest = hashlib.sha256(f"{python}\n{chr(10).join(wanted)}".encode()).hexdigest()[:16]
    root = CACHE / f"wheels-py{python}-{digest}"
    simple = root / "simple"
    if (root / ".complete").exists():
        return simple
    shutil.rmtree(root, ignore_errors=True)
    download = root / "download"
    abi = "cp" + python.replace(".", "")
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "linux_x86_64"]
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(download),
            "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
            "--abi", abi, "--abi", "abi3", "--abi", "none",
            *(f"--platform={p}" for p in platforms), *wanted]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"pip download for the VMs failed:\n{done.stderr[-3000:]}")
    for wheel in download.glob("*.whl"):
        project = _NAME.sub("-", wheel.name.split("-", 1)[0]).lower()
        (simple / project).mkdir(parents=True, exist_ok=True)
        wheel.rename(simple / project / wheel.name)
    (root / ".complete").write_text(" ".join(wanted) + "\n")
    return simple


def own_requirements() -> list:
    """elastiq's own install requirements (without extras), from its installed metadata."""
    from importlib.metadata import requires

    return [r for r in requires("elastiq") or [] if "extra ==" not in r]

