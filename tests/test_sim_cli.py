"""`elastiq simulate`: the command line, its JSON, its report and its errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from elastiq import cli
from elastiq.sim.metrics import REQUIRED_KEYS

pytestmark = pytest.mark.local  # processes: see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]


def traces_dir():
    env = os.environ.get("ELASTIQ_TRACES")
    folder = Path(env) if env else ROOT.parent / "shared" / "traces"
    return folder if folder.is_dir() else None


def run_cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if k != "ELASTIQ_CONFIG"}
    environ.update(env or {})
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "elastiq", "simulate", *args], cwd=str(ROOT),
                          capture_output=True, text=True, env=environ, timeout=120)


def test_json_on_stdout_has_every_required_key():
    done = run_cli("--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout holds only the JSON object
    assert set(REQUIRED_KEYS) <= set(result)
    assert result["policy"] == "default" and result["jobs"] == result["jobs_completed"] > 0
    assert result["max_vms_violations"] == 0 and result["jobs_killed"] == 0
    assert result["knobs"]["max_vms"] == 10 and result["knobs"]["vm_cpus"] == 4


def test_summary_table_and_knobs_from_set(capsys, monkeypatch):
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    code = cli.main(["simulate", "--policy", "legacy", "--set", "quota.max_vms=4", "--seed", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "policy                 legacy  (max_vms 4," in out
    assert "jobs completed         118 / 118" in out
    assert "max_vms violations     0 ticks over max_vms  ok" in out


def test_config_file_is_used(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    conf = tmp_path / "elastiq.yaml"
    conf.write_text("quota:\n  max_vms: 6\nvm:\n  cpus: 2\n")
    assert cli.main(["simulate", "--config", str(conf), "--json", "--max-jobs", "30"]) == 0
    result = json.loads(capsys.readouterr().out)
    knobs = result["knobs"]
    assert (knobs["max_vms"], knobs["vm_cpus"], knobs["vm_memory_mb"]) == (6, 2, 4096)
    assert knobs["idle_timeout_max_s"] == 3600  # the file's (default) value, not the sim's 600
    assert result["jobs"] == 30 - result["jobs_unmatchable"]


def test_report_writes_a_png(tmp_path):
    done = run_cli("--report", str(tmp_path / "rep"), "--json")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    png = tmp_path / "rep" / "simulation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
    assert "simulation.png" in done.stderr
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["jobs"] == json.loads(done.stdout)["jobs"]
    rows = (tmp_path / "rep" / "timeline.csv").read_text().splitlines()
    assert rows[0].startswith("hours,booting,idle,busy") and len(rows) > 50


def test_every_vm_is_accounted_for_in_the_json_and_the_summary(capsys, monkeypatch):
    """Issue 25.14: VMs in error and never joined are counted; busy, booting and idle add up
    to the VM-hours; the peak is not called max_vms; violations have their unit."""
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    args = ["simulate", "--error-share", "0.2", "--never-join-share", "0.2", "--seed", "3"]
    assert cli.main([*args, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["vms_in_error"] > 0 and r["vms_never_joined"] > 0
    assert r["vms_in_error"] + r["vms_never_joined"] <= r["vms_never_used"]
    assert abs(r["busy_vm_hours"] + r["booting_vm_hours"] + r["idle_vm_hours"]
               - r["vm_hours"]) < 0.01
    assert "max_vms" not in r and 0 < r["vms_peak"] <= r["knobs"]["max_vms"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"({r['vms_in_error']} in error, {r['vms_never_joined']} never joined)" in out
    assert f"at most {r['vms_peak']} at once (max_vms 10)" in out
    assert f"busy {r['busy_vm_hours']:.1f}, booting {r['booting_vm_hours']:.1f}," in out


def test_skipped_trace_jobs_are_in_the_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    trace = tmp_path / "t.swf"  # SWF: id submit wait run procs ... ; run -1 = unknown
    trace.write_text("1 0 0 60 1 -1 -1 1 -1 -1 1 1 1 -1 1 -1 -1 -1\n"
                     "2 10 0 -1 1 -1 -1 1 -1 -1 1 1 1 -1 1 -1 -1 -1\n")
    assert cli.main(["simulate", "--trace", str(trace)]) == 0
    assert "1 trace jobs skipped (unknown run time)" in capsys.readouterr().out


def test_every_policy_gets_one_scale_and_a_comparison_chart(tmp_path):
    from elastiq.sim import report
    done = run_cli("--policy", "all", "--report", str(tmp_path / "rep"), "--max-jobs", "40")
    assert done.returncode == 0, done.stderr
    png = tmp_path / "rep" / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 15000
    assert (tmp_path / "rep" / "default" / "simulation.png").is_file()
    one = report.Scale.of([[(1.0, 1, 1, 0, 0, 0, 5, 1)]])
    both = report.Scale.of([[(1.0, 1, 1, 0, 0, 0, 5, 1)], [(3.0, 0, 0, 7, 0, 0, 0, 2)]])
    assert (one.hours, one.vms, one.jobs) == (1.0, 2, 6)
    assert (both.hours, both.vms, both.jobs) == (3.0, 7, 6)


def test_flavours_given_with_their_shapes_are_simulated_as_the_daemon_runs_them(tmp_path):
    """Issue 25.11: the first flavour's shape is the worker VM's, as in the daemon (here 8
    cpus, and the 2-cpu flavour priced 0.25 of it), with --set or in a --config file, and no
    note that the shape is missing."""
    flavours = "big:8:16384,small:2:4096"
    conf = tmp_path / "elastiq.yaml"
    conf.write_text(f"ec2:\n  flavour: {flavours}\nquota:\n  max_vms: 6\n")
    for args in (["--set", f"ec2.flavour={flavours}"], ["--config", str(conf)]):
        done = run_cli(*args, "--json", "--max-jobs", "40")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert (result["knobs"]["vm_cpus"], result["knobs"]["vm_memory_mb"]) == (8, 16384), args
        prices = {name: row["price"] for name, row in result["by_size"].items()}
        assert prices.get("small", 0.25) == 0.25 and prices.get("big", 1.0) == 1.0, prices
        assert "shape" not in done.stderr, done.stderr


def test_the_vm_axis_follows_what_ran_not_a_far_limit():
    from elastiq.sim.report import Scale, vm_axis_top
    assert vm_axis_top(Scale(1.0, 2, 1), 35) == pytest.approx(2.6)  # max_vms named, off scale
    assert vm_axis_top(Scale(1.0, 10, 1), 10) == pytest.approx(13.0)
    assert vm_axis_top(Scale(1.0, 9, 1), 11) == pytest.approx(12.1)


@pytest.mark.parametrize("args, message", [
    (["--window", "1d:2d"], "--window needs --trace"),
    (["--boot-delay", "gamma:1"], "argument --boot-delay"),
    (["--error-share", "1.5"], "is not between 0 and 1"),
    (["--max-jobs", "0"], "must be at least 1"),
    (["--trace", "/nonexistent/x.swf"], "/nonexistent/x.swf: cannot read"),
    (["--set", "quota.max_vms=-1"], "quota.max_vms: must not be negative"),
])
def test_bad_usage_gets_a_clear_message_and_exit_2(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_plain_swf_trace_with_window(tmp_path):
    rows = "\n".join(f"{n} {n * 600} 0 {300 + n} 1 -1 -1 1 -1 -1 1 1 1 -1 1 1 -1 -1" for n in range(1, 41))
    trace = tmp_path / "small.swf"
    trace.write_text("; MaxProcs: 8\n" + rows + "\n")
    done = run_cli("--trace", str(trace), "--window", "1h:5h", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["workload"] == "small" and result["jobs"] == 24  # submits 3600 .. 17400
    assert result["knobs"]["max_vms"] == 2  # MaxProcs 8 / 4 cpus
    assert result["jobs_completed"] == 24


@pytest.mark.skipif(traces_dir() is None, reason="shared traces folder absent")
def test_real_trace_replay_both_policies():
    trace = str(traces_dir() / "LPC-EGEE-2004-1.2-cln.swf.gz")
    for policy in ("default", "legacy"):
        done = run_cli("--trace", trace, "--max-jobs", "3000", "--policy", policy, "--json", "--quiet")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["jobs"] == result["jobs_completed"] == 3000
        assert result["max_vms_violations"] == 0
        assert result["knobs"]["max_vms"] == 35  # 140 procs / 4 cpus


def test_report_without_matplotlib_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    code = cli.main(["simulate", "--report", str(tmp_path / "rep"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--report needs matplotlib: pip install 'elastiq[report]'" in err
    assert not (tmp_path / "rep").exists()


def test_simulate_is_batch_system_neutral(tmp_path, capsys, monkeypatch):
    """Issue 28: a Slurm cluster's configuration (its slurm section) replays exactly as the
    same one for HTCondor: the simulator swaps the batch plugin for its own pool, and the
    core sees only jobs and workers."""
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    results = {}
    for batch, section in (("htcondor", "htcondor:\n  has_docker: true\n"),
                           ("slurm", "slurm:\n  partitions: [main]\n")):
        conf = tmp_path / f"{batch}.yaml"
        conf.write_text(f"elastiq:\n  batch_plugin: {batch}\nquota:\n  max_vms: 6\n"
                        f"vm:\n  cpus: 2\n{section}")
        assert cli.main(["simulate", "--config", str(conf), "--json", "--max-jobs", "40"]) == 0
        results[batch] = json.loads(capsys.readouterr().out)
        results[batch].pop("wall_s")  # the replay's own run time
    assert results["slurm"] == results["htcondor"] and results["slurm"]["jobs_completed"] > 0
