"""`elastiq status`: table, per-state summary with compact host lists, boot-to-join statistics,
last decisions, --json; it only reads the saved state."""
from __future__ import annotations

from dataclasses import replace
import json
import time

import pytest
import yaml

from elastiq import cli
from elastiq.model import InstanceRecord, Lifecycle, Memory
from elastiq.runtime.hostlist import compact
from elastiq.runtime.pidfile import PidLock
from elastiq.runtime.state import Decision, Observation, State, StateStore, VMView
from elastiq.cli.status import boot_to_join


@pytest.mark.parametrize("names, expected", [
    ([f"10-0-0-{i}" for i in (4, 5, 6, 7, 8, 9, 12)], "10-0-0-[4-9,12]"),
    (["node01", "node02", "node03", "node10", "node100", "login"], "node100,node[01-03,10],login"),
    (["10-0-0-4.novalocal", "10-0-0-5.novalocal", "10-0-1-4.novalocal"],
     "10-0-0-[4-5].novalocal,10-0-1-4.novalocal"),
    (["w7", "w7", "w3"], "w[3,7]"),
    (["single9"], "single9"),
    ([], ""),
])
def test_compact_host_lists(names, expected):
    assert compact(names) == expected


def test_boot_to_join_statistics():
    assert boot_to_join([]) is None
    assert boot_to_join([60.0]) == {"count": 1, "min": 60.0, "max": 60.0, "mean": 60.0,
                                    "median": 60.0, "sd": 0.0}
    stats = boot_to_join([60.0, 70.0, 80.0, 150.0])
    assert (stats["min"], stats["max"], stats["mean"], stats["median"]) == (60.0, 150.0, 90.0, 75.0)
    assert stats["sd"] == pytest.approx(40.8248, abs=1e-3)  # sample standard deviation


NOW = time.time()


def saved_state() -> State:
    joined = {f"i-{n}": InstanceRecord(Lifecycle.JOINED, NOW - 300, NOW - 400, NOW - 330, f"10-0-0-{n}")
              for n in (4, 5, 6, 7, 8, 9, 12)}
    joined["i-20"] = InstanceRecord(Lifecycle.DRAINING, NOW - 30, NOW - 4000, NOW - 3900, "10-0-0-20")
    joined["i-21"] = InstanceRecord(Lifecycle.DRAINING, NOW - 30, NOW - 4000, NOW - 3900, "10-0-0-21",
                                    drain="consolidation")
    joined["i-new"] = InstanceRecord(Lifecycle.BOOTING, NOW - 20, NOW - 25)
    views = tuple(VMView(i, "running", f"10.0.0.{i[2:]}", r.worker, 2 if i == "i-4" else 0)
                  for i, r in joined.items())
    decisions = tuple(Decision(NOW - 100 + k, "launch", f"launch {k}: reason {k}") for k in range(15))
    return State(Memory(), decisions, (62.0, 70.0, 78.0), ("i-new",),
                 Observation(NOW - 5, 11, 4, views, ("queue partly read",)), "physics", NOW - 5,
                 records=joined)


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({"elastiq": {"cluster_name": "physics",
                                                "state_dir": str(tmp_path / "state"),
                                                "log_file": str(tmp_path / "elastiq.log")}}))
    StateStore(str(tmp_path / "state")).save(saved_state())
    return path, tmp_path


def test_status_text_while_the_daemon_runs(setup, capsys):
    path, tmp_path = setup
    lock = PidLock(str(tmp_path / "state" / "elastiq.pid"))
    lock.acquire()
    try:
        code = cli.main(["status", "--config", str(path), "--decisions", "3"])
    finally:
        lock.release()
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("elastiq is running (pid ")
    assert "cluster 'physics'" in lines[1]
    assert "jobs: 11 idle, 4 running" in out
    assert "last tick: queue partly read" in out
    header = next(line for line in lines if line.startswith("INSTANCE"))
    assert header.split() == ["INSTANCE", "STATE", "WORKER", "SINCE", "JOBS"]
    row = next(line for line in lines if line.startswith("i-4 "))
    assert row.split()[1:3] == ["joined", "10-0-0-4"] and row.split()[-1] == "2"
    assert any(line.split()[:3] == ["joined", "7", "10-0-0-[4-9,12]"] for line in lines)
    assert any(line.split() == ["draining", "1", "10-0-0-20"] for line in lines)
    assert any(line.split() == ["consolidating", "1", "10-0-0-21"] for line in lines)
    assert next(line for line in lines if line.startswith("i-21 ")).split()[1] == "consolidating"
    assert any(line.split() == ["booting", "1", "i-new"] for line in lines)
    assert "boot to join (3 VMs): min 62 s, max 78 s, mean 70 s, median 70 s, SD 8 s" in out
    shown = [line for line in lines if "launch " in line and "reason" in line]
    assert [s.split()[-1] for s in shown] == ["12", "13", "14"]


