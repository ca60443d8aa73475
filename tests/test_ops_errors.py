"""elastiq and elastiqctl with hostile input (issue 11): every failure names the file, key or
line, exits with a code that tells what happened, and is never "unexpected error"."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from elastiq.sim import workload as wl
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
from tests.support.ec2_server import REGION
from tests.support.net import free_port

pytestmark = pytest.mark.local  # runs elastiq and ecm as processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEGACY = "[quota]\nmax_vms = 7\n\n[ec2]\naws_secret_access_key = s3cr3t-value\n"
JOB = "{n} {t} 0 {run} 1 -1 -1 1 -1 -1 1 1 1 -1 1 1 -1 -1\n"


def env(**extra):
    out = {k: v for k, v in os.environ.items() if k != "ELASTIQ_CONFIG"}
    out.update(PYTHONPATH=ROOT, **extra)
    return out


def elastiq(*args, module="elastiq", timeout=120):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env(), stdin=subprocess.DEVNULL)


def clean(result, code=2):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "unexpected error" not in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------ config migrate


def test_migrate_a_missing_file_is_cannot_read(tmp_path):
    result = elastiq("config", "migrate", str(tmp_path / "absent.conf"))
    clean(result)
    assert f"{tmp_path}/absent.conf: cannot read: No such file" in result.stderr


def test_migrate_into_a_missing_folder_is_cannot_write(tmp_path):
    (tmp_path / "old.conf").write_text(LEGACY)
    result = elastiq("config", "migrate", str(tmp_path / "old.conf"), "-o",
                     str(tmp_path / "nodir" / "new.yaml"))
    clean(result)
    assert f"{tmp_path}/nodir/new.yaml: cannot write: No such file" in result.stderr


def test_migrate_does_not_overwrite_without_force(tmp_path):
    (tmp_path / "old.conf").write_text(LEGACY)
    target = tmp_path / "new.yaml"
    target.write_text("precious: true\n")
    result = elastiq("config", "migrate", str(tmp_path / "old.conf"), "-o", str(target))
    clean(result)
    assert "--force" in result.stderr and target.read_text() == "precious: true\n"
    forced = elastiq("config", "migrate", str(tmp_path / "old.conf"), "-o", str(target), "--force")
    clean(forced, 0)
    assert yaml.safe_load(target.read_text())["quota"]["max_vms"] == 7


# ------------------------------------------------------------------ parse errors


@pytest.mark.parametrize("text, where", [
    ("[elastiq]\nsleep_s = 5\nnot an option line\n", "line 3"),
    ("[elastiq]\nsleep_s = 5\nsleep_s = 6\n", "line 3"),
    ("[elastiq]\n[quota]\n[elastiq]\n", "line 3"),
])
def test_ini_errors_name_the_line(tmp_path, text, where):
    path = tmp_path / "elastiq.conf"
    path.write_text(text)
    result = elastiq("config", "check", str(path))
    clean(result)
    assert f"{path}: {where}: not a valid INI file" in result.stderr
    assert "Source contains" not in result.stderr and "While reading" not in result.stderr


def test_set_with_a_huge_number_says_the_bound(tmp_path):
    result = elastiq("simulate", "--set", "elastiq.idle_timeout_max_s=1e308", "-q")
    clean(result)
    assert "elastiq.idle_timeout_max_s: must be at most" in result.stderr
    assert "expected a number" not in result.stderr
    ok = elastiq("simulate", "--set", "elastiq.idle_timeout_max_s=1e3", "--json")
    clean(ok, 0)
    assert '"idle_timeout_max_s": 1000' in ok.stdout


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "NaN"])
@pytest.mark.parametrize("column", [1, 3, 4, 9])  # submit, run time, procs, requested memory
def test_swf_nan_and_inf_fields_name_file_and_line(tmp_path, value, column):
    fields = JOB.format(n=2, t=10, run=60).split()
    fields[column] = value
    path = tmp_path / "t.swf"
    path.write_text("; Version: 2\n" + JOB.format(n=1, t=0, run=60) + " ".join(fields) + "\n")
    with pytest.raises(wl.WorkloadError, match=rf"t\.swf:3: field {column + 1} \("):
        wl.read_swf(str(path))


def test_simulate_a_trace_with_nan_names_file_and_line(tmp_path):
    path = tmp_path / "t.swf"
    path.write_text(JOB.format(n=1, t=0, run="nan"))
    result = elastiq("simulate", "--trace", str(path))
    clean(result)
    assert f"{path}:1: field 4 (run time)" in result.stderr


def test_an_empty_trace_does_not_blame_a_window_not_given(tmp_path):
    path = tmp_path / "empty.swf"
    path.write_text("; Version: 2\n; MaxProcs: 4\n")
    result = elastiq("simulate", "--trace", str(path))
    clean(result)
    assert "--window" not in result.stderr and f"{path} has no job line" in result.stderr
    windowed = elastiq("simulate", "--trace", str(path), "--window", "1d:2d")
    clean(windowed)
    assert "--window" in windowed.stderr


# ------------------------------------------------------------------ run --once


def _moto_auth(url, enforced):
    request = urllib.request.Request(f"{url}/moto-api/reset-auth", method="POST",
                                     data=b"0" if enforced else b"inf",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.mark.parametrize("failure", ["ok", "unreachable", "tls", "credentials"])
def test_run_once_fails_when_the_tick_could_not_observe(tmp_path, moto, failure):
    url = {"unreachable": f"http://127.0.0.1:{free_port()}",
           "tls": moto.url.replace("http://", "https://")}.get(failure, moto.url)
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({
        "elastiq": {"cluster_name": "once", "state_dir": str(tmp_path),
                    "batch_plugin": "tests.support.world:IdleBatch"},
        "ec2": {"api_url": url, "region": REGION, "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": SECRET_KEY, "image_id": "ami-12345678"}}))
    if failure == "credentials":
        _moto_auth(moto.url, True)
    try:
        result = elastiq("run", "--once", "--log-stderr", "--config", str(path))
    finally:
        if failure == "credentials":
            _moto_auth(moto.url, False)
    if failure == "ok":
        clean(result, 0)
        return
    clean(result, 1)
    assert "the tick could not observe: cloud unreadable" in result.stderr
    assert SECRET_KEY not in result.stderr


# ------------------------------------------------------------------ elastiqctl


def _ctl_config(tmp_path, **ec2):
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({
        "elastiq": {"cluster_name": "ctlops", "state_dir": str(tmp_path / "state"),
                    "log_file": str(tmp_path / "state" / "elastiq.log"),
                    "batch_plugin": "tests.support.world:IdleBatch"},
        "ec2": {"region": REGION, **ec2}}))
    return str(path)


def test_ctl_start_with_a_config_run_refuses_says_why_on_the_terminal(tmp_path):
    path = _ctl_config(tmp_path, user_data_file=str(tmp_path / "absent.sh"))
    result = elastiq("start", "--config", path, module="elastiq.cli.ctl")
    clean(result)
    assert "ec2.user_data_file" in result.stderr and "absent.sh" in result.stderr
    assert not os.path.exists(tmp_path / "state" / "elastiq.pid")


def test_run_refused_at_start_says_why_in_the_log(tmp_path):
    path = _ctl_config(tmp_path, user_data_file=str(tmp_path / "absent.sh"))
    result = elastiq("run", "--config", path)
    clean(result)
    log = (tmp_path / "state" / "elastiq.log").read_text()
    assert "cannot start" in log and "ec2.user_data_file" in log and "absent.sh" in log
    shown = elastiq("log", "--no-follow", "--config", path, module="elastiq.cli.ctl")
    assert "cannot start" in shown.stdout


def test_ctl_log_without_a_log_file_says_so_and_where(tmp_path):
    path = _ctl_config(tmp_path)
    log_file = str(tmp_path / "state" / "elastiq.log")
    result = elastiq("log", "--no-follow", "--config", path, module="elastiq.cli.ctl")
    clean(result, 1)
    assert f"no log yet: {log_file} does not exist" in result.stderr
    with subprocess.Popen([sys.executable, "-m", "elastiq.cli.ctl", "log", "--config", path],
                          cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:
        try:
            line = child.stderr.readline()  # said at once, then it waits for the file
            assert f"no log yet: {log_file} does not exist" in line and "waiting" in line
        finally:
            child.kill()


# ------------------------------------------------------------------ simulate


def test_report_into_an_unusable_dir_fails_before_the_replay(tmp_path):
    (tmp_path / "file").write_text("")
    result = elastiq("simulate", "--report", str(tmp_path / "file" / "rep"), "--json",
                     "--decisions")
    clean(result)
    assert "--report" in result.stderr and "Not a directory" in result.stderr
    # refused before the replay: not one decision was printed, and no half result
    assert len(result.stderr.splitlines()) == 1 and result.stdout == "", result.stderr


def test_a_report_that_fails_to_write_keeps_the_summary(tmp_path):
    (tmp_path / "rep" / "simulation.png").mkdir(parents=True)  # savefig cannot write there
    result = elastiq("simulate", "--report", str(tmp_path / "rep"))
    clean(result, 1)
    assert "jobs completed" in result.stdout and "--report" in result.stderr


def test_progress_bar_only_on_a_terminal(tmp_path):
    path = tmp_path / "big.swf"
    path.write_text("".join(JOB.format(n=n, t=n, run=5) for n in range(1, 20_003)))
    result = elastiq("simulate", "--trace", str(path), "--set", "quota.max_vms=5", timeout=300)
    clean(result, 0)
    assert "\r" not in result.stderr and "[###" not in result.stderr


def test_the_vm_shape_is_said_when_the_config_does_not_give_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ec2:\n  flavour: m1.xlarge\n")
    result = elastiq("simulate", "--config", str(path), "-q")
    clean(result, 0)
    assert "worker VM shape 1 cpu(s), 2048 MiB" in result.stderr
    assert "m1.xlarge" in result.stderr and "vm.cpus" in result.stderr
    shaped = elastiq("simulate", "--config", str(path), "-q", "--set", "vm.cpus=4",
                     "--set", "vm.memory_mb=8192")
    assert "worker VM shape" not in shaped.stderr
    help_text = elastiq("simulate", "--help").stdout
    assert "With --config, the VM shape is vm.cpus / vm.memory_mb" in help_text


def test_max_vms_zero_with_jobs_is_refused():
    result = elastiq("simulate", "--set", "quota.max_vms=0")
    clean(result)
    assert "quota.max_vms is 0" in result.stderr and "118 jobs" in result.stderr


def test_report_extra_is_named_where_report_is_shown():
    help_text = elastiq("simulate", "--help").stdout
    assert "elastiq[report]" in " ".join(help_text.split())
    readme = Path(ROOT, "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("`--report DIR`"):][:400]
    assert "`report`" in paragraph and "extra" in paragraph
