"""The Cloud port on EC2 through boto3: AWS or any EC2-compatible endpoint (``ec2.api_url``).

The only module that imports boto3/botocore.  What it guarantees:

* It sees only instances tagged ``elastiq:cluster=<cluster_name>``: listing filters by the tag
  and checks it again on every item; terminate refuses any id not carrying it.
* ``launch(n)`` is one RunInstances call (MinCount=1, MaxCount=n: EC2 grants what it can), with
  the cluster's tags on instances and volumes, ``InstanceInitiatedShutdownBehavior=terminate``
  (a worker that powers itself off stops costing money) and a ClientToken (see
  :func:`ec2_request.client_token`).
* Retries are botocore's "standard" mode (throttling, 5xx, timeouts, with backoff); every
  exception that remains is translated once, in :meth:`EC2Cloud._translate`, into a domain
  error of ``base.py``.  No secret (keys, tokens, user-data) reaches a message or a log.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import boto3
from botocore import exceptions as bce
from botocore.config import Config as BotoConfig
from botocore.parsers import ResponseParserError

from .. import __version__
from ..config import Config, EC2Section
from ..model import Instance
from .base import AdapterError, AuthError, ConfigError, FatalError, TransientError
from .ec2_request import (CLUSTER_TAG, access_settings, chunks, cluster_tags, launch_params,
                          tag_filter)
from .ec2_translate import error_from_code, redact, secret_values, tag_value, to_instance
from .ec2_userdata import Detect, detect_addresses, prepare_user_data

log = logging.getLogger(__name__)

#: EC2 takes at most 1000 ids per TerminateInstances, 200 values per DescribeInstances filter.
MAX_IDS_PER_CALL = 1000
MAX_FILTER_VALUES = 200
#: Signing region for an EC2-compatible endpoint that does not care (OpenStack's EC2 API).
ENDPOINT_DEFAULT_REGION = "us-east-1"
_NOT_IMPLEMENTED = ("InvalidAction", "UnsupportedOperation", "NotImplemented", "UnknownOperation")


def _code(err: bce.ClientError) -> str:
    return (err.response.get("Error") or {}).get("Code", "")


def _status(err: bce.ClientError) -> Optional[int]:
    return (err.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")


def _ids_gone(err: bce.ClientError) -> bool:
    return _code(err) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")


def _not_implemented(err: bce.ClientError) -> bool:
    return _code(err) in _NOT_IMPLEMENTED or _status(err) == 501


def make_client(ec2: EC2Section, environ: Mapping[str, str], max_attempts: int,
                connect_timeout: float, read_timeout: float):
    """The boto3 EC2 client for ``ec2``, and the secret values to keep out of messages.

    Keys and endpoint: see ``ec2_request.access_settings``.  Region: ``ec2.region``, else
    boto3's default, else (custom endpoint only) a placeholder used for signing.
    """
    key, secret, endpoint = access_settings(ec2, environ)
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name=ec2.region or None)
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
        raise ConfigError(f"{where} is not a valid endpoint URL", key="ec2.api_url") from None
    secrets = [key, secret] + [os.environ.get(name) for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    return client, tuple(s for s in secrets if s)


class EC2Cloud:
    """:class:`base.Cloud` on EC2.  Extra keyword arguments tune botocore (``max_attempts``:
    attempts per call, the first included; timeouts in seconds), paging, batching, address
    detection and the environment read for ec2rc.sh."""

    def __init__(self, config: Config, user_data: Union[bytes, str, None] = None,
                 substitutions: Optional[Mapping[str, str]] = None, client=None,
                 clock: Callable[[], float] = time.time, *, max_attempts: int = 4,
                 connect_timeout: float = 10.0, read_timeout: Optional[float] = None,
                 page_size: int = 1000, batch_size: int = MAX_IDS_PER_CALL,
                 detect: Detect = detect_addresses,
                 environ: Optional[Mapping[str, str]] = None):
        self._ec2 = config.ec2
        self._cluster = config.elastiq.cluster_name
        self._clock = clock
        self._page_size = max(5, min(page_size, 1000))
        self._batch_size = max(1, min(batch_size, MAX_IDS_PER_CALL))
        self._secrets: Tuple[str, ...] = ()
        if client is None:
            client, self._secrets = make_client(
                self._ec2, os.environ if environ is None else environ, max_attempts,
                connect_timeout,
                self._ec2.read_timeout_s if read_timeout is None else read_timeout)
        self._client = client
        self._user_data = prepare_user_data(self._ec2, user_data, config.substitute,
                                            substitutions, detect)
        self._secrets += secret_values(
            (self._ec2.aws_access_key_id, self._ec2.aws_secret_access_key),
            (*(substitutions or {}).values(), *config.substitute.values()), self._user_data)
        for name in ("botocore", "boto3"):  # botocore logs request bodies at DEBUG
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)

    # ------------------------------------------------------------------------- Cloud port

    def launch(self, count: int, request_id: Optional[str] = None) -> Tuple[str, ...]:
        """Ask for ``count`` VMs in one RunInstances; return the ids granted (1..count).

        ``request_id`` names this launch request; pass the same one to retry a launch whose
        outcome is unknown and EC2 will not launch it twice (see ``ec2_request.client_token``).
        """
        if count < 1:
            return ()
        request_id = request_id or uuid.uuid4().hex
        params = launch_params(self._ec2, self._cluster, count, request_id, self._user_data)
        with self._boundary("RunInstances"):
            granted = self._client.run_instances(**params).get("Instances") or []
        ids = tuple(item["InstanceId"] for item in granted)
        untagged = [item["InstanceId"] for item in granted
                    if tag_value(item, CLUSTER_TAG) != self._cluster]
        if untagged:
            self._tag_late(untagged)
        log.info("launched %d of %d VM(s) requested (request %s): %s",
                 len(ids), count, request_id, " ".join(ids))
        if len(ids) > count:  # never happens on EC2; the rest carry our tag and get adopted
            log.warning("the cloud granted %d VMs for %d asked", len(ids), count)
        return ids[:count]

    def list_instances(self) -> Tuple[Instance, ...]:
        """Our instances (tag ``elastiq:cluster``) in every state, terminated ones as GONE.

        No state filter on purpose: the core wants to see GONE (not just absence), and a state
        filter would hide non-standard states of EC2-compatible clouds (OpenStack's
        ``error``).  EC2 itself forgets terminated instances after about an hour.
        """
        found = []
        with self._boundary("DescribeInstances"):
            for item in self._describe(Filters=[tag_filter(self._cluster)],
                                       PaginationConfig={"PageSize": self._page_size}):
                found.append(to_instance(item, CLUSTER_TAG, self._clock))
        return tuple(found)

    def terminate(self, instance_ids: Sequence[str]) -> None:
        """Terminate those of ``instance_ids`` that carry our cluster tag; idempotent.

        Per batch of up to 1000 ids: one DescribeInstances (ids + tag filter) to verify, one
        TerminateInstances for the live ones.  Ids that are not ours, or unknown to the cloud,
        are skipped with a warning; ids already terminated are skipped silently.
        """
        ids = list(dict.fromkeys(i for i in instance_ids if i))
        for batch in chunks(ids, self._batch_size):
            states = self._states_of_ours(batch)
            refused = [i for i in batch if i not in states]
            if refused:
                log.warning("not terminating %s: not tagged %s=%s (or long gone)",
                            " ".join(refused), CLUSTER_TAG, self._cluster)
            alive = [i for i in batch if states.get(i) not in (None, "terminated")]
            if alive:
                self._terminate_ours(alive)

    # ------------------------------------------------------------------------- extras

    def describe_flavour(self) -> Optional[Tuple[int, int]]:
        """``(cpus, memory_mb)`` of ``ec2.flavour``; None when unset or the cloud cannot tell
        (no DescribeInstanceTypes, as in OpenStack's EC2 API).  Unknown flavour: ConfigError."""
        if not self._ec2.flavour:
            return None
        try:
            with self._boundary("DescribeInstanceTypes", passthrough=_not_implemented):
                types = self._client.describe_instance_types(
                    InstanceTypes=[self._ec2.flavour]).get("InstanceTypes") or []
        except bce.ClientError:
            return None
        if not types:
            raise ConfigError(f"the cloud does not know ec2.flavour {self._ec2.flavour!r}",
                              key="ec2.flavour")
        cpus = (types[0].get("VCpuInfo") or {}).get("DefaultVCpus")
        memory = (types[0].get("MemoryInfo") or {}).get("SizeInMiB")
        return (int(cpus), int(memory)) if cpus and memory else None

    def check(self) -> None:
        """Prove the settings with cheap read-only calls: credentials (AuthError), endpoint
        (TransientError), ``ec2.image_id``, ``ec2.key_name``, ``ec2.flavour`` (ConfigError)."""
        image = self._ec2.image_id
        with self._boundary("DescribeImages" if image else "DescribeRegions"):
            if not image:
                self._client.describe_regions()
            elif not self._client.describe_images(ImageIds=[image]).get("Images"):
                raise ConfigError(f"the cloud does not know ec2.image_id {image!r}",
                                  key="ec2.image_id")
        if self._ec2.key_name:
            with self._boundary("DescribeKeyPairs"):
                self._client.describe_key_pairs(KeyNames=[self._ec2.key_name])
        self.describe_flavour()

    # ------------------------------------------------------------------------- helpers

    def _tag_late(self, ids: List[str]) -> None:
        """Tag instances the cloud launched without confirming our tags; if that fails,
        terminate them (they are ours: ids from our own RunInstances) rather than orphan them."""
        log.warning("the cloud did not confirm the tags of %d new instance(s): tagging them",
                    len(ids))
        try:
            for chunk in chunks(ids, self._batch_size):
                with self._boundary("CreateTags"):
                    self._client.create_tags(Resources=chunk, Tags=cluster_tags(self._cluster))
        except AdapterError:
            log.error("cannot tag new instances %s: terminating them", " ".join(ids))
            try:
                with self._boundary("TerminateInstances"):
                    self._client.terminate_instances(InstanceIds=ids)
            except AdapterError as err:  # untagged, they are invisible to elastiq from now on
                log.error("cannot terminate untagged new instances %s (%s): terminate them by "
                          "hand, elastiq will not see them", " ".join(ids), err)
            raise

    def _describe(self, **kwargs) -> Iterator[dict]:
        """DescribeInstances items (paginated) carrying our tag; others are dropped, loudly."""
        foreign = []
        for page in self._client.get_paginator("describe_instances").paginate(**kwargs):
            for reservation in page.get("Reservations") or ():
                for item in reservation.get("Instances") or ():
                    if tag_value(item, CLUSTER_TAG) == self._cluster:
                        yield item
                    else:
                        foreign.append(item.get("InstanceId", "?"))
        if foreign:
            log.warning("ignored %d instance(s) the cloud returned without tag %s=%s (does it "
                        "ignore filters?): %s", len(foreign), CLUSTER_TAG, self._cluster,
                        " ".join(foreign[:10]))

    def _states_of_ours(self, ids: List[str]) -> Dict[str, str]:
        """EC2 state name of each id that carries our tag (ids not ours are absent)."""
        try:
            with self._boundary("DescribeInstances", passthrough=_ids_gone):
                return {item["InstanceId"]: item["State"]["Name"]
                        for item in self._describe(InstanceIds=ids,
                                                   Filters=[tag_filter(self._cluster)])}
        except bce.ClientError:
            pass  # some ids unknown to the cloud: a filter on instance-id ignores them
        states: Dict[str, str] = {}
        with self._boundary("DescribeInstances"):
            for chunk in chunks(ids, MAX_FILTER_VALUES):
                filters = [tag_filter(self._cluster), {"Name": "instance-id", "Values": chunk}]
                for item in self._describe(Filters=filters,
                                           PaginationConfig={"PageSize": self._page_size}):
                    states[item["InstanceId"]] = item["State"]["Name"]
        return states

    def _terminate_ours(self, ids: List[str]) -> None:
        log.info("terminating %d instance(s): %s", len(ids), " ".join(ids))
        try:
            with self._boundary("TerminateInstances", passthrough=_ids_gone):
                self._client.terminate_instances(InstanceIds=ids)
        except bce.ClientError:  # one vanished since we looked: terminate those still there
            states = self._states_of_ours(ids)
            rest = [i for i in ids if states.get(i) not in (None, "terminated")]
            if rest:
                with self._boundary("TerminateInstances"):
                    self._client.terminate_instances(InstanceIds=rest)

    @contextlib.contextmanager
    def _boundary(self, operation: str,
                  passthrough: Optional[Callable[[bce.ClientError], bool]] = None):
        """Translate whatever the SDK raises; a ClientError for which ``passthrough`` is true
        is re-raised as it is, for the caller to handle."""
        try:
            yield
        except AdapterError:
            raise
        except bce.ClientError as err:
            if passthrough is not None and passthrough(err):
                raise
            raise self._translate(err, operation) from None
        except Exception as err:  # the boundary: nothing from the SDK goes further
            raise self._translate(err, operation) from None

    def _translate(self, err: Exception, operation: str) -> AdapterError:
        """The one place where SDK exceptions become domain errors."""
        if isinstance(err, bce.ClientError):
            error = err.response.get("Error") or {}
            return error_from_code(error.get("Code", ""), error.get("Message", ""),
                                   _status(err), operation, self._secrets)
        endpoint = self._endpoint()
        if isinstance(err, (bce.NoCredentialsError, bce.PartialCredentialsError)):
            return AuthError(
                "no usable EC2 credentials: set ec2.aws_access_key_id and "
                "ec2.aws_secret_access_key, or source ec2rc.sh (EC2_ACCESS_KEY / "
                "EC2_SECRET_KEY), or configure an AWS profile or instance role")
        if isinstance(err, bce.SSLError):
            return ConfigError(f"TLS verification of {endpoint} failed: set ec2.ca_bundle to "
                               "the CA certificate of the endpoint", key="ec2.ca_bundle")
        if isinstance(err, (bce.ConnectTimeoutError, bce.ReadTimeoutError)):
            return TransientError(f"{endpoint} did not answer {operation} in time")
        if isinstance(err, (bce.ConnectionError, bce.HTTPClientError)):
            return TransientError(f"cannot reach {endpoint} for {operation}: check ec2.api_url "
                                  "and the network")
        if isinstance(err, ResponseParserError):  # e.g. a proxy's HTML error page
            return TransientError(f"{endpoint} answered {operation} with something that is not "
                                  "an EC2 response (a proxy or gateway error?)")
        if isinstance(err, bce.NoRegionError):
            return ConfigError("no EC2 region: set ec2.region", key="ec2.region")
        if isinstance(err, bce.ParamValidationError):  # its text may quote user-data: not shown
            return FatalError(f"invalid {operation} request (parameter validation failed)")
        return FatalError(f"EC2 {operation} failed: {type(err).__name__}: "
                          f"{redact(str(err), self._secrets)}")

    def _endpoint(self) -> str:
        """The endpoint for messages, without any user:password part."""
        url = urlsplit(getattr(self._client.meta, "endpoint_url", "") or "")
        if not url.hostname:
            return "the EC2 endpoint"
        port = f":{url.port}" if url.port else ""
        return f"the EC2 endpoint {url.scheme}://{url.hostname}{port}"
