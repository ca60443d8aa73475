"""OpenStack's vocabulary in elastiq's terms: HTTP errors -> domain errors, Nova servers ->
:class:`model.Instance`, the cluster's tag.  Pure: no SDK import (``openstack.py`` hands in
plain data).

Error policy (one table, applied once at the adapter's boundary):

* 5xx, 429, 409 (a server busy with another task), timeouts, unreachable endpoints:
  :class:`TransientError`, the daemon tries again next tick;
* ``Quota exceeded`` (403 or 413 from Nova), ``No valid host``: :class:`QuotaError`, the core
  backs off;
* 401 and other 403s: :class:`AuthError`, whose message says what to check;
* a 400 or 404 naming a configured thing the cloud does not know (image, flavour, network,
  key pair, security group): :class:`ConfigError` with ``key`` naming the setting;
* anything else: :class:`FatalError`.

Messages carry the cloud's text only after :func:`elastiq.adapters.redact.redact` (secrets, tokens).
"""
from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Optional

from ...model import Instance, InstanceState
from ..base import AdapterError, AuthError, ConfigError, FatalError, QuotaError, TransientError
from ..redact import redact

log = logging.getLogger(__name__)

PREFIX = "openstack"
#: Metadata keys on every server we create (humans read them; the tag is what we filter on).
CLUSTER_KEY = "elastiq:cluster"
REQUEST_KEY = "elastiq:request"
OWNER_KEY = "elastiq:owner"  # the launching daemon's owner id (elastiq.runtime.owner)
_TAG_OK = re.compile(r"^[^,/]{1,60}$")

#: Nova status -> elastiq state.  SHUTOFF / PAUSED / SUSPENDED / SHELVED* are ERROR for the
#: reason EC2's ``stopped`` is (ec2.translate.STATES): no work done, quota still held, nothing
#: brings it back: terminate and replace.  Reboots, resizes and migrations keep it RUNNING.
STATES = {
    "BUILD": InstanceState.BOOTING,
    "REBUILD": InstanceState.BOOTING,
    "ACTIVE": InstanceState.RUNNING,
    "REBOOT": InstanceState.RUNNING,
    "HARD_REBOOT": InstanceState.RUNNING,
    "PASSWORD": InstanceState.RUNNING,
    "MIGRATING": InstanceState.RUNNING,
    "RESIZE": InstanceState.RUNNING,
    "VERIFY_RESIZE": InstanceState.RUNNING,
    "REVERT_RESIZE": InstanceState.RUNNING,
    "ERROR": InstanceState.ERROR,
    "SHUTOFF": InstanceState.ERROR,
    "STOPPED": InstanceState.ERROR,
    "PAUSED": InstanceState.ERROR,
    "SUSPENDED": InstanceState.ERROR,
    "SHELVED": InstanceState.ERROR,
    "SHELVED_OFFLOADED": InstanceState.ERROR,
    "RESCUE": InstanceState.ERROR,
    "UNKNOWN": InstanceState.ERROR,
    "DELETED": InstanceState.GONE,
    "SOFT_DELETED": InstanceState.GONE,
}

#: Words of a Nova 400/404 message (lower case) -> the setting naming the unknown thing.
CONFIG_WORDS = (
    (("user_data", "user data"), "user_data_b64"),
    (("image",), "image"),
    (("flavor", "flavorref"), "flavour"),
    (("key_name", "keypair", "key pair"), "key_name"),
    (("security group", "security_group"), "security_groups"),
    (("network", "port", "subnet"), "networks"),
)
_CREDENTIALS_HINT = (
    "check openstack.cloud (its clouds.yaml entry) or the OS_* variables of the openrc file, "
    "or the application credential, and that it is valid for this project and region")


def find_or_none(find: Callable[..., Any], name_or_id: str) -> Any:
    """openstacksdk's ``find_*(name_or_id)``, None when nothing matches (asked with
    ``ignore_missing=False`` and caught: openstacksdk deprecates its ``True`` default)."""
    from openstack.exceptions import NotFoundException
    try:
        return find(name_or_id, ignore_missing=False)
    except NotFoundException:
        return None


