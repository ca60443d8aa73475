"""Pure translation of HTCondor slot ads into elastiq's Pool: one Worker per startd.

Like :mod:`.ads`, no I/O and no import of the bindings.  Fail-safe rules:

- A slot ad whose State is unreadable counts as claimed (never kill a running job).
- A slot ad that names no machine (no Name, no Machine) cannot be placed: the caller reports
  the Pool partial, so the core makes no scale-down from it.
- A startd of another cluster, or of none and with no IP we know, is left alone (the IP
  fallback is :mod:`elastiq.worker_map`'s; reading HTCondor's addresses is this module's).
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ...model import Worker
from ...worker_map import place
from .ads import number, text

SLOT_PROJECTION = (
    "Name", "Machine", "SlotType", "PartitionableSlot", "DynamicSlot", "State", "Activity",
    "Cpus", "Memory", "TotalSlotCpus", "TotalSlotMemory", "EnteredCurrentState",
    "EnteredCurrentActivity", "NumDynamicSlotsTime", "Draining", "ElastiqInstanceId",
    "ElastiqCluster", "StartdIpAddr", "MyAddress", "CondorVersion", "ElastiqDockerProblem",
)
#: Slot states in which a job runs or is about to: such a slot is claimed.
BUSY_STATES = frozenset({"Claimed", "Matched", "Preempting"})
_SINFUL_HOST = re.compile(r"^<\[?([0-9A-Fa-f:.]+?)\]?:\d+")
_SINFUL_ADDRS = re.compile(r"[?&]addrs=([^&>]+)")
_DASHED_IP = re.compile(r"^(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?:\.|$)")


def _drains(draining: Any, state: Any) -> bool:
    """A slot's ``Draining`` and ``State`` say its startd drains (or has drained)."""
    return draining is True or state == "Drained"


def startd_name(ad: Any) -> Optional[str]:
    """The startd a slot belongs to: ``slot1_2@host`` -> ``host`` (``vm-a@vm`` for a named
    startd); equals Machine on a worker running one startd.  None if the ad names nothing."""
    name = text(ad.get("Name"))
    if name and "@" in name:
        return name.split("@", 1)[1] or None
    return text(ad.get("Machine")) or name


def candidate_ips(addresses: Iterable[str], names: Iterable[str]) -> List[str]:
    """IPs a worker is known by: sinful strings (host and ``addrs=``), and NO_DNS host names
    made of the dashed IP (``10-64-22-215.INFN-PD`` -> ``10.64.22.215``)."""
    found: List[str] = []
    for sinful in addresses:
        host = _SINFUL_HOST.match(sinful)
        found.extend([host.group(1)] if host else [])
        for addrs in _SINFUL_ADDRS.findall(sinful):
            found.extend(a.rsplit("-", 1)[0].strip("[]") for a in addrs.split("+") if "-" in a)
    for name in names:
        dashed = _DASHED_IP.match(name.rsplit("@", 1)[-1])
        if dashed and all(int(p) < 256 for p in dashed.groups()):
            found.append(".".join(dashed.groups()))
    return list(dict.fromkeys(found))


