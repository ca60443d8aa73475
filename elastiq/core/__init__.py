"""The pure decision core: no I/O, no SDK imports, no clock reads (``now`` is a parameter).

A *policy* is an object of the :class:`~elastiq.core.policy.Policy` protocol: it plans (and
folds a launch's outcome into its own small memory, if it keeps one); the per-instance
lifecycle records are the runtime's, kept by :mod:`.records` for every policy.  ``default``
(:mod:`.decide`) is the daemon's policy, the one named by ``elastiq.policy``.  The original
elastiq's algorithm and the other projects' policies are baselines of ``elastiq simulate``
(:mod:`elastiq.sim.peers`).  The core reads its settings from :class:`~.params.Params`, which
the runtime builds from the configuration; it never imports :mod:`elastiq.config`.
"""
from __future__ import annotations

from .policy import DefaultPolicy, Policy

#: Registered policies the daemon can run: name -> class.  One line per policy.
POLICIES = {
    "default": DefaultPolicy,
}

#: Policies that are baselines of ``elastiq simulate`` only: name -> what to do instead.
BASELINES = {
    "legacy": "the original elastiq's algorithm is a baseline of `elastiq simulate --policy "
              "legacy`, not run by the daemon: set 'default' (or remove the key)",
}


def get_policy(name: str) -> Policy:
    """A policy object registered under ``name`` (KeyError if unknown)."""
    return POLICIES[name]()
