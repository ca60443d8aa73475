"""Adapters: everything that touches the world.  Registries map config names to classes.

Entries are ``"module:Class"`` strings so that choosing an adapter imports only its SDK.
Adding a batch system or a cloud = one adapter module + one line here + its tests.
"""
from __future__ import annotations

import importlib

BATCH_SYSTEMS = {
    "htcondor": "elastiq.adapters.htcondor:HTCondorBatch",
}

CLOUDS = {
    "ec2": "elastiq.adapters.ec2:EC2Cloud",
}


def load_class(registry: dict, name: str):
    module_name, _, class_name = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
