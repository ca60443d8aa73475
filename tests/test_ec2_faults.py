"""EC2Cloud through a fault-injecting proxy in front of moto (tests/support/fault_proxy.py).

Each fault must come out as the right domain error, a retried RunInstances must never launch
twice, and no secret may reach an error message or the log.
"""
from __future__ import annotations

import base64
import logging
import socket

import pytest

from elastiq.adapters.base import (AdapterError, AuthError, ConfigError, QuotaError,
                                   TransientError)
from elastiq.adapters.ec2.cloud import EC2Cloud
from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY, make_config


def cloud_via(url, world, max_attempts=1, substitutions=None, read_timeout=0.5, **ec2):
    return EC2Cloud(make_config(url, world, **ec2), substitutions=substitutions,
                    max_attempts=max_attempts, connect_timeout=1.0, read_timeout=read_timeout,
                    detect=lambda names: {})


@pytest.mark.parametrize("fault, kind, key", [
    ("throttle", TransientError, None),
    ("500", TransientError, None),
    ("unavailable", TransientError, None),
    ("gateway-html", TransientError, None),
    ("timeout", TransientError, None),
    ("quota", QuotaError, None),
    ("vcpu-quota", QuotaError, None),
    ("capacity", QuotaError, None),
    ("auth", AuthError, None),
    ("unauthorized", AuthError, None),
    ("bad-flavour", ConfigError, "ec2.flavour"),
    ("bad-image", ConfigError, "ec2.image_id"),
])
def test_launch_fault_becomes_domain_error(moto, ec2_world, fault_proxy, fault, kind, key):
    cloud = cloud_via(fault_proxy.url, ec2_world)
    fault_proxy.inject(fault, action="RunInstances")
    with pytest.raises(AdapterError) as err:
        cloud.launch(3)
    assert type(err.value) is kind and getattr(err.value, "key", None) == key
    assert fault_proxy.calls("RunInstances") == 1
    assert moto.stats()["alive"] == 0


