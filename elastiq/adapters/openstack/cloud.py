"""The Cloud port on OpenStack through openstacksdk (Nova, Glance, Neutron).

The only module that imports openstacksdk/keystoneauth.  What it guarantees:

* It sees only servers tagged ``elastiq:<cluster>`` (Nova server tags, microversion >= 2.26 to
  filter on them, >= 2.52 to set them at creation): listing filters on the server side and
  checks the tag again on every item; terminate refuses any id not carrying it.  Metadata
  (``elastiq:cluster``, ``elastiq:request``) says the same for humans.  Given an ``owner`` id,
  every server also carries ``elastiq:owner=<owner>`` in its metadata, listings report each
  server's owner, and terminate refuses another owner's (:mod:`elastiq.runtime.owner`).
* ``launch(n)`` is one create (``min_count=1, max_count=n``: Nova grants what the quota
  allows) plus one listing of that request's servers (a multi-create answers with the first
  only).  Nova has no client token: every request carries its own id in the servers' name and
  metadata, so a create whose answer was lost (timeout, 5xx after the fact) is looked up before
  the error is reported, and what it made is returned, not launched again.
* Every SDK exception is translated once, in :meth:`OpenStackCloud._boundary`, into a domain
  error of ``base.py`` (``translate``).  No secret reaches a message or a log.

Configured by the ``openstack`` section (``config.Settings``: ``config.cloud``).
A little over 300 lines: one class holding the Cloud port on Nova, kept whole so that a create
and the lookup of its lost answer stay side by side (errors and configuration are apart).
"""
from __future__ import annotations

import base64
import contextlib
import logging
import time
import uuid
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import keystoneauth1.exceptions as ksa
import openstack.exceptions as ose
from openstack import connection as os_connection
from openstack.config import OpenStackConfig

from ... import flavours as flavour_list
from ...model import Instance, InstanceState
from . import settings as openstack_settings
from ..base import (AdapterError, AuthError, ConfigError, FatalError, SettingCheck,
                    TransientError)
from ..redact import redact, secret_values
from ..userdata import Detect, detect_addresses, prepare_user_data
from .config import NETWORK_WORDS, Settings
from .translate import (CLUSTER_KEY, OWNER_KEY, REQUEST_KEY, cluster_tag, error_from_status,
                        find_or_none, server_name, to_instance)

log = logging.getLogger(__name__)

#: Nova takes at most 65535 bytes of base64 user-data: 49149 bytes before encoding.
MAX_USER_DATA_BYTES = 49149
_SERVER_FIELDS = ("id", "status", "task_state", "created_at", "metadata", "addresses", "flavor",
                  "fault")


def connect(s: Settings, timeout: float):
    """An openstacksdk Connection for ``s`` (no call made yet) and the secrets it holds.

    Credentials: the clouds.yaml entry ``s.cloud`` (in ``s.clouds_yaml`` or openstacksdk's
    usual places), else the ``OS_*`` variables, then the application credential of ``s``.
    """
    try:
        loader = OpenStackConfig(config_files=[s.clouds_yaml] if s.clouds_yaml else None)
        extra: Dict[str, object] = {"api_timeout": timeout}
        if s.region:
            extra["region_name"] = s.region
        if s.ca_bundle:
            extra["cacert"] = s.ca_bundle
        if s.application_credential_id:
            extra["auth_type"] = "v3applicationcredential"
            extra["auth"] = {k: v for k, v in (
                ("auth_url", s.auth_url),
                ("application_credential_id", s.application_credential_id),
                ("application_credential_secret", s.application_credential_secret)) if v}
        region = loader.get_one(cloud=s.cloud, **extra)
    except ose.ConfigException as err:
        where = s.clouds_yaml or "openstacksdk's usual places"
        raise ConfigError(f"{redact(str(err))} (clouds.yaml: {where})",
                          key="openstack.cloud") from None
    auth = region.config.get("auth") or {}
    secrets = tuple(str(v) for k, v in auth.items()
                    if v and any(w in k for w in ("password", "secret", "token")))
    return os_connection.Connection(config=region), secrets


