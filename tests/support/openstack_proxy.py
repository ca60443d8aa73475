"""A fault proxy in front of Nova (the test cloud's compute endpoint): ``FaultProxy`` with
Nova's REST requests as actions.

    with NovaFaultProxy(nova_url) as proxy:          # point compute_endpoint_override at it
        proxy.inject("500-after", action="POST /servers")

Actions are ``METHOD /path`` with the version prefix and ids removed: ``POST /servers``,
``GET /servers/detail``, ``DELETE /servers/*``.  Faults: ``pass``; ``500`` (answer Nova's 500
without forwarding: Nova did nothing); ``500-after`` (forward, then answer 500: Nova did it,
the answer was lost); ``timeout`` / ``timeout-after`` (hold the connection ``hold_s`` seconds
and close it without an answer, before or after forwarding).
"""
from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.support.fault_proxy import FaultProxy

_ID = re.compile(r"^[0-9a-f-]{32,36}$")
_ERROR = json.dumps({"computeFault": {"code": 500, "message": "Unexpected API Error. "
                                      "(injected by the test proxy)"}}).encode()


def action_of(method: str, path: str) -> str:
    parts = [p for p in urlsplit(path).path.split("/") if p and not re.match(r"^v2(\.1)?$", p)]
    return f"{method} /" + "/".join("*" if _ID.match(p) else p for p in parts)


class NovaFaultProxy(FaultProxy):
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        fault = self._next_fault(action_of(handler.command, handler.path))
        after = fault.endswith("-after")
        base = fault[: -len("-after")] if after else fault
        reply = self._forward(handler, body) if after or base == "pass" else None
        if base == "timeout":
            self._release.wait(self.hold_s)
            handler.close_connection = True
            return
        if base == "500":
            reply = (500, [("Content-Type", "application/json")], _ERROR)
        self._reply(handler, reply)
