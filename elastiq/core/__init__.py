"""The pure decision core: no I/O, no SDK imports, no clock reads (``now`` is a parameter).

A *policy* is an object of the :class:`~elastiq.core.policy.Policy` protocol: ``plan`` and
``record_launch``, and the few operations the runtime needs on the policy's memory (adopt
instances after a restart, undo an action not carried out, join times, what it owns), which
stays opaque to the runtime.  ``default`` is elastiq's policy; ``legacy`` reproduces the
original elastiq (2014-2018) for comparison in ``elastiq simulate``.  The daemon runs the one
named by ``elastiq.policy`` in its configuration.
"""
from __future__ import annotations

from .policy import DefaultPolicy, LegacyPolicy, Policy

#: Registered policies: name -> class.  One line per policy.
POLICIES = {
    "default": DefaultPolicy,
    "legacy": LegacyPolicy,
}


def get_policy(name: str) -> Policy:
    """A policy object registered under ``name`` (KeyError if unknown)."""
    return POLICIES[name]()
