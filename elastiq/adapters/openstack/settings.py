"""``OpenStackCloud.check_settings``: ask Glance, Nova and Neutron about each launch setting
without launching anything."""
from __future__ import annotations

from typing import Callable, ContextManager, List

from ... import flavours as flavour_list
from ..base import ConfigError, SettingCheck, check_setting
from .config import NETWORK_WORDS, Settings
from .translate import find_or_none

Boundary = Callable[[str], ContextManager[None]]


def check(s: Settings, conn, boundary: Boundary, find: Callable) -> List[SettingCheck]:
    """Image, every flavour, networks, key pair and security groups, each as the cloud knows
    it.  ``find``: the adapter's cached lookup of the image, a flavour and the networks (its
    ConfigError names the key)."""

    def named(operation: str, finder, key: str, value: str, shown: Callable) -> Callable[[], str]:
        def ask() -> str:
            with boundary(operation):
                item = find_or_none(finder, value)
            if item is None:
                raise ConfigError(f"the cloud does not know {key} {value!r}", key=key)
            return shown(item)
        return ask

    checks = [check_setting("openstack.image", s.image or "",
                            lambda: _image(find("image")))]
    for name in flavour_list.names(s.flavour) or [None]:
        key = flavour_list.key_named("openstack", s.flavour, name) if name else "openstack.flavour"
        checks.append(check_setting(key, name or "", lambda name=name: _flavour(find("flavour", name))))
    networks = s.networks or ("auto",)
    checks.append(check_setting("openstack.networks", " ".join(networks), lambda: (
        "chosen by Nova" if networks[0] in NETWORK_WORDS
        else f"{len(find('networks'))} network(s) found")))
    if s.key_name:
        checks.append(check_setting("openstack.key_name", s.key_name, named(
            "find key pair", conn.compute.find_keypair, "openstack.key_name", s.key_name,
            lambda k: f"key pair {k.name}")))
    for group in s.security_groups:
        checks.append(check_setting("openstack.security_groups", group, named(
            "find security group", conn.network.find_security_group,
            "openstack.security_groups", group, lambda g: f"security group {g.id}")))
    return checks


def _image(image) -> str:
    return f"{image.name} ({image.status or 'status unknown'})"


def _flavour(flavor) -> str:
    return f"{flavor.vcpus} cpu(s), {flavor.ram} MiB"
