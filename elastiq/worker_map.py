"""Which cloud instance a worker of the batch system runs on: what the worker advertises, else
its address (the IP fallback).  Neutral: any batch adapter reads the cluster, instance id and
addresses a worker advertises in its own words, and asks :func:`place`.

The fallback is for workers that do not advertise the instance id (started by hand, or by an
older user-data): a worker advertising no cluster is ours only when one of its addresses is a
private IP of one of our instances; a worker of another cluster is never ours.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Optional, Sequence


class Placement(NamedTuple):
    """``ours``: the worker belongs to our cluster (else ``note`` says why it is left alone).
    ``instance_id`` None: ours but not mapped to an instance (such a worker is never touched).
    ``address``: the address it is known by (the one that matched, else its contact address)."""

    ours: bool
    instance_id: Optional[str] = None
    address: Optional[str] = None
    note: Optional[str] = None


def place(name: str, cluster_said: Optional[str], instance_said: Optional[str],
          contact: Sequence[str], addresses: Callable[[], Sequence[str]], cluster: str,
          known_ips: Mapping[str, str]) -> Placement:
    """Place the worker ``name`` that advertises ``cluster_said`` and ``instance_said`` (None:
    nothing).  ``contact``: the IPs of the address it is contacted at; ``addresses()``: every IP
    it is known by, the contact one first (asked only for the fallback: it may cost some
    parsing); ``known_ips``: private IP -> instance id of our instances."""
    if cluster_said is not None and cluster_said != cluster:
        return Placement(False, note=f"{name}: belongs to cluster {cluster_said!r}, left alone")
    ips, by_ip = contact, None
    if cluster_said is None or instance_said is None:
        ips = addresses()
        by_ip = next(((ip, known_ips[ip]) for ip in ips if ip in known_ips), None)
        if cluster_said is None and by_ip is None:
            return Placement(False, note=f"{name}: advertises no cluster and no IP of ours "
                                         f"({', '.join(ips) or '-'})")
    if by_ip is not None:
        return Placement(True, instance_said or by_ip[1], by_ip[0])
    return Placement(True, instance_said, ips[0] if ips else None)
