"""The HTCondor bindings behind the batch adapter: the few calls elastiq makes, and the one
boundary where their exceptions become domain errors.  With :mod:`.htcondor`, the only modules
importing ``htcondor2`` / ``classad2``.
"""
from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence

import classad2
import htcondor2

from . import ads as ads
from . import schedd_query
from . import template as template
from ..base import AdapterError, ConfigError, FatalError, TransientError

log = logging.getLogger("elastiq.adapters.htcondor.batch")
#: Seconds an HTCondor tool (condor_drain) may take before the call counts as failed.
TOOL_TIMEOUT_S = 60
#: What a schedd's ad must hold to reach it (``htcondor2.Collector.locateAll``'s projection),
#: and how many jobs it holds.
SCHEDD_LOCATION = ["MyAddress", "AddressV1", "CondorVersion", "CondorPlatform", "Name", "Machine",
                   "TotalJobAds"]
#: Seconds a schedd query in a child process (100,000 jobs: ~1.5 s) may take before it counts
#: as failed.
QUERY_TIMEOUT_S = 300


class CondorBindings:
    """The HTCondor calls elastiq makes, each one a fresh connection (no state to go stale):
    htcondor2 in this process, except the grouped queries of a big schedd (child processes,
    see :mod:`.schedd_query`) and the drains (HTCondor's ``condor_drain``, see :meth:`drain`).

    ``pool``: the collector (``host:port``); None means the configuration's COLLECTOR_HOST.
    """

    def __init__(self, pool: Optional[str] = None):
        self._pool = pool

    def _collector(self) -> htcondor2.Collector:
        return htcondor2.Collector(self._pool)

    def locate_schedds(self) -> List[classad2.ClassAd]:
        """Every schedd's location ad (``Collector.locateAll``'s), with its ``TotalJobAds``."""
        return self._collector().query(htcondor2.AdType.Schedd, projection=SCHEDD_LOCATION)

    def query_jobs(self, schedd: classad2.ClassAd, constraint: str,
                   projection: Sequence[str]) -> List[classad2.ClassAd]:
        return htcondor2.Schedd(schedd).query(constraint=constraint, projection=list(projection))

    def group_jobs(self, schedd: classad2.ClassAd, constraint: str, projection: Sequence[str],
                   apart: bool = False) -> List[classad2.ClassAd]:
        """One ad per set of jobs alike in every attribute of ``projection`` (which must hold
        those ``constraint`` reads), with ``JobCount`` and ``JobIds`` (``"c.p ... c.q"``).
        ``apart``: queried by a child process (:mod:`.schedd_query`), so that this process's
        other threads run meanwhile, and several such queries at once."""
        if not apart:
            return htcondor2.Schedd(schedd).query(constraint=constraint,
                                                  projection=list(projection),
                                                  opts=htcondor2.QueryOpt.GroupBy)
        request = json.dumps({"schedd": str(schedd), "constraint": constraint,
                              "projection": list(projection)})
        answer = _run([sys.executable, schedd_query.__file__], "the schedd query",
                      QUERY_TIMEOUT_S, request)
        return [classad2.ClassAd(text) for text in answer.split("\0")[:-1]]

    def query_slots(self, constraint: str, projection: Sequence[str]) -> List[classad2.ClassAd]:
        return self._collector().query(htcondor2.AdType.Startd, constraint=constraint,
                                       projection=list(projection))

    def collector_ads(self) -> List[classad2.ClassAd]:
        return self._collector().query(htcondor2.AdType.Collector,
                                       projection=["Name", "DaemonStartTime", "MyCurrentTime",
                                                   "MonitorSelfAge"])

    def drain(self, slot: str, reason: str) -> None:
        """Drain the startd of ``slot`` (a slot's Name, ``slot1@host``) gracefully, with
        HTCondor's own ``condor_drain``: a worker that holds a token but not the pool's signing
        key cannot check the master's token, and accepts its drain only with the admin
        capability it gave the collector (``SEC_ENABLE_REMOTE_ADMINISTRATION``), which the tool
        fetches and the bindings' ``Startd.drainJobs`` does not.  A slot's name, unlike a bare
        host name, is found in the collector without a DNS lookup."""
        self._tool("condor_drain", "-graceful", "-reason", reason, slot)

    def cancel_drain(self, slot: str) -> None:
        self._tool("condor_drain", "-cancel", slot)

    def _tool(self, name: str, *args: str) -> None:
        """Run an HTCondor tool from HTCondor's BIN directory against this pool."""
        path = os.path.join(htcondor2.param.get("BIN") or "/usr/bin", name)
        argv = [path] + (["-pool", self._pool] if self._pool else []) + list(args)
        _run(argv, name, TOOL_TIMEOUT_S,
             found_where="HTCondor's tools, found where its BIN setting says")


def _run(argv: List[str], what: str, timeout: float, request: str = "",
         found_where: str = "the Python running elastiq") -> str:
    """The standard output of a child process given ``request`` on its standard input;
    RuntimeError with what it said if it fails, cannot start or hangs."""
    try:
        done = subprocess.run(argv, input=request, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise RuntimeError(f"{argv[0]} is missing ({found_where})") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} did not answer within {timeout} s") from None
    if done.returncode != 0:
        said = " ".join((done.stderr.strip() or done.stdout.strip()).split())
        raise RuntimeError(f"{what} failed (exit code {done.returncode}): {said}")
    return done.stdout


def daemon_started(ad: Any) -> Optional[float]:
    """A daemon's start time: DaemonStartTime, else its clock less its age (a collector ad
    of HTCondor 25 has no DaemonStartTime, only MyCurrentTime and MonitorSelfAge)."""
    started = ads.number(ad, "DaemonStartTime")
    if started is None:
        now, age = ads.number(ad, "MyCurrentTime"), ads.number(ad, "MonitorSelfAge")
        started = None if now is None or age is None else now - age
    return started


@contextlib.contextmanager
def boundary(what: str) -> Iterator[None]:
    """Translate binding errors into domain errors, once, here."""
    try:
        yield
    except AdapterError:
        raise
    except (htcondor2.HTCondorException, classad2.ClassAdException, OSError, RuntimeError) as exc:
        if "determine collector host" in str(exc):  # no COLLECTOR_HOST: no retry will find one
            where = os.environ.get("CONDOR_CONFIG") or "/etc/condor/condor_config"
            raise ConfigError(f"{what}: HTCondor's configuration names no collector (set "
                              f"COLLECTOR_HOST, configuration {where}): {exc}") from exc
        raise TransientError(f"{what}: {str(exc) or type(exc).__name__}") from exc
    except Exception as exc:
        raise FatalError(f"{what}: unexpected {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while translating a query result: it makes
    ~200,000 short-lived acyclic objects per 100,000 ads, and the collector would rescan the
    whole heap several times meanwhile (a third of the time at that size)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def local_facts() -> Dict[str, Any]:
    """What the local HTCondor (the bindings, on the master) says of this host and itself."""
    try:
        params = {name: htcondor2.param.get(name) for name in template.LOCAL_PARAMS}
        return template.local_attrs(params, htcondor2.version().strip() or None)
    except Exception as exc:  # no usable local configuration: the configuration alone
        log.debug("no facts from the local HTCondor: %s", exc)
        return {}