class OpenStackCloud:
    """:class:`base.Cloud` on OpenStack.  ``conn`` replaces the connection made from the
    settings (tests, the benchmark); ``read_timeout`` overrides ``read_timeout_s``; ``owner``:
    the daemon's owner id (None: none set, every server of the cluster may be deleted)."""

    #: Its reads talk to the cloud's API and share nothing with the other port's adapter: the
    #: runtime lists the cloud while it reads the queue (:func:`base.reads_overlap`).
    independent_reads = True

    def __init__(self, config, user_data: Union[bytes, str, None] = None,
                 substitutions: Optional[Mapping[str, str]] = None, conn=None,
                 clock: Callable[[], float] = time.time, *, read_timeout: Optional[float] = None,
                 detect: Detect = detect_addresses, owner: Optional[str] = None):
        self._s: Settings = config.cloud
        self.owner = owner
        self._cluster = config.elastiq.cluster_name
        self._tag = cluster_tag(self._cluster)
        self._clock = clock
        self._secrets: Tuple[str, ...] = ()
        if conn is None:
            conn, self._secrets = connect(
                self._s, self._s.read_timeout_s if read_timeout is None else read_timeout)
        self._conn = conn
        self._user_data = prepare_user_data(
            self._s, user_data, config.substitute, substitutions, detect, prefix="openstack",
            cloud="Nova", max_bytes=MAX_USER_DATA_BYTES)
        self._secrets += secret_values(
            (self._s.application_credential_secret,),
            (*(substitutions or {}).values(), *config.substitute.values()), self._user_data)
        self._ids: Dict[str, object] = {}  # image / flavour / networks resolved once
        self._faults: set = set()  # servers whose ERROR was logged
        for name in ("openstack", "keystoneauth"):  # request bodies are logged at DEBUG
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)

    # ------------------------------------------------------------------------- Cloud port

    def launch(self, count: int, *, flavour: Optional[str] = None,
               request_id: Optional[str] = None) -> Tuple[str, ...]:
        """Ask for ``count`` servers in one create; return the ids granted (1..count).

        ``request_id`` names the request (Nova has no idempotency token: the servers' name and
        metadata carry it): the same request again first looks for the servers the earlier
        attempt made (one listing) and answers with them if there are any.  ``flavour``: one of ``openstack.flavour``'s
        entries (None: the first)."""
        if count < 1:
            return ()
        self._flavour(flavour)  # a flavour not configured is refused before any call
        if request_id:  # a retry: the first attempt may have reached Nova
            done = self._of_request(request_id)
            if done:
                return done[:count]
        request_id = request_id or uuid.uuid4().hex
        attrs = self._create_attrs(count, request_id, flavour)
        try:
            with self._boundary("create servers"):
                first = self._conn.compute.create_server(**attrs)
        except TransientError as err:  # did it reach Nova? its servers carry the request id
            found = self._of_request(request_id)
            if not found:
                raise
            log.warning("create servers failed (%s) but request %s made %d server(s): kept",
                        err, request_id, len(found))
            return found[:count]
        try:
            ids = self._of_request(request_id) or (first.id,)
        except AdapterError as err:  # the others carry our tag: the next listing adopts them
            log.warning("cannot list the servers of request %s (%s): %s and any others of it "
                        "are seen at the next listing", request_id, err, first.id)
            ids = (first.id,)
        log.debug("launched %d of %d VM(s) requested (request %s): %s",
                 len(ids), count, request_id, " ".join(ids))
        return ids[:count]

    def list_instances(self) -> Tuple[Instance, ...]:
        """Our servers (tag ``elastiq:<cluster>``) in every state Nova still lists."""
        servers = self._servers()
        for server in servers:  # why a server failed (No valid host...), once per server
            fault = server["fault"] or {}
            if server["status"] == "ERROR" and server["id"] not in self._faults:
                self._faults.add(server["id"])
                log.warning("server %s is in ERROR: %s", server["id"],
                            redact(str(fault.get("message") or "no fault given"), self._secrets))
        return tuple(to_instance(s, self._clock) for s in servers)

    def terminate(self, instance_ids: Sequence[str]) -> None:
        """Delete those of ``instance_ids`` that carry our tag (one listing, then one DELETE
        each: Nova has no bulk delete); ids not ours are skipped with a warning, ids gone or
        already being deleted silently.  Every deletion is tried; the first error is raised."""
        ids = list(dict.fromkeys(i for i in instance_ids if i))
        if not ids:
            return
        listed = (to_instance(s, self._clock) for s in self._servers())
        states = {i.id: i.state for i in listed
                  if self.owner is None or i.owner in (None, self.owner)}
        refused = [i for i in ids if i not in states]
        if refused:
            log.warning("not terminating %s: not tagged %s, or another elastiq's (%s), or gone",
                        " ".join(refused), self._tag, OWNER_KEY)
        alive = [i for i in ids if states.get(i) not in
                 (None, InstanceState.GONE, InstanceState.SHUTTING_DOWN)]
        if alive:
            log.debug("terminating %d instance(s): %s", len(alive), " ".join(alive))
        first: Optional[AdapterError] = None
        for server_id in alive:
            try:
                with self._boundary("delete server"):
                    self._conn.compute.delete_server(server_id, ignore_missing=True)
            except AdapterError as err:
                first = first or err
        if first is not None:
            raise first

    # ------------------------------------------------------------------------- extras

    def describe_flavours(self, names: Sequence[str]) -> Dict[str, Tuple[int, int]]:
        """``name -> (vcpus, ram_mb)`` of these entries of ``openstack.flavour`` (one lookup
        each, cached).  Unknown: ConfigError naming ``openstack.flavour[i]``."""
        found = {}
        for name in names:
            flavor = self._find("flavour", name)
            found[name] = (int(flavor.vcpus), int(flavor.ram))
        return found

    def check_settings(self) -> List[SettingCheck]:
        """See :meth:`base.Cloud.check_settings` (:func:`.settings.check`)."""
        return openstack_settings.check(self._s, self._conn, self._boundary, self._find)

    # ------------------------------------------------------------------------- helpers

    def _servers(self, **query) -> List[dict]:
        """Our servers as plain dicts (fields of translate.to_instance); items the
        cloud returns without our tag are dropped, loudly."""
        found, foreign = [], []
        with self._boundary("list servers"):
            for server in self._conn.compute.servers(details=True, tags=self._tag, **query):
                if self._tag in (server.tags or ()):
                    found.append({k: getattr(server, k, None) for k in _SERVER_FIELDS})
                else:
                    foreign.append(server.id)
        if foreign:
            log.warning("ignored %d server(s) the cloud listed without tag %s: %s",
                        len(foreign), self._tag, " ".join(foreign[:10]))
        return found

    def _of_request(self, request_id: str) -> Tuple[str, ...]:
        """Ids of the servers made by launch request ``request_id`` (oldest first)."""
        name = server_name(self._cluster, request_id)
        made = [s for s in self._servers(name=f"^{name}")
                if (s["metadata"] or {}).get(REQUEST_KEY) == request_id]
        return tuple(s["id"] for s in sorted(made, key=lambda s: (s["created_at"] or "", s["id"])))

    def _find(self, what: str, name: Optional[str] = None):
        """The image / flavour resource, or the networks argument, of the settings (cached);
        ``name``: a flavour entry's name (None: the first)."""
        key = f"openstack.{what}"
        value = getattr(self._s, what)
        if what == "flavour":
            value, key = self._flavour(name)
            what = f"flavour:{value}"
        if what in self._ids:
            return self._ids[what]
        if what == "networks":
            names = value or ("auto",)
            if names[0] in NETWORK_WORDS:
                found: object = names[0]
            else:
                nets = []
                for net in names:
                    with self._boundary("find network"):
                        item = find_or_none(self._conn.network.find_network, net)
                    if item is None:
                        raise ConfigError(f"the cloud does not know network {net!r} of {key}",
                                          key=key)
                    nets.append({"uuid": item.id})
                found = nets
        else:
            if not value:
                raise ConfigError(f"cannot launch VMs: {key} is not set", key=key)
            with self._boundary(f"find {what.partition(':')[0]}"):
                finder = (self._conn.image.find_image if what == "image"
                          else self._conn.compute.find_flavor)
                found = find_or_none(finder, value)
            if found is None:
                raise ConfigError(f"the cloud does not know {key} {value!r}", key=key)
        self._ids[what] = found
        return found

    def _flavour(self, name: Optional[str]) -> Tuple[Optional[str], str]:
        """``(name, key)`` of the flavour entry ``name`` (None: the first); ConfigError when it
        is not one of ``openstack.flavour``'s."""
        names = flavour_list.names(self._s.flavour)
        if name is not None and name not in names:
            raise ConfigError(f"cannot launch {name!r}: not one of openstack.flavour's",
                              key="openstack.flavour")
        value = name or (names[0] if names else None)
        return value, flavour_list.key_named("openstack", self._s.flavour, value)

    def _create_attrs(self, count: int, request_id: str,
                      flavour: Optional[str] = None) -> Dict[str, object]:
        s = self._s
        attrs: Dict[str, object] = {
            "name": server_name(self._cluster, request_id),
            "image_id": self._find("image").id, "flavor_id": self._find("flavour", flavour).id,
            "networks": self._find("networks"), "min_count": 1, "max_count": count,
            "tags": [self._tag],
            "metadata": {CLUSTER_KEY: self._cluster, REQUEST_KEY: request_id,
                         "elastiq:managed": "true",
                         **({OWNER_KEY: self.owner} if self.owner else {})}}
        if s.key_name:
            attrs["key_name"] = s.key_name
        if s.security_groups:
            attrs["security_groups"] = [{"name": g} for g in s.security_groups]
        if self._user_data is not None:
            attrs["user_data"] = base64.b64encode(self._user_data).decode("ascii")
        return attrs

    @contextlib.contextmanager
    def _boundary(self, operation: str):
        """The one place where SDK exceptions become domain errors."""
        try:
            yield
        except AdapterError:
            raise
        except Exception as err:  # noqa: BLE001 - the boundary: nothing from the SDK goes on
            raise error_from_exception(err, operation, self._secrets) from None


