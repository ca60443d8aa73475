"""elastiq configuration: frozen dataclasses, loaded from YAML or the original's INI.

Every problem raises :class:`InvalidConfig`, whose message names the file, the key and what is
wrong.  Values of secret keys are never put in a message.
"""
from __future__ import annotations

import base64
import binascii
import configparser
import dataclasses
import logging
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import yaml

from . import config_text
from .adapters import BATCH_SYSTEMS, CLOUDS, is_dotted_path
from .adapters import openstack_config  # HOOK (issue 14) until the adapter registry lands
from .adapters.userdata_values import value_problem as substitute_value_problem

DEFAULT_PATH = "/etc/elastiq/elastiq.yaml"

#: Keys whose values are never printed, logged or echoed in an error.
SECRET_KEYS = frozenset(
    {"ec2.aws_access_key_id", "ec2.aws_secret_access_key", "ec2.user_data_b64"}
) | {f"openstack.{k}" for k in openstack_config.SECRET_KEYS}  # HOOK (issue 14)
#: Keys of the original elastiq that are accepted and ignored.
IGNORED_LEGACY_KEYS = frozenset({"ec2.api_version"})
#: Largest sane value of the numeric keys (ecm.conf's limits come from here too).  A bound
#: catches a typo (MAX_VMS=10^26) and keeps every number convertible to an int and a date.
TEN_YEARS_S = 10 * 365 * 86400
MAX_VMS = 100_000
BOUNDS: Dict[str, float] = {
    "quota.min_vms": MAX_VMS, "quota.max_vms": MAX_VMS,
    "elastiq.waiting_jobs_threshold": 10_000_000, "elastiq.n_jobs_per_vm": 100_000,
    "vm.cpus": 100_000, "vm.memory_mb": 1 << 30, "vm.disk_mb": 1 << 40,
}


