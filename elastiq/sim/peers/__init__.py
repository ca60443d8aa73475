"""Policies of other projects, for ``elastiq simulate`` only: the field's tools side by side.

- ``cobald``: COBalD's own ``LinearController`` driving TARDIS-like drones (:mod:`.cobald_pool`);
- ``cobald-relative``: the same with COBalD's ``RelativeSupplyController``;
- ``autoscaler``: Kubernetes cluster-autoscaler's policy (:mod:`.autoscaler`).

Each is a policy object with the three pure functions of :mod:`elastiq.core`
(``initial_memory``, ``plan``, ``record_launch``) and ``resting_vms(config)``: how many VMs it
keeps when nothing runs.  They live outside ``elastiq.core`` because the COBalD ones import the
third-party ``cobald`` package (the extra ``elastiq[peers]``).
"""
from __future__ import annotations

NAMES = ("cobald", "cobald-relative", "autoscaler")


class PolicyUnavailable(Exception):
    """A peer policy cannot run here (its package is missing); the message says what to install."""


def get_peer(name: str):
    """The policy object registered under ``name`` (KeyError if unknown)."""
    if name not in NAMES:
        raise KeyError(name)
    if name == "autoscaler":
        from .autoscaler import AutoscalerPolicy
        return AutoscalerPolicy()
    try:
        from .cobald_pool import CobaldPolicy
    except ImportError as err:
        raise PolicyUnavailable(
            f"--policy {name} needs the cobald package ({err}): pip install 'elastiq[peers]'") from None
    return CobaldPolicy("relative" if name == "cobald-relative" else "linear")
