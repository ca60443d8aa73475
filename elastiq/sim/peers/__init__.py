"""The baselines, for ``elastiq simulate`` only: the original elastiq and the field's tools
side by side with elastiq's own policy.

- ``legacy``: the original elastiq's algorithm (2014-2018) (:mod:`.legacy`);
- ``cobald``: COBalD's own ``LinearController`` driving TARDIS-like drones (:mod:`.cobald_pool`);
- ``cobald-relative``: the same with COBalD's ``RelativeSupplyController``;
- ``autoscaler``: Kubernetes cluster-autoscaler's policy (:mod:`.autoscaler`).

Each is a policy object with the methods of :class:`elastiq.core.policy.Policy` (its
``initial_memory``, ``plan``, ``record_launch``, ``resting_vms``;
:class:`~elastiq.core.policy.BasePolicy` the rest), except that ``plan``, ``record_launch`` and
``resting_vms`` take the whole :class:`~elastiq.config.Config` where the core's policies take
its :class:`~elastiq.core.params.Params`: they read settings the core does not (the polling
intervals the original and COBalD are paced by).  :class:`Configured` runs one with its
configuration under the core's protocol.  They live outside ``elastiq.core`` because the
daemon runs none of them, and the COBalD ones import the third-party ``cobald`` package (the
extra ``elastiq[peers]``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only
    from ...config import Config

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


class Configured:
    """A peer bound to the simulation's configuration, as the runtime runs a policy: the
    settings the runtime passes (the core's parameters, built from that same configuration)
    are left for the peer's own reading of ``config``."""

    def __init__(self, peer, config: Config):
        self.peer, self.config, self.name = peer, config, peer.name

    def initial_memory(self, seed: int = 0) -> Any:
        return self.peer.initial_memory(seed)

    def plan(self, snapshot, fleet, memory, params, now, catalogue=None):
        return self.peer.plan(snapshot, fleet, memory, self.config, now, catalogue)

    def record_launch(self, memory, outcome, params, now):
        return self.peer.record_launch(memory, outcome, self.config, now)

    def resting_vms(self, params) -> int:
        return self.peer.resting_vms(self.config)

    def drained_instead(self, memory, instance_id: str, now: float):
        return self.peer.drained_instead(memory, instance_id, now)

    def view(self, memory):
        return self.peer.view(memory)

    def dump_memory(self, memory) -> Any:
        return self.peer.dump_memory(memory)

    def load_memory(self, data: Any):
        return self.peer.load_memory(data)