def error_from_exception(err: Exception, operation: str,
                         secrets: Sequence[str] = ()) -> AdapterError:
    """The domain error for an exception of openstacksdk / keystoneauth (the adapter's and ecm's
    one translation; HTTP answers through :func:`.translate.error_from_status`)."""
    if isinstance(err, ose.HttpException):
        return error_from_status(err.status_code, err.details or err.message or "",
                                 operation, secrets)
    if isinstance(err, ksa.HttpError):
        return error_from_status(err.http_status, err.message or "", operation, secrets)
    if isinstance(err, ksa.SSLError):
        return ConfigError("TLS verification of the OpenStack endpoint failed: set "
                           "openstack.ca_bundle to its CA certificate",
                           key="openstack.ca_bundle")
    if isinstance(err, (ksa.ConnectionError, ksa.DiscoveryFailure)):
        return TransientError(f"cannot reach OpenStack for {operation} (unreachable or "
                              "timed out): check the auth URL and the network")
    if isinstance(err, ksa.AuthPluginException):
        return AuthError("no usable OpenStack credentials: set openstack.cloud (a "
                         "clouds.yaml entry), source the openrc file (OS_*), or set "
                         "an application credential")
    if isinstance(err, (ksa.EndpointNotFound, ksa.EmptyCatalog)):
        return ConfigError(f"no OpenStack endpoint for {operation} in the catalog: "
                           "check openstack.region", key="openstack.region")
    if isinstance(err, ose.ResourceTimeout):
        return TransientError(f"OpenStack {operation} timed out")
    return FatalError(f"OpenStack {operation} failed: {type(err).__name__}: "
                      f"{redact(str(err), secrets)}")
