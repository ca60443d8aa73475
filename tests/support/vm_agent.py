"""A test-only command agent in the booted VMs (issue 26): the test runs shell commands on a VM
and reads their output, with nothing of it in the product's user-data.

The test cloud hands every VM, besides the instance's own user-data, a *vendor-data* part (as a
cloud provider may): a cloud-config whose ``bootcmd`` starts ``elastiq-test-agent`` as a
transient systemd unit early in boot.  The agent announces itself (``POST /agent/hello/<id>``),
then polls the test's server for a command (``GET /agent/next/<id>``: ``<seq>\\n<script>`` or
an empty body), runs it as root with bash and posts its output and exit status
(``POST /agent/done/<id>/<seq>``, header ``X-Rc``).

    agent = Agent(net.gateway, PORT)
    with NamespaceServer(net, PORT, agent.handler()), VmCloud(..., vendor_data=agent.vendor_data):
        agent.wait_hello(instance_id, 600, explain)
        rc, out = agent.run(instance_id, "systemctl is-active elastiq", 60)
"""
from __future__ import annotations

import base64
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Tuple

from tests.support.vm_services import QuietHandler

AGENT = r"""#!/bin/bash
# elastiq test agent (tests/support/vm_agent.py): test-only, never part of the product.
url=http://{gateway}:{port}/agent
id={instance_id}
until curl -fsS -m 10 -X POST --data-binary "$(date +%s.%N)" "$url/hello/$id" >/dev/null; do
  sleep 2
done
while :; do
  if curl -fsS -m 30 -o /run/elastiq-test-agent.next "$url/next/$id" \
      && [ -s /run/elastiq-test-agent.next ]; then
    seq=$(head -n 1 /run/elastiq-test-agent.next)
    tail -n +2 /run/elastiq-test-agent.next > /run/elastiq-test-agent.sh
    timeout 900 bash /run/elastiq-test-agent.sh > /run/elastiq-test-agent.out 2>&1 </dev/null
    rc=$?
    until curl -fsS -m 30 -X POST -H "X-Rc: $rc" --data-binary @/run/elastiq-test-agent.out \
        "$url/done/$id/$seq" >/dev/null; do sleep 2; done
  else
    sleep 2
  fi
done
"""


class Agent:
    """The test's side: the vendor-data per VM, the HTTP handler, and :meth:`run`."""

    def __init__(self, gateway: str, port: int):
        self.gateway, self.port = gateway, port
        self.hello: Dict[str, float] = {}
        self._queue: Dict[str, Deque[Tuple[int, str]]] = {}
        self._done: Dict[Tuple[str, int], Tuple[int, str]] = {}
        self._seq = 0
        self._lock = threading.Condition()

    def vendor_data(self, instance_id: str) -> bytes:
        script = AGENT.format(gateway=self.gateway, port=self.port, instance_id=instance_id)
        encoded = base64.b64encode(script.encode()).decode()
        start = (f"echo {encoded} | base64 -d > /run/elastiq-test-agent && systemd-run "
                 "--no-block -p DefaultDependencies=no --unit=elastiq-test-agent "
                 "/bin/bash /run/elastiq-test-agent")
        return f"#cloud-config\nbootcmd:\n  - [sh, -c, \"{start}\"]\n".encode()

    def run(self, instance_id: str, script: str, timeout: float) -> Tuple[int, str]:
        """``script`` run with bash as root on the VM: (exit status, stdout+stderr)."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._queue.setdefault(instance_id, deque()).append((seq, script))
            ok = self._lock.wait_for(lambda: (instance_id, seq) in self._done, timeout)
            if not ok:
                raise AssertionError(f"{instance_id}: no answer within {timeout:.0f} s to "
                                     f"{script!r}")
            return self._done.pop((instance_id, seq))

    def wait_hello(self, instance_id: str, timeout: float, explain: Callable[[], str]) -> float:
        with self._lock:
            if not self._lock.wait_for(lambda: instance_id in self.hello, timeout):
                raise AssertionError(f"{instance_id}: the agent did not start within "
                                     f"{timeout:.0f} s\n{explain()}")
            return self.hello[instance_id]

    def handler(self):
        agent = self

        class Handler(QuietHandler):
            def do_GET(self):
                parts = self.path.strip("/").split("/")
                if parts[:2] != ["agent", "next"] or len(parts) != 3:
                    return self.answer(404, b"")
                with agent._lock:
                    queue = agent._queue.get(parts[2])
                    seq, script = queue.popleft() if queue else (None, "")
                self.answer(200, f"{seq}\n{script}".encode() if seq else b"")

            def do_POST(self):
                parts = self.path.strip("/").split("/")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with agent._lock:
                    if parts[:2] == ["agent", "hello"] and len(parts) == 3:
                        agent.hello.setdefault(parts[2], time.time())
                    elif parts[:2] == ["agent", "done"] and len(parts) == 4:
                        agent._done[(parts[2], int(parts[3]))] = (
                            int(self.headers.get("X-Rc", "-1")), body.decode(errors="replace"))
                    else:
                        return self.answer(404, b"")
                    agent._lock.notify_all()
                self.answer(200, b"ok")

        return Handler
