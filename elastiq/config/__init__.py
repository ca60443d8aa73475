"""elastiq configuration: frozen dataclasses, loaded from YAML or the original's INI.

Every problem raises :class:`InvalidConfig`, whose message names the file, the key and what is
wrong.  Values of secret keys are never put in a message.  The core sections (``elastiq``,
``quota``, ``vm``, ``debug``, ``substitute``) are defined here; each plugin defines its own
section (``ec2``, ``htcondor``, ...) in its configuration module, which the registry of
:mod:`elastiq.adapters` names: ``Config.cloud`` and ``Config.batch`` hold them.

This module gathers the parts, one job each: :mod:`.sections` (the core sections and
:class:`Config`), :mod:`.coerce` (raw values -> typed), :mod:`.check` (rules
across keys), :mod:`.loader` (YAML, INI, ``--set``), :mod:`.dump` (YAML out, the
summary line, the secrets to redact), :mod:`.params` (the core's parameters).
"""
from __future__ import annotations

from .check import problems
from .dump import section_classes, secret_texts, summary, to_dict, to_yaml
from .loader import from_dict, load, load_legacy, override, read_text
from .params import params_of
from .sections import (BOUNDS, CORE_SECTIONS, DEFAULT_PATH, MAX_VMS, TEN_YEARS_S, Config,
                       DebugSection, ElastiqSection, QuotaSection, VMSection)
from .text import InvalidConfig

__all__ = [
    "BOUNDS", "CORE_SECTIONS", "DEFAULT_PATH", "MAX_VMS", "TEN_YEARS_S", "Config",
    "DebugSection", "ElastiqSection", "InvalidConfig", "QuotaSection", "VMSection",
    "from_dict", "load", "load_legacy", "override", "params_of", "problems", "read_text",
    "secret_texts",
    "section_classes", "summary", "to_dict", "to_yaml",
]
