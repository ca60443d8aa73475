"""Benchmark the EC2 adapter against the moto EC2 server: launch 1,000 VMs, list 5,000.

    python3 benchmarks/bench_ec2.py [--launch 1000] [--list 5000] [--page-size 1000]

API calls are counted twice: requests the server received (retries included) and requests
botocore sent from elastiq's client ("before-send" events).  The original elastiq made one
RunInstances per VM.  Wall times include the fake cloud's own work (moto is far slower than
EC2 at serialising thousands of instances), so they are an upper bound for the adapter.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from elastiq.adapters.ec2.cloud import EC2Cloud, make_client  # noqa: E402
from tests.support.ec2_fixtures import World, make_config  # noqa: E402
from tests.support.ec2_server import MotoServer  # noqa: E402


class Calls:
    def __init__(self, server: MotoServer, client):
        self.server, self.sent = server, 0
        client.meta.events.register("before-send.ec2", self._count)

    def _count(self, **kwargs):
        self.sent += 1

    def measure(self, action):
        server_before, sent_before, start = self.server.calls(), self.sent, time.perf_counter()
        result = action()
        wall = time.perf_counter() - start
        return result, {"api_calls": self.server.calls() - server_before,
                        "client_requests": self.sent - sent_before, "wall_s": round(wall, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch", type=int, default=1000)
    parser.add_argument("--list", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args(argv)
    with MotoServer() as server:
        setup = server.client()
        image = setup.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        setup.create_key_pair(KeyName="bench")
        world = World(image_id=image, key_name="bench", subnet_id="", security_group="default")
        config = make_config(server.url, world, cluster="bench")
        client, _ = make_client(config.cloud, {}, max_attempts=4, connect_timeout=10,
                                read_timeout=600)
        cloud = EC2Cloud(config, client=client, page_size=args.page_size)
        calls = Calls(server, client)

        ids, launch = calls.measure(lambda: cloud.launch(args.launch))
        launch.update(vms_requested=args.launch, vms_granted=len(ids),
                      original_elastiq_api_calls=args.launch)
        listed, list_small = calls.measure(cloud.list_instances)
        list_small["instances"] = len(listed)
        more, grow = calls.measure(lambda: cloud.launch(args.list - len(ids)))
        grow.update(vms_requested=args.list - len(ids), vms_granted=len(more))
        listed, list_big = calls.measure(cloud.list_instances)
        list_big["instances"] = len(listed)
        _, terminate = calls.measure(lambda: cloud.terminate([i.id for i in listed]))
        terminate["instances"] = len(listed)
        alive_after = server.stats()["alive"]

    print(json.dumps({
        "benchmark": "ec2-adapter-vs-moto",
        f"launch_{args.launch}": launch,
        f"list_{len(ids)}": list_small,
        f"launch_{args.list - len(ids)}_more": grow,
        f"list_{args.list}": list_big,
        f"terminate_{args.list}": terminate,
        "alive_after_terminate": alive_after,
        "page_size": args.page_size,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
