"""`elastiq simulate --policy cobald|cobald-relative|autoscaler|all`: one table, JSON per policy."""
from __future__ import annotations

import json
import sys

import pytest

from elastiq import cli
from elastiq.cli import simulate
from elastiq.sim import engine
from elastiq.sim.metrics import REQUIRED_KEYS

pytest.importorskip("cobald")


def run(capsys, monkeypatch, *args):
    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    code = cli.main(["simulate", "--quiet", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_policy_names_are_the_engine_ones():
    assert simulate.POLICIES == engine.POLICY_NAMES


def test_all_prints_one_table_with_every_policy(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "--policy", "all")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("synthetic(seed=0): 118 jobs; max_vms 10")
    assert lines[1].split()[:4] == ["policy", "VM-h", "busy", "booting"]
    assert [line.split()[0] for line in lines[2:7]] == list(engine.POLICY_NAMES)
    for line in lines[2:7]:
        assert line.split()[-4] == "118"  # every job done under every policy


def test_all_with_json_gives_each_policy_its_usual_object(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "--policy", "all", "--json")
    results = json.loads(out)
    assert code == 0 and list(results) == list(engine.POLICY_NAMES)
    for name, result in results.items():
        assert set(REQUIRED_KEYS) <= set(result) and result["policy"] == name


@pytest.mark.parametrize("policy", ["cobald", "autoscaler"])
def test_single_peer_policy_prints_the_usual_summary(capsys, monkeypatch, policy):
    code, out, _ = run(capsys, monkeypatch, "--policy", policy)
    assert code == 0 and f"policy                 {policy}  (max_vms 10," in out
    assert "jobs completed         118 / 118" in out


@pytest.mark.parametrize("policy", ["cobald", "all"])
def test_missing_cobald_is_a_clear_error(capsys, monkeypatch, policy):
    monkeypatch.setitem(sys.modules, "cobald", None)
    monkeypatch.setitem(sys.modules, "elastiq.sim.peers.cobald_pool", None)
    code, out, err = run(capsys, monkeypatch, "--policy", policy)
    assert code == 2 and not out
    assert "--policy cobald needs the cobald package" in err and "pip install 'elastiq[peers]'" in err
    assert "Traceback" not in err
