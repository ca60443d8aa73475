"""ecm on OpenStack (``--cloud openstack``): through elastiq's OpenStack adapter.

The connection is the adapter's (:func:`elastiq.adapters.openstack.cloud.connect`: a clouds.yaml
entry named by ``OS_CLOUD``, else the ``OS_*`` variables of an openrc file) and every SDK
exception becomes a domain error through the adapter's translation
(:func:`elastiq.adapters.openstack.cloud.error_from_exception`), worded here for ecm's user.

Credentials embedded in a master (``--embed-credentials``) are an application credential
(``auth_url`` + ``application_credential_id`` + ``_secret``): the master has no clouds.yaml,
and a password is never embedded.  Without embedding, the master's elastiq.yaml names the
clouds.yaml entry (``openstack.cloud``), which the administrator puts on the master.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

from elastiq.adapters.base import AdapterError, AuthError, ConfigError
from elastiq.adapters.openstack.cloud import connect as adapter_connect
from elastiq.adapters.openstack.cloud import error_from_exception
from elastiq.adapters.openstack.config import Settings
from elastiq.adapters.openstack.translate import find_or_none

from .clouds import Endpoint, Image

#: The adapter's settings as ecm's user gives them.
SETTINGS = {"openstack.cloud": "OS_CLOUD", "openstack.region": "--region",
            "openstack.ca_bundle": "--ca-bundle", "openstack.image": "--image",
            "openstack.key_name": "KEY_NAME", "openstack.flavour": "FLAVOR_VMS",
            "openstack.networks": "--network"}
HINT = ("ecm takes the credentials from a clouds.yaml entry named by OS_CLOUD, or from the OS_* "
        "variables of an openrc file: source it")
APP_CREDENTIAL = "v3applicationcredential"


def connect(region: Optional[str], ca_bundle: Optional[str], environ: Mapping[str, str]):
    return OpenStackWizardCloud(region, ca_bundle, environ)


class OpenStackWizardCloud:
    """:class:`ecm.clouds.WizardCloud` on OpenStack (Glance images, Nova flavours and key
    pairs, Neutron networks)."""

    def __init__(self, region: Optional[str], ca_bundle: Optional[str],
                 environ: Mapping[str, str], timeout_s: float = 30):
        self.entry = environ.get("OS_CLOUD") or None
        section = Settings(cloud=self.entry, region=region or environ.get("OS_REGION_NAME"),
                           ca_bundle=ca_bundle)
        try:
            self._conn, self._secrets = adapter_connect(section, timeout_s)
        except ConfigError as err:
            raise self._in_ecm_words(err) from None
        config = self._conn.config.config
        self._auth_type = config.get("auth_type") or "password"
        self._auth = config.get("auth") or {}
        url = self._auth.get("auth_url")
        region_name = self._conn.config.get_region_name() or None
        shown = f"OpenStack {url or self.entry or 'cloud'}" + (
            f" ({region_name})" if region_name else "")
        name = (self._auth.get("application_credential_id") or self._auth.get("username")
                or self.entry)
        self.endpoint = Endpoint(url, region_name, name, shown, False, None)
        self._flavours: Optional[Dict[str, Optional[Tuple[int, int]]]] = None

    def check(self) -> None:
        self._call("authenticate", self._conn.authorize)

    def list_images(self) -> List[Image]:
        images = [Image(i.id, i.name or "", i.created_at or "") for i in
                  self._call("list images", lambda: list(self._conn.image.images()))
                  if i.status == "active"]
        images.sort(key=lambda image: (image.created, image.name), reverse=True)
        return images

    def list_flavours(self) -> List[str]:
        """Names of the flavours the project may use (cached)."""
        return sorted(self._listed_flavours())

    def flavour_shapes(self, name: str) -> Optional[Dict[str, Tuple[int, int]]]:
        """(cpus, MiB) of every flavour the project may use (``name``'s family is among them)."""
        return {n: shape for n, shape in self._listed_flavours().items() if shape is not None}

    def _listed_flavours(self) -> Dict[str, Optional[Tuple[int, int]]]:
        if self._flavours is None:
            flavours = self._call("list flavours", lambda: list(self._conn.compute.flavors()))
            self._flavours = {f.name: (int(f.vcpus), int(f.ram)) if f.vcpus and f.ram else None
                              for f in flavours}
        return self._flavours

    def image_id_problem(self, text: str) -> Optional[str]:
        return None if text.strip() else "give a Glance image id (or name)"

    def find_image(self, image_id: str) -> Optional[Image]:
        """The active image of this id or (unique) name."""
        image = self._call("find image", find_or_none, self._conn.image.find_image, image_id)
        if image is None or image.status != "active":
            return None
        return Image(image.id, image.name or "", image.created_at or "")

    def has_key_pair(self, name: str) -> bool:
        return self._call("find key pair", find_or_none, self._conn.compute.find_keypair,
                          name) is not None

    def has_flavour(self, name: str) -> Optional[bool]:
        return name in self.list_flavours() or self._call(
            "find flavour", find_or_none, self._conn.compute.find_flavor, name) is not None

    def has_network(self, name: str) -> bool:
        return self._call("find network", find_or_none, self._conn.network.find_network,
                          name) is not None

    def static_credentials(self) -> Tuple[str, str]:
        """The application credential in use (id, secret), for embedding in the master."""
        ident = self._auth.get("application_credential_id")
        secret = self._auth.get("application_credential_secret")
        if self._auth_type != APP_CREDENTIAL or not (ident and secret):
            raise AuthError("only an application credential can be embedded in the master, not "
                            f"{self._auth_type} credentials: create one (openstack application "
                            "credential create elastiq), source its openrc or name its clouds.yaml "
                            "entry in OS_CLOUD, and run ecm again")
        return str(ident), str(secret)

    def staging_problem(self) -> Optional[str]:
        return ("ecm cannot stage the elastiq wheel on OpenStack: pass --elastiq-source "
                "elastiq==VERSION (from an index) or git+https://...@<commit>")

    def stage_file(self, path: str, bucket: str, key: str, expires_s: int) -> Tuple[str, bool]:
        raise ConfigError(self.staging_problem())

    # ------------------------------------------------------------------------- helpers

    def _call(self, operation: str, method, *args, **kwargs):
        """``method(*args, **kwargs)``; every failure raised as a domain error in ecm's words."""
        try:
            return method(*args, **kwargs)
        except Exception as sdk_error:  # noqa: BLE001 (the boundary: translated)
            err = error_from_exception(sdk_error, operation, self._secrets)
            raise self._in_ecm_words(err) from None

    def _in_ecm_words(self, err: AdapterError) -> AdapterError:
        key = getattr(err, "key", None)
        if key in SETTINGS:
            return ConfigError(f"{SETTINGS[key]}: {err}", key=key)
        if isinstance(err, AuthError):
            return AuthError(f"{err} ({HINT})")
        return err
