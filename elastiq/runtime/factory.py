"""Building the adapters a configuration names: the one place that turns registry names (or
dotted paths) into a batch system and a cloud, shared by ``run``, ``config check``,
``elastiqctl`` and ``status``.  It lives in the runtime, not among the adapters, because it
reads the configuration, which itself reads the adapters' registry.
"""
from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Dict, Optional, Tuple

from .. import flavours as flavour_list
from ..config import InvalidConfig
from ..adapters import BATCH_SYSTEMS, CLOUDS, config_module, load_class
from ..model import Catalogue
from ..adapters.base import AdapterError, ConfigError

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


def _adapter_class(cfg: Config, key: str, registry: dict):
    name = getattr(cfg.elastiq, key)
    try:
        return load_class(registry, name)
    except (ImportError, AttributeError, KeyError) as err:
        raise InvalidConfig(cfg.source, f"elastiq.{key}", f"cannot load {name!r}: {err}") from None


def build_cloud(cfg: Config, owner: Optional[str] = None):
    """The cloud named by the configuration (constructed as ``Class(cfg)``: it reads
    ``cfg.cloud``, its own section).  ``owner``: the daemon's owner id, given as
    ``Class(cfg, owner=owner)`` to a cloud that takes it (one that does not cannot tell two
    clusters of the same name apart: said once)."""
    cloud_class = _adapter_class(cfg, "cloud_plugin", CLOUDS)
    if owner is None:
        return cloud_class(cfg)
    if "owner" in inspect.signature(cloud_class).parameters:
        return cloud_class(cfg, owner=owner)
    log.warning("the cloud %s takes no owner id: the instances of another cluster named %r on "
                "the same account would be taken for this one's", cfg.elastiq.cloud_plugin,
                cfg.elastiq.cluster_name)
    return cloud_class(cfg)


def build_adapters(cfg: Config, read_shape: bool = True, owner: Optional[str] = None):
    """``(catalogue, batch system, cloud)`` named by the configuration.

    The cloud comes first: with ``read_shape``, the :class:`~elastiq.model.Catalogue` holds
    what it tells of the worker VMs (:func:`read_catalogue`, one call to the cloud), else the
    configuration's own; the batch system is built with it (``Class(cfg, catalogue=...)``), so
    that its idea of a worker VM (which jobs fit one) is the flavour's, not the defaults.  The
    configuration itself is never changed: it stays the user's input.  ``owner``: see
    :func:`build_cloud`."""
    batch_class = _adapter_class(cfg, "batch_plugin", BATCH_SYSTEMS)
    cloud = build_cloud(cfg, owner)
    catalogue = read_catalogue(cfg, cloud) if read_shape else Catalogue.of(cfg.vm)
    return catalogue, batch_class(cfg, catalogue=catalogue), cloud


def prepare(cfg: Config, read_shape: bool = False, owner: Optional[str] = None):
    """The one check of a configuration for running, shared by ``run`` and ``config check``:
    build the batch system and the cloud as ``run`` does, so a setting the adapters refuse
    (user-data file, endpoint, keys, region...) is an :class:`InvalidConfig` naming the
    file and key.  No call to either is made unless ``read_shape`` (``run``: see
    :func:`build_adapters`).  Returns what :func:`build_adapters` returns."""
    try:
        return build_adapters(cfg, read_shape, owner)
    except ConfigError as err:
        raise InvalidConfig(cfg.source, err.key, str(err)) from None


def flavour_name(cfg: Config) -> Optional[str]:
    """The configured cloud's flavour (instance type) name, for messages; None if it has none."""
    try:
        module = config_module(CLOUDS, cfg.elastiq.cloud_plugin)
    except KeyError:
        return None
    return module.flavour(cfg.cloud) if module is not None and cfg.cloud is not None else None


