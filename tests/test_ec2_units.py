"""The EC2 adapter's pure parts: error table, state map, user-data, request parameters."""
from __future__ import annotations

import base64
import datetime
import gzip
import logging
import socket

import pytest

from elastiq.adapters.base import (AuthError, ConfigError, FatalError, QuotaError,
                                   TransientError)
from elastiq.adapters.ec2.request import access_settings, client_token, launch_params
from elastiq.adapters.ec2.translate import error_from_code, to_instance
from elastiq.adapters.redact import redact, secret_values
from elastiq.adapters.userdata import (MAX_USER_DATA_BYTES, detect_addresses,
                                       prepare_user_data, substitute)
from elastiq.adapters.ec2.config import Settings as EC2Section
from elastiq.model import InstanceState

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("code, status, kind, key", [
    ("RequestLimitExceeded", 503, TransientError, None),
    ("Throttling", 400, TransientError, None),
    ("InternalError", 500, TransientError, None),
    ("Unavailable", 503, TransientError, None),
    ("SomethingNew", 502, TransientError, None),
    ("InstanceLimitExceeded", 400, QuotaError, None),
    ("InsufficientInstanceCapacity", 500, QuotaError, None),
    ("VcpuLimitExceeded", 400, QuotaError, None),
    ("VolumeLimitExceeded", 400, QuotaError, None),
    ("ServiceQuotaExceeded", 400, QuotaError, None),
    ("AuthFailure", 401, AuthError, None),
    ("UnauthorizedOperation", 403, AuthError, None),
    ("SignatureDoesNotMatch", 403, AuthError, None),
    ("RequestExpired", 400, AuthError, None),
    ("InvalidAMIID.NotFound", 400, ConfigError, "ec2.image_id"),
    ("InvalidAMIID.Malformed", 400, ConfigError, "ec2.image_id"),
    ("InvalidKeyPair.NotFound", 400, ConfigError, "ec2.key_name"),
    ("InvalidGroup.NotFound", 400, ConfigError, "ec2.security_groups"),
    ("InvalidGroupId.Malformed", 400, ConfigError, "ec2.security_groups"),
    ("InvalidSubnetID.NotFound", 400, ConfigError, "ec2.subnet_id"),
    ("InvalidInstanceType", 400, ConfigError, "ec2.flavour"),
    ("Unsupported", 400, ConfigError, "ec2.flavour"),
    ("InvalidUserData.Malformed", 400, ConfigError, "ec2.user_data_b64"),
    ("InvalidParameterCombination", 400, ConfigError, None),
    ("IdempotentParameterMismatch", 400, FatalError, None),
    ("DependencyViolation", 400, FatalError, None),
])
def test_error_codes_map_to_domain_errors(code, status, kind, key):
    err = error_from_code(code, "some message", status, "RunInstances")
    assert type(err) is kind
    assert getattr(err, "key", None) == key
    assert code in str(err)


@pytest.mark.parametrize("message, key", [
    ("Invalid value 'm9.huge' for InstanceType.", "ec2.flavour"),
    ("The key pair 'x' does not exist", "ec2.key_name"),
    ("Invalid id: 'ami-1' (expecting 'ami-...')", "ec2.image_id"),
    ("Value (sg-1) for parameter groupId is invalid.", "ec2.security_groups"),
    ("Value for parameter subnetId is invalid", "ec2.subnet_id"),
    ("The parameter dynamicFoo is invalid", None),
])
def test_invalid_parameter_value_names_the_setting_it_is_about(message, key):
    err = error_from_code("InvalidParameterValue", message, 400, "RunInstances")
    assert isinstance(err, ConfigError) and err.key == key


def test_auth_errors_say_what_to_check():
    message = str(error_from_code("AuthFailure", "", 401, "DescribeInstances"))
    assert "ec2.aws_access_key_id" in message and "EC2_ACCESS_KEY" in message
    assert "clock" in message
    denied = str(error_from_code("UnauthorizedOperation", "", 403, "RunInstances"))
    assert "ec2:RunInstances" in denied


def test_user_data_errors_never_quote_the_cloud():
    err = error_from_code("InvalidParameterValue", "Invalid UserData: #!/bin/sh TOKEN=abc",
                          400, "RunInstances")
    assert err.key == "ec2.user_data_b64" and "TOKEN" not in str(err)


def test_redact_removes_secrets_and_key_shaped_text():
    text = f"key AKIAABCDEFGHIJKLMNOP secret {SECRET} token Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy x"
    shown = redact(text, ["my-pool-token"])
    assert "AKIAABCDEFGHIJKLMNOP" not in shown and SECRET not in shown
    assert "Zm9vYmFy" not in shown and shown.endswith("x")
    assert redact("uses my-pool-token here", ["my-pool-token"]) == "uses *** here"
    assert len(redact("a " * 1000)) <= 303


