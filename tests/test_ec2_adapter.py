"""EC2Cloud against a moto EC2 server over HTTP (tests/support/moto_ec2.py: EC2 semantics)."""
from __future__ import annotations

import base64
import logging
import time

import pytest

from elastiq.adapters import CLOUDS, load_class
from elastiq.adapters.base import AuthError, ConfigError, QuotaError
from elastiq.adapters.ec2.cloud import EC2Cloud
from elastiq.model import InstanceState
from tests.support.ec2_fixtures import CLUSTER, make_config
from tests.support.ports import check_cloud

DETECTED = {"ipv4": "10.1.2.3", "ipv6": "fd00::5", "fqdn": "detected.example"}


def cloud_for(config, **kwargs):
    kwargs.setdefault("detect", lambda names: {n: DETECTED[n] for n in names})
    kwargs.setdefault("max_attempts", 2)
    return EC2Cloud(config, **kwargs)


def run_foreign(client, image, count, cluster=None):
    """Instances that are not ours: untagged, or tagged with another cluster."""
    extra = {}
    if cluster:
        extra["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [
            {"Key": "elastiq:cluster", "Value": cluster}]}]
    reply = client.run_instances(ImageId=image, MinCount=count, MaxCount=count,
                                 InstanceType="t3.micro", **extra)
    return [i["InstanceId"] for i in reply["Instances"]]


def states(client, ids):
    pages = client.get_paginator("describe_instances").paginate(InstanceIds=list(ids))
    return {i["InstanceId"]: i["State"]["Name"]
            for page in pages for r in page["Reservations"] for i in r["Instances"]}


def test_registered_and_implements_the_cloud_port(ec2_config):
    assert load_class(CLOUDS, "ec2") is EC2Cloud
    check_cloud(cloud_for(ec2_config), CLUSTER)  # the port's behaviour on a real EC2 API
    check_cloud(cloud_for(ec2_config, owner="ours"), CLUSTER,  # and with owner ids
                other=cloud_for(ec2_config, owner="theirs"))