def flavour_entries(cfg: Config) -> Tuple[str, ...]:
    """The configured cloud's flavour entries as written (``elastiq.flavours``); one or none
    for a cloud whose configuration module knows a single flavour."""
    try:
        module = config_module(CLOUDS, cfg.elastiq.cloud_plugin)
    except KeyError:
        return ()
    if module is None or cfg.cloud is None:
        return ()
    several = getattr(module, "flavours", None)
    if several is not None:
        return tuple(several(cfg.cloud))
    one = module.flavour(cfg.cloud)
    return (one,) if one else ()


def read_catalogue(cfg: Config, cloud) -> Catalogue:
    """The worker VMs' facts: ``vm.cpus``/``vm.memory_mb`` where set, else the shape of the
    cloud's flavour (``cloud`` None: no cloud to ask); with several flavours, all of them
    resolved (:func:`resolve_flavours`, one describe call).  A flavour the cloud says it does
    not know is a ConfigError; one it cannot describe keeps the defaults, with a warning."""
    entries = flavour_entries(cfg)
    if len(entries) > 1:
        return resolve_flavours(cfg, cloud, entries)
    vm, name = cfg.vm, flavour_name(cfg)
    configured = vm.cpus is not None and vm.memory_mb is not None
    shape = None
    if name and cloud is not None:  # asked even when configured: an unknown one is refused
        try:
            shape = (cloud.describe_flavours([name]) or {}).get(name)  # None: not supported
        except ConfigError:
            raise
        except AdapterError as err:
            if not configured:
                log.warning("cannot read the flavour's shape (%s error): %s", err.kind, err)
    if configured:
        return Catalogue.of(vm)
    if not shape:
        log.warning("worker VM shape unknown: assuming %d cpu(s), %d MiB (set vm.cpus and "
                    "vm.memory_mb)", vm.effective_cpus, vm.effective_memory_mb)
        return Catalogue.of(vm)
    cpus, memory_mb = vm.cpus or shape[0], vm.memory_mb or shape[1]
    log.info("worker VM shape of flavour %s: %d cpu(s), %d MiB", name, cpus, memory_mb)
    return Catalogue(cpus, memory_mb)


def resolve_flavours(cfg: Config, cloud, entries: Tuple[str, ...]) -> Catalogue:
    """The catalogue of two or more flavours: shapes from their entries, else from the cloud
    (``Cloud.describe_flavours``: one call; ``cloud`` None: none asked); the first's shape is
    the worker VM's where the ``vm`` section does not set it.  A flavour larger than the first
    is a ConfigError naming ``<section>.flavour[i]``; one whose shape stays unknown is left out
    with a warning (fail safe)."""
    section = cfg.elastiq.cloud_plugin
    parsed = [flavour_list.parse(text) for text in entries]
    wanted = [e.name for i, e in enumerate(parsed)
              if not (e.cpus and e.memory_mb) and not (i == 0 and cfg.vm.cpus and cfg.vm.memory_mb)]
    described: Dict[str, Tuple[int, int]] = {}
    if wanted and cloud is not None:
        try:
            described = dict(cloud.describe_flavours(wanted) or {})  # None: not supported
        except AdapterError as err:
            if isinstance(err, ConfigError):
                raise
            log.warning("cannot read the flavours' shapes (%s error): %s", err.kind, err)
    flavours, wrong = flavour_list.resolve(section, entries, cfg.vm.cpus, cfg.vm.memory_mb,
                                          described)
    if wrong:
        raise ConfigError(wrong[0][1], key=wrong[0][0])
    for flavour in flavours:
        if flavour.known:
            log.info("flavour %s: %d cpu(s), %d MiB, price %.3g x the first's", flavour.name,
                     flavour.cpus, flavour.memory_mb, flavour.price)
        else:
            log.warning("flavour %s: shape unknown (give it as NAME:CPUS:MEMORY_MB): %s",
                        flavour.name, "assumed the vm section's" if flavour is flavours[0]
                        else "never launched")
    first, vm = flavours[0], cfg.vm
    return Catalogue(vm.cpus or first.cpus or vm.effective_cpus,
                     vm.memory_mb or first.memory_mb or vm.effective_memory_mb, flavours)
