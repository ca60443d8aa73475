"""Loading: YAML, the original elastiq's INI, ``--set`` overrides; plugins' sections.

The configured plugins' sections (``elastiq.cloud_plugin``, ``elastiq.batch_plugin``) are read
with their own Settings (see :mod:`elastiq.adapters`).  A section of a registered plugin that
is not configured is checked and ignored, with a note; keys a plugin took over from another
section (``vm.opsys`` -> ``htcondor.opsys``) are still read, with a note.
"""
from __future__ import annotations

import configparser
import dataclasses
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml

from . import text as config_text
from ..adapters import BATCH_SYSTEMS, CLOUDS, config_module
from .check import plugin_problem, problems
from .coerce import section, substitute
from .dump import to_dict
from .sections import CORE_SECTIONS, PLUGIN_FIELDS, RENAMED_KEYS, Config, plugin_module
from .text import InvalidConfig


def _registered_modules() -> Dict[str, Any]:
    """Section name -> configuration module of every registered plugin."""
    found = {}
    for registry in (CLOUDS, BATCH_SYSTEMS):
        for name in registry:
            module = config_module(registry, name)
            if module is not None:
                found[module.NAME] = module
    return found


def _move_keys(data: Dict[str, Any], modules: Iterable[Any], source: Optional[str],
               notes: List[str]) -> None:
    """Move each plugin's MOVED_KEYS from their old section into the plugin's, in place."""
    for module in modules:
        for old, new in getattr(module, "MOVED_KEYS", {}).items():
            old_section, _, old_key = old.partition(".")
            found = data.get(old_section)
            if not isinstance(found, Mapping) or old_key not in found:
                continue
            target = data.get(module.NAME) or {}
            if not isinstance(target, Mapping):
                continue  # reported as "expected a mapping" when the section is read
            if new in target:
                raise InvalidConfig(source, old, f"moved to {module.NAME}.{new}, which is set "
                                    f"too: remove {old}")
            data[old_section] = {k: v for k, v in found.items() if k != old_key}
            data[module.NAME] = {**target, new: found[old_key]}
            notes.append(f"{old} is deprecated: write it as {module.NAME}.{new} (read as such)")


def _renamed(elastiq: Any, written: Any, source: Optional[str], notes: List[str]) -> Any:
    """``elastiq`` (read with :data:`RENAMED_KEYS`) with the old listing keys settled, and a
    note per old key ``written`` (the raw section)."""
    old = [key for key in RENAMED_KEYS if isinstance(written, Mapping) and key in written]
    if "check_vms_every_s" in old:
        if "list_vms_every_s" in written:
            raise InvalidConfig(source, "elastiq.check_vms_every_s", "renamed "
                                "elastiq.list_vms_every_s (the cloud's listing), which is set "
                                "too: remove elastiq.check_vms_every_s")
        # each old key listed the cloud at its interval: the shortest one given is the listing's
        listing = [elastiq.legacy_check_vms_every_s] + (
            [elastiq.list_vms_every_s] if "check_vms_in_error_every_s" in old else [])
        elastiq = dataclasses.replace(elastiq, list_vms_every_s=min(listing))
    for key in old:
        new = RENAMED_KEYS[key]
        if key == "check_vms_every_s":
            notes.append(f"elastiq.check_vms_every_s is deprecated: it set how often the cloud"
                         f" is listed, now elastiq.list_vms_every_s (read as "
                         f"{elastiq.list_vms_every_s:g} s), and the legacy policy's VM check, "
                         f"now elastiq.legacy_check_vms_every_s (read as "
                         f"{elastiq.legacy_check_vms_every_s:g} s)")
        elif key == "check_vms_in_error_every_s":
            notes.append(f"elastiq.check_vms_in_error_every_s is deprecated: the cloud's list "
                         f"of our VMs, VMs in error included, is read every "
                         f"elastiq.list_vms_every_s (read as {elastiq.list_vms_every_s:g} s)")
        else:
            notes.append(f"elastiq.{key} is deprecated: write it as elastiq.{new} (read as such)")
    return elastiq


