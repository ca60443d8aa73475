"""Benchmark the OpenStack adapter against the real Nova of the test cloud: launch 50 servers,
wait until ACTIVE, terminate them, wait until gone.

    sudo python3 benchmarks/bench_openstack.py [--servers 50]

Starts the private cloud of tests/support/openstack_cloud.py (2-3 min, root on a provisioned
Debian 12), or uses one already running under ``$ELASTIQ_TEST_OPENSTACK_ROOT``.  API calls are
the HTTP requests elastiq's connection sent (Keystone, Glance, Nova), counted on its session.
The original elastiq made one create per VM.  Prints one JSON object; ``{"skipped": reason}``
where the cloud cannot run.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support import openstack_cloud as oc  # noqa: E402


class Counted:
    """Counts the requests of an openstacksdk connection's session, by method and path."""

    def __init__(self, conn):
        self.seen = collections.Counter()
        session, send = conn.session, conn.session.request

        def request(url, method, *args, **kwargs):
            parts = url.split("?")[0].split("/")
            parts = parts[3:] if "://" in url else [p for p in parts if p]  # or a path
            path = "/" + "/".join("*" if len(p) >= 32 else p for p in parts)
            self.seen[f"{method} {path}"] += 1
            return send(url, method, *args, **kwargs)
        session.request = request

    def measure(self, action):
        before, start = sum(self.seen.values()), time.perf_counter()
        result = action()
        return result, {"api_calls": sum(self.seen.values()) - before,
                        "wall_s": round(time.perf_counter() - start, 2)}


def until(check, timeout=600):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.5)


def bench(root: Path, servers: int) -> dict:
    from elastiq.adapters.openstack.cloud import OpenStackCloud, connect
    from elastiq.model import InstanceState
    from tests.support.openstack_fixtures import CLOUD, TestCloud

    import openstack
    import yaml
    admin = openstack.connect(**yaml.safe_load((root / "clouds.yaml").read_text())
                              ["clouds"][CLOUD])
    test = TestCloud(admin, admin.compute.find_flavor(oc.FLAVOR, ignore_missing=False),
                     admin.image.find_image(oc.IMAGE, ignore_missing=False), root)
    cfg = test.config(f"bench-{os.getpid()}")
    conn, _ = connect(cfg.cloud, 120)
    counted = Counted(conn)
    cloud = OpenStackCloud(cfg, conn=conn)
    ids, launch = counted.measure(lambda: cloud.launch(servers))
    launch["servers_granted"] = len(ids)
    _, active = counted.measure(lambda: until(lambda: all(
        i.state == InstanceState.RUNNING for i in cloud.list_instances())))
    _, terminate = counted.measure(lambda: cloud.terminate(list(ids)))
    _, gone = counted.measure(lambda: until(lambda: not [
        i for i in cloud.list_instances() if i.state != InstanceState.GONE]))
    return {"servers": servers, "launch": launch, "until_active": active,
            "terminate": terminate, "until_gone": gone,
            "original_elastiq_create_calls": servers, "calls": dict(counted.seen)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    args = parser.parse_args(argv)
    running = os.environ.get("ELASTIQ_TEST_OPENSTACK_ROOT")
    reason = None if running else oc.unavailable_reason()
    if reason:
        print(json.dumps({"skipped": reason}))
        return 0
    cloud = None
    with tempfile.TemporaryDirectory(prefix="bench-openstack-") as tmp:
        root = Path(running or tmp)
        try:
            if not running:
                import openstack
                import yaml
                cloud = oc.OpenStackCloud(root)
                document = cloud.start()
                (root / "clouds.yaml").write_text(yaml.safe_dump(document))
                cloud.seed(openstack.connect(**document["clouds"]["elastiq-test"]))
            result = bench(root, args.servers)
            if cloud is not None:
                result["cloud_start_s"] = cloud.timings
        finally:
            if cloud is not None:
                cloud.stop()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
