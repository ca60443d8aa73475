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
    assert "max_vms violations     0  ok" in out


def test_config_file_is_used(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    conf = tmp_path / "elastiq.yaml"
    conf.write_text("quota:\n  max_vms: 6\nvm:\n  cpus: 2\n")
    assert cli.main(["simulate", "--config", str(conf), "--json", "--max-jobs", "30"]) == 0
    result = json.loads(capsys.readouterr().out)
    knobs = result["knobs"]
    assert (knobs["max_vms"], knobs["vm_cpus"], knobs["vm_memory_mb"]) == (6, 2, 4096)
    assert knobs["idle_for_time_s"] == 3600  # the file's (default) value, not the sim's 600
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