def from_dict(data: Any, source: Optional[str] = None, from_text: bool = False) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(source, None, "expected a mapping of sections at the top level")
    data, notes = dict(data), []
    elastiq = _renamed(section(CORE_SECTIONS["elastiq"], data.get("elastiq"), "elastiq", source,
                               from_text, renamed=RENAMED_KEYS), data.get("elastiq"), source, notes)
    configured = {}
    for kind in PLUGIN_FIELDS:
        problem = plugin_problem(getattr(elastiq, f"{kind}_plugin"), kind)
        if problem:
            raise InvalidConfig(source, f"elastiq.{kind}_plugin", problem)
        configured[kind] = plugin_module(elastiq, kind)
    modules = _registered_modules()
    modules.update((m.NAME, m) for m in configured.values() if m is not None)
    known = set(CORE_SECTIONS) | {"substitute"} | set(modules)
    for name in data:
        if name not in known:
            raise InvalidConfig(source, str(name), f"unknown section (known: {', '.join(sorted(known))})")
    _move_keys(data, modules.values(), source, notes)
    plugins: Dict[str, Any] = {}
    for name, module in modules.items():
        settings = section(module.Settings, data.get(name), name, source, from_text,
                           module.SECRET_KEYS, getattr(module, "IGNORED_KEYS", ()))
        kinds = [kind for kind, m in configured.items() if m is module]
        plugins.update((kind, settings) for kind in kinds)
        if not kinds and data.get(name):
            notes.append(f"section {name} is not used (elastiq.cloud_plugin is "
                         f"{elastiq.cloud_plugin!r}, elastiq.batch_plugin {elastiq.batch_plugin!r})")
    core = {name: section(cls, data.get(name), name, source, from_text)
            for name, cls in CORE_SECTIONS.items() if name != "elastiq"}
    cfg = Config(elastiq=elastiq, substitute=substitute(data.get("substitute"), source),
                 source=source, notes=tuple(notes), **core, **plugins)
    written = data.get("elastiq") if isinstance(data.get("elastiq"), Mapping) else {}
    written_as = {f"elastiq.{new}": f"elastiq.{old}" for old, new in RENAMED_KEYS.items()
                  if old in written}
    if "check_vms_every_s" in written and elastiq.list_vms_every_s == elastiq.legacy_check_vms_every_s:
        written_as["elastiq.list_vms_every_s"] = "elastiq.check_vms_every_s"  # the shorter
    for key, problem in problems(cfg):
        raise InvalidConfig(source, written_as.get(key, key), problem)
    return cfg


def override(cfg: Config, assignments: Iterable[str]) -> Config:
    """``cfg`` with ``SECTION.KEY=VALUE`` strings applied (values parsed as YAML scalars)."""
    data = to_dict(cfg, only_changed=True)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        name, dot, item = key.strip().partition(".")
        if not sep or not dot or not item:
            raise InvalidConfig("--set", assignment, "expected SECTION.KEY=VALUE")
        if name == "elastiq" and item in RENAMED_KEYS:  # an old name given: it wins
            data.get(name, {}).pop(RENAMED_KEYS[item], None)
            if item == "check_vms_every_s":
                data.get(name, {}).pop("list_vms_every_s", None)
        try:
            data.setdefault(name, {})[item] = _scalar(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise InvalidConfig("--set", key, "value is not a valid YAML scalar") from None
    try:
        new = from_dict(data, cfg.source)
    except InvalidConfig as err:
        raise InvalidConfig(f"{cfg.source or 'defaults'} with --set", err.key, err.problem) from None
    return dataclasses.replace(new, notes=tuple(dict.fromkeys(cfg.notes + new.notes)))


def _scalar(raw: str) -> Any:
    """A --set value: a YAML scalar, and numbers YAML 1.1 reads as text (``1e308``, ``1E3``)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def load_legacy(path: str) -> Config:
    """Load the original elastiq's INI ``elastiq.conf``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path), source=path)
    except configparser.Error as err:
        line = getattr(err, "lineno", None)
        if line is None and getattr(err, "errors", None):
            line = err.errors[0][0]
        if isinstance(err, configparser.MissingSectionHeaderError):
            raise InvalidConfig(path, f"line {err.lineno}", "not a legacy INI elastiq.conf: no "
                                "[section] header before the first setting (a YAML file is "
                                "read by every command as it is: elastiq config check FILE)"
                                ) from None
        if isinstance(err, configparser.ParsingError) and err.errors:
            first = f"cannot parse {err.errors[0][1]}"
        else:
            first = re.sub(r"^While reading from .*?(\[line +\d+\])?: ", "",
                           err.message.splitlines()[0])
        raise InvalidConfig(path, f"line {line}" if line else None,
                            f"not a valid INI file: {first}") from None
    data = {name: dict(parser.items(name)) for name in parser.sections()}
    quota = data.get("quota", {})
    if str(quota.get("max_vms", "")).strip() in ("0", "0.0"):
        raise InvalidConfig(path, "quota.max_vms",
                            "0 meant 'no limit' in the original elastiq; set an explicit limit")
    return from_dict(data, path, from_text=True)


def load(path: Optional[str] = None, overrides: Iterable[str] = ()) -> Config:
    """Load YAML (or legacy INI, recognised by a ``[section]`` first line) and apply overrides.

    ``path=None`` gives the built-in defaults (with overrides applied).
    """
    if path is None:
        cfg = Config()
    else:
        text = read_text(path)
        if not text.strip(" \t\r\n"):
            raise InvalidConfig(path, None, "the file is empty (see etc/elastiq.yaml for an "
                                "example)")
        if _looks_like_ini(text):
            cfg = load_legacy(path)
        else:
            cfg = from_dict(_yaml(text, path), path)
    return override(cfg, overrides) if overrides else cfg


def read_text(path: str) -> str:
    """The text of ``path``; InvalidConfig when it cannot be read or is not UTF-8 text."""
    try:
        return config_text.read_text(path)
    except OSError as err:
        raise InvalidConfig(path, None, f"cannot read: {err.strerror or err}") from None
    except config_text.TextError as err:
        raise InvalidConfig(path, f"line {err.line}", err.problem) from None


def _yaml(text: str, path: str) -> Any:
    try:
        return config_text.parse_yaml(text)
    except config_text.TextError as err:
        raise InvalidConfig(path, None, err.problem) from None


def _looks_like_ini(text: str) -> bool:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            return line.startswith("[") and line.endswith("]")
    return False
