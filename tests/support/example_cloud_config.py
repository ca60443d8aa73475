"""The ``example`` section of the test-only example cloud (:mod:`tests.support.example_cloud`).

It follows the plugin configuration contract of :mod:`elastiq.adapters` and proves that a
cloud brings its own section without any change to elastiq's core: it is found as the
``_config`` sibling of the dotted path ``tests.support.example_cloud:ExampleCloud``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Tuple

NAME = "example"
FLAVOURS = {"small": (1, 2048), "large": (4, 8192)}


@dataclass(frozen=True)
class Settings:
    state_file: Optional[str] = None   # where the cloud keeps its instances (JSON)
    region: str = "region-1"
    flavour: str = "small"
    api_token: Optional[str] = field(default=None, repr=False)
    max_per_call: int = 5


SECRET_KEYS = frozenset({"api_token"})


def validate(settings: Settings) -> Iterable[Tuple[str, str]]:
    if settings.flavour not in FLAVOURS:
        yield "flavour", f"unknown flavour {settings.flavour!r} (known: {', '.join(FLAVOURS)})"
    if settings.max_per_call < 1:
        yield "max_per_call", f"must be >= 1 (got {settings.max_per_call})"


def summary(settings: Settings) -> str:
    return f"of {settings.flavour} in {settings.region}"


def secret_texts(settings: Settings) -> Iterable[str]:
    return (settings.api_token,) if settings.api_token else ()


def flavour(settings: Settings) -> Optional[str]:
    return settings.flavour
