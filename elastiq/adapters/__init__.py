"""Adapters: everything that touches the world.  Registries map config names to plugins.

A :class:`Plugin` names its adapter class (``"module:Class"``) and its configuration module,
as strings, so that choosing an adapter imports only its SDK, and reading the configuration
imports none.  Adding a batch system or a cloud = one package here (``<name>/``: its adapter,
its configuration module, its pure translators) + one line below + its tests; what is neutral
between clouds (:mod:`.userdata`, :mod:`.redact`) stays beside the packages.  A name that is
not registered may be given as a dotted ``"package.module:Class"`` path (test-support adapters,
site plugins): its configuration module, if any, is the sibling ``package.module_config``.

The configuration module of a plugin (``elastiq/adapters/<plugin>/config.py``) imports no SDK
and defines::

    NAME = "ec2"                        # its YAML section (and legacy INI [section]) name
    @dataclass(frozen=True)
    class Settings: ...                 # every key with its default; secrets: field(repr=False)
    SECRET_KEYS = frozenset({...})      # keys (within the section) never printed/logged/echoed
    def validate(settings) -> Iterable[Tuple[str, str]]   # (key, problem) for every problem
    def summary(settings) -> str        # its part of the start-up summary line, no secrets
    def secret_texts(settings) -> Iterable[str]   # values to redact from logs
    def flavour(settings) -> Optional[str]        # clouds: the flavour/instance type name

and optionally ``IGNORED_KEYS`` (keys of the original elastiq accepted and ignored) and
``MOVED_KEYS`` (``{"vm.opsys": "opsys"}``: old keys of other sections it took over, still
read, with a note).  Settings fields are ``str``, ``int``, ``float``, ``bool``,
``Optional[...]`` of those, or ``Tuple[str, ...]``.  ``Config.cloud`` / ``Config.batch`` hold
the configured plugins' Settings; adapters are constructed as ``Class(config)``.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import NamedTuple, Optional


class Plugin(NamedTuple):
    adapter: str                 # "package.module:Class"
    config: Optional[str] = None  # "package.module" of its configuration section


BATCH_SYSTEMS = {
    "htcondor": Plugin("elastiq.adapters.htcondor.batch:HTCondorBatch",
                       "elastiq.adapters.htcondor.config"),
    "slurm": Plugin("elastiq.adapters.slurm.batch:SlurmBatch", "elastiq.adapters.slurm.config"),
}

CLOUDS = {
    "ec2": Plugin("elastiq.adapters.ec2.cloud:EC2Cloud", "elastiq.adapters.ec2.config"),
    "openstack": Plugin("elastiq.adapters.openstack.cloud:OpenStackCloud",
                        "elastiq.adapters.openstack.config"),
}


def is_dotted_path(name: str) -> bool:
    """True for a ``"package.module:Class"`` path (as opposed to a registry name)."""
    module_name, sep, class_name = name.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module_name.split(".")) \
        and class_name.isidentifier()


def plugin(registry: dict, name: str) -> Plugin:
    """The plugin registered as ``name``, or named by a dotted path (KeyError otherwise)."""
    if name in registry:
        return registry[name]
    if not is_dotted_path(name):
        raise KeyError(name)
    module_name = name.partition(":")[0]
    sibling = f"{module_name}_config"
    try:
        found = importlib.util.find_spec(sibling) is not None
    except (ImportError, ValueError):  # its package does not exist: no configuration module
        found = False
    return Plugin(name, sibling if found else None)


def load_class(registry: dict, name: str):
    """The class registered as ``name``, or named by a dotted ``"module:Class"`` path."""
    module_name, _, class_name = plugin(registry, name).adapter.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def config_module(registry: dict, name: str):
    """The configuration module of plugin ``name``, or None when it has none."""
    spec = plugin(registry, name).config
    return importlib.import_module(spec) if spec else None
