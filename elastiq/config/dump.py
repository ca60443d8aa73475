"""Configuration out: as a dict/YAML (secrets masked on demand), the start-up summary line, and
the secret values the logs must never show."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, List, Tuple

import yaml

from .sections import CORE_SECTIONS, PLUGIN_FIELDS, Config, plugin_module


def plugin_sections(cfg: Config) -> Iterator[Tuple[str, str, Any, Any]]:
    """``(kind, section name, configuration module, Settings)`` of each configured plugin
    (kind "cloud", then "batch") that has a section."""
    for kind in PLUGIN_FIELDS:
        module, settings = plugin_module(cfg.elastiq, kind), getattr(cfg, kind)
        if module is not None and settings is not None:
            yield kind, module.NAME, module, settings


def section_classes(cfg: Config) -> Dict[str, type]:
    """Section name -> dataclass, for the core sections and the configured plugins'."""
    classes: Dict[str, type] = dict(CORE_SECTIONS)
    classes.update((name, module.Settings) for _, name, module, _ in plugin_sections(cfg))
    return classes


def to_dict(cfg: Config, include_secrets: bool = True, only_changed: bool = False) -> dict:
    out: Dict[str, Any] = {}
    sections = [(name, getattr(cfg, name), frozenset()) for name in CORE_SECTIONS]
    sections += [(name, settings, module.SECRET_KEYS)
                 for _, name, module, settings in plugin_sections(cfg)]
    for name, section, secret_keys in sections:
        default = type(section)()
        values = {}
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if only_changed and value == getattr(default, f.name):
                continue
            if isinstance(value, tuple):
                value = list(value)
            if f.name in secret_keys and value and not include_secrets:
                value = "***"
            values[f.name] = value
        if values or not only_changed:
            out[name] = values
    if cfg.substitute or not only_changed:
        out["substitute"] = dict(cfg.substitute)
    return out


def to_yaml(cfg: Config, include_secrets: bool = True, only_changed: bool = False) -> str:
    return yaml.safe_dump(to_dict(cfg, include_secrets, only_changed), sort_keys=False)


def summary(cfg: Config) -> str:
    """One line for the start-up log and ``config check``: no secret in it."""
    e, q = cfg.elastiq, cfg.quota
    sizing = f"{e.n_jobs_per_vm} jobs/VM" if e.n_jobs_per_vm else "packed by cpu/memory"
    parts = {kind: module.summary(settings) for kind, _, module, settings in plugin_sections(cfg)}
    cloud = f" {parts['cloud']}" if parts.get("cloud") else ""
    batch = f", {parts['batch']}" if parts.get("batch") else ""
    idle = (f"{min(e.idle_timeout_min_s, e.idle_timeout_max_s):g}-{e.idle_timeout_max_s:g} s"
            if e.idle_timeout_boot_factor else f"{e.idle_timeout_max_s:g} s")
    limits = ", ".join(f"{value} {unit}" for value, unit in
                       ((q.max_cores, "cores"), (q.max_memory_mb, "MiB")) if value is not None)
    limits = f" (at most {limits})" if limits else ""
    return (f"cluster {e.cluster_name!r}: {q.min_vms}-{q.max_vms} VMs{limits}{cloud}, {sizing},"
            f" idle timeout {idle}, cloud listed every {e.list_vms_every_s:g} s{batch}")


def secret_texts(cfg: Config) -> List[str]:
    """Every configured value the logs must not show (keys, user-data, its decoded text)."""
    return [text for _, _, module, settings in plugin_sections(cfg)
            for text in module.secret_texts(settings) if text]
