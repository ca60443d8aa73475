"""Where the daemon's files are when its configuration file no longer loads.

A typo made in the file while the daemon runs does not stop it: it keeps the configuration it
read at its start.  ``status``, ``stop``, ``log`` and ``conf`` need only where its pid, state
and log files are, so they go on working with a stand-in configuration holding just
``elastiq.state_dir``, ``elastiq.log_file`` and ``elastiq.policy`` (the policy reads the state):

* as the invalid file still gives them, when it still parses as YAML (or INI) and these values
  are valid (the typo is elsewhere);
* else the defaults (``/var/lib/elastiq`` and ``/var/log/elastiq/elastiq.log`` for root and
  the elastiq user, ``~/.elastiq`` otherwise);
* ``--set elastiq.state_dir=DIR`` (and ``log_file``, ``policy``) wins over both.

Nothing else of the file is used: ``start``, ``restart`` and ``status --live`` still refuse.
"""
from __future__ import annotations

import configparser
import os
import sys
from typing import Any, Iterable, Mapping, Optional, Tuple

import yaml

from .. import config
from ..config.loader import read_text
from ..runtime import paths

KEYS = ("state_dir", "log_file", "policy")


def _written(path: str) -> Mapping[str, Any]:
    """The ``elastiq`` section of the file as written, or {} when it cannot be read at all."""
    try:
        text = read_text(path)
        if text.lstrip().startswith("["):
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            parser.read_string(text, source=path)
            return dict(parser.items("elastiq")) if parser.has_section("elastiq") else {}
        data = yaml.safe_load(text)
    except (config.InvalidConfig, configparser.Error, yaml.YAMLError):
        return {}
    section = data.get("elastiq") if isinstance(data, Mapping) else None
    return section if isinstance(section, Mapping) else {}


def _valid(values: Mapping[str, Any]) -> dict:
    """The entries of ``values`` (elastiq keys) that load on their own."""
    kept = {}
    for key in KEYS:
        if key in values:
            try:
                config.from_dict({"elastiq": {key: values[key]}})
            except config.InvalidConfig:
                continue
            kept[key] = values[key]
    return kept


def stand_in(path: str, overrides: Iterable[str]) -> Tuple[config.Config, str]:
    """The stand-in configuration for the invalid file ``path`` and how its paths were found
    (for the user: "as the file gives them", "the defaults"...)."""
    taken = _valid(_written(path))
    given = {}
    for assignment in overrides:
        key, sep, value = assignment.partition("=")
        section, _, name = key.strip().partition(".")
        if sep and section == "elastiq" and name in KEYS:
            given[name] = value.strip() or None
    set_here = _valid({k: v for k, v in given.items() if v is not None})
    cfg = config.from_dict({"elastiq": {**taken, **set_here}}, path)
    origin = ("from --set" if set_here else
              f"{', '.join('elastiq.' + k for k in taken)} as the file still gives them"
              if taken else "the defaults (the file gives none that can be read)")
    return cfg, origin


def load(path: Optional[str], overrides: Iterable[str], prog: str, verb: str
         ) -> Tuple[config.Config, Optional[config.InvalidConfig]]:
    """The configuration of ``path``; when it does not load, the stand-in, with a warning on
    stderr saying so and what to do, and the error.  ``verb`` names the command going on."""
    overrides = tuple(overrides)
    try:
        return config.load(path, overrides), None
    except config.InvalidConfig as err:
        if path is None or not os.path.isfile(path):  # a wrong --config, not a typo in it
            raise
        cfg, origin = stand_in(path, overrides)
        where = paths.resolve(cfg)
        print(f"{prog}: warning: the configuration is invalid now: {err}\n"
              f"{prog}: a running daemon keeps the configuration it started with; {verb} goes "
              f"on with its files in {where.state_dir} and {where.log_file} ({origin}).  Fix "
              f"the file (elastiq config check {path}), then elastiqctl restart.",
              file=sys.stderr)
        return cfg, err
