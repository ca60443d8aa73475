"""Every script in benchmarks/ runs at a tiny size, exits 0 and prints its JSON object: a
restructuring cannot break a benchmark silently.  The figures themselves are the benchmarks'
business (run them at full size by hand); here each run is checked for what its size makes
certain."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.local  # processes: see tests/conftest.py

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
TRACES = ROOT.parent / "shared" / "traces"
TRACE_NAMES = ("LPC-EGEE-2004-1.2-cln.swf.gz", "HPC2N-2002-2.2-cln.swf.gz")


def run(script: str, *args: str, env=None, timeout: float = 240) -> dict:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert isinstance(result, dict) and result
    return result


def test_every_benchmark_has_a_smoke_test():
    here = Path(__file__).read_text(encoding="utf-8")
    scripts = sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))
    assert scripts and [s for s in scripts if f'"{s}"' not in here] == []


def test_bench_ec2_counts_one_launch_call():
    result = run("bench_ec2.py", "--launch", "5", "--list", "12", "--page-size", "5")
    launch = result["launch_5"]
    assert launch["vms_granted"] == 5 and launch["api_calls"] == 1
    assert launch["original_elastiq_api_calls"] == 5
    assert result["list_12"]["instances"] == 12 and result["list_12"]["api_calls"] == 3
    assert result["terminate_12"]["instances"] == 12 and result["alive_after_terminate"] == 0


def test_bench_decide():
    result = run("bench_decide.py", "--sizes", "100,400", "--workers", "20", "--repeat", "1")
    assert [r["jobs"] for r in result["runs"]] == [100, 400]
    assert all(r["launch"] > 0 for r in result["runs"])
    assert result["meets_goal"] is None  # 100,000 jobs were not measured


def test_bench_htcondor_snapshot():
    result = run("bench_htcondor_snapshot.py", "--repeat", "1", "--sizes", "100:10,300:30")
    assert [(r["job_ads"], r["slot_ads"]) for r in result["runs"]] == [(100, 10), (300, 30)]
    assert all(r["idle"] + r["running"] == r["job_ads"] for r in result["runs"])


def test_bench_daemon_latency():
    result = run("bench_daemon_latency.py", "--trials", "3", "--wakes", "2")
    assert result["trials"] == 3
    assert result["virtual_delay_s"]["with_next_check"]["max"] == 0


def test_bench_ecm_render():
    result = run("bench_ecm_render.py", "--rounds", "1")
    assert result["rounds"] == 1 and result["os"]
    assert all(r["master_headroom_bytes"] >= 0 for r in result["os"].values())


def test_bench_replay_without_traces_says_it_skipped(tmp_path):
    result = run("bench_replay.py", "--jobs", "50", env={"ELASTIQ_TRACES": str(tmp_path)})
    assert "skipped" in result


@pytest.mark.skipif(not all((TRACES / n).is_file() for n in TRACE_NAMES),
                    reason=f"the shared traces are not in {TRACES}")
def test_bench_replay_on_the_first_jobs_of_the_traces():
    result = run("bench_replay.py", "--jobs", "200", env={"ELASTIQ_TRACES": str(TRACES)})
    assert result["jobs_limit"] == 200 and result["full_replay"]["jobs_replayed"] == 200
    assert {row["trace"] for row in result["comparison"]} == set(TRACE_NAMES)
    for row in result["policies"]:
        assert {"default", "legacy", "autoscaler"} <= set(row["policies"])
        assert all(p["jobs_killed"] == 0 for p in row["policies"].values())
        assert set(row["default_dominates"]) == set(row["policies"]) - {"default"}
        assert all(v in (True, False) or v.startswith("not at equal wait")
                   for v in row["default_dominates"].values())
    assert [row["first_jobs"] for row in result["cost"]["traces"]] == [200, 200]


@pytest.mark.daemons
@pytest.mark.parametrize("clusters", [(), ("--cluster-size", "4")], ids=["per-shape", "size-4"])
def test_bench_real_pool_tick(clusters):
    from tests.support.condor_fixtures import require_real_pool
    require_real_pool()
    result = run("bench_real_pool_tick.py", "--jobs", "50", "--slots", "10", *clusters,
                 timeout=300)
    assert (result["idle_jobs_seen"], result["vms_seen"], result["problems"]) == (50, 10, [])
    assert result["jobs_per_cluster"] == (int(clusters[1]) if clusters else None)
    assert 0 < result["queue_read_s"] < result["tick_s"] and result["peak_rss_mb"] > 0
    cloud = result["cloud_list_s"] + result.get("cloud_launch_s", 0.0)
    assert 0 < result["cloud_server_s"] <= cloud + 0.001
    assert result["observe_s"] < result["tick_s"] and result["rest_s"] >= 0
    again = result["without_cloud_server"]  # every cloud answer from memory: moto not asked
    assert (again["forwarded_requests"], again["problems"]) == (0, [])
    assert result["tick_without_cloud_server_s"] == again["tick_s"] > 0


def test_bench_openstack_on_the_test_cloud(openstack_cloud):
    result = run("bench_openstack.py", "--servers", "2", timeout=600,
                 env={"ELASTIQ_TEST_OPENSTACK_ROOT": str(openstack_cloud.root)})
    assert result["servers"] == 2 and result["launch"]["servers_granted"] == 2
    assert result["original_elastiq_create_calls"] == 2
