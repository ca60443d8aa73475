"""``EC2Cloud.check_settings``: ask EC2 about each launch setting (one Describe call each)
without launching anything."""
from __future__ import annotations

from typing import Callable, ContextManager, List, Mapping, Optional, Sequence, Tuple

from ... import flavours as flavour_list
from ..base import NOT_SUPPORTED, ConfigError, SettingCheck, check_setting
from .config import Settings
from .request import security_group_params

Boundary = Callable[[str], ContextManager[None]]
Describe = Callable[[Sequence[str]], Optional[Mapping[str, Tuple[int, int]]]]


def check(ec2: Settings, client, boundary: Boundary, describe_flavours: Describe
          ) -> List[SettingCheck]:
    """Image, every flavour, key pair, security groups and subnet, each as EC2 knows it."""

    def one(call: Callable[..., dict], operation: str, key: str, found: Callable[[list], str],
            **params):
        """``call(**params)``, the API's Describe<Things>: its things' list, described by
        ``found``."""
        def ask() -> str:
            with boundary(operation):
                items = call(**params).get(operation[len("Describe"):])
            if not items:
                values = " ".join(repr(v) for v in next(iter(params.values())))
                raise ConfigError(f"the cloud does not know {key} {values}", key=key)
            return found(items)
        return ask

    checks = []
    if not ec2.image_id:
        checks.append(SettingCheck("ec2.image_id", "", problem="not set: nothing can be launched"))
    else:
        checks.append(check_setting("ec2.image_id", ec2.image_id, one(
            client.describe_images, "DescribeImages", "ec2.image_id", _image,
            ImageIds=[ec2.image_id])))
    checks += _flavours(ec2, describe_flavours)
    if ec2.key_name:
        checks.append(check_setting("ec2.key_name", ec2.key_name, one(
            client.describe_key_pairs, "DescribeKeyPairs", "ec2.key_name",
            lambda a: "key pair found", KeyNames=[ec2.key_name])))
    for param, values in security_group_params(ec2.security_groups).items():
        by = "GroupIds" if param == "SecurityGroupIds" else "GroupNames"
        checks.append(check_setting("ec2.security_groups", " ".join(values), one(
            client.describe_security_groups, "DescribeSecurityGroups", "ec2.security_groups",
            _groups, **{by: values})))
    if ec2.subnet_id:
        checks.append(check_setting("ec2.subnet_id", ec2.subnet_id, one(
            client.describe_subnets, "DescribeSubnets", "ec2.subnet_id", _subnet,
            SubnetIds=[ec2.subnet_id])))
    return checks


def _flavours(ec2: Settings, describe_flavours: Describe) -> List[SettingCheck]:
    names = flavour_list.names(ec2.flavour)
    if not names:
        return [SettingCheck("ec2.flavour", "", problem="not set: nothing can be launched")]
    checks = []
    for name in names:
        key = flavour_list.key_named("ec2", ec2.flavour, name)

        def ask(name=name) -> str:
            shapes = describe_flavours([name])
            if shapes is NOT_SUPPORTED:
                return "not checked: this cloud does not describe instance types"
            cpus, memory_mb = shapes[name]
            return f"{cpus} cpu(s), {memory_mb} MiB"
        checks.append(check_setting(key, name, ask))
    return checks


def _image(images: list) -> str:
    image = images[0]
    return f"{image.get('Name') or 'unnamed'} ({image.get('State') or 'state unknown'})"


def _groups(groups: list) -> str:
    return ", ".join(f"{g.get('GroupName')} ({g.get('GroupId')})" for g in groups)


def _subnet(subnets: list) -> str:
    subnet = subnets[0]
    return (f"{subnet.get('CidrBlock')} in {subnet.get('VpcId')}, "
            f"zone {subnet.get('AvailabilityZone')}")
