"""What the EC2 adapter asks the cloud for: launch parameters, tags, filters, client tokens.

Pure (no SDK): ``ec2.py`` sends what these functions build.
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ... import flavours as flavour_list
from .config import Settings as EC2Section
from ..base import ConfigError

CLUSTER_TAG = "elastiq:cluster"
OWNER_TAG = "elastiq:owner"  # the launching daemon's owner id (elastiq.runtime.owner)
MANAGED_TAG = "elastiq:managed"
_SG_ID = re.compile(r"^sg-[0-9a-f]+$")


def access_settings(ec2: EC2Section, environ: Mapping[str, str]
                    ) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """``(access key, secret key, endpoint URL)`` to use.

    Keys: ``ec2.aws_*`` settings, else ec2rc.sh's ``EC2_ACCESS_KEY`` / ``EC2_SECRET_KEY``, else
    ``(None, None)``: boto3's own chain (AWS_* variables, profile, instance role).  Endpoint:
    ``ec2.api_url``, else ``EC2_URL``, else None (AWS's).  ConfigError when only one key is
    set or ``ec2.ca_bundle`` is not a file.
    """
    key, secret = ec2.aws_access_key_id, ec2.aws_secret_access_key
    if bool(key) != bool(secret):
        missing = "ec2.aws_secret_access_key" if key else "ec2.aws_access_key_id"
        raise ConfigError(f"{missing} is not set: set both EC2 keys or neither", key=missing)
    if not key and environ.get("EC2_ACCESS_KEY") and environ.get("EC2_SECRET_KEY"):
        key, secret = environ["EC2_ACCESS_KEY"], environ["EC2_SECRET_KEY"]
    if ec2.ca_bundle and not os.path.isfile(ec2.ca_bundle):
        raise ConfigError(f"ec2.ca_bundle {ec2.ca_bundle} is not a file", key="ec2.ca_bundle")
    return key or None, secret or None, ec2.api_url or environ.get("EC2_URL") or None


def client_token(cluster: str, request_id: str) -> str:
    """The RunInstances ClientToken of one launch request (64 hex characters, EC2's maximum).

    EC2 runs a RunInstances at most once per token and answers a repeat with the first call's
    reservation.  botocore re-sends the same parameters when it retries (after a 5xx, a
    throttle, or a read timeout whose request did reach EC2), so a lost answer cannot launch
    twice.  Deriving the token from (cluster, request id) rather than drawing it at random
    gives the same protection to a caller that retries a whole launch with the same
    ``request_id``; the cluster name keeps two clusters sharing an account apart.
    """
    return hashlib.sha256(f"elastiq\0{cluster}\0{request_id}".encode()).hexdigest()


def cluster_tags(cluster: str, owner: Optional[str] = None) -> List[Dict[str, str]]:
    """The tags of every instance (and volume) we launch; ``owner``: the daemon's owner id."""
    return [{"Key": CLUSTER_TAG, "Value": cluster},
            *([{"Key": OWNER_TAG, "Value": owner}] if owner else []),
            {"Key": MANAGED_TAG, "Value": "true"},
            {"Key": "Name", "Value": f"{cluster}-worker"}]


def tag_filter(cluster: str) -> Dict[str, object]:
    return {"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}


def launch_params(ec2: EC2Section, cluster: str, count: int, request_id: str,
                  user_data: Optional[bytes], flavour: Optional[str] = None,
                  owner: Optional[str] = None) -> Dict[str, object]:
    """RunInstances parameters for up to ``count`` workers (MinCount=1: take what is granted).

    ``flavour``: the instance type, one of ``ec2.flavour``'s entries (None: the first).
    ``ec2.security_groups`` entries that look like ids (``sg-...``) go to SecurityGroupIds,
    the others (names) to SecurityGroups.  Raises ConfigError when image or flavour is unset,
    or when ``flavour`` is not one of ``ec2.flavour``'s.  ``owner``: tagged ``elastiq:owner``.
    """
    names = flavour_list.names(ec2.flavour)
    for key, value in (("ec2.image_id", ec2.image_id), ("ec2.flavour", names)):
        if not value:
            raise ConfigError(f"cannot launch VMs: {key} is not set", key=key)
    if flavour is not None and flavour not in names:
        raise ConfigError(f"cannot launch {flavour!r}: not one of ec2.flavour's", key="ec2.flavour")
    tags = cluster_tags(cluster, owner)
    params: Dict[str, object] = {
        "ImageId": ec2.image_id, "InstanceType": flavour or names[0], "MinCount": 1,
        "MaxCount": count, "ClientToken": client_token(cluster, request_id),
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags},
                              {"ResourceType": "volume", "Tags": tags}],
    }
    if ec2.key_name:
        params["KeyName"] = ec2.key_name
    params.update(security_group_params(ec2.security_groups))
    if ec2.subnet_id:
        params["SubnetId"] = ec2.subnet_id
    if user_data is not None:
        params["UserData"] = user_data  # botocore base64-encodes it
    return params


def security_group_params(groups: Sequence[str]) -> Dict[str, List[str]]:
    """``ec2.security_groups``: entries that look like ids (``sg-...``) as SecurityGroupIds,
    the others (names) as SecurityGroups; only the non-empty ones."""
    ids = [g for g in groups if _SG_ID.match(g)]
    names = [g for g in groups if not _SG_ID.match(g)]
    return {k: v for k, v in (("SecurityGroupIds", ids), ("SecurityGroups", names)) if v}


def chunks(items: Sequence[str], size: int) -> Iterator[List[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
