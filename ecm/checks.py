"""Checks the wizard makes before it writes anything: the output path, the CA bundle, and that
the cloud has the key pair and the flavour of ecm.conf."""
from __future__ import annotations

import os
import stat
import sys
from typing import Optional


class UsageError(Exception):
    pass


def check_output(path: str, force: bool) -> None:
    """Refuse an output that exists (unless --force) or that is not a regular file (ever)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise UsageError(f"{path}: cannot use it as the output ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path} exists and is not a regular file: ecm never replaces it, "
                         "even with --force; choose another --output")
    if not force:
        raise UsageError(f"{path} exists: choose another --output, or --force to overwrite it")


def check_key_and_flavour(cloud, conf, where: str) -> None:
    if conf.key_name and not cloud.has_key_pair(conf.key_name):
        raise UsageError(f"{conf.path}, KEY_NAME: no key pair {conf.key_name!r} in {where} "
                         "(import it, or leave KEY_NAME empty for none)")
    known = cloud.has_flavour(conf.flavour)
    if known is False:
        names = cloud.list_flavours() if hasattr(cloud, "list_flavours") else ()
        raise UsageError(f"{conf.path}, FLAVOR_VMS: no flavour (instance type) "
                         f"{conf.flavour!r} in {where}" +
                         (f" (known: {', '.join(names)})" if names else ""))
    if known is None:
        print(f"Note: {where} cannot list its flavours: FLAVOR_VMS={conf.flavour} is not "
              "checked.", file=sys.stderr)


def check_networks(cloud, networks, where: str) -> None:
    """``--network``: OpenStack's, each one known to the cloud."""
    if networks and not hasattr(cloud, "has_network"):
        raise UsageError("--network is for --cloud openstack (on EC2: --subnet-id)")
    for name in networks:
        if not cloud.has_network(name):
            raise UsageError(f"--network {name}: no such network in {where}")


def read_ca_bundle(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--ca-bundle {path}: cannot read it ({getattr(err, 'strerror', err)})")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError(f"--ca-bundle {path}: no PEM certificate in it")
    return text
