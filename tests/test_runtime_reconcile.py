"""Start-up reconciliation: tagged instances are ours, even with the state file lost."""
from __future__ import annotations

from dataclasses import replace

from elastiq.model import Instance, InstanceRecord, InstanceState, Lifecycle, Pool, Snapshot, Worker
from elastiq.config import load, params_of
from elastiq.runtime.reconcile import reconcile

PARAMS = params_of(load(None, ["elastiq.cluster_name=test",
                              "elastiq.estimated_vm_deploy_time_s=600"]))

NOW = 10_000.0


def inst(iid, state=InstanceState.RUNNING, cluster="test", launched_at=NOW - 600):
    return Instance(iid, state, launched_at, cluster, "10.0.0.9")


def test_tagged_instances_missing_from_memory_are_adopted_from_cloud_and_pool():
    instances = (inst("i-run"), inst("i-boot", InstanceState.BOOTING), inst("i-err", InstanceState.ERROR),
                 inst("i-stop", InstanceState.SHUTTING_DOWN), inst("i-gone", InstanceState.GONE),
                 inst("i-drain"), inst("i-other", cluster="other"), inst("i-untagged", cluster=None))
    pool = Pool((Worker("w-run", "i-run"), Worker("w-drain", "i-drain", draining=True)))
    records, report = reconcile({}, Snapshot(None, pool, instances), PARAMS, NOW)
    assert report.adopted == ("i-boot", "i-drain", "i-err", "i-run", "i-stop")
    assert report.missing == () and report.kept == 0
    got = {i: (r.lifecycle, r.worker, r.joined_at, r.launched_at) for i, r in records.items()}
    assert got == {
        "i-run": (Lifecycle.JOINED, "w-run", NOW, NOW - 600),
        "i-drain": (Lifecycle.DRAINING, "w-drain", NOW, NOW - 600),
        "i-boot": (Lifecycle.BOOTING, None, None, NOW - 600),
        "i-err": (Lifecycle.ERROR, None, None, NOW - 600),
        "i-stop": (Lifecycle.TERMINATING, None, None, NOW - 600),
    }


def test_missing_records_are_reported():
    saved = {
        "i-a": InstanceRecord(Lifecycle.DRAINING, NOW - 50, NOW - 900, NOW - 800, "w-a"),
        "i-lost": InstanceRecord(Lifecycle.REQUESTED, NOW - 3, NOW - 3),
    }
    records, report = reconcile(saved, Snapshot(None, None, (inst("i-a"),)), PARAMS, NOW)
    # kept as saved, with when the cloud listed it first (a state saved before that was noted)
    assert records["i-a"] == replace(saved["i-a"], listed_at=NOW)
    assert "i-lost" in records  # requested 3 s ago: the cloud may not list it yet
    assert report.adopted == () and report.missing == ("i-lost",) and report.kept == 1
    assert report.lines()[-1] == "1 saved instance(s) not listed by the cloud: i-lost"


def test_without_a_listing_nothing_is_reconciled():
    saved = {"i-a": InstanceRecord(Lifecycle.JOINED, 1.0, 1.0)}
    unlisted = Snapshot(None, None, None, ("cloud unreadable",))
    assert reconcile(saved, unlisted, PARAMS, NOW) == (saved, None)


def test_an_instance_without_launch_time_is_dated_now():
    records, _ = reconcile({}, Snapshot(None, None, (inst("i-x", launched_at=0.0),)), PARAMS, NOW)
    assert records["i-x"].launched_at == NOW
