"""The core sections of the configuration and :class:`Config`, which holds them and the
configured plugins' own sections (``cloud``, ``batch``: see :mod:`elastiq.adapters`).

Imports nothing of elastiq but the plugin registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ..adapters import BATCH_SYSTEMS, CLOUDS, config_module

DEFAULT_PATH = "/etc/elastiq/elastiq.yaml"
#: Largest sane value of the numeric keys (ecm.conf's limits come from here too).  A bound
#: catches a typo (MAX_VMS=10^26) and keeps every number convertible to an int and a date.
TEN_YEARS_S = 10 * 365 * 86400
MAX_VMS = 100_000
BOUNDS: Dict[str, float] = {
    "quota.min_vms": MAX_VMS, "quota.max_vms": MAX_VMS,
    "quota.max_cores": 100_000 * MAX_VMS, "quota.max_memory_mb": 1 << 40,
    "elastiq.waiting_jobs_threshold": 10_000_000, "elastiq.n_jobs_per_vm": 100_000,
    "vm.cpus": 100_000, "vm.memory_mb": 1 << 30, "vm.disk_mb": 1 << 40,
}


@dataclass(frozen=True)
class ElastiqSection:
    cluster_name: str = "elastiq"
    # the pace: a tick reads the queue and the pool, decides and acts this often
    check_queue_every_s: float = 15
    # the cloud's list of our VMs is read this often (by the tick then due); besides, at start,
    # at a wake-up, after elastiq acted on the cloud and when more jobs wait
    list_vms_every_s: float = 20
    # after launching or terminating, tick again this soon to see the effect
    recheck_after_action_s: float = 5
    waiting_jobs_threshold: int = 0
    waiting_jobs_time_s: Optional[float] = None  # None: the policy's own (default 0 s, legacy 40 s)
    n_jobs_per_vm: int = 0  # 0: size launches by packing cpu/memory onto the VM shape
    # the idle timeout: idle_timeout_boot_factor x the median boot-to-join time of our joined
    # VMs, within [idle_timeout_min_s, idle_timeout_max_s]; idle_timeout_max_s when the factor
    # is 0 or no boot was measured (also how long jobs wait next to an idle worker they fit
    # before they count as never starting there)
    idle_timeout_max_s: float = 3600
    idle_timeout_boot_factor: float = 8
    idle_timeout_min_s: float = 600
    estimated_vm_deploy_time_s: float = 600
    # consolidation: a worker used below this share (cpu or memory, the larger) for
    # consolidate_after_s while no job waits is drained; 0 turns it off
    consolidate_below: float = 0.5
    consolidate_after_s: float = 600
    launch_backoff_s: float = 60
    launch_backoff_max_s: float = 1800
    batch_plugin: str = "htcondor"
    cloud_plugin: str = "ec2"
    policy: str = "default"  # the decision core the daemon runs (elastiq.core.POLICIES)
    # `elastiq simulate --policy legacy` only: the period of the original elastiq's VM check
    # (idle hosts terminated, min_vms kept); its error check runs every list_vms_every_s
    legacy_check_vms_every_s: float = 45
    log_level: str = "INFO"
    log_file: Optional[str] = None
    state_dir: Optional[str] = None
    metrics_port: Optional[int] = None
    metrics_address: str = "127.0.0.1"  # 0.0.0.0 to let a Prometheus elsewhere scrape it


#: Keys of the elastiq section renamed for what they do: old name -> new name; the old names
#: are still read, with a note.  ``check_vms_every_s`` and ``check_vms_in_error_every_s`` each
#: made elastiq list the cloud: the shortest one given is read as ``list_vms_every_s`` (see
#: :mod:`.loader`).
RENAMED_KEYS = {
    "sleep_s": "recheck_after_action_s",
    "idle_for_time_s": "idle_timeout_max_s",
    "idle_boot_factor": "idle_timeout_boot_factor",
    "idle_for_min_s": "idle_timeout_min_s",
    "check_vms_in_error_every_s": "list_vms_every_s",
    "check_vms_every_s": "legacy_check_vms_every_s",
}


@dataclass(frozen=True)
class QuotaSection:
    """Limits as clouds count them (OpenStack's and AWS's quotas count instances, cores and
    RAM): every alive VM of ours counts, booting ones included, with its flavour's cpus and
    memory.  ``max_cores``/``max_memory_mb`` None: no limit but ``max_vms``."""

    min_vms: int = 0
    max_vms: int = 3
    max_cores: Optional[int] = None
    max_memory_mb: Optional[int] = None


@dataclass(frozen=True)
class VMSection:
    """Shape of one worker VM.  ``cpus``/``memory_mb`` None: ask the cloud for the flavour's."""

    cpus: Optional[int] = None
    memory_mb: Optional[int] = None
    disk_mb: int = 20000

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


CORE_SECTIONS = {
    "elastiq": ElastiqSection,
    "quota": QuotaSection,
    "vm": VMSection,
    "debug": DebugSection,
}
#: Config field -> (registry, the ElastiqSection key naming the plugin).
PLUGIN_FIELDS = {"cloud": (CLOUDS, "cloud_plugin"), "batch": (BATCH_SYSTEMS, "batch_plugin")}


def plugin_module(cfg_elastiq: ElastiqSection, kind: str):
    """The configuration module of the configured ``kind`` ("cloud"/"batch") plugin; None when
    it has none or the name is unknown (the loader reports that)."""
    registry, key = PLUGIN_FIELDS[kind]
    try:
        return config_module(registry, getattr(cfg_elastiq, key))
    except KeyError:
        return None


@dataclass(frozen=True)
class Config:
    """``cloud``/``batch``: the configured plugins' Settings (None given: their defaults; None
    kept: the plugin has no section).  ``notes``: what the loader wants said (deprecated keys,
    ignored sections), logged at start and printed by ``config check``."""

    elastiq: ElastiqSection = field(default_factory=ElastiqSection)
    quota: QuotaSection = field(default_factory=QuotaSection)
    vm: VMSection = field(default_factory=VMSection)
    debug: DebugSection = field(default_factory=DebugSection)
    cloud: Any = None
    batch: Any = None
    substitute: Mapping[str, str] = field(default_factory=dict)
    source: Optional[str] = None
    notes: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in PLUGIN_FIELDS:
            if getattr(self, kind) is None:
                module = plugin_module(self.elastiq, kind)
                if module is not None:
                    object.__setattr__(self, kind, module.Settings())
