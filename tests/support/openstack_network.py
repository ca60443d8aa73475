"""A stand-in for Neutron on loopback: every GET of a collection answers an empty list.

Nova (Zed) looks up ports and security groups of every server it shows, even of servers booted
with networks='none'; without a network endpoint each server GET fails with 500. The test cloud
has no Neutron (see the README's test section), so this answers those reads: GET /v2.0/<name>
gives {"<name with _>": []}, GET / the version document; anything else is 404.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("", "/v2.0"):
            body = {"versions": [{"id": "v2.0", "status": "CURRENT",
                                  "links": [{"rel": "self", "href": "/v2.0/"}]}]}
        elif path.startswith("/v2.0/") and path.count("/") == 2:
            name = path.rsplit("/", 1)[1].removesuffix(".json").replace("-", "_")
            body = {name: []}
        else:
            self._answer(404, {"NeutronError": {"message": f"no {path} in the stand-in"}})
            return
        self._answer(200, body)

    def _answer(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class NetworkStandIn:
    """Serves on 127.0.0.1:port in a daemon thread until stop()."""

    def __init__(self, port: int):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "NetworkStandIn":
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
