"""The one translation of botocore's exceptions into domain errors
(``elastiq.adapters.ec2.translate.error_from_exception``), shared by the EC2 adapter and ecm.

Real botocore exception objects in (the adapter's ``ec2_client.translate`` is this function
with the client's endpoint named).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from botocore import exceptions as bce
from botocore.parsers import ResponseParserError

from elastiq.adapters.base import AuthError, ConfigError, FatalError, TransientError
from elastiq.adapters.ec2.client import translate
from elastiq.adapters.ec2.translate import error_code, error_from_exception, not_implemented

ENDPOINT = "the EC2 endpoint https://cloud.example.org:8773"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"


def client_error(code: str, status: int, message: str = "no") -> bce.ClientError:
    return bce.ClientError({"Error": {"Code": code, "Message": message},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeImages")


CASES = [
    (client_error("AuthFailure", 401), AuthError, None, "rejected our credentials"),
    (client_error("InvalidAMIID.NotFound", 400), ConfigError, "ec2.image_id", "ec2.image_id"),
    (client_error("InternalError", 500), TransientError, None, "cloud's side"),
    (bce.NoCredentialsError(), AuthError, None, "ec2rc.sh"),
    (bce.PartialCredentialsError(provider="env", cred_var="secret"), AuthError, None, "ec2rc.sh"),
    (bce.SSLError(endpoint_url="https://x", error="bad"), ConfigError, "ec2.ca_bundle", "TLS"),
    (bce.ConnectTimeoutError(endpoint_url="https://x"), TransientError, None, "in time"),
    (bce.ReadTimeoutError(endpoint_url="https://x"), TransientError, None, "in time"),
    (bce.EndpointConnectionError(endpoint_url="https://x"), TransientError, None, "cannot reach"),
    (bce.ConnectionClosedError(endpoint_url="https://x"), TransientError, None, "cannot reach"),
    (ResponseParserError("<html>"), TransientError, None, "not an EC2 response"),
    (bce.NoRegionError(), ConfigError, "ec2.region", "ec2.region"),
    (bce.ParamValidationError(report=f"UserData {SECRET}"), FatalError, None, "validation"),
    (ValueError(f"odd {SECRET}"), FatalError, None, "ValueError"),
]


@pytest.mark.parametrize("exc, kind, key, words", CASES,
                         ids=[type(case[0]).__name__ for case in CASES])
def test_each_sdk_exception_becomes_its_domain_error(exc, kind, key, words):
    err = error_from_exception(exc, "DescribeImages", ENDPOINT, (SECRET,))
    assert type(err) is kind and getattr(err, "key", None) == key
    assert words in str(err) and SECRET not in str(err)


def test_the_adapter_names_its_endpoint_without_credentials():
    client = SimpleNamespace(meta=SimpleNamespace(
        endpoint_url="https://user:hunter2@cloud.example.org:8773/"))
    err = translate(bce.EndpointConnectionError(endpoint_url="x"), "DescribeImages", client, ())
    assert isinstance(err, TransientError)
    assert "https://cloud.example.org:8773" in str(err) and "hunter2" not in str(err)


def test_codes_and_unimplemented_operations():
    assert error_code(client_error("InvalidAction", 400)) == ("InvalidAction", 400)
    assert error_code(ValueError("x")) == ("", None)
    assert not_implemented(client_error("InvalidAction", 400))
    assert not_implemented(client_error("Whatever", 501))
    assert not not_implemented(client_error("InvalidInstanceType", 400))
