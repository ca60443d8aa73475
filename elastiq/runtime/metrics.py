"""Prometheus metrics in the text exposition format (0.0.4), served over HTTP.

Off unless ``elastiq.metrics_port`` is set; bound to ``elastiq.metrics_address`` (127.0.0.1
unless configured otherwise).  Written by hand on ``http.server`` (a few dozen
lines) so that the master VM needs no extra package.  Counters count since the process started;
Prometheus handles the reset at a restart.
"""
from __future__ import annotations

import threading
from typing import Dict, Iterable, Optional, Tuple

from ..model import InstanceState, Snapshot

TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: every cloud state of a VM that costs or may cost (gone ones are not shown)
VM_STATES = tuple(s.value for s in InstanceState if s is not InstanceState.GONE)


class Metrics:
    """The daemon's numbers; every method is thread-safe (the HTTP server reads concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.vms: Dict[str, int] = {}
        self.jobs: Dict[str, int] = {}
        self.launches = 0
        self.terminations = 0
        self.errors: Dict[str, int] = {}
        self.actions: Dict[Tuple[str, str], int] = {}  # (kind, reason code) -> actions
        self._buckets = [0] * len(TICK_BUCKETS)
        self._tick_count = 0
        self._tick_sum = 0.0

    def observed(self, snapshot: Snapshot) -> None:
        with self._lock:
            if snapshot.instances is not None:
                self.vms = {state: 0 for state in VM_STATES}
                for instance in snapshot.instances:
                    if instance.state.value in self.vms:
                        self.vms[instance.state.value] += 1
            if snapshot.queue is not None:
                self.jobs = {"idle": len(snapshot.queue.idle), "running": snapshot.queue.running}

    def launched(self, count: int) -> None:
        with self._lock:
            self.launches += count

    def terminated(self, count: int) -> None:
        with self._lock:
            self.terminations += count

    def action(self, kind: str, code: str) -> None:
        """One action carried out (not a dry-run one): ``kind`` launch, drain, cancel-drain or
        terminate, ``code`` its reason's code."""
        with self._lock:
            key = (kind, str(code))
            self.actions[key] = self.actions.get(key, 0) + 1

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def tick(self, seconds: float) -> None:
        with self._lock:
            self._tick_count += 1
            self._tick_sum += seconds
            for i, bound in enumerate(TICK_BUCKETS):
                if seconds <= bound:
                    self._buckets[i] += 1

    def render(self) -> str:
        with self._lock:
            out = []
            _family(out, "elastiq_vms", "gauge", "Cluster VMs by cloud state",
                    ((f'state="{s}"', n) for s, n in sorted(self.vms.items())))
            _family(out, "elastiq_jobs", "gauge", "Jobs in the queue by state",
                    ((f'state="{s}"', n) for s, n in sorted(self.jobs.items())))
            _family(out, "elastiq_launches_total", "counter", "VMs launched", (("", self.launches),))
            _family(out, "elastiq_terminations_total", "counter", "VMs terminated",
                    (("", self.terminations),))
            _family(out, "elastiq_actions_total", "counter", "Actions carried out by kind and reason",
                    ((f'action="{k}",reason="{r}"', n) for (k, r), n in sorted(self.actions.items())))
            _family(out, "elastiq_errors_total", "counter", "Errors by class",
                    ((f'kind="{k}"', n) for k, n in sorted(self.errors.items())))
            out.append("# HELP elastiq_tick_duration_seconds Duration of one observe-decide-act tick")
            out.append("# TYPE elastiq_tick_duration_seconds histogram")
            for bound, count in zip(TICK_BUCKETS, self._buckets):
                out.append(f'elastiq_tick_duration_seconds_bucket{{le="{bound:g}"}} {count}')
            out.append(f'elastiq_tick_duration_seconds_bucket{{le="+Inf"}} {self._tick_count}')
            out.append(f"elastiq_tick_duration_seconds_sum {self._tick_sum:.6f}")
            out.append(f"elastiq_tick_duration_seconds_count {self._tick_count}")
            return "\n".join(out) + "\n"


def _family(out: list, name: str, kind: str, text: str, samples: Iterable[Tuple[str, float]]) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        out.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")


class MetricsServer:
    """``GET /metrics`` on ``host:port`` in a daemon thread; ``port=0`` picks a free one."""

    def __init__(self, metrics: Metrics, port: int, host: str = "127.0.0.1"):
        import http.server  # here: a simulation, which serves no metrics, never loads it

        metrics_ref = metrics

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = metrics_ref.render().encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # no access log in the daemon's log
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def address(self) -> Tuple[str, int]:
        return self._server.server_address[:2]

    def start(self) -> "MetricsServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join()
