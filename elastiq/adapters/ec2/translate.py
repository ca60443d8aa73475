"""The EC2 API's vocabulary in elastiq's terms: error codes -> domain errors, instance
descriptions -> :class:`model.Instance`.  Pure: no SDK import (``ec2.py`` hands in plain data).

Error policy (one table, applied once at the adapter's boundary):

* throttling and 5xx / ``InternalError`` / ``Unavailable``: :class:`TransientError` (botocore
  has already retried them; the daemon tries again next tick);
* quota and capacity (``InstanceLimitExceeded``, ``InsufficientInstanceCapacity``,
  ``VcpuLimitExceeded``, any ``*LimitExceeded`` or ``*Quota*``): :class:`QuotaError`, the core
  backs off;
* authentication and authorisation: :class:`AuthError`, whose message says what to check;
* a configured thing the cloud does not know (image, flavour, key pair, security group,
  subnet): :class:`ConfigError` with ``key`` naming the setting;
* anything else: :class:`FatalError` (4xx) or :class:`TransientError` (5xx).

Messages never carry secrets: the cloud's text is shown only for config and unknown errors,
after :func:`redact`, and never for user-data errors (the cloud may quote it back).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple

from ...model import Instance, InstanceState
from ..redact import redact
from ..base import AdapterError, AuthError, ConfigError, FatalError, QuotaError, TransientError

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException", "SlowDown",
})
TRANSIENT_CODES = frozenset({
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
})
QUOTA_CODES = frozenset({
    "InstanceLimitExceeded", "InsufficientInstanceCapacity", "VcpuLimitExceeded",
    "InsufficientCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
    "InsufficientFreeAddressesInSubnet", "MaxSpotInstanceCountExceeded", "ResourceLimitExceeded",
})
CREDENTIALS_HINT = (
    "check ec2.aws_access_key_id and ec2.aws_secret_access_key (or EC2_ACCESS_KEY / "
    "EC2_SECRET_KEY from ec2rc.sh, or the AWS profile / instance role in use), that they are "
    "valid for this endpoint and region, and that this machine's clock is right")
AUTH_MESSAGES = {
    "AuthFailure": "the EC2 endpoint rejected our credentials",
    "InvalidClientTokenId": "the EC2 endpoint does not know our access key",
    "InvalidAccessKeyId": "the EC2 endpoint does not know our access key",
    "SignatureDoesNotMatch": "the request signature does not match: wrong secret key",
    "IncompleteSignature": "the request signature is incomplete",
    "MissingAuthenticationToken": "the request carried no credentials",
    "ExpiredToken": "our temporary credentials have expired",
    "RequestExpired": "the request expired before it arrived: is the clock right?",
    "UnauthorizedOperation": "the credentials are valid but not allowed to call {op}: "
                             "grant ec2:{op} to this user or role",
    "AccessDenied": "the credentials are valid but not allowed to call {op}: "
                    "grant ec2:{op} to this user or role",
    "OptInRequired": "the account is not subscribed to EC2 in this region: check ec2.region",
    "Blocked": "the account is blocked: contact the cloud provider",
    "PendingVerification": "the account is still being verified by the cloud provider",
}
#: Code prefix -> the setting that names the thing the cloud does not know.
CONFIG_PREFIXES = (
    ("InvalidAMIID", "ec2.image_id"),
    ("InvalidKeyPair", "ec2.key_name"),
    ("InvalidGroup", "ec2.security_groups"),
    ("InvalidGroupId", "ec2.security_groups"),
    ("InvalidSecurityGroupID", "ec2.security_groups"),
    ("InvalidSubnetID", "ec2.subnet_id"),
    ("InvalidSubnet", "ec2.subnet_id"),
    ("InvalidInstanceType", "ec2.flavour"),
    ("Unsupported", "ec2.flavour"),  # "instance type not supported in this zone"
    ("InvalidUserData", "ec2.user_data_b64"),
)
#: For InvalidParameterValue: words of the cloud's message (letters only, lower case) -> setting.
PARAMETER_WORDS = (
    (("instancetype",), "ec2.flavour"),
    (("userdata",), "ec2.user_data_b64"),
    (("keyname", "keypair"), "ec2.key_name"),
    (("imageid", "ami"), "ec2.image_id"),
    (("subnet",), "ec2.subnet_id"),
    (("securitygroup", "groupname", "groupid"), "ec2.security_groups"),
)
def _config_key(code: str, message: str) -> Optional[str]:
    for prefix, key in CONFIG_PREFIXES:
        if code == prefix or code.startswith(prefix + "."):
            return key
    if code == "InvalidParameterValue":
        tokens = re.findall(r"[a-z]+", message.lower())
        compact = "".join(tokens)
        for words, key in PARAMETER_WORDS:
            if any((word in tokens) if word == "ami" else (word in compact) for word in words):
                return key
    return None


def error_from_code(code: str, message: str, status: Optional[int], operation: str,
                    secrets: Iterable[str] = ()) -> AdapterError:
    """The domain error for an EC2 error response (see the module docstring)."""
    code = code or "Unknown"
    shown = redact(message or "", secrets)
    if code in THROTTLING_CODES:
        return TransientError(f"EC2 is throttling our requests ({code} on {operation}); "
                              "will try again")
    if code in QUOTA_CODES or (code.endswith("LimitExceeded")) or "Quota" in code:
        return QuotaError(f"the cloud refused {operation} for lack of quota or capacity "
                          f"({code}): {shown}")
    if code in AUTH_MESSAGES:
        what = AUTH_MESSAGES[code].format(op=operation)
        hint = "" if code in ("UnauthorizedOperation", "AccessDenied") else f"; {CREDENTIALS_HINT}"
        return AuthError(f"{what} ({code} on {operation}){hint}")
    if code == "IdempotentParameterMismatch":
        return FatalError(f"a launch request id was reused for another request ({code} on "
                          f"{operation}): each launch needs its own request_id")
    key = _config_key(code, message or "")
    if key == "ec2.user_data_b64":
        return ConfigError(f"the cloud rejected the worker user-data ({code}); check "
                           "ec2.user_data_b64 / ec2.user_data_file", key=key)
    if key is not None:
        return ConfigError(f"the cloud does not accept {key} ({code}): {shown}", key=key)
    if code in TRANSIENT_CODES or (status or 0) >= 500:
        return TransientError(f"EC2 {operation} failed on the cloud's side ({code}): {shown}")
    if code in ("InvalidParameterValue", "InvalidParameterCombination", "MissingParameter"):
        return ConfigError(f"the cloud rejected the {operation} request ({code}): {shown}")
    return FatalError(f"EC2 {operation} failed ({code}): {shown}")


# ----------------------------------------------------------------------------- instances

#: EC2 state name -> elastiq state.  ``stopped`` is ERROR on purpose: our workers are launched
#: with InstanceInitiatedShutdownBehavior=terminate, so a stopped one was stopped by someone or
#: by a cloud that ignores that setting (OpenStack turns a self-shutdown into SHUTOFF, shown as
#: ``stopped``).  It does no work, does not come back by itself and still holds quota and disk:
#: the core's answer to ERROR (terminate and replace) is the right one.  ``error`` is what
#: OpenStack's EC2 API shows for an instance in ERROR.
STATES = {
    "pending": InstanceState.BOOTING,
    "running": InstanceState.RUNNING,
    "shutting-down": InstanceState.SHUTTING_DOWN,
    "stopping": InstanceState.SHUTTING_DOWN,
    "stopped": InstanceState.ERROR,
    "terminated": InstanceState.GONE,
    "error": InstanceState.ERROR,
}


def tag_value(description: Mapping[str, Any], key: str) -> Optional[str]:
    for tag in description.get("Tags") or ():
        if tag.get("Key") == key:
            return tag.get("Value")
    return None


def to_instance(description: Mapping[str, Any], cluster_tag: str,
                clock: Callable[[], float], owner_tag: str = "elastiq:owner") -> Instance:
    """One DescribeInstances item as a :class:`model.Instance` (its owner: ``owner_tag``'s value).

    An unknown state name is ERROR (it counts against max_vms and gets looked at) with a
    warning.  A missing LaunchTime (some EC2-compatible clouds) is taken as ``clock()``.
    """
    state_name = (description.get("State") or {}).get("Name", "")
    state = STATES.get(state_name)
    if state is None:
        log.warning("instance %s is in unknown state %r: treated as error",
                    description.get("InstanceId"), state_name)
        state = InstanceState.ERROR
    launched = description.get("LaunchTime")
    return Instance(
        id=description["InstanceId"],
        state=state,
        launched_at=launched.timestamp() if hasattr(launched, "timestamp") else clock(),
        cluster=tag_value(description, cluster_tag),
        private_ip=description.get("PrivateIpAddress") or None,
        instance_type=description.get("InstanceType"),
        owner=tag_value(description, owner_tag),
    )


# ----------------------------------------------------------------------------- SDK exceptions

#: Codes (or HTTP 501) of an endpoint that does not implement the operation asked, as
#: EC2-compatible clouds answer for DescribeInstanceTypes and the like.
NOT_IMPLEMENTED_CODES = frozenset({"InvalidAction", "UnsupportedOperation", "NotImplemented",
                                   "UnknownOperation", "InvalidRequest"})


def error_code(err: BaseException) -> Tuple[str, Optional[int]]:
    """``(code, HTTP status)`` of an SDK error carrying the cloud's answer (botocore's
    ClientError: ``err.response``); ``("", None)`` for any other exception."""
    response = getattr(err, "response", None) or {}
    return ((response.get("Error") or {}).get("Code", "") or "",
            (response.get("ResponseMetadata") or {}).get("HTTPStatusCode"))


def not_implemented(err: BaseException) -> bool:
    code, status = error_code(err)
    return code in NOT_IMPLEMENTED_CODES or status == 501


def error_from_exception(err: BaseException, operation: str, endpoint: str,
                         secrets: Iterable[str] = ()) -> AdapterError:
    """The domain error for whatever the SDK raised during ``operation`` on ``endpoint`` (a
    name for messages, e.g. "the EC2 endpoint https://host:8773").

    botocore's exceptions are told apart by their class names, so that this module stays free
    of the SDK: the cloud's answer (ClientError) goes to :func:`error_from_code`; missing keys
    are an AuthError; TLS a ConfigError on ``ec2.ca_bundle``; timeouts, unreachable endpoints
    and answers that are not EC2's (a proxy's page) a TransientError; the rest FatalError.
    """
    if isinstance(err, AdapterError):
        return err
    names = {cls.__name__ for cls in type(err).__mro__}
    if "ClientError" in names:
        code, status = error_code(err)
        message = (getattr(err, "response", None) or {}).get("Error", {}).get("Message", "")
        return error_from_code(code, message, status, operation, secrets)
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return AuthError(
            "no usable EC2 credentials: set ec2.aws_access_key_id and "
            "ec2.aws_secret_access_key, or source ec2rc.sh (EC2_ACCESS_KEY / "
            "EC2_SECRET_KEY), or configure an AWS profile or instance role")
    if "SSLError" in names:
        return ConfigError(f"TLS verification of {endpoint} failed: set ec2.ca_bundle to "
                           "the CA certificate of the endpoint", key="ec2.ca_bundle")
    if names & {"ConnectTimeoutError", "ReadTimeoutError"}:
        return TransientError(f"{endpoint} did not answer {operation} in time")
    if names & {"ConnectionError", "HTTPClientError"}:
        return TransientError(f"cannot reach {endpoint} for {operation}: check ec2.api_url "
                              "and the network")
    if "ResponseParserError" in names:
        return TransientError(f"{endpoint} answered {operation} with something that is not "
                              "an EC2 response (a proxy or gateway error?)")
    if "NoRegionError" in names:
        return ConfigError("no EC2 region: set ec2.region", key="ec2.region")
    if "ParamValidationError" in names:  # its text may quote user-data: not shown
        return FatalError(f"invalid {operation} request (parameter validation failed)")
    return FatalError(f"EC2 {operation} failed: {type(err).__name__}: "
                      f"{redact(str(err), secrets)}")
