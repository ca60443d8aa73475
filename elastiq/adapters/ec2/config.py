"""The ``ec2`` section: where the EC2 cloud is, how to reach it, what to launch.

Imports no SDK: ``elastiq config check`` and the loader read it without boto3.  The plugin
configuration contract (shared by every adapter's ``<plugin>_config`` module) is described in
:mod:`elastiq.adapters`.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Iterable, Optional, Tuple, Union

from ... import flavours as flavour_list

NAME = "ec2"


@dataclass(frozen=True)
class Settings:
    api_url: Optional[str] = None
    region: Optional[str] = None
    # Secrets (see SECRET_KEYS): kept out of repr(), so no log line or traceback shows them.
    aws_access_key_id: Optional[str] = field(default=None, repr=False)
    aws_secret_access_key: Optional[str] = field(default=None, repr=False)
    image_id: Optional[str] = None
    # one instance type, or several (a list; see elastiq.flavours): the first is the reference
    flavour: Optional[Union[str, Tuple[str, ...]]] = None
    key_name: Optional[str] = None
    security_groups: Tuple[str, ...] = ()
    subnet_id: Optional[str] = None
    user_data_b64: Optional[str] = field(default=None, repr=False)
    user_data_file: Optional[str] = None
    ca_bundle: Optional[str] = None
    # Seconds to wait for an answer to one API call before it counts as failed (and is
    # retried): longer than the cloud's slowest normal answer, shorter than the tick.
    read_timeout_s: float = 30


#: Keys whose values are never printed, logged or echoed in an error.
SECRET_KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "user_data_b64"})
#: Keys of the original elastiq that are accepted and ignored.
IGNORED_KEYS = frozenset({"api_version"})


def _decoded(b64: str) -> Optional[bytes]:
    try:
        return base64.b64decode("".join(b64.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def validate(settings: Settings) -> Iterable[Tuple[str, str]]:
    if settings.user_data_b64 and settings.user_data_file:
        yield "user_data_file", "set either ec2.user_data_b64 or ec2.user_data_file, not both"
    if settings.user_data_b64 and _decoded(settings.user_data_b64) is None:
        yield "user_data_b64", "not valid base64 (value hidden)"
    if settings.read_timeout_s <= 0:
        yield "read_timeout_s", f"must be > 0 (got {settings.read_timeout_s:g})"
    yield from flavour_list.problems(NAME, settings.flavour)


def summary(settings: Settings) -> str:
    return (f"of {', '.join(flavour_list.texts(settings.flavour)) or '?'} (image {settings.image_id or '?'}, endpoint "
            f"{settings.api_url or settings.region or 'default'})")


def secret_texts(settings: Settings) -> Iterable[str]:
    """The keys, the user-data (base64 and decoded) and the user-data file's text."""
    yield from (s for s in (settings.aws_access_key_id, settings.aws_secret_access_key) if s)
    if settings.user_data_b64:
        yield settings.user_data_b64
        try:
            yield base64.b64decode(settings.user_data_b64, validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            pass
    if settings.user_data_file:
        try:
            with open(settings.user_data_file, encoding="utf-8", errors="replace") as handle:
                yield handle.read()
        except OSError:
            pass


def flavour(settings: Settings) -> Optional[str]:
    return flavour_list.first_name(settings.flavour)


def flavours(settings: Settings) -> Tuple[str, ...]:
    """Every flavour entry as written (``elastiq.flavours``)."""
    return flavour_list.texts(settings.flavour)
