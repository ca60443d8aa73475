"""Checks across the keys of a loaded configuration: the core sections' rules, then the
configured plugins' own ``validate``.  The first problem raises :class:`InvalidConfig`."""
from __future__ import annotations

import logging
from typing import Iterator, Optional, Tuple

from ..adapters import BATCH_SYSTEMS, CLOUDS, is_dotted_path
from ..core import BASELINES, POLICIES
from .sections import PLUGIN_FIELDS, Config, plugin_module

_POSITIVE = ("check_queue_every_s", "list_vms_every_s", "recheck_after_action_s",
             "legacy_check_vms_every_s")
_NOT_NEGATIVE = ("waiting_jobs_time_s", "idle_timeout_max_s", "estimated_vm_deploy_time_s",
                 "launch_backoff_s", "launch_backoff_max_s", "idle_timeout_boot_factor",
                 "idle_timeout_min_s", "consolidate_after_s")


def plugin_problem(name: str, kind: str) -> Optional[str]:
    """Why ``elastiq.<kind>_plugin`` = ``name`` names no plugin (None: it does)."""
    registry = CLOUDS if kind == "cloud" else BATCH_SYSTEMS
    if name in registry or is_dotted_path(name):
        return None
    return f"unknown {name!r} (known: {', '.join(registry)}, or a 'package.module:Class' path)"


def core_problems(cfg: Config) -> Iterator[Tuple[str, str]]:
    e, q = cfg.elastiq, cfg.quota
    for name in _POSITIVE:
        if getattr(e, name) <= 0:
            yield f"elastiq.{name}", f"must be > 0 (got {getattr(e, name):g})"
    for name in _NOT_NEGATIVE:
        if getattr(e, name) is not None and getattr(e, name) < 0:
            yield f"elastiq.{name}", f"must not be negative (got {getattr(e, name):g})"
    if not 0 <= e.consolidate_below < 1:
        yield "elastiq.consolidate_below", f"must be in [0, 1) (got {e.consolidate_below:g})"
    for name in ("waiting_jobs_threshold", "n_jobs_per_vm"):
        if getattr(e, name) < 0:
            yield f"elastiq.{name}", f"must not be negative (got {getattr(e, name)})"
    if e.launch_backoff_max_s < e.launch_backoff_s:
        yield "elastiq.launch_backoff_max_s", "must be >= elastiq.launch_backoff_s"
    if not e.cluster_name.strip() or len(e.cluster_name) > 64:
        yield "elastiq.cluster_name", "must be a non-empty name of at most 64 characters"
    for kind in PLUGIN_FIELDS:
        problem = plugin_problem(getattr(e, f"{kind}_plugin"), kind)
        if problem:
            yield f"elastiq.{kind}_plugin", problem
    if e.policy in BASELINES:
        yield "elastiq.policy", f"{e.policy!r}: {BASELINES[e.policy]}"
    elif e.policy not in POLICIES:
        yield "elastiq.policy", f"unknown {e.policy!r} (known: {', '.join(POLICIES)})"
    if logging.getLevelName(e.log_level.upper()) == f"Level {e.log_level.upper()}":
        yield "elastiq.log_level", f"unknown level {e.log_level!r} (DEBUG, INFO, WARNING, ERROR)"
    if e.metrics_port is not None and not 0 < e.metrics_port < 65536:
        yield "elastiq.metrics_port", f"must be a TCP port 1-65535 (got {e.metrics_port})"
    for name in ("min_vms", "max_vms"):
        if getattr(q, name) < 0:
            yield f"quota.{name}", f"must not be negative (got {getattr(q, name)})"
    if q.min_vms > q.max_vms:
        yield "quota.min_vms", f"min_vms ({q.min_vms}) is greater than max_vms ({q.max_vms})"
    yield from quota_shape_problems(cfg)
    for name in ("cpus", "memory_mb", "disk_mb"):
        value = getattr(cfg.vm, name)
        if value is not None and value < 1:
            yield f"vm.{name}", f"must be >= 1 (got {value})"


def quota_shape_problems(cfg: Config) -> Iterator[Tuple[str, str]]:
    """``quota.max_cores``/``max_memory_mb``: set means > 0, and, where the ``vm`` section
    gives the (first) flavour's shape, room for one VM and for ``min_vms`` of them."""
    q = cfg.quota
    for name, key, unit in (("max_cores", "cpus", "cpus"), ("max_memory_mb", "memory_mb", "MiB")):
        shape = getattr(cfg.vm, key)
        limit = getattr(q, name)
        if limit is None:
            continue
        if limit < 1:
            yield f"quota.{name}", f"must be >= 1 (got {limit}); leave it out for no limit"
        elif shape is not None and limit < shape:
            yield f"quota.{name}", (f"{limit} is less than one VM's {shape} {unit} "
                                    f"(vm.{key}): no VM could start")
        elif shape is not None and limit < q.min_vms * shape:
            yield f"quota.{name}", (f"{limit} is less than min_vms x {shape} {unit} "
                                    f"({q.min_vms * shape}): min_vms could not be kept")


def problems(cfg: Config) -> Iterator[Tuple[str, str]]:
    """Every ``(section.key, problem)`` of ``cfg``: the core's, then each plugin's."""
    yield from core_problems(cfg)
    for kind in PLUGIN_FIELDS:
        module, settings = plugin_module(cfg.elastiq, kind), getattr(cfg, kind)
        if module is not None and settings is not None:
            for key, problem in module.validate(settings):
                yield key if key.startswith(f"{module.NAME}.") else f"{module.NAME}.{key}", problem
