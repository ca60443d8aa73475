"""The clouds ecm can list images on and check settings against: one small interface, one
registry line per cloud.

A cloud module has ``connect(region, ca_bundle, environ) -> WizardCloud``.  Its methods raise
the domain errors of :mod:`elastiq.adapters.base` (the cloud's adapter translates its SDK's
errors, once), with messages in ecm's words (its flags and ec2rc.sh's variables).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Protocol, Tuple

#: ``--cloud`` name -> ``module:function`` connecting to it.
CLOUDS = {"ec2": "ecm.cloud_ec2:connect", "openstack": "ecm.cloud_openstack:connect"}
DEFAULT_CLOUD = "ec2"
#: ``--cloud`` name -> the extra of pyproject.toml that installs its SDK (when not a base one).
EXTRAS = {"openstack": "openstack"}
#: Variables that show OpenStack credentials in the environment (an openrc, or OS_CLOUD).
OPENSTACK_HINTS = ("OS_CLOUD", "OS_AUTH_URL")


def credentials_in(environ: Mapping[str, str]) -> Tuple[str, ...]:
    """The clouds whose credentials the environment shows, ``DEFAULT_CLOUD`` first."""
    found = [DEFAULT_CLOUD] if any(environ.get(v) for v in ("EC2_ACCESS_KEY", "EC2_URL",
                                                             "AWS_ACCESS_KEY_ID")) else []
    if any(environ.get(v) for v in OPENSTACK_HINTS):
        found.append("openstack")
    return tuple(found)


class MissingExtra(Exception):
    """The cloud's SDK is an optional dependency that is not installed (message: what to do)."""


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    created: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where the cloud is, as the master's elastiq configuration and ecm's messages need it."""

    url: Optional[str]
    region: Optional[str]
    #: Names the credentials for the stage bucket's default name (never shown).
    access_key: Optional[str]
    #: ``shown``: the endpoint in messages; ``is_aws``: AWS (instance roles, its limits).
    shown: str
    is_aws: bool
    #: Object store (S3 API) for staging the elastiq wheel; None: the cloud's default, if any.
    s3_url: Optional[str] = None


class WizardCloud(Protocol):
    endpoint: Endpoint

    def check(self) -> None:
        """One cheap authenticated call: raises saying what to fix."""

    def list_images(self) -> List[Image]:
        """Available images, newest first."""

    def image_id_problem(self, text: str) -> Optional[str]:
        """Why ``text`` cannot be an image id of this cloud (None: it may be one)."""

    def find_image(self, image_id: str) -> Optional[Image]:
        """The available image with this id, else None."""

    def has_key_pair(self, name: str) -> bool: ...

    def has_flavour(self, name: str) -> Optional[bool]:
        """Whether the flavour exists; None when the cloud cannot say."""

    def flavour_shapes(self, name: str) -> Optional[Dict[str, Tuple[int, int]]]:
        """(cpus, MiB) by name of the flavours the cloud offers, ``name``'s family at least
        (:mod:`ecm.family`); None when the cloud cannot say."""

    def static_credentials(self) -> Tuple[str, str]:
        """The keys in use, for embedding in the master."""

    def staging_problem(self) -> Optional[str]:
        """Why this cloud cannot stage a file (None: it can); asked before any question."""

    def stage_file(self, path: str, bucket: str, key: str, expires_s: int) -> Tuple[str, bool]:
        """Upload ``path`` privately: a presigned GET URL valid ``expires_s``, and whether the
        bucket had to be created."""


def connect(name: str = DEFAULT_CLOUD, region: Optional[str] = None,
            ca_bundle: Optional[str] = None,
            environ: Mapping[str, str] = os.environ) -> WizardCloud:
    module, function = CLOUDS[name].split(":")
    try:
        connector = getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] in ("ecm", "elastiq"):
            raise
        extra = EXTRAS.get(name, name)
        raise MissingExtra(f"--cloud {name} needs the {err.name} package, which the "
                           f"'{extra}' extra installs: pip install 'elastiq[{extra}]' (from "
                           f"the checkout: sh tools/venv.sh '.[{extra}]')") from None
    return connector(region, ca_bundle, environ)