def test_secret_values_cover_keys_tokens_and_user_data_lines():
    values = secret_values(("AKIAX", None), ["short", "pool-token-123"],
                           b"#!/bin/sh\nexport TOKEN=abcdefgh\n\nls\n")
    assert set(values) == {"AKIAX", "pool-token-123", "#!/bin/sh", "export TOKEN=abcdefgh"}


# ----------------------------------------------------------------------------- states

def _desc(state, **extra):
    item = {"InstanceId": "i-1", "State": {"Name": state}, "InstanceType": "t3.micro",
            "PrivateIpAddress": "10.0.0.5",
            "LaunchTime": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
            "Tags": [{"Key": "elastiq:cluster", "Value": "c"}]}
    item.update(extra)
    return item


@pytest.mark.parametrize("name, state", [
    ("pending", InstanceState.BOOTING),
    ("running", InstanceState.RUNNING),
    ("shutting-down", InstanceState.SHUTTING_DOWN),
    ("stopping", InstanceState.SHUTTING_DOWN),
    ("stopped", InstanceState.ERROR),
    ("terminated", InstanceState.GONE),
    ("error", InstanceState.ERROR),
    ("exploded", InstanceState.ERROR),
])
def test_states_are_normalised(name, state):
    instance = to_instance(_desc(name), "elastiq:cluster", clock=lambda: 5.0)
    assert instance.state is state
    assert (instance.id, instance.cluster, instance.private_ip, instance.instance_type) == \
        ("i-1", "c", "10.0.0.5", "t3.micro")
    assert instance.launched_at == datetime.datetime(
        2024, 1, 1, tzinfo=datetime.timezone.utc).timestamp()


def test_missing_launch_time_and_tags():
    item = _desc("running", Tags=[], PrivateIpAddress="")
    del item["LaunchTime"]
    instance = to_instance(item, "elastiq:cluster", clock=lambda: 42.0)
    assert (instance.launched_at, instance.cluster, instance.private_ip) == (42.0, None, None)


# ----------------------------------------------------------------------------- user-data

def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_substitute_only_known_names():
    text = "date +%Y%m%d; host=%Y%ipv4%; %ipv4%%fqdn% 100%"
    assert substitute(text, {"ipv4": "1.2.3.4", "fqdn": "m.example"}) == \
        "date +%Y%m%d; host=%Y1.2.3.4; 1.2.3.4m.example 100%"


def test_precedence_configured_over_runtime_over_detected():
    asked = []

    def detect(names):
        asked.append(sorted(names))
        return {"ipv4": "10.0.0.1", "ipv6": "fd00::1", "fqdn": "detected"}

    section = EC2Section(user_data_b64=_b64("%ipv4% %ipv6% %fqdn% %pool% %Other% %s%"))
    out = prepare_user_data(section, None, configured={"fqdn": "configured", "pool": "p1"},
                            runtime={"pool": "p2", "ipv6": "fd00::9"}, detect=detect)
    assert out == b"10.0.0.1 fd00::9 configured p1 %Other% %s%"
    assert asked == [["ipv4"]]  # only what is used and not given


def test_no_detection_when_no_placeholder():
    def detect(names):
        raise AssertionError("detection must not run")

    assert prepare_user_data(EC2Section(), "#!/bin/sh\necho hi\n", detect=detect) == \
        b"#!/bin/sh\necho hi\n"
    assert prepare_user_data(EC2Section(), None, detect=detect) is None


def test_gzip_and_binary_user_data_pass_unchanged():
    packed = gzip.compress(b"%ipv4%")
    assert prepare_user_data(EC2Section(), packed, detect=lambda n: {"ipv4": "x"}) == packed
    binary = b"\xff\xfe%ipv4%"
    assert prepare_user_data(EC2Section(), binary, detect=lambda n: {"ipv4": "x"}) == binary


def test_user_data_file(tmp_path):
    path = tmp_path / "worker.sh"
    path.write_text("MASTER=%ipv4%\n")
    out = prepare_user_data(EC2Section(user_data_file=str(path)),
                            detect=lambda names: {"ipv4": "192.0.2.7"})
    assert out == b"MASTER=192.0.2.7\n"
    with pytest.raises(ConfigError) as err:
        prepare_user_data(EC2Section(user_data_file=str(tmp_path / "missing")))
    assert err.value.key == "ec2.user_data_file"


