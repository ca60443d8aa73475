"""EC2 query-protocol details shared by the moto wrapper and the fault proxy (test support).

EC2 requests are form-encoded POSTs (``Action=RunInstances&...``); errors are the XML document
below, which botocore parses into ``ClientError`` with ``Error.Code`` / ``Error.Message``.
"""
from __future__ import annotations

import re
import uuid
from typing import List, Optional, Tuple
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def parse_params(body: bytes, query: str = "") -> List[Tuple[str, str]]:
    pairs = parse_qsl(query, keep_blank_values=True)
    if body:
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return pairs


def action_of(params: List[Tuple[str, str]]) -> str:
    return dict(params).get("Action", "?")


def access_key_of(authorization: Optional[str]) -> Optional[str]:
    """The access key id a SigV4 ``Authorization`` header was signed with."""
    match = _CREDENTIAL.search(authorization or "")
    return match.group(1) if match else None


def error_body(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


#: The EC2 errors the tests inject: name -> (HTTP status, code, message), as EC2 sends them.
ERRORS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "500": (500, "InternalError", "An internal error has occurred"),
    "unavailable": (503, "Unavailable", "The server is overloaded and can't handle the request."),
    "quota": (400, "InstanceLimitExceeded",
              "Your quota allows for 0 more running instance(s). You requested at least 1."),
    "vcpu-quota": (400, "VcpuLimitExceeded",
                   "You have requested more vCPU capacity than your current vCPU limit allows."),
    "capacity": (500, "InsufficientInstanceCapacity",
                 "We currently do not have sufficient capacity in the Availability Zone you "
                 "requested."),
    "auth": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    "unauthorized": (403, "UnauthorizedOperation",
                     "You are not authorized to perform this operation."),
    "bad-flavour": (400, "InvalidParameterValue", "Invalid value 'm9.huge' for InstanceType."),
    "bad-image": (400, "InvalidAMIID.NotFound", "The image id '[ami-12345678]' does not exist"),
}
