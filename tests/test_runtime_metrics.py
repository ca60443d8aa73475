"""Prometheus endpoint: text format a real Prometheus parser accepts, on 127.0.0.1, off by default."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from elastiq.adapters.base import TransientError
from elastiq.config import Config
from elastiq.core import get_policy
from elastiq.model import InstanceState
from elastiq.runtime.metrics import Metrics, MetricsServer
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.world import make_config, world


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_are_off_by_default():
    assert Config().elastiq.metrics_port is None


def test_endpoint_serves_what_the_ticks_counted(tmp_path):
    clock, cloud, batch = world()
    metrics = Metrics()
    rt = Runtime(make_config(tmp_path), get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "s")), clock=clock, metrics=metrics)
    batch.submit(5)
    batch.running = 2
    clock.now = rt.tick("start")
    cloud.add(InstanceState.ERROR)
    rt.tick("wake")  # launches 2 (the broken VM still counts against max_vms 3), terminates it
    batch.faults.fail("queue", TransientError("schedd down"))
    rt.tick("vms")
    server = MetricsServer(metrics, 0).start()
    try:
        host, port = server.address
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            got = samples(reply.read().decode())
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert err.value.code == 404
        err.value.close()  # the error holds the reply's socket
    finally:
        server.stop()
    assert got[("elastiq_vms", (("state", "booting"),))] == 2
    assert got[("elastiq_vms", (("state", "error"),))] == 0
    assert got[("elastiq_jobs", (("state", "idle"),))] == 5
    assert got[("elastiq_jobs", (("state", "running"),))] == 2
    assert got[("elastiq_launches_total", ())] == 2
    assert got[("elastiq_terminations_total", ())] == 1
    assert got[("elastiq_errors_total", (("kind", "transient"),))] == 1
    # the actions by kind and reason code: the launch for the waiting jobs, the broken VM
    actions = {k[1]: v for k, v in got.items() if k[0] == "elastiq_actions_total"}
    assert actions == {(("action", "launch"), ("reason", "jobs-waiting")): 1,
                       (("action", "terminate"), ("reason", "in-error")): 1}
    assert got[("elastiq_tick_duration_seconds_count", ())] == 3
    assert got[("elastiq_tick_duration_seconds_bucket", (("le", "+Inf"),))] == 3