def test_oversized_user_data_names_the_setting_and_size():
    big = "#" * (MAX_USER_DATA_BYTES - 10) + "%fqdn%"
    with pytest.raises(ConfigError) as err:
        prepare_user_data(EC2Section(user_data_b64=_b64(big)),
                          detect=lambda names: {"fqdn": "a-long-master-name.example.org"})
    assert err.value.key == "ec2.user_data_b64"
    assert str(MAX_USER_DATA_BYTES - 10 + 30) in str(err.value)
    assert "###" not in str(err.value)
    exact = "#" * MAX_USER_DATA_BYTES
    assert len(prepare_user_data(EC2Section(user_data_b64=_b64(exact)))) == MAX_USER_DATA_BYTES


def test_invalid_base64_hides_the_value():
    with pytest.raises(ConfigError) as err:
        prepare_user_data(EC2Section(user_data_b64="not*base64!TOPSECRET"))
    assert err.value.key == "ec2.user_data_b64" and "TOPSECRET" not in str(err.value)


def test_detect_addresses_on_loopback():
    found = detect_addresses(["ipv4", "fqdn"], ipv4_probe=("127.0.0.1", 9),
                             getfqdn=lambda: "master.example")
    assert found == {"ipv4": "127.0.0.1", "fqdn": "master.example"}
    assert detect_addresses([]) == {}


def test_detect_ipv6_on_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect(("::1", 9))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert detect_addresses(["ipv6"], ipv6_probe=("::1", 9)) == {"ipv6": "::1"}


def test_undetectable_address_is_absent(caplog):
    # Linux refuses to connect a UDP socket to the broadcast address (EACCES): no route found
    with caplog.at_level(logging.WARNING):
        assert detect_addresses(["ipv4"], ipv4_probe=("255.255.255.255", 9)) == {}
    assert "ipv4" in caplog.text


# ----------------------------------------------------------------------------- requests

def test_launch_params():
    section = EC2Section(image_id="ami-1", flavour="m5.large", key_name="k",
                         security_groups=("sg-0a1b2c", "workers"), subnet_id="subnet-9")
    params = launch_params(section, "c1", 7, "req", b"#!/bin/sh")
    assert (params["MinCount"], params["MaxCount"]) == (1, 7)
    assert params["SecurityGroupIds"] == ["sg-0a1b2c"] and params["SecurityGroups"] == ["workers"]
    assert params["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert params["ClientToken"] == client_token("c1", "req")
    assert {s["ResourceType"] for s in params["TagSpecifications"]} == {"instance", "volume"}
    assert (params["SubnetId"], params["KeyName"], params["UserData"]) == \
        ("subnet-9", "k", b"#!/bin/sh")
    bare = launch_params(EC2Section(image_id="ami-1", flavour="t3.micro"), "c1", 1, "r", None)
    assert not {"KeyName", "SecurityGroups", "SecurityGroupIds", "SubnetId", "UserData"} & set(bare)


@pytest.mark.parametrize("missing", ["image_id", "flavour"])
def test_launch_needs_image_and_flavour(missing):
    values = {"image_id": "ami-1", "flavour": "t3.micro", missing: None}
    with pytest.raises(ConfigError) as err:
        launch_params(EC2Section(**values), "c", 1, "r", None)
    assert err.value.key == f"ec2.{missing}"


def test_client_token_is_deterministic_and_fits_ec2():
    token = client_token("c1", "r1")
    assert token == client_token("c1", "r1") and len(token) == 64 and token.isascii()
    assert len({token, client_token("c2", "r1"), client_token("c1", "r2")}) == 3


def test_access_settings_precedence(tmp_path):
    legacy = {"EC2_ACCESS_KEY": "legacy-key", "EC2_SECRET_KEY": "legacy-secret",
              "EC2_URL": "https://nova.example:8773/services/Cloud"}
    configured = EC2Section(aws_access_key_id="k", aws_secret_access_key="s",
                            api_url="https://ec2.example")
    assert access_settings(configured, legacy) == ("k", "s", "https://ec2.example")
    assert access_settings(EC2Section(), legacy) == (
        "legacy-key", "legacy-secret", "https://nova.example:8773/services/Cloud")
    assert access_settings(EC2Section(), {}) == (None, None, None)  # boto3's chain decides
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert access_settings(EC2Section(ca_bundle=str(ca)), {})[2] is None


@pytest.mark.parametrize("section, key", [
    (EC2Section(aws_access_key_id="k"), "ec2.aws_secret_access_key"),
    (EC2Section(aws_secret_access_key="s"), "ec2.aws_access_key_id"),
    (EC2Section(ca_bundle="/nonexistent/ca.pem"), "ec2.ca_bundle"),
])
def test_access_settings_errors_name_the_key(section, key):
    with pytest.raises(ConfigError) as err:
        access_settings(section, {})
    assert err.value.key == key