OPERATIONS = {
    "list": lambda cloud, ids: cloud.list_instances(),
    "terminate": lambda cloud, ids: cloud.terminate(ids),
    "describe_flavours": lambda cloud, ids: cloud.describe_flavours(["t3.micro"]),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("fault, kind", [
    ("throttle", TransientError), ("500", TransientError), ("timeout", TransientError),
    ("auth", AuthError),
])
def test_every_operation_translates_faults(moto, ec2_world, fault_proxy, operation, fault,
                                           kind):
    cloud = cloud_via(fault_proxy.url, ec2_world)
    ids = cloud.launch(2)
    fault_proxy.inject(fault)
    with pytest.raises(AdapterError) as err:
        OPERATIONS[operation](cloud, ids)
    assert type(err.value) is kind
    assert moto.stats()["alive"] == 2


def test_throttled_launch_is_retried_and_launched_once(moto, ec2_world, fault_proxy):
    cloud = cloud_via(fault_proxy.url, ec2_world, max_attempts=3)
    fault_proxy.inject("throttle", action="RunInstances")
    ids = cloud.launch(4)
    assert len(ids) == 4
    assert fault_proxy.calls("RunInstances") == 2 and moto.calls("RunInstances") == 1


@pytest.mark.parametrize("fault", ["500-after", "unavailable-after", "timeout-after"])
def test_lost_answer_is_not_launched_twice(moto, ec2_world, fault_proxy, fault):
    """The cloud launched but its answer was lost; botocore retries with the same ClientToken.
    The read timeout stays under the proxy's 2 s hold but leaves a loaded moto time to answer
    the retry (at 0.5 s a slow second answer was retried a third time)."""
    cloud = cloud_via(fault_proxy.url, ec2_world, max_attempts=3, read_timeout=1.5)
    fault_proxy.inject(fault, action="RunInstances")
    ids = cloud.launch(4)
    assert moto.calls("RunInstances") == 2  # both attempts reached the cloud
    assert moto.stats()["alive"] == 4
    assert {i.id for i in cloud.list_instances()} == set(ids)


def test_retries_exhausted_is_transient_and_launches_nothing(moto, ec2_world, fault_proxy):
    cloud = cloud_via(fault_proxy.url, ec2_world, max_attempts=2)
    fault_proxy.inject("throttle", "throttle", action="RunInstances")
    with pytest.raises(TransientError) as err:
        cloud.launch(2)
    assert "RequestLimitExceeded" in str(err.value)
    assert fault_proxy.calls("RunInstances") == 2 and moto.calls("RunInstances") == 0


def test_unreachable_endpoint_is_transient(ec2_world):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cloud = cloud_via(f"http://127.0.0.1:{port}", ec2_world)
    with pytest.raises(TransientError) as err:
        cloud.list_instances()
    assert f"127.0.0.1:{port}" in str(err.value) and "ec2.api_url" in str(err.value)


def test_tags_missing_from_the_answer_are_added(moto, ec2_world, fault_proxy):
    cloud = cloud_via(fault_proxy.url, ec2_world)
    fault_proxy.inject("strip-tags", action="RunInstances")
    ids = cloud.launch(2)
    assert len(ids) == 2 and moto.calls("CreateTags") == 1
    assert {i.id for i in cloud.list_instances()} == set(ids)


def test_instances_that_cannot_be_tagged_are_not_orphaned(moto, ec2_world, fault_proxy):
    cloud = cloud_via(fault_proxy.url, ec2_world)
    fault_proxy.inject("strip-tags", action="RunInstances")
    fault_proxy.inject("unauthorized", action="CreateTags")
    with pytest.raises(AuthError) as err:
        cloud.launch(2)
    assert "ec2:CreateTags" in str(err.value)
    assert moto.calls("TerminateInstances") == 1 and moto.stats()["alive"] == 0


def test_instances_neither_tagged_nor_terminated_are_reported_by_id(moto, ec2_world,
                                                                     fault_proxy, caplog):
    cloud = cloud_via(fault_proxy.url, ec2_world)
    fault_proxy.inject("strip-tags", action="RunInstances")
    fault_proxy.inject("unauthorized", action="CreateTags")
    fault_proxy.inject("unauthorized", action="TerminateInstances")
    with caplog.at_level(logging.ERROR), pytest.raises(AuthError, match="ec2:CreateTags"):
        cloud.launch(2)
    orphans = [i["InstanceId"] for r in moto.client().describe_instances()["Reservations"]
               for i in r["Instances"] if i["State"]["Name"] == "running"]
    assert len(orphans) == 2
    reported = [r.getMessage() for r in caplog.records if "cannot terminate" in r.getMessage()]
    assert len(reported) == 1 and all(i in reported[0] for i in orphans)
    assert "by hand" in reported[0] and SECRET_KEY not in caplog.text


def test_a_cloud_ignoring_filters_still_shows_and_kills_only_ours(moto, ec2_world, fault_proxy,
                                                                  caplog):
    foreign = moto.client().run_instances(ImageId=ec2_world.image_id, MinCount=2, MaxCount=2,
                                          InstanceType="t3.micro")["Instances"]
    foreign_ids = [i["InstanceId"] for i in foreign]
    cloud = cloud_via(fault_proxy.url, ec2_world)
    ours = cloud.launch(2)
    fault_proxy.inject("drop-filters", "drop-filters", action="DescribeInstances")
    with caplog.at_level(logging.WARNING):
        assert {i.id for i in cloud.list_instances()} == set(ours)
        cloud.terminate(list(ours) + foreign_ids)
    assert [f for a, f in fault_proxy.seen if a == "DescribeInstances"] == ["drop-filters"] * 2
    assert "ignored 2 instance(s)" in caplog.text
    assert moto.stats()["alive"] == 2  # the foreign ones
    still = moto.client().describe_instances(InstanceIds=foreign_ids)["Reservations"]
    assert {i["State"]["Name"] for r in still for i in r["Instances"]} == {"running"}


def test_terminate_copes_with_an_instance_vanishing_meanwhile(moto, ec2_world, fault_proxy):
    cloud = cloud_via(fault_proxy.url, ec2_world)
    ids = cloud.launch(3)
    fault_proxy.inject((400, "InvalidInstanceID.NotFound",
                        f"The instance ID '{ids[0]}' does not exist"), action="TerminateInstances")
    cloud.terminate(ids)
    assert fault_proxy.calls("TerminateInstances") == 2
    assert moto.stats()["alive"] == 0


def test_no_secret_in_errors_or_logs(moto, ec2_world, fault_proxy, caplog):
    caplog.set_level(logging.DEBUG)
    pool_token = "pool-token-7f3a9c1e5b"
    template = "#!/bin/sh\nexport POOL_TOKEN=%pool%\nexport WORKER_PASSWORD=hunter2-hunter2\n"
    cloud = cloud_via(fault_proxy.url, ec2_world, substitutions={"pool": pool_token},
                      user_data_b64=base64.b64encode(template.encode()).decode())
    rendered = template.replace("%pool%", pool_token)
    # a cloud that quotes everything back in its error messages
    echo = f"key {ACCESS_KEY} secret {SECRET_KEY} data {rendered!r} b64 " \
           f"{base64.b64encode(rendered.encode()).decode()}"
    faults = ["auth", "throttle", "timeout", "bad-image", (400, "InvalidParameterValue", echo),
              (400, "InvalidParameterValue", f"Invalid UserData {echo}"),
              (400, "SomethingOdd", echo), (500, "InternalError", echo)]
    messages = []
    for fault in faults:
        fault_proxy.inject(fault, action="RunInstances")
        with pytest.raises(AdapterError) as err:
            cloud.launch(1)
        messages.append(str(err.value))
    ids = cloud.launch(2)
    cloud.list_instances()
    cloud.terminate(ids)

    seen = "\n".join(messages) + "\n" + caplog.text
    assert "SomethingOdd" in seen and "launched 2 of 2" in caplog.text  # not vacuous
    for secret in (ACCESS_KEY, SECRET_KEY, pool_token, "hunter2-hunter2",
                   base64.b64encode(rendered.encode()).decode()[:24]):
        assert secret not in seen


def test_configured_substitutions_are_secrets_too(moto, ec2_world, fault_proxy):
    token = "pool-token-7f3a9c1e5b"
    config = make_config(fault_proxy.url, ec2_world, substitute={"pool": token},
                         user_data_b64=base64.b64encode(b"#!/bin/sh\nT=%pool%\n").decode())
    cloud = EC2Cloud(config, max_attempts=1, detect=lambda names: {})
    fault_proxy.inject((400, "SomethingOdd", f"cannot use {token} here"), action="RunInstances")
    with pytest.raises(AdapterError, match="SomethingOdd") as err:
        cloud.launch(1)
    assert token not in str(err.value) and "cannot use *** here" in str(err.value)