def test_launch_is_one_call_with_tags_user_data_and_shutdown_behaviour(moto, ec2_world):
    template = ("#!/bin/sh\nMASTER=%ipv4%\nMASTER6=%ipv6%\nNAME=%fqdn%\nTOKEN=%pool_token%\n"
                "STAMP=$(date +%Y%m%d)\n")
    config = make_config(moto.url, ec2_world, substitute={"fqdn": "master.example.org"},
                         user_data_b64=base64.b64encode(template.encode()).decode(),
                         security_groups=(ec2_world.security_group,))
    asked = []

    def detect(names):
        asked.extend(names)
        return {n: DETECTED[n] for n in names}

    cloud = cloud_for(config, substitutions={"pool_token": "tok-0123456789"}, detect=detect)
    ids = cloud.launch(3)

    assert len(ids) == 3 and moto.calls("RunInstances") == 1
    assert sorted(asked) == ["ipv4", "ipv6"]
    client = moto.client()
    reply = client.describe_instances(InstanceIds=list(ids))
    for item in (i for r in reply["Reservations"] for i in r["Instances"]):
        tags = {t["Key"]: t["Value"] for t in item["Tags"]}
        assert tags == {"elastiq:cluster": CLUSTER, "elastiq:managed": "true",
                        "Name": f"{CLUSTER}-worker"}
        assert (item["InstanceType"], item["KeyName"], item["ImageId"]) == \
            ("t3.micro", ec2_world.key_name, ec2_world.image_id)
        assert [g["GroupName"] for g in item["SecurityGroups"]] == ["default"]
    volumes = client.describe_volumes(
        Filters=[{"Name": "tag:elastiq:cluster", "Values": [CLUSTER]}])["Volumes"]
    assert {a["InstanceId"] for v in volumes for a in v["Attachments"]} == set(ids)
    for instance_id in ids:
        stored = client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        assert base64.b64decode(stored["UserData"]["Value"]).decode() == (
            "#!/bin/sh\nMASTER=10.1.2.3\nMASTER6=fd00::5\nNAME=master.example.org\n"
            "TOKEN=tok-0123456789\nSTAMP=$(date +%Y%m%d)\n")
        behaviour = client.describe_instance_attribute(
            InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
        assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"


def test_launch_takes_a_partial_grant_then_reports_no_capacity(moto, ec2_config):
    moto.set_capacity(2)
    cloud = cloud_for(ec2_config, max_attempts=1)  # EC2 sends no-capacity as a 500: no retry
    assert len(cloud.launch(5)) == 2
    assert moto.calls("RunInstances") == 1
    with pytest.raises(QuotaError) as err:
        cloud.launch(1)
    assert "InsufficientInstanceCapacity" in str(err.value)
    assert moto.stats()["alive"] == 2


def test_same_request_id_never_launches_twice(moto, ec2_config, caplog):
    cloud = cloud_for(ec2_config)
    caplog.set_level(logging.INFO, logger="elastiq")
    first = cloud.launch(2, request_id="tick-17")
    again = cloud.launch(2, request_id="tick-17")
    assert first == again and moto.stats()["alive"] == 2
    other = cloud.launch(2, request_id="tick-18")
    assert not set(other) & set(first) and moto.stats()["alive"] == 4
    cloud.terminate(other)
    assert caplog.records == []  # the actuator's INFO line is the one (the adapter's: DEBUG)


def test_launch_nothing_makes_no_call(moto, ec2_config):
    before = moto.calls()
    assert cloud_for(ec2_config).launch(0) == ()
    assert moto.calls() == before


def test_list_sees_only_our_cluster_in_every_state(moto, ec2_world):
    client = moto.client()
    foreign = run_foreign(client, ec2_world.image_id, 2)
    neighbours = run_foreign(client, ec2_world.image_id, 2, cluster="other-cluster")
    before = time.time()
    cloud = cloud_for(make_config(moto.url, ec2_world))
    ours = cloud.launch(4)
    client.stop_instances(InstanceIds=[ours[0]])
    client.terminate_instances(InstanceIds=[ours[1]])

    listed = {i.id: i for i in cloud.list_instances()}

    assert set(listed) == set(ours)
    assert listed[ours[0]].state is InstanceState.ERROR  # stopped: see elastiq.adapters.ec2.translate.STATES
    assert listed[ours[1]].state is InstanceState.GONE
    assert {listed[i].state for i in ours[2:]} == {InstanceState.RUNNING}
    for instance in listed.values():
        assert instance.cluster == CLUSTER and instance.instance_type == "t3.micro"
        assert instance.private_ip and before - 60 <= instance.launched_at <= time.time() + 60
    neighbour_view = cloud_for(make_config(moto.url, ec2_world, cluster="other-cluster"))
    assert {i.id for i in neighbour_view.list_instances()} == set(neighbours)
    assert not set(foreign) & (set(listed) | set(neighbours))


def test_list_is_paginated(moto, ec2_config):
    cloud = cloud_for(ec2_config, page_size=5)
    ours = cloud.launch(12)
    assert {i.id for i in cloud.list_instances()} == set(ours)
    assert moto.calls("DescribeInstances") == 3  # 5 + 5 + 2


def test_terminate_only_ours_and_idempotently(moto, ec2_world, caplog):
    client = moto.client()
    foreign = run_foreign(client, ec2_world.image_id, 1)
    neighbour = run_foreign(client, ec2_world.image_id, 1, cluster="other-cluster")
    cloud = cloud_for(make_config(moto.url, ec2_world))
    ours = cloud.launch(3)
    unknown = "i-0123456789abcdef0"

    with caplog.at_level(logging.WARNING):
        cloud.terminate([ours[0], ours[1], foreign[0], neighbour[0], unknown, ours[0]])

    after = states(client, list(ours) + foreign + neighbour)
    assert [after[i] for i in ours] == ["terminated", "terminated", "running"]
    assert after[foreign[0]] == after[neighbour[0]] == "running"
    assert moto.calls("TerminateInstances") == 1
    assert foreign[0] in caplog.text and neighbour[0] in caplog.text and unknown in caplog.text
    cloud.terminate([ours[0], ours[1]])
    cloud.terminate([])
    assert moto.calls("TerminateInstances") == 1


def test_terminate_in_batches(moto, ec2_config):
    cloud = cloud_for(ec2_config, batch_size=3)
    ours = cloud.launch(7)
    cloud.terminate(ours)
    assert moto.calls("TerminateInstances") == 3 and moto.calls("DescribeInstances") == 3
    assert set(states(moto.client(), ours).values()) == {"terminated"}


def test_describe_flavours(moto, ec2_world):
    cloud = cloud_for(make_config(moto.url, ec2_world, flavour="t3.micro"))
    assert cloud.describe_flavours(["t3.micro"]) == {"t3.micro": (2, 1024)}
    assert cloud.describe_flavours([]) == {}  # nothing asked
    with pytest.raises(ConfigError) as err:
        cloud_for(make_config(moto.url, ec2_world, flavour="m9.huge")).describe_flavours(["m9.huge"])
    assert err.value.key == "ec2.flavour"


@pytest.mark.parametrize("setting, value, key", [
    ("image_id", "ami-12345678", "ec2.image_id"),
    ("key_name", "no-such-key", "ec2.key_name"),
    ("flavour", "m9.huge", "ec2.flavour"),
    ("security_groups", ("no-such-group",), "ec2.security_groups"),
    ("security_groups", ("sg-0123456789abcdef0",), "ec2.security_groups"),
    ("subnet_id", "subnet-12345678", "ec2.subnet_id"),
])
def test_launch_names_the_setting_the_cloud_does_not_know(moto, ec2_world, setting, value, key):
    cloud = cloud_for(make_config(moto.url, ec2_world, **{setting: value}))
    with pytest.raises(ConfigError) as err:
        cloud.launch(2)
    assert err.value.key == key
    assert moto.stats()["alive"] == 0


def test_legacy_ec2rc_environment(moto, ec2_world):
    config = make_config(None, ec2_world, region=None, aws_access_key_id=None,
                         aws_secret_access_key=None)
    environ = {"EC2_ACCESS_KEY": "AKIALEGACYEC2RC00001", "EC2_SECRET_KEY": "legacy-secret",
               "EC2_URL": moto.url}
    cloud = cloud_for(config, environ=environ)
    ids = cloud.launch(1)
    assert {i.id for i in cloud.list_instances()} == set(ids)
    assert "AKIALEGACYEC2RC00001" in moto.stats()["access_keys"]


@pytest.fixture
def no_ambient_credentials(monkeypatch, tmp_path):
    """No AWS credentials or region from this machine, and no instance-metadata lookup."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials_anywhere_is_an_auth_error(moto, ec2_world, no_ambient_credentials):
    config = make_config(moto.url, ec2_world, aws_access_key_id=None, aws_secret_access_key=None)
    before = moto.calls()
    with pytest.raises(AuthError) as err:
        cloud_for(config, environ={}).list_instances()
    assert "ec2.aws_access_key_id" in str(err.value) and "ec2rc.sh" in str(err.value)
    assert moto.calls() == before


def test_half_set_keys_and_missing_region_are_config_errors(moto, ec2_world,
                                                            no_ambient_credentials):
    with pytest.raises(ConfigError) as err:
        cloud_for(make_config(moto.url, ec2_world, aws_secret_access_key=None))
    assert err.value.key == "ec2.aws_secret_access_key"
    with pytest.raises(ConfigError) as err:
        cloud_for(make_config(None, ec2_world, region=None), environ={})
    assert err.value.key == "ec2.region"
    with pytest.raises(ConfigError) as err:
        cloud_for(make_config(moto.url, ec2_world, ca_bundle="/nonexistent/ca.pem"))
    assert err.value.key == "ec2.ca_bundle"
