"""The moto EC2 server of the tests, with EC2's real semantics where elastiq depends on them.

Run as ``python -m tests.support.moto_ec2 --port 0 [--capacity N]`` (``MotoServer`` in
``ec2_server.py`` does that); it prints ``LISTENING <port>`` once bound to 127.0.0.1.
This module runs only inside that child process: it patches moto there, never in the tests.

moto's gaps that it closes, so tests and benchmarks see what EC2 does:

* RunInstances launches ``MinCount`` and ignores ``MaxCount``.  Here it grants
  ``min(MaxCount, capacity - alive)`` instances and answers ``InsufficientInstanceCapacity``
  (HTTP 500, as EC2) when fewer than ``MinCount`` can be granted.  ``capacity`` is the number
  of non-terminated instances this fake cloud can hold (None: unlimited).
* RunInstances ignores ``ClientToken``.  Here a repeated token gets the first call's answer and
  launches nothing; the same token with other parameters gets ``IdempotentParameterMismatch``.
* DescribeInstances pages by reservation.  Here ``MaxResults`` (5..1000) counts instances.
* Unknown image ids, key pairs and instance types are accepted.  Here moto's own validation
  switches are on (unless ``--no-validation``).
* An unknown security group name makes moto fail with an HTML 500.  Here it is
  ``InvalidGroup.NotFound``, as in EC2.

And one speed fix: moto looks a resource's tags up by scanning every tag of the region
(O(n) per instance, O(n^2) per listing); here it is a dictionary lookup, as the data allows.

What stays as in moto: instances are ``running`` at once and ``terminated`` at once.

Control endpoints (not EC2): ``GET /_elastiq/stats`` (API calls by action, access key ids
seen, alive instances, capacity), ``POST /_elastiq/capacity`` (body: a number or ``none``),
``POST /_elastiq/reset`` (moto state, counters, tokens, capacity back to the start value).
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import logging
import os
import sys
import threading
from collections import Counter
from typing import Optional
from urllib.parse import urlencode

from tests.support.ec2_wire import access_key_of, action_of, error_body, parse_params

VALIDATION_SWITCHES = (
    "MOTO_ENABLE_AMI_VALIDATION",
    "MOTO_ENABLE_KEYPAIR_VALIDATION",
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION",
)


def _alive_instances() -> int:
    from moto.ec2.models import ec2_backends

    alive = 0
    for account in list(dict.values(ec2_backends)):
        for backend in list(dict.values(account)):
            for reservation in list(backend.reservations.values()):
                alive += sum(1 for i in reservation.instances if i.state != "terminated")
    return alive


def _call(app, environ):
    captured = {}
    chunks = []

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return captured["status"], captured["headers"], b"".join(chunks)


def _respond(start_response, status, body, content_type="text/xml"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class EC2Semantics:
    """WSGI middleware in front of moto's application (see the module docstring)."""

    def __init__(self, app, capacity: Optional[int] = None):
        self.app = app
        self.initial_capacity = self.capacity = capacity
        self.lock = threading.Lock()  # counters
        self.run_lock = threading.Lock()  # one RunInstances at a time: capacity is checked
        self.calls: Counter = Counter()
        self.access_keys = set()
        self.tokens = {}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_elastiq/"):
            return self._control(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        params = parse_params(body, environ.get("QUERY_STRING", ""))
        action = action_of(params)
        with self.lock:
            self.calls[action] += 1
            key = access_key_of(environ.get("HTTP_AUTHORIZATION"))
            if key:
                self.access_keys.add(key)
        if action == "RunInstances":
            return self._run_instances(environ, start_response, body, params)
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def _run_instances(self, environ, start_response, body, params):
        values = dict(params)
        token = values.get("ClientToken")
        fingerprint = sorted(p for p in params if p[0] != "ClientToken")
        with self.run_lock:
            if token and token in self.tokens:
                first_fingerprint, status, headers, out = self.tokens[token]
                if first_fingerprint != fingerprint:
                    return _respond(start_response, "400 Bad Request", error_body(
                        "IdempotentParameterMismatch",
                        "The client token was used with different parameters."))
                start_response(status, headers)
                return [out]
            min_count = int(values.get("MinCount", "1"))
            max_count = int(values.get("MaxCount", str(min_count)))
            grant = max_count
            if self.capacity is not None:
                grant = min(max_count, self.capacity - _alive_instances())
            if grant < min_count:
                return _respond(start_response, "500 Internal Server Error", error_body(
                    "InsufficientInstanceCapacity",
                    "We currently do not have sufficient capacity in the Availability Zone "
                    "you requested."))
            rewritten = [(k, v) for k, v in params if k != "MinCount"] + [("MinCount", str(grant))]
            new_body = urlencode(rewritten).encode()
            environ["wsgi.input"] = io.BytesIO(new_body)
            environ["CONTENT_LENGTH"] = str(len(new_body))
            status, headers, out = _call(self.app, environ)
            if token and status.startswith("200"):
                self.tokens[token] = (fingerprint, status, headers, out)
        start_response(status, headers)
        return [out]

    def _control(self, environ, start_response):
        path = environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        text = environ["wsgi.input"].read(length).decode().strip() if length else ""
        if path == "/_elastiq/capacity":
            self.capacity = None if text.lower() in ("", "none") else int(text)
        elif path == "/_elastiq/reset":
            from moto.moto_api._internal.models import moto_api_backend

            with self.run_lock, self.lock:
                moto_api_backend.reset()
                self.calls.clear()
                self.access_keys.clear()
                self.tokens.clear()
                self.capacity = self.initial_capacity
        elif path != "/_elastiq/stats":
            return _respond(start_response, "404 Not Found", b"{}", "application/json")
        with self.lock:
            stats = {
                "calls": dict(self.calls),
                "access_keys": sorted(self.access_keys),
                "alive": _alive_instances(),
                "capacity": self.capacity,
            }
        return _respond(start_response, "200 OK", json.dumps(stats).encode(), "application/json")


def _describe_instances_by_instance(self):
    """DescribeInstances where MaxResults counts instances, as in EC2 (moto counts reservations)."""
    from moto.ec2.exceptions import InvalidParameterCombination, InvalidParameterValueError

    self.error_on_dryrun()
    instance_ids = self._get_param("InstanceIds", [])
    max_results = self._get_param("MaxResults")
    if instance_ids and max_results:
        raise InvalidParameterCombination(
            "The parameter instancesSet cannot be used with the parameter maxResults")
    filters = self._filters_from_querystring()
    if instance_ids:
        reservations = self.ec2_backend.get_reservations_by_instance_ids(instance_ids, filters)
    else:
        reservations = self.ec2_backend.describe_instances(filters=filters)
    pairs = [(r, i) for r in reservations for i in r.instances]
    limit = int(max_results) if max_results else 1000
    if max_results and not 5 <= limit <= 1000:
        raise InvalidParameterValueError(f"{limit} (MaxResults must be 5..1000)")
    token = self._get_param("NextToken")
    start = int(token) if token else 0
    page = pairs[start:start + limit]
    grouped = []
    for reservation, instance in page:
        if not grouped or grouped[-1].id != reservation.id:
            grouped.append(copy.copy(reservation))
            grouped[-1].instances = []
        grouped[-1].instances.append(instance)
    next_token = str(start + limit) if len(pairs) > start + limit else None
    from moto.core.responses import ActionResult

    return ActionResult({"Reservations": grouped, "NextToken": next_token})


def _tags_of(self):
    """TaggedEC2Resource.get_tags without scanning every tag (same result format)."""
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    if not self.id:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    tags = self.ec2_backend.tags.get(self.id) or {}
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind}
            for k, v in list(tags.items())]


def _checking_group_names(run_instances):
    def run(self, image_id, count, user_data, security_group_names, **kwargs):
        from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError

        for name in security_group_names:
            if self.get_security_group_by_name_or_id(name) is None:
                raise InvalidSecurityGroupNotFoundError(name)
        return run_instances(self, image_id, count, user_data, security_group_names, **kwargs)

    return run


def build_app(capacity: Optional[int] = None) -> EC2Semantics:
    from moto.ec2.responses.instances import InstanceResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.models.instances import InstanceBackend

    InstanceResponse.describe_instances = _describe_instances_by_instance
    InstanceBackend.run_instances = _checking_group_names(InstanceBackend.run_instances)
    TaggedEC2Resource.get_tags = _tags_of
    return EC2Semantics(DomainDispatcherApplication(create_backend_app), capacity)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--capacity", type=int, default=None)
    parser.add_argument("--no-validation", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_validation:
        for switch in VALIDATION_SWITCHES:
            os.environ[switch] = "true"  # read by moto.settings at import: set before it
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(args.host, args.port, build_app(args.capacity), threaded=True)
    print(f"LISTENING {server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
