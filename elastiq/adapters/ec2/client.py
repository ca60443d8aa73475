"""The boto3 side of the EC2 adapter: making the client, and the one translation of what
botocore raises into the domain errors of ``base.py`` (see :mod:`.ec2` for the guarantees).

With :mod:`.ec2`, the only modules that import boto3/botocore.
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Mapping, Optional, Sequence
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.utils import parse_timestamp

from ... import __version__
from ..base import AdapterError, ConfigError
from .config import Settings as EC2Settings
from .request import access_settings
from .translate import error_code, error_from_exception, not_implemented  # noqa: F401

#: Signing region for an EC2-compatible endpoint that does not care (OpenStack's EC2 API).
ENDPOINT_DEFAULT_REGION = "us-east-1"


def ids_gone(err: Exception) -> bool:
    return error_code(err)[0] in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")


def make_client(ec2: EC2Settings, environ: Mapping[str, str], max_attempts: int,
                connect_timeout: float, read_timeout: float):
    """The boto3 EC2 client for ``ec2``, and the secret values to keep out of messages.

    Keys and endpoint: see ``request.access_settings``.  Region: ``ec2.region``, else
    boto3's default, else (custom endpoint only) a placeholder used for signing.
    """
    key, secret, endpoint = access_settings(ec2, environ)
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=timestamp)
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name=ec2.region or None, botocore_session=core)
    region = session.region_name or (ENDPOINT_DEFAULT_REGION if endpoint else None)
    if region is None:
        raise ConfigError("no EC2 region: set ec2.region (or ec2.api_url for a non-AWS cloud)",
                          key="ec2.region")
    settings = BotoConfig(
        region_name=region, connect_timeout=connect_timeout, read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},  # first try included
        user_agent_extra=f"elastiq/{__version__}")
    try:
        client = session.client("ec2", endpoint_url=endpoint, verify=ec2.ca_bundle or None,
                                config=settings)
    except ValueError:
        where = "ec2.api_url" if ec2.api_url else "EC2_URL"
        raise ConfigError(f"{where} is not a valid endpoint URL (expected http:// or https://, "
                          "a host, and optionally a port and a path, e.g. "
                          "https://ec2.example.org:8773/services/Cloud)", key="ec2.api_url") from None
    secrets = [key, secret] + [os.environ.get(name) for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    return client, tuple(s for s in secrets if s)


def timestamp(value: str) -> datetime:
    """A timestamp of the cloud's answers, as botocore's own parser reads it, but ISO 8601
    with a zone (EC2's ``2026-12-05T16:35:00.000Z``) in C: botocore's parser (dateutil) takes
    ~0.2 ms each, 3 per instance, a second per DescribeInstances of 2,000 instances."""
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except (TypeError, ValueError):
        return parse_timestamp(value)
    return parsed if parsed.tzinfo is not None else parse_timestamp(value)


def translate(err: Exception, operation: str, client, secrets: Sequence[str]) -> AdapterError:
    """The domain error for what botocore raised (see ``translate.error_from_exception``)."""
    return error_from_exception(err, operation, _endpoint(client), secrets)


def _endpoint(client) -> str:
    """The endpoint for messages, without any user:password part."""
    url = urlsplit(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
    if not url.hostname:
        return "the EC2 endpoint"
    port = f":{url.port}" if url.port else ""
    return f"the EC2 endpoint {url.scheme}://{url.hostname}{port}"