def test_status_json_and_not_running(setup, capsys):
    path, _ = setup
    assert cli.main(["status", "--config", str(path), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["running"] is False and data["pid"] is None
    assert data["summary"]["joined"] == {"count": 7, "hosts": "10-0-0-[4-9,12]"}
    assert data["boot_to_join_s"]["median"] == 70.0
    assert len(data["decisions"]) == 10 and data["decisions"][-1]["text"] == "launch 14: reason 14"
    vm = next(v for v in data["vms"] if v["instance_id"] == "i-4")
    assert (vm["state"], vm["worker"], vm["jobs"], vm["address"]) == ("joined", "10-0-0-4", 2, "10.0.0.4")


def test_status_without_state_or_with_a_broken_one(tmp_path, capsys):
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({"elastiq": {"state_dir": str(tmp_path / "state")}}))
    assert cli.main(["status", "--config", str(path)]) == 3
    assert "has not run with this configuration yet" in capsys.readouterr().out
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text("{not json")
    assert cli.main(["status", "--config", str(path)]) == 1
    assert "state file" in capsys.readouterr().err
    assert (tmp_path / "state" / "state.json").exists()  # status never moves it


def test_status_with_a_missing_config_says_which_file(tmp_path, capsys):
    assert cli.main(["status", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read" in capsys.readouterr().err


def test_status_live_with_an_unloadable_cloud_plugin_names_the_key(setup, capsys):
    path, _ = setup
    code = cli.main(["status", "--config", str(path), "--live",
                     "--set", "elastiq.cloud_plugin=tests.support.world:NoSuchCloud"])
    err = capsys.readouterr().err
    assert code == 2
    assert "elastiq.cloud_plugin: cannot load 'tests.support.world:NoSuchCloud'" in err


def test_status_live_with_the_cloud_down_still_shows_the_rest(setup, capsys):
    """Issue 25.6: the cloud's error is one line of the status, not all of it."""
    from tests.support.net import free_port
    path, _ = setup
    code = cli.main(["status", "--config", str(path), "--live",
                     "--set", "elastiq.cloud_plugin=ec2",
                     "--set", f"ec2.api_url=http://127.0.0.1:{free_port()}",
                     "--set", "ec2.aws_access_key_id=AKIAEXAMPLE",
                     "--set", "ec2.aws_secret_access_key=secret"])
    out = capsys.readouterr().out
    assert code == 3  # not running, as without --live
    assert "cluster 'physics'" in out and "jobs: 11 idle, 4 running" in out
    assert "cloud now: cannot list the instances (transient error:" in out
    assert cli.main(["status", "--config", str(path), "--live", "--json",
                     "--set", "elastiq.cloud_plugin=ec2",
                     "--set", f"ec2.api_url=http://127.0.0.1:{free_port()}",
                     "--set", "ec2.aws_access_key_id=AKIAEXAMPLE",
                     "--set", "ec2.aws_secret_access_key=secret"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["live_error"].startswith("transient error:") and "live" not in data


def test_status_with_the_legacy_baseline_configured_says_why_and_shows_the_state(setup, capsys):
    """``policy: legacy`` (the original elastiq's algorithm, now a baseline of ``elastiq
    simulate`` only) makes the configuration invalid: status says why and what to do, and
    still shows the state from the daemon's files."""
    path, tmp_path = setup
    path.write_text(yaml.safe_dump({"elastiq": {"cluster_name": "physics", "policy": "legacy",
                                                "state_dir": str(tmp_path / "state")}}))
    assert cli.main(["status", "--config", str(path), "--json"]) == 3
    out, err = capsys.readouterr()
    assert "elastiq.policy: 'legacy'" in err and "elastiq simulate --policy legacy" in err
    data = json.loads(out)
    assert data["state"] is True and len(data["vms"]) == len(saved_state().records)


def test_status_shows_each_vm_flavour_when_several_are_launched(tmp_path, capsys):
    state = saved_state()
    records = dict(state.records)
    records["i-4"] = replace(records["i-4"], flavour="c5.xlarge")
    records["i-new"] = replace(records["i-new"], flavour="c5.large")
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump({"elastiq": {"cluster_name": "physics",
                                                "state_dir": str(tmp_path / "state")}}))
    StateStore(str(tmp_path / "state")).save(replace(state, records=records))
    assert cli.main(["status", "--config", str(path)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.startswith("INSTANCE")).split()[-1] == "FLAVOUR"
    assert next(line for line in lines if line.startswith("i-4 ")).split()[-1] == "c5.xlarge"
    assert next(line for line in lines if line.startswith("i-new ")).split()[-1] == "c5.large"
    assert next(line for line in lines if line.startswith("i-5 ")).split()[-1] == "-"
    assert cli.main(["status", "--config", str(path), "--json"]) == 3
    vms = {v["instance_id"]: v["flavour"] for v in json.loads(capsys.readouterr().out)["vms"]}
    assert (vms["i-4"], vms["i-new"], vms["i-5"]) == ("c5.xlarge", "c5.large", None)


class TwoOwnersCloud:
    """A cloud plugin listing the cluster's instances of two daemons and an unowned one."""

    def __init__(self, config, **_):
        pass

    def list_instances(self):
        from elastiq.model import Instance, InstanceState
        return tuple(Instance(iid, InstanceState.RUNNING, 0.0, "physics", owner=owner)
                     for iid, owner in (("i-ours", "0urs"), ("i-theirs", "th3irs"),
                                        ("i-old", None)))


def test_status_live_tells_another_daemons_instances_of_the_name_apart(setup, capsys):
    """Issue 25.7: another daemon's instances under this cluster's name are not 'not in the
    state' (untracked) ones: they are another elastiq's, left alone."""
    path, tmp_path = setup
    (tmp_path / "state" / "owner").write_text("0urs\n")
    live = ["status", "--config", str(path), "--live",
            "--set", "elastiq.cloud_plugin=tests.test_runtime_status:TwoOwnersCloud"]
    assert cli.main(live) == 3
    out = capsys.readouterr().out
    assert ("cloud now: 3 tagged instance(s) alive; not in the state: i-old, i-ours; "
            "another elastiq's (the same cluster name, left alone): i-theirs") in out
    assert cli.main([*live, "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert (data["untracked"], data["others"]) == (["i-old", "i-ours"], ["i-theirs"])
