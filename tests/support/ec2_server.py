"""A moto EC2 server on 127.0.0.1 (free port) in a child process, for tests and benchmarks.

    from tests.support.ec2_server import MotoServer

    with MotoServer(capacity=50) as server:
        cloud = EC2Cloud(config_for(server.url))   # boto3 talks HTTP to it like to a cloud
        server.calls("RunInstances")                # API calls the server received
        server.set_capacity(0)                      # the next launch: InsufficientInstanceCapacity

The child runs ``tests.support.moto_ec2``, which gives moto EC2's semantics for MaxCount,
ClientToken and paging (see there).  ``stop()`` (or leaving the ``with``) ends the process.
"""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import urllib.request
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "us-east-1"
#: Credentials of the test-side client; any value works with moto.
SETUP_KEY, SETUP_SECRET = "AKIDTESTSETUP0000000", "setup-secret-not-used-by-elastiq"


class MotoServer:
    def __init__(self, capacity: Optional[int] = None, validate: bool = True,
                 startup_timeout: float = 60.0):
        self.capacity, self.validate, self.startup_timeout = capacity, validate, startup_timeout
        self.url: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stderr = None

    # ------------------------------------------------------------------------- lifecycle

    def start(self) -> "MotoServer":
        cmd = [sys.executable, "-m", "tests.support.moto_ec2", "--host", "127.0.0.1", "--port", "0"]
        if self.capacity is not None:
            cmd += ["--capacity", str(self.capacity)]
        if not self.validate:
            cmd.append("--no-validation")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=self._stderr, stdin=subprocess.DEVNULL)
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            ready = selector.select(self.startup_timeout)
        line = self._proc.stdout.readline().decode() if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"moto server did not start: {line!r} {self._child_errors()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _child_errors(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    # ------------------------------------------------------------------------- control

    def _control(self, path: str, data: Optional[str] = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/_elastiq/{path}", data=None if data is None else data.encode(),
            method="GET" if data is None else "POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def stats(self) -> dict:
        return self._control("stats")

    def calls(self, action: Optional[str] = None) -> int:
        """API calls received (all actions, or one), counting each retry."""
        counts = self.stats()["calls"]
        return counts.get(action, 0) if action else sum(counts.values())

    def set_capacity(self, capacity: Optional[int]) -> None:
        self._control("capacity", "none" if capacity is None else str(capacity))

    def reset(self) -> None:
        self._control("reset", "")

    def client(self):
        """A boto3 client for setting up and inspecting the fake cloud (not elastiq's)."""
        import boto3

        return boto3.client("ec2", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=SETUP_KEY, aws_secret_access_key=SETUP_SECRET)
