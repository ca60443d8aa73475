"""The ``openstack`` configuration section: what the OpenStack adapter reads, its checks, its
secrets and its part of the start-up summary.  Imports no SDK (``elastiq config check`` and the
registry load it without openstacksdk).

Credentials are OpenStack's own: a ``clouds.yaml`` entry (``cloud``, found where openstacksdk
looks, or in ``clouds_yaml``), else the ``OS_*`` variables of an openrc file, else the
application credential given here (``auth_url`` + ``application_credential_id`` +
``application_credential_secret``: what ecm writes into a master, which has no clouds.yaml).
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional, Tuple, Union

from ... import flavours as flavour_list

NAME = "openstack"

#: ``networks`` entries that are Nova's words, not network names: "auto" (Nova picks or
#: allocates the project's network) and "none" (no network interface).
NETWORK_WORDS = ("auto", "none")


@dataclass(frozen=True)
class Settings:
    cloud: Optional[str] = None  # clouds.yaml entry; None: OS_* variables or the keys below
    clouds_yaml: Optional[str] = None  # a clouds.yaml path (default: openstacksdk's places)
    region: Optional[str] = None  # overrides the cloud's region_name / OS_REGION_NAME
    auth_url: Optional[str] = None
    application_credential_id: Optional[str] = None
    application_credential_secret: Optional[str] = field(default=None, repr=False)
    image: Optional[str] = None  # Glance image name or id
    # Nova flavour name or id, or several (a list; see elastiq.flavours): the first is the reference
    flavour: Optional[Union[str, Tuple[str, ...]]] = None
    key_name: Optional[str] = None
    security_groups: Tuple[str, ...] = ()
    networks: Tuple[str, ...] = ()  # Neutron network names or ids; () or "auto" / "none"
    user_data_b64: Optional[str] = field(default=None, repr=False)
    user_data_file: Optional[str] = None
    ca_bundle: Optional[str] = None  # CA certificate(s) of a private cloud's endpoints
    read_timeout_s: float = 30


#: Keys of the section whose values are never printed, logged or echoed in an error.
SECRET_KEYS = frozenset({"application_credential_secret", "user_data_b64"})


def validate(settings: Settings) -> Iterable[Tuple[str, str]]:
    """``(key, problem)`` for each setting that cannot work, without calling the cloud."""
    s = settings
    if s.clouds_yaml and not s.cloud:
        yield "clouds_yaml", "set cloud too: the name of the entry to use in that file"
    if s.clouds_yaml and not os.path.isfile(s.clouds_yaml):
        yield "clouds_yaml", f"{s.clouds_yaml} is not a file"
    if s.ca_bundle and not os.path.isfile(s.ca_bundle):
        yield "ca_bundle", f"{s.ca_bundle} is not a file"
    if bool(s.application_credential_id) != bool(s.application_credential_secret):
        missing = ("application_credential_secret" if s.application_credential_id
                   else "application_credential_id")
        yield missing, "set both application_credential_id and _secret, or neither"
    if s.application_credential_id and not (s.auth_url or s.cloud):
        yield "auth_url", "an application credential needs the Keystone URL (auth_url)"
    words = [n for n in s.networks if n in NETWORK_WORDS]
    if words and len(s.networks) > 1:
        yield "networks", f"{words[0]!r} must be the only entry"
    if s.user_data_b64 and s.user_data_file:
        yield "user_data_file", "set either user_data_b64 or user_data_file, not both"
    if s.user_data_b64:
        try:
            base64.b64decode("".join(s.user_data_b64.split()), validate=True)
        except (binascii.Error, ValueError):
            yield "user_data_b64", "not valid base64 (value hidden)"
    if not 0 < s.read_timeout_s <= 3600:
        yield "read_timeout_s", f"must be in (0, 3600] (got {s.read_timeout_s:g})"
    yield from flavour_list.problems(NAME, s.flavour)


def summary(settings: Settings) -> str:
    """This section's part of the start-up summary line (no secrets)."""
    s = settings
    where = f"cloud {s.cloud}" if s.cloud else (s.auth_url or "OS_* environment")
    region = f" region {s.region}" if s.region else ""
    return f"of {', '.join(flavour_list.texts(s.flavour)) or '?'} (image {s.image or '?'}), OpenStack {where}{region}"


def secret_texts(settings: Settings) -> Iterable[str]:
    """Values to redact from logs: the credential secret and the worker user-data (as given,
    decoded, and line by line: it carries the pool's token)."""
    s = settings
    texts = [s.application_credential_secret or "", s.user_data_b64 or ""]
    decoded = ""
    if s.user_data_b64:
        try:
            decoded = base64.b64decode("".join(s.user_data_b64.split())).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            decoded = ""
    elif s.user_data_file:
        try:
            with open(s.user_data_file, encoding="utf-8", errors="replace") as handle:
                decoded = handle.read()
        except OSError:
            decoded = ""
    texts += [line.strip() for line in decoded.splitlines()]
    return tuple(t for t in texts if len(t) >= 8)


def flavour(settings: Settings) -> Optional[str]:
    return flavour_list.first_name(settings.flavour)


def flavours(settings: Settings) -> Tuple[str, ...]:
    """Every flavour entry as written (``elastiq.flavours``)."""
    return flavour_list.texts(settings.flavour)
