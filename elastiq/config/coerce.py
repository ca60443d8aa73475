"""Coercion of raw values (YAML, INI text, ``--set``) into a section's dataclass.

Each error is an :class:`InvalidConfig` naming the source and ``section.key``; the value of a
secret key is never shown.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import typing
from typing import Any, Collection, Dict, Mapping, Optional, Tuple

from ..adapters.userdata_values import value_problem as substitute_value_problem
from .sections import BOUNDS, TEN_YEARS_S
from .text import InvalidConfig

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(value: Any, hint: Any, key: str, from_text: bool) -> Any:
    """Convert ``value`` to the type ``hint``; raise ValueError with what was expected."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None or (from_text and str(value).strip() == ""):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) > 1:  # Union[str, Tuple[str, ...]]: a list is the tuple, else a string
            return _coerce(value, inner[-1] if isinstance(value, (list, tuple)) else inner[0],
                           key, from_text)
        return _coerce(value, inner[0], key, from_text)
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


def section(cls, data: Any, name: str, source: Optional[str], from_text: bool,
            secret_keys: Collection[str] = (), ignored: Collection[str] = (),
            renamed: Mapping[str, str] = {}):
    """``cls`` built from the mapping ``data`` of section ``name``.  ``secret_keys``: keys
    whose values no message shows; ``ignored``: keys accepted and dropped; ``renamed``: old
    key -> the field it is read as (a message names the key as written)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig(source, name, "expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        full = f"{name}.{key}"
        if key in ignored:
            continue
        field = renamed.get(key, key)
        if field not in known:
            raise InvalidConfig(source, full, f"unknown key (known: {', '.join(sorted(known))})")
        if field != key and field in data:
            raise InvalidConfig(source, full, f"renamed {name}.{field}, which is set too: "
                                f"remove {full}")
        if key == "log_level" and isinstance(value, str) and from_text and value.strip().isdigit():
            value = int(value)
        try:
            values[field] = _coerce(value, hints[field], full, from_text)
        except (ValueError, OverflowError) as err:
            shown = "value hidden" if key in secret_keys else f"got {value!r}"
            raise InvalidConfig(source, full, f"{err} ({shown})") from None
        _bounded(values[field], full, source)
    return cls(**values)


def _bounded(value: Any, key: str, source: Optional[str]) -> None:
    """Numbers stay below :data:`BOUNDS` (durations: ten years)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    limit = BOUNDS.get(key, TEN_YEARS_S if key.endswith("_s") else None)
    if limit is not None and value > limit:
        raise InvalidConfig(source, key, f"must be at most {limit:g} (got {value:g})")


def substitute(data: Any, source: Optional[str]) -> Dict[str, str]:
    """The ``substitute`` section: names -> values filled into the worker user-data."""
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
