"""The lifecycle as a matrix: every previous state x every cloud state x every pool observation
goes through the public ``track``, and the result is compared with what the rules say in words
(``expected_*`` below, written from the module's docstring, not from its table)."""
from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from elastiq.core.lifecycle import _RULES, TRANSITIONS, _table, mark, track
from elastiq.model import (
    Instance,
    InstanceRecord,
    InstanceState,
    Lifecycle,
    Pool,
    Queue,
    Snapshot,
    Worker,
)

L, S = Lifecycle, InstanceState
NOW, DEPLOY = 1000.0, 600.0
ID, NAME = "i-1", "w-1"

#: Where an instance comes from: the record of the previous tick (None: first sight).
HISTORIES = {
    "first sight": None,
    "requested": InstanceRecord(L.REQUESTED, 900.0, 900.0),  # launched, never listed yet
    "requested, listed once": InstanceRecord(L.REQUESTED, 900.0, 900.0, listed_at=950.0),
    "booting": InstanceRecord(L.BOOTING, 800.0, 700.0, listed_at=750.0),
    "joined": InstanceRecord(L.JOINED, 800.0, 700.0, joined_at=800.0, worker=NAME,
                             busy_at=850.0, listed_at=750.0),
    "joined, worker missing": InstanceRecord(L.JOINED, 800.0, 100.0, joined_at=200.0, worker=NAME,
                                             missing_since=950.0, listed_at=150.0),
    "draining": InstanceRecord(L.DRAINING, 900.0, 700.0, joined_at=800.0, worker=NAME,
                               drain="idle", underused_since=700.0, listed_at=750.0),
    "terminating, never joined": InstanceRecord(L.TERMINATING, 900.0, 700.0, listed_at=750.0),
    "terminating, joined": InstanceRecord(L.TERMINATING, 900.0, 700.0, joined_at=800.0,
                                          worker=NAME, listed_at=750.0),
    "error, never joined": InstanceRecord(L.ERROR, 900.0, 700.0, listed_at=750.0),
    "error, joined": InstanceRecord(L.ERROR, 900.0, 700.0, joined_at=800.0, worker=NAME,
                                    listed_at=750.0),
}
#: What the cloud lists: each state, or nothing (launched DEPLOY s ago or less, or earlier).
CLOUDS = tuple(S) + ("unlisted, young", "unlisted, old")
#: What the pool and the queue show of its worker.
WORKERS = ("accepting, idle", "accepting, busy", "draining", "absent", "pool unreadable",
           "absent, a running job names it")
IN_POOL = ("accepting, idle", "accepting, busy", "draining")


def observe(history, cloud, worker):
    """``track``'s arguments for one cell of the matrix."""
    record = HISTORIES[history]
    if record is not None and cloud == "unlisted, young":
        record = replace(record, launched_at=NOW - DEPLOY + 1)
    elif record is not None and cloud == "unlisted, old":
        record = replace(record, launched_at=NOW - DEPLOY)
    records = {} if record is None else {ID: record}
    instances = () if cloud.startswith("unlisted") else (Instance(ID, cloud, 600.0, "c"),)
    others = (Instance("i-2", S.RUNNING, 0.0, "c"), Instance(ID + "x", S.RUNNING, 0.0, "other"))
    workers = (Worker("w-2", "i-2"),)
    if worker in IN_POOL:
        workers += (Worker(NAME, ID, running_jobs=1 if worker == "accepting, busy" else 0,
                           draining=worker == "draining"),)
    queue = Queue(running_on=frozenset({NAME}) if worker.endswith("names it") else frozenset())
    pool = None if worker == "pool unreadable" else Pool(workers)
    return Snapshot(queue, pool, instances + others), records


def first_sight(cloud):
    return {S.REQUESTED: L.REQUESTED, S.ERROR: L.ERROR}.get(cloud, L.BOOTING)


def named(history, worker):
    """A running job names the worker it knew (one that never joined has no name to match)."""
    return worker.endswith("names it") and bool(HISTORIES[history] and HISTORIES[history].worker)


def absent(history, worker):
    """The pool was read and has no worker for it, and no running job says otherwise."""
    return worker == "absent" or (worker.endswith("names it") and not named(history, worker))


def expected_lifecycle(history, cloud, worker):
    """The next lifecycle in words; None: no record any more."""
    before = HISTORIES[history]
    was = before.lifecycle if before is not None else None
    if cloud in (S.GONE, "unlisted, old"):
        return None  # the cloud forgot it: so do we
    if cloud == "unlisted, young":  # only our own fresh launch, never listed, may be missing
        return L.REQUESTED if was is L.REQUESTED and before.listed_at is None else None
    if cloud is S.SHUTTING_DOWN or was is L.TERMINATING:
        return L.TERMINATING  # on its way out, whatever the pool says
    if cloud is S.ERROR:
        return L.ERROR
    if worker in IN_POOL:
        return L.DRAINING if worker == "draining" else L.JOINED
    if absent(history, worker) and (before is None or before.joined_at is None):
        return L.REQUESTED if cloud is S.REQUESTED else L.BOOTING  # not in the pool yet
    return was or first_sight(cloud)  # pool unknown, or its worker missing: as it was


