"""The pure decision core: no I/O, no SDK imports, no clock reads (``now`` is a parameter).

A *policy* is an object with three pure functions::

    initial_memory() -> memory
    plan(snapshot, memory, config, now) -> (Plan, memory)
    record_launch(memory, outcome: LaunchOutcome, config, now) -> memory

``default`` is elastiq's policy; ``legacy`` reproduces the original elastiq (2014-2018) for
comparison in ``elastiq simulate``.  The runtime and the simulator only talk to this interface.
"""
from __future__ import annotations

import importlib

POLICIES = {
    "default": "elastiq.core.decide",
    "legacy": "elastiq.core.legacy",
}


def get_policy(name: str):
    """Return the policy module registered under ``name`` (KeyError if unknown)."""
    return importlib.import_module(POLICIES[name])
