"""A thin fake of the htcondor2 calls made through ``CondorBindings``, fed with real ClassAds.

It behaves like the daemons where elastiq depends on it: constraints are evaluated with the
real classad library, projections strip every attribute not asked for, a startd refuses a
second drain and a cancel when it does not drain, unreachable daemons raise the bindings'
own ``HTCondorException``.  Every call is recorded in ``calls``.
"""
from __future__ import annotations

import os
import pathlib
from typing import Dict, List, Optional, Sequence, Union

import classad2
import htcondor2

from elastiq.adapters.htcondor.batch import HTCondorBatch
from elastiq.adapters.htcondor.config import Settings as HTCondorSettings
from elastiq.config import Config, ElastiqSection, VMSection

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "htcondor"
SCHEDD = "master@vm"


def load(name: str) -> List[classad2.ClassAd]:
    with open(FIXTURES / name) as handle:
        return list(classad2.parseAds(handle))


def by_id(ads: Sequence[classad2.ClassAd], job: str) -> classad2.ClassAd:
    cluster, proc = (int(x) for x in job.split("."))
    return next(a for a in ads if a["ClusterId"] == cluster and a["ProcId"] == proc)


def schedd_ad(name: str) -> classad2.ClassAd:
    ad = load("schedd.long.txt")[0]
    ad["Name"] = name
    return ad


def _select(ads, constraint: str, projection: Optional[Sequence[str]]) -> List[classad2.ClassAd]:
    test = classad2.ExprTree(constraint)
    out = []
    for ad in ads:
        if test.eval(scope=ad) is not True:
            continue
        if not projection:
            out.append(next(classad2.parseAds(ad.printOld())))
            continue
        copy = classad2.ClassAd()
        for attr in projection:
            if attr in ad:
                copy[attr] = ad.lookup(attr)
        out.append(copy)
    return out


class FakeBindings:
    """``jobs``: schedd name -> job ads, or an exception that schedd raises when queried."""

    def __init__(self, jobs: Dict[str, Union[List[classad2.ClassAd], Exception]],
                 slots: List[classad2.ClassAd], startds: List[classad2.ClassAd]):
        self.jobs, self.slots, self.startds = jobs, slots, startds
        self.collector_error: Optional[Exception] = None
        self.calls: List[tuple] = []

    def _collector(self):
        if self.collector_error is not None:
            raise self.collector_error

    def locate_schedds(self):
        self.calls.append(("locate_schedds",))
        self._collector()
        return [schedd_ad(name) for name in self.jobs]

    def query_jobs(self, schedd, constraint, projection):
        self.calls.append(("query_jobs", schedd["Name"], constraint, tuple(projection)))
        jobs = self.jobs[schedd["Name"]]
        if isinstance(jobs, Exception):
            raise jobs
        return _select(jobs, constraint, projection)

    def group_jobs(self, schedd, constraint, projection, apart=False):
        """As the schedd answers ``QueryOpt.GroupBy``: the constraint sees the projected
        attributes only; one ad per set of jobs whose projected attributes read the same
        (the first one's), with ``JobCount`` and ``JobIds`` ("c.p" or "c.p ... c.q").
        ``apart`` (a child process's query) changes nothing here; it is recorded."""
        self.calls.append(("group_jobs", schedd["Name"], constraint, tuple(projection))
                          + (("apart",) if apart else ()))
        jobs = self.jobs[schedd["Name"]]
        if isinstance(jobs, Exception):
            raise jobs
        groups: Dict[tuple, list] = {}
        for full, ad in zip(jobs, _select(jobs, "true", projection)):
            if classad2.ExprTree(constraint).eval(scope=ad) is True:
                key = tuple(str(ad.lookup(a)) if a in ad else None for a in projection)
                groups.setdefault(key, []).append((full, ad))
        out = []
        for members in groups.values():
            ad = members[0][1]
            ids = sorted((f.get("ClusterId"), f.get("ProcId")) for f, _ in members
                         if all(isinstance(f.get(a), int) for a in ("ClusterId", "ProcId")))
            ad["JobCount"] = len(members)
            if ids:
                shown = [f"{c}.{p}" for c, p in (ids[0], ids[-1])]
                ad["JobIds"] = shown[0] if len(members) == 1 else " ... ".join(shown)
            out.append(ad)
        return out

    def query_slots(self, constraint, projection):
        self.calls.append(("query_slots", constraint, tuple(projection)))
        self._collector()
        return _select(self.slots, constraint, projection)

    def collector_ads(self):
        self.calls.append(("collector_ads",))
        self._collector()
        return load("collector.long.txt")

    def _startd(self, slot):
        """The startd daemon ad of ``slot``, as condor_drain finds it from a slot's name."""
        self._collector()
        name = slot.split("@", 1)[1]
        for ad in self.startds:
            if ad["Name"] == name:
                return ad
        raise RuntimeError(f"condor_drain failed (exit code 1): Can't find address for {slot}")

    def _slots_of(self, startd):
        return [s for s in self.slots if s["Name"].split("@", 1)[1] == startd["Name"]]

    def drain(self, slot, reason):
        self.calls.append(("drain", slot, reason))
        startd = self._startd(slot)
        mine = self._slots_of(startd)
        if any(s.get("Draining") is True for s in mine):
            raise RuntimeError("condor_drain failed (exit code 1): Draining already in progress")
        for ad in mine + [startd]:
            ad.update({"Draining": True, "DrainReason": reason, "DrainingRequestId": "7"})

    def cancel_drain(self, slot):
        self.calls.append(("cancel_drain", slot))
        startd = self._startd(slot)
        mine = self._slots_of(startd)
        if not any(s.get("Draining") is True for s in mine):
            raise RuntimeError("condor_drain failed (exit code 1): not draining")
        for ad in mine + [startd]:
            for attr in ("Draining", "DrainReason", "DrainingRequestId"):
                ad.pop(attr, None)
            if ad.get("State") == "Drained":
                ad["State"] = "Unclaimed"


def config(cluster="demo", has_docker=True, **vm):
    """The Config of the captured cluster "demo" with 4 cpus / 8 GB worker VMs (``vm``: more)."""
    shape = dict(cpus=4, memory_mb=8192, disk_mb=20000)
    shape.update(vm)
    return Config(elastiq=ElastiqSection(cluster_name=cluster), vm=VMSection(**shape),
                  batch=HTCondorSettings(has_docker=has_docker))


def fake(jobs=None, slots=None) -> "FakeBindings":
    """Bindings answering with the captured queue and pool, or ``jobs`` / ``slots``."""
    return FakeBindings({SCHEDD: load("jobs.queue.long.txt") if jobs is None else jobs},
                        load("startd.slots.long.txt") if slots is None else slots,
                        load("startd.daemons.long.txt"))


class FixturePool(HTCondorBatch):
    """The real HTCondor adapter on captured ads, as a ``batch_plugin`` for a daemon run in a
    subprocess: ``tests.htcondor_fake:FixturePool``.  Job ads come from the file named by
    ``$ELASTIQ_TEST_JOB_ADS`` (old ClassAd format) for one schedd; the pool is empty."""

    def __init__(self, config, catalogue=None):
        with open(os.environ["ELASTIQ_TEST_JOB_ADS"]) as handle:
            jobs = list(classad2.parseAds(handle))
        super().__init__(config, bindings=FakeBindings({SCHEDD: jobs}, [], []),
                         catalogue=catalogue)
