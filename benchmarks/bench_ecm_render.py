"""Render the master and worker user-data of every OS and print one JSON object: render time and
the sizes that matter against the 16 KiB EC2 user-data limit (how much room is left)."""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ecm import render  # noqa: E402
from ecm.oses import OPERATING_SYSTEMS  # noqa: E402

ROUNDS = 20


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"renders timed per OS (default {ROUNDS})")
    rounds = parser.parse_args(argv).rounds
    result = {"limit_bytes": render.USER_DATA_LIMIT, "nova_limit_bytes": render.NOVA_USER_DATA_LIMIT, "rounds": rounds, "os": {}}
    for os_id in OPERATING_SYSTEMS:
        a = render.Answers(os_id=os_id, image_id="ami-0123456789abcdef0",
                           cluster_name="bench-cluster", flavour="m1.large", min_vms=0,
                           max_vms=10, jobs_per_vm=4, idle_time_s=3600, key_name="mykey",
                           signing_key="k" * 64, api_url="https://cloud.example.org:8773/",
                           access_key="AKIAEXAMPLE", secret_key="secret" * 7)
        start = time.perf_counter()
        for _ in range(rounds):
            master = render.master_user_data(a)
        elapsed_ms = (time.perf_counter() - start) * 1000 / rounds
        worker = len(render.render_worker(a).encode())
        text = render.render_master(a).encode()
        packed = len(gzip.compress(text, compresslevel=9, mtime=0))
        result["os"][os_id] = {
            "render_ms": round(elapsed_ms, 2),
            "master_text_bytes": master.text_size,
            "master_written_bytes": len(master.data),
            "master_gzipped": master.compressed,
            "worker_bytes": worker,
            "master_headroom_bytes": render.USER_DATA_LIMIT - len(master.data),
            "master_plain_on_nova": master.text_size <= render.NOVA_USER_DATA_LIMIT,
            "master_gzip_bytes": packed,
            "master_raw_fits_ec2": len(text) <= render.USER_DATA_LIMIT,
            "master_gzip_fits_ec2": packed <= render.USER_DATA_LIMIT,
            "master_raw_fits_nova": len(text) <= render.NOVA_USER_DATA_LIMIT,
        }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