def expected_record(history, cloud, worker, lifecycle):
    """The whole record with ``lifecycle`` (what the rules say the record learns)."""
    before = HISTORIES[history] or InstanceRecord(first_sight(cloud), NOW, 600.0)
    if cloud == "unlisted, young":
        return replace(before, launched_at=NOW - DEPLOY + 1)  # kept as it was
    on_its_way = cloud in (S.SHUTTING_DOWN, S.ERROR) or lifecycle is L.TERMINATING
    learns = {}
    if worker in IN_POOL and not on_its_way:
        learns.update(joined_at=before.joined_at or NOW, worker=NAME, missing_since=None)
    if absent(history, worker) and before.joined_at is not None and not on_its_way:
        learns.update(missing_since=before.missing_since or NOW)
    if worker == "accepting, busy" or named(history, worker):
        learns.update(busy_at=NOW)
    if named(history, worker):
        learns.update(missing_since=None)  # a job runs there: it is not missing
    if before.listed_at is None:
        learns.update(listed_at=NOW)  # listed: since when, the first time
    if lifecycle is not before.lifecycle:
        learns.update(lifecycle=lifecycle, since=NOW,
                      drain=before.drain if lifecycle is L.DRAINING else None)
    return replace(before, **learns)


CELLS = list(itertools.product(HISTORIES, CLOUDS, WORKERS))


@pytest.mark.parametrize("history,cloud,worker", CELLS)
def test_every_state_meets_every_observation(history, cloud, worker):
    snapshot, records = observe(history, cloud, worker)
    fleet = track(snapshot, records, "c", DEPLOY, NOW)
    lifecycle = expected_lifecycle(history, cloud, worker)
    record = fleet.records.get(ID)
    if lifecycle is None:
        assert record is None
    else:
        assert record == expected_record(history, cloud, worker, lifecycle)
    members = {m.id: m for m in fleet.members}
    # a member counts against max_vms: alive, or our launch the cloud does not list yet
    assert (ID in members) == (lifecycle is not None and cloud is not S.SHUTTING_DOWN)
    if ID in members:
        assert members[ID].record == record and members[ID].listed == (cloud in tuple(S))
        assert (members[ID].worker is not None) == (worker in IN_POOL and cloud in tuple(S))
    assert sorted(members) == sorted({"i-2"} | ({ID} & set(members)))  # others: untouched
    # said once: ended without our terminate (forgotten, or shutting down), not by us before
    before = HISTORIES[history]
    ended = (before is not None and before.lifecycle is not L.TERMINATING
             and (lifecycle is None or cloud is S.SHUTTING_DOWN))
    assert dict(fleet.ended) == ({ID: records[ID]} if ended else {})


def test_the_matrix_covers_the_table():
    """Every lifecycle a record may hold meets every column of the table above."""
    assert {r.lifecycle for r in HISTORIES.values() if r} == set(Lifecycle)
    assert {key[0] for key in TRANSITIONS} == set(Lifecycle)
    assert len(CELLS) == len(HISTORIES) * (len(S) + 2) * len(WORKERS)


def test_a_table_with_a_hole_or_two_rules_for_a_cell_is_refused():
    with pytest.raises(ValueError, match=r"no rule for \(<Lifecycle.REQUESTED.*and 14 more"):
        _table(_RULES[:-1])
    with pytest.raises(ValueError, match=r"two rules for \(<Lifecycle.REQUESTED"):
        _table(_RULES + _RULES[-1:])


def test_a_pool_read_at_the_instant_of_a_planned_drain_does_not_cancel_it():
    snapshot, _ = observe("joined", S.RUNNING, "accepting, idle")
    records = {ID: HISTORIES["joined"]}
    mark(records, [ID], L.DRAINING, NOW, "idle")
    assert records[ID].lifecycle is L.DRAINING and records[ID].underused_since is None
    same_instant = track(snapshot, records, "c", DEPLOY, NOW).records[ID]
    assert (same_instant.lifecycle, same_instant.drain) == (L.DRAINING, "idle")
    later = track(snapshot, records, "c", DEPLOY, NOW + 1).records[ID]
    assert (later.lifecycle, later.since, later.drain) == (L.JOINED, NOW + 1, None)


def test_two_ads_for_one_vm_trust_the_busier():
    idle, busy = Worker("slot-a", ID), Worker("slot-b", ID, running_jobs=2)
    for workers in ((idle, busy), (busy, idle)):
        snapshot = Snapshot(Queue(), Pool(workers), (Instance(ID, S.RUNNING, 0.0, "c"),))
        (member,) = track(snapshot, {}, "c", DEPLOY, NOW).members
        assert member.worker is busy and member.record.busy_at == NOW


def test_an_unchanged_record_is_the_same_object():
    """The common case stays cheap: no new record when nothing changed."""
    snapshot, records = observe("joined", S.RUNNING, "accepting, idle")
    assert track(snapshot, records, "c", DEPLOY, NOW).records[ID] is records[ID]
