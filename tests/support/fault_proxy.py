"""A small HTTP proxy between boto3 and the moto server that injects EC2 faults on a schedule.

    with FaultProxy(server.url) as proxy:
        proxy.inject("throttle", "pass", action="RunInstances")
        cloud = EC2Cloud(config_pointing_at(proxy.url))

Each request whose Action matches takes the next scheduled fault; when the schedule is empty
requests pass through.  Faults:

* a name of ``ec2_wire.ERRORS`` (``throttle``, ``500``, ``quota``, ``auth``, ...): answer that
  EC2 error without forwarding (the cloud did nothing);
* ``<name>-after`` (e.g. ``500-after``): forward, then answer the error instead of moto's
  reply (the cloud did it, the answer was lost: what ClientToken is for);
* ``timeout`` / ``timeout-after``: hold the connection for ``hold_s`` seconds (longer than the
  client's read timeout) and close it without an answer, before or after forwarding;
* ``drop-filters``: forward without the ``Filter.*`` parameters (a cloud that ignores
  filters), as it is;
* ``gateway-html``: answer 502 with an HTML page, as a front proxy of the cloud would;
* ``strip-tags``: forward and remove the tags from the reply (a cloud that ignores
  TagSpecifications in its answer);
* ``hide-instances``: forward and answer an empty ``reservationSet`` (EC2's listing lagging
  behind a launch: it is eventually consistent);
* ``pass``: forward;
* a tuple ``(status, code, message)``: answer that error without forwarding.

``chaos(share, faults_by_action, seed)``: when the schedule is empty, each request of an action
in ``faults_by_action`` takes, with probability ``share``, one of its faults (seeded).

``seen`` lists ``(action, fault)`` for every request, in order.  Binds 127.0.0.1, free port.
"""
from __future__ import annotations

import http.client
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlencode, urlsplit

from tests.support.ec2_wire import ERRORS, action_of, error_body, parse_params

_TAG_SET = re.compile(rb"<tagSet>.*?</tagSet>", re.S)
_RESERVATION_SET = re.compile(rb"<reservationSet>.*</reservationSet>", re.S)
_SKIP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length",
                 "date", "server"}  # hop-by-hop, or set by the handler itself
Fault = Union[str, Tuple[int, str, str]]


class FaultProxy:
    def __init__(self, upstream: str, hold_s: float = 2.0):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.hold_s = hold_s
        self.seen: List[Tuple[str, Fault]] = []
        self._schedule: List[Tuple[Optional[str], Fault]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.url: Optional[str] = None
        self._chaos: Tuple[float, Dict[str, Sequence[Fault]]] = (0.0, {})
        self._rng = random.Random(0)

    def chaos(self, share: float, faults_by_action: Dict[str, Sequence[Fault]], seed: int) -> None:
        """Random faults at ``share`` of the requests of these actions (0: stop)."""
        with self._lock:
            self._chaos, self._rng = (share, dict(faults_by_action)), random.Random(seed)

    def inject(self, *faults: Fault, action: Optional[str] = None) -> None:
        """Queue ``faults`` for the next requests (of ``action`` only, when given)."""
        for fault in faults:
            if isinstance(fault, tuple):
                continue
            base = fault[: -len("-after")] if fault.endswith("-after") else fault
            if base not in ERRORS and base not in ("pass", "timeout", "strip-tags",
                                                   "gateway-html", "drop-filters",
                                                   "hide-instances"):
                raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._schedule.extend((action, fault) for fault in faults)

    def _next_fault(self, action: str) -> Fault:
        with self._lock:
            for index, (wanted, fault) in enumerate(self._schedule):
                if wanted in (None, action):
                    del self._schedule[index]
                    break
            else:
                share, table = self._chaos
                fault = "pass"
                if action in table and self._rng.random() < share:
                    fault = self._rng.choice(list(table[action]))
            self.seen.append((action, fault))
            return fault

    def calls(self, action: Optional[str] = None) -> int:
        return sum(1 for a, _ in self.seen if action in (None, a))

    # ------------------------------------------------------------------------- lifecycle

    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                proxy._handle(self)

            do_GET = do_DELETE = do_PUT = do_POST  # (DELETE, PUT: Nova's REST API)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------- requests

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        query = urlsplit(handler.path).query
        fault = self._next_fault(action_of(parse_params(body, query)))
        if isinstance(fault, tuple):
            status, code, message = fault
            return self._reply(handler, (status, [("Content-Type", "text/xml")],
                                         error_body(code, message)))
        after = fault.endswith("-after")
        base = fault[: -len("-after")] if after else fault
        reply = None
        if base == "drop-filters":
            params = [(k, v) for k, v in parse_params(body) if not k.startswith("Filter.")]
            body = urlencode(params).encode()
        if after or base in ("pass", "strip-tags", "drop-filters", "hide-instances"):
            reply = self._forward(handler, body)
        if base == "timeout":
            self._release.wait(self.hold_s)
            handler.close_connection = True
            return
        if base in ERRORS:
            status, code, message = ERRORS[base]
            reply = (status, [("Content-Type", "text/xml")], error_body(code, message))
        elif base == "gateway-html":
            reply = (502, [("Content-Type", "text/html")],
                     b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        elif base == "strip-tags":
            reply = (reply[0], reply[1], _TAG_SET.sub(b"", reply[2]))
        elif base == "hide-instances":
            reply = (reply[0], reply[1], _RESERVATION_SET.sub(b"<reservationSet/>", reply[2]))
        self._reply(handler, reply)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, reply) -> None:
        status, headers, data = reply
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in _SKIP_HEADERS:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes):
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _SKIP_HEADERS}
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()