class InvalidConfig(Exception):
    def __init__(self, source: Optional[str], key: Optional[str], problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = ": ".join(p for p in (source or "<config>", key) if p)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ElastiqSection:
    cluster_name: str = "elastiq"
    sleep_s: float = 5
    check_queue_every_s: float = 15
    check_vms_every_s: float = 45
    check_vms_in_error_every_s: float = 20
    waiting_jobs_threshold: int = 0
    waiting_jobs_time_s: float = 40
    n_jobs_per_vm: int = 0  # 0: size launches by packing cpu/memory onto the VM shape
    idle_for_time_s: float = 3600
    estimated_vm_deploy_time_s: float = 600
    # consolidation: a worker used below this share (cpu or memory, the larger) for
    # consolidate_after_s while no job waits is drained; 0 turns it off
    consolidate_below: float = 0.5
    consolidate_after_s: float = 600
    # adaptive idle timeout: idle_boot_factor x the median boot-to-join time of our joined VMs,
    # kept within [idle_for_min_s, idle_for_time_s]; 0 turns it off (idle_for_time_s fixed)
    idle_boot_factor: float = 8
    idle_for_min_s: float = 600
    launch_backoff_s: float = 60
    launch_backoff_max_s: float = 1800
    batch_plugin: str = "htcondor"
    cloud_plugin: str = "ec2"
    log_level: str = "INFO"
    log_file: Optional[str] = None
    state_dir: Optional[str] = None
    metrics_port: Optional[int] = None
    metrics_address: str = "127.0.0.1"  # 0.0.0.0 to let a Prometheus elsewhere scrape it


@dataclass(frozen=True)
class QuotaSection:
    min_vms: int = 0
    max_vms: int = 3


@dataclass(frozen=True)
class EC2Section:
    api_url: Optional[str] = None
    region: Optional[str] = None
    # Secrets (see SECRET_KEYS): kept out of repr(), so no log line or traceback shows them.
    aws_access_key_id: Optional[str] = field(default=None, repr=False)
    aws_secret_access_key: Optional[str] = field(default=None, repr=False)
    image_id: Optional[str] = None
    flavour: Optional[str] = None
    key_name: Optional[str] = None
    security_groups: Tuple[str, ...] = ()
    subnet_id: Optional[str] = None
    user_data_b64: Optional[str] = field(default=None, repr=False)
    user_data_file: Optional[str] = None
    ca_bundle: Optional[str] = None
    # Seconds to wait for an answer to one API call before it counts as failed (and is
    # retried): longer than the cloud's slowest normal answer, shorter than the tick.
    read_timeout_s: float = 30


@dataclass(frozen=True)
class VMSection:
    """Shape of one worker VM.  ``cpus``/``memory_mb`` None: ask the cloud for the flavour's."""

    cpus: Optional[int] = None
    memory_mb: Optional[int] = None
    disk_mb: int = 20000
    opsys: str = "LINUX"
    arch: str = "X86_64"
    has_docker: bool = True

    @property
    def effective_cpus(self) -> int:
        return self.cpus or 1

    @property
    def effective_memory_mb(self) -> int:
        return self.memory_mb or 2048


@dataclass(frozen=True)
class DebugSection:
    dry_run_boot_vms: bool = False
    dry_run_shutdown_vms: bool = False


@dataclass(frozen=True)
class Config:
    elastiq: ElastiqSection = field(default_factory=ElastiqSection)
    quota: QuotaSection = field(default_factory=QuotaSection)
    ec2: EC2Section = field(default_factory=EC2Section)
    vm: VMSection = field(default_factory=VMSection)
    debug: DebugSection = field(default_factory=DebugSection)
    # HOOK (issue 14): the openstack adapter's section, until the registry offers cfg.cloud
    openstack: openstack_config.Settings = field(default_factory=openstack_config.Settings)
    substitute: Mapping[str, str] = field(default_factory=dict)
    source: Optional[str] = None

    def override(self, assignments: Iterable[str]) -> "Config":
        """Apply ``SECTION.KEY=VALUE`` strings (values parsed as YAML scalars)."""
        data = to_dict(self)
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot or not name:
                raise InvalidConfig("--set", assignment, "expected SECTION.KEY=VALUE")
            try:
                data.setdefault(section, {})[name] = _scalar(raw) if raw.strip() else None
            except yaml.YAMLError:
                raise InvalidConfig("--set", key, "value is not a valid YAML scalar") from None
        try:
            return from_dict(data, self.source)
        except InvalidConfig as err:
            raise InvalidConfig(f"{self.source or 'defaults'} with --set", err.key, err.problem) from None


def _scalar(raw: str) -> Any:
    """A --set value: a YAML scalar, and numbers YAML 1.1 reads as text (``1e308``, ``1E3``)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

SECTIONS = {
    "elastiq": ElastiqSection,
    "quota": QuotaSection,
    "ec2": EC2Section,
    "vm": VMSection,
    "debug": DebugSection,
    "openstack": openstack_config.Settings,  # HOOK (issue 14)
}


# ----------------------------------------------------------------------------- coercion

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(value: Any, hint: Any, key: str, from_text: bool) -> Any:
    """Convert ``value`` to the type ``hint``; raise ValueError with what was expected."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None or (from_text and str(value).strip() == ""):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return _coerce(value, inner, key, from_text)
    if origin in (tuple, Tuple):
        if value is None:
            return ()
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        return tuple(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if hint is int:
        if isinstance(value, str) and from_text:
            value = _number(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected an integer")
        return value
    if hint is float:
        if isinstance(value, str) and from_text:
            value = _number(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("expected a number")
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return float(value)
    if hint is str:
        if key == "elastiq.log_level" and isinstance(value, int) and not isinstance(value, bool):
            return logging.getLevelName(max(value, logging.DEBUG))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and from_text:
            return str(value)
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise TypeError(f"unsupported type {hint!r} for {key}")  # programming error


def _number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def _section(cls, data: Any, name: str, source: Optional[str], from_text: bool):
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(source, name, "expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        full = f"{name}.{key}"
        if full in IGNORED_LEGACY_KEYS:
            continue
        if key not in known:
            raise InvalidConfig(source, full, f"unknown key (known: {', '.join(sorted(known))})")
        if key == "log_level" and isinstance(value, str) and from_text and value.strip().isdigit():
            value = int(value)
        try:
            values[key] = _coerce(value, hints[key], full, from_text)
        except (ValueError, OverflowError) as err:
            shown = "value hidden" if full in SECRET_KEYS else f"got {value!r}"
            raise InvalidConfig(source, full, f"{err} ({shown})") from None
        _bounded(values[key], full, source)
    return cls(**values)


def _bounded(value: Any, key: str, source: Optional[str]) -> None:
    """Numbers stay below :data:`BOUNDS` (durations: ten years)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    limit = BOUNDS.get(key, TEN_YEARS_S if key.endswith("_s") else None)
    if limit is not None and value > limit:
        raise InvalidConfig(source, key, f"must be at most {limit:g} (got {value:g})")


def _substitute(data: Any, source: Optional[str]) -> Dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(source, "substitute", "expected a mapping of names to values")
    out = {}
    for key, value in data.items():
        if value is None or str(value).strip() == "":
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise InvalidConfig(source, f"substitute.{key}", f"expected a string (got {value!r})")
        out[str(key)] = str(value)
        problem = substitute_value_problem(str(key), out[str(key)])
        if problem:
            raise InvalidConfig(source, f"substitute.{key}", problem)
    return out


def _validate(cfg: Config, source: Optional[str]) -> None:
    def bad(key: str, problem: str) -> None:
        raise InvalidConfig(source, key, problem)

    e, q = cfg.elastiq, cfg.quota
    for name in ("sleep_s", "check_queue_every_s", "check_vms_every_s",
                 "check_vms_in_error_every_s"):
        if getattr(e, name) <= 0:
            bad(f"elastiq.{name}", f"must be > 0 (got {getattr(e, name):g})")
    for name in ("waiting_jobs_time_s", "idle_for_time_s", "estimated_vm_deploy_time_s",
                 "launch_backoff_s", "launch_backoff_max_s"):
        if getattr(e, name) < 0:
            bad(f"elastiq.{name}", f"must not be negative (got {getattr(e, name):g})")
    if not 0 <= e.consolidate_below < 1:
        bad("elastiq.consolidate_below", f"must be in [0, 1) (got {e.consolidate_below:g})")
    for name in ("idle_boot_factor", "idle_for_min_s"):
        if getattr(e, name) < 0:
            bad(f"elastiq.{name}", f"must not be negative (got {getattr(e, name):g})")
    if e.consolidate_after_s < 0:
        bad("elastiq.consolidate_after_s", f"must not be negative (got {e.consolidate_after_s:g})")
    for name in ("waiting_jobs_threshold", "n_jobs_per_vm"):
        if getattr(e, name) < 0:
            bad(f"elastiq.{name}", f"must not be negative (got {getattr(e, name)})")
    if e.launch_backoff_max_s < e.launch_backoff_s:
        bad("elastiq.launch_backoff_max_s", "must be >= elastiq.launch_backoff_s")
    if not e.cluster_name.strip() or len(e.cluster_name) > 64:
        bad("elastiq.cluster_name", "must be a non-empty name of at most 64 characters")
    if e.batch_plugin not in BATCH_SYSTEMS and not is_dotted_path(e.batch_plugin):
        bad("elastiq.batch_plugin", f"unknown {e.batch_plugin!r} (known: "
            f"{', '.join(BATCH_SYSTEMS)}, or a 'package.module:Class' path)")
    if e.cloud_plugin not in CLOUDS and not is_dotted_path(e.cloud_plugin):
        bad("elastiq.cloud_plugin", f"unknown {e.cloud_plugin!r} (known: "
            f"{', '.join(CLOUDS)}, or a 'package.module:Class' path)")
    if logging.getLevelName(e.log_level.upper()) == f"Level {e.log_level.upper()}":
        bad("elastiq.log_level", f"unknown level {e.log_level!r} (DEBUG, INFO, WARNING, ERROR)")
    if e.metrics_port is not None and not 0 < e.metrics_port < 65536:
        bad("elastiq.metrics_port", f"must be a TCP port 1-65535 (got {e.metrics_port})")
    if q.min_vms < 0:
        bad("quota.min_vms", f"must not be negative (got {q.min_vms})")
    if q.max_vms < 0:
        bad("quota.max_vms", f"must not be negative (got {q.max_vms})")
    if q.min_vms > q.max_vms:
        bad("quota.min_vms", f"min_vms ({q.min_vms}) is greater than max_vms ({q.max_vms})")
    for name in ("cpus", "memory_mb", "disk_mb"):
        value = getattr(cfg.vm, name)
        if value is not None and value < 1:
            bad(f"vm.{name}", f"must be >= 1 (got {value})")
    if cfg.ec2.user_data_b64 and cfg.ec2.user_data_file:
        bad("ec2.user_data_file", "set either ec2.user_data_b64 or ec2.user_data_file, not both")
    if cfg.ec2.user_data_b64:
        try:
            base64.b64decode("".join(cfg.ec2.user_data_b64.split()), validate=True)
        except (binascii.Error, ValueError):
            bad("ec2.user_data_b64", "not valid base64 (value hidden)")
    if e.cloud_plugin == openstack_config.NAME:  # HOOK (issue 14)
        for key, problem in openstack_config.validate(cfg.openstack):
            bad(f"openstack.{key}", problem)


# ----------------------------------------------------------------------------- loading


def from_dict(data: Any, source: Optional[str] = None, from_text: bool = False) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(source, None, "expected a mapping of sections at the top level")
    known = set(SECTIONS) | {"substitute"}
    for name in data:
        if name not in known:
            raise InvalidConfig(source, str(name), f"unknown section (known: {', '.join(sorted(known))})")
    sections = {
        name: _section(cls, data.get(name), name, source, from_text)
        for name, cls in SECTIONS.items()
    }
    cfg = Config(substitute=_substitute(data.get("substitute"), source), source=source, **sections)
    _validate(cfg, source)
    return cfg


def load_legacy(path: str) -> Config:
    """Load the original elastiq's INI ``elastiq.conf``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path), source=path)
    except configparser.Error as err:
        line = getattr(err, "lineno", None)
        if line is None and getattr(err, "errors", None):
            line = err.errors[0][0]
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
    return cfg.override(overrides) if overrides else cfg


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


# ----------------------------------------------------------------------------- output


def to_dict(cfg: Config, include_secrets: bool = True, only_changed: bool = False) -> dict:
    out: Dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        section = getattr(cfg, name)
        default = cls()
        values = {}
        for f in dataclasses.fields(cls):
            value = getattr(section, f.name)
            if only_changed and value == getattr(default, f.name):
                continue
            if isinstance(value, tuple):
                value = list(value)
            if f"{name}.{f.name}" in SECRET_KEYS and value and not include_secrets:
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
    e, q, c = cfg.elastiq, cfg.quota, cfg.ec2
    sizing = f"{e.n_jobs_per_vm} jobs/VM" if e.n_jobs_per_vm else "packed by cpu/memory"
    if e.cloud_plugin == openstack_config.NAME:  # HOOK (issue 14)
        return (f"cluster {e.cluster_name!r}: {q.min_vms}-{q.max_vms} VMs "
                f"{openstack_config.summary(cfg.openstack)}, {sizing},"
                f" idle after {e.idle_for_time_s:g} s")
    return (
        f"cluster {e.cluster_name!r}: {q.min_vms}-{q.max_vms} VMs"
        f" of {c.flavour or '?'} (image {c.image_id or '?'}), {sizing},"
        f" idle after {e.idle_for_time_s:g} s, endpoint {c.api_url or c.region or 'default'}"
    )

