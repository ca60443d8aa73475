"""The baselines, for ``elastiq simulate`` only: the original elastiq and the field's tools
side by side with elastiq's own policy.

- ``legacy``: the original elastiq's algorithm (2014-2018) (:mod:`.legacy`);
- ``cobald``: COBalD's own ``LinearController`` driving TARDIS-like drones (:mod:`.cobald_pool`);
- ``cobald-relative``: the same with COBalD's ``RelativeSupplyController``;
- ``autoscaler``: Kubernetes cluster-autoscaler's policy (:mod:`.autoscaler`).

Each is a policy object of :class:`elastiq.core.policy.Policy` (its ``initial_memory``,
``plan``, ``record_launch``; :class:`~elastiq.core.policy.BasePolicy` the rest).  They live
outside ``elastiq.core`` because the daemon runs none of them, and the COBalD ones import the
third-party ``cobald`` package (the extra ``elastiq[peers]``).
"""
from __future__ import annotations

NAMES = ("legacy", "cobald", "cobald-relative", "autoscaler")


class PolicyUnavailable(Exception):
    """A peer policy cannot run here (its package is missing); the message says what to install."""


def get_peer(name: str):
    """The policy object registered under ``name`` (KeyError if unknown)."""
    if name not in NAMES:
        raise KeyError(name)
    if name == "legacy":
        from .legacy import LegacyPolicy
        return LegacyPolicy()
    if name == "autoscaler":
        from .autoscaler import AutoscalerPolicy
        return AutoscalerPolicy()
    try:
        from .cobald_pool import CobaldPolicy
    except ImportError as err:
        raise PolicyUnavailable(
            f"--policy {name} needs the cobald package ({err}): pip install 'elastiq[peers]'") from None
    return CobaldPolicy("relative" if name == "cobald-relative" else "linear")
