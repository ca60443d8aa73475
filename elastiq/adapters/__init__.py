"""Adapters: everything that touches the world.  Registries map config names to classes.

Entries are ``"module:Class"`` strings so that choosing an adapter imports only its SDK.
Adding a batch system or a cloud = one adapter module + one line here + its tests.
A name that is not registered may be given as a dotted ``"package.module:Class"`` path (used by
test-support adapters and site-specific plugins).
"""
from __future__ import annotations

import importlib

BATCH_SYSTEMS = {
    "htcondor": "elastiq.adapters.htcondor:HTCondorBatch",
}

CLOUDS = {
    "ec2": "elastiq.adapters.ec2:EC2Cloud",
    "openstack": "elastiq.adapters.openstack:OpenStackCloud",  # HOOK (issue 14): registry line
}


def is_dotted_path(name: str) -> bool:
    """True for a ``"package.module:Class"`` path (as opposed to a registry name)."""
    module_name, sep, class_name = name.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module_name.split(".")) \
        and class_name.isidentifier()


def load_class(registry: dict, name: str):
    """The class registered as ``name``, or named by a dotted ``"module:Class"`` path."""
    spec = name if name not in registry and is_dotted_path(name) else registry[name]
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