class _Machine:
    """One startd's slots, summed up.  Reads as few attributes per slot as it can: a busy
    dynamic slot costs two lookups (10,000 slot ads per observation)."""

    __slots__ = ("cpus", "memory", "free_cpus", "free_memory", "claimed", "last_change",
                 "draining", "instance", "cluster", "addresses", "names")

    def __init__(self, ad: Any) -> None:
        self.cpus = self.memory = self.free_cpus = self.free_memory = self.claimed = 0
        self.last_change: Optional[float] = None
        self.draining = False
        self.instance = self.cluster = None
        self.addresses = [a for a in (text(ad.get("StartdIpAddr")), text(ad.get("MyAddress"))) if a]
        self.names = [a for a in (text(ad.get("Name")), text(ad.get("Machine"))) if a]

    def add(self, ad: Any) -> None:
        get = ad.get
        kind, state = get("SlotType"), get("State")
        if kind not in ("Partitionable", "Dynamic", "Static"):  # older startds: flags only
            kind = ("Dynamic" if get("DynamicSlot") is True else
                    "Partitionable" if get("PartitionableSlot") is True else "Static")
        busy = type(state) is not str or state in BUSY_STATES
        if busy:
            self.claimed += 1
        if kind != "Dynamic":  # a dynamic slot is carved out of its partitionable slot's totals
            cpus, memory = number(ad, "Cpus") or 0, number(ad, "Memory") or 0
            self.cpus += int(number(ad, "TotalSlotCpus") or cpus)
            self.memory += int(number(ad, "TotalSlotMemory") or memory)
            self.draining = self.draining or _drains(get("Draining"), state)
        if not busy or kind == "Partitionable":
            if kind == "Dynamic":
                cpus, memory = number(ad, "Cpus") or 0, number(ad, "Memory") or 0
            self.free_cpus += int(cpus)
            self.free_memory += int(memory)
            times = [number(ad, a) for a in ("EnteredCurrentState", "EnteredCurrentActivity",
                                              "NumDynamicSlotsTime")] + [self.last_change]
            self.last_change = max((t for t in times if t is not None), default=None)
        if self.instance is None:
            self.instance = text(get("ElastiqInstanceId"))
        if self.cluster is None:
            self.cluster = text(get("ElastiqCluster"))


def aggregate_workers(ads: Iterable[Any], cluster: str, known_ips: Mapping[str, str]):
    """Group slot ads per startd into Workers of our cluster.

    Which are ours and on which instance: :func:`elastiq.worker_map.place`, from the
    ``ElastiqCluster`` and ``ElastiqInstanceId`` a startd advertises and the IPs HTCondor knows
    it by (:func:`candidate_ips`); ``known_ips``: ip -> instance id of our instances.
    ``idle_since``: None while a slot is claimed, else the latest time any slot changed state,
    activity or number of dynamic slots (None when no slot says: never idle by accident).
    Returns ``(workers, notes, malformed)``; ``malformed`` slot ads could not be placed.
    """
    machines: Dict[str, _Machine] = {}
    malformed = 0
    for ad in ads:
        name = startd_name(ad)
        if name is None:
            malformed += 1
            continue
        machine = machines.get(name)
        if machine is None:
            machine = machines[name] = _Machine(ad)
        machine.add(ad)
    workers: List[Worker] = []
    notes: List[str] = []
    for name, m in machines.items():
        placed = place(name, m.cluster, m.instance, candidate_ips(m.addresses[:1], []),
                       partial(candidate_ips, m.addresses, [name] + m.names), cluster, known_ips)
        if not placed.ours:
            notes.append(placed.note)
            continue
        workers.append(Worker(
            name=name, instance_id=placed.instance_id, address=placed.address, cpus=m.cpus,
            memory_mb=m.memory, running_jobs=m.claimed, free_cpus=m.free_cpus, free_memory_mb=m.free_memory,
            idle_since=None if m.claimed else m.last_change, draining=m.draining))
    return tuple(workers), notes, malformed


def docker_problems(ads: Iterable[Any]) -> Dict[str, str]:
    """startd name -> why docker does not work for jobs there, as the worker's
    elastiq-docker-check advertises it (``ElastiqDockerProblem``, in place of ``HasDocker``)."""
    found: Dict[str, str] = {}
    for ad in ads:
        why, name = text(ad.get("ElastiqDockerProblem")), startd_name(ad)
        if why and name:
            found.setdefault(name, why)
    return found


def slot_constraint(quoted_cluster: str) -> str:
    """Collector-side filter: slots of our cluster or advertising none (IP fallback)."""
    return f"ElastiqCluster =?= undefined || ElastiqCluster =?= {quoted_cluster}"


def names_draining(ads: Sequence[Any], worker: str) -> Optional[bool]:
    """Whether the slots of ``worker`` say it drains; None when no slot of it is listed."""
    mine = [ad for ad in ads if startd_name(ad) == worker]
    if not mine:
        return None
    return any(_drains(ad.get("Draining"), ad.get("State")) for ad in mine)