def cluster_tag(cluster: str) -> str:
    """The Nova server tag of a cluster: ``elastiq:<name>``, or ``elastiq:<sha256 prefix>`` when
    the name cannot be a tag (Nova: at most 60 characters, no ``,`` or ``/``)."""
    tag = f"elastiq:{cluster}"
    if _TAG_OK.match(tag):
        return tag
    return "elastiq:" + hashlib.sha256(cluster.encode()).hexdigest()[:32]


def server_name(cluster: str, request_id: str) -> str:
    """Display name of the servers of one launch request (Nova appends ``-1``, ``-2``...)."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", cluster).strip("-")[:40] or "elastiq"
    return f"{name}-worker-{request_id[:8]}"


def config_key(message: str) -> Optional[str]:
    """The setting a Nova 400/404 message is about (``openstack.image``...), or None."""
    text = message.lower()
    for words, key in CONFIG_WORDS:
        if any(word in text for word in words):
            return f"{PREFIX}.{key}"
    return None


def error_from_status(status: Optional[int], message: str, operation: str,
                      secrets: Iterable[str] = ()) -> AdapterError:
    """The domain error for an OpenStack HTTP error answer (see the module docstring)."""
    shown = redact(message or "", secrets)
    lower = (message or "").lower()
    status = status or 0
    if "quota exceeded" in lower or "quota" in lower and status in (403, 413) \
            or "no valid host" in lower:
        return QuotaError(f"the cloud refused {operation} for lack of quota or capacity: {shown}")
    if status == 401:
        return AuthError(f"OpenStack rejected our credentials ({operation}, 401); "
                         f"{_CREDENTIALS_HINT}")
    if status == 403:
        return AuthError(f"the credentials are valid but not allowed to {operation} (403): "
                         f"{shown}; check the project's roles and the cloud's policy")
    if status >= 500 or status in (408, 409, 429):
        return TransientError(f"OpenStack {operation} failed on the cloud's side ({status}): "
                              f"{shown}")
    if status in (400, 404):
        key = config_key(message or "")
        if key == f"{PREFIX}.user_data_b64":
            return ConfigError("the cloud rejected the worker user-data; check "
                               "openstack.user_data_b64 / openstack.user_data_file", key=key)
        if key is not None:
            return ConfigError(f"the cloud does not accept {key} ({status} on {operation}): "
                               f"{shown}", key=key)
        return ConfigError(f"the cloud rejected the {operation} request ({status}): {shown}")
    return FatalError(f"OpenStack {operation} failed ({status or 'no status'}): {shown}")


def _launched_at(created: Any, clock: Callable[[], float]) -> float:
    if isinstance(created, str) and created:
        try:
            return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return clock()


def _fixed_ipv4(addresses: Any) -> Optional[str]:
    for entries in (addresses or {}).values():
        for entry in entries or ():
            if entry.get("version") == 4 and entry.get("OS-EXT-IPS:type", "fixed") == "fixed":
                return entry.get("addr")
    return None


def state_of(status: Optional[str], task_state: Optional[str]) -> InstanceState:
    """elastiq's state of a server: a server being deleted is SHUTTING_DOWN whatever its
    status; an unknown status is ERROR (counted against max_vms, looked at) with a warning."""
    if task_state == "deleting" and status not in ("DELETED", "SOFT_DELETED"):
        return InstanceState.SHUTTING_DOWN
    state = STATES.get((status or "").upper())
    if state is None:
        log.warning("server status %r unknown: treated as error", status)
        return InstanceState.ERROR
    return state


def to_instance(server: Mapping[str, Any], clock: Callable[[], float]) -> Instance:
    """One server (openstacksdk attribute names: id, status, task_state, created_at,
    metadata, addresses, flavor) as a :class:`model.Instance`."""
    flavor, metadata = server.get("flavor") or {}, server.get("metadata") or {}
    return Instance(
        id=server["id"],
        state=state_of(server.get("status"), server.get("task_state")),
        launched_at=_launched_at(server.get("created_at"), clock),
        cluster=metadata.get(CLUSTER_KEY),
        private_ip=_fixed_ipv4(server.get("addresses")),
        instance_type=flavor.get("original_name") or flavor.get("name") or flavor.get("id"),
        owner=metadata.get(OWNER_KEY),
    )
