"""The Cloud port on EC2 through boto3: AWS or any EC2-compatible endpoint (``ec2.api_url``).

With :mod:`.client` (the client, the translation of SDK errors), the only modules that
import boto3/botocore.  Its configuration is the ``ec2`` section (:mod:`.config`).  What
it guarantees:

* It sees only instances tagged ``elastiq:cluster=<cluster_name>``: listing filters by the tag
  and checks it again on every item; terminate refuses any id not carrying it.  Given an
  ``owner`` id, it tags every launch ``elastiq:owner=<owner>`` too, lists every instance's
  owner, and terminate refuses an id carrying another owner's (:mod:`elastiq.runtime.owner`).
* ``launch(n)`` is one RunInstances call (MinCount=1, MaxCount=n: EC2 grants what it can), with
  the cluster's tags on instances and volumes, ``InstanceInitiatedShutdownBehavior=terminate``
  (a worker that powers itself off stops costing money) and a ClientToken (see
  :func:`.request.client_token`).
* Retries are botocore's "standard" mode (throttling, 5xx, timeouts, with backoff); every
  exception that remains is translated once, in :func:`.client.translate`, into a domain
  error of ``base.py``.  No secret (keys, tokens, user-data) reaches a message or a log.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from typing import (TYPE_CHECKING, Callable, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

from botocore import exceptions as bce

from ... import flavours as flavour_list
from ...model import Instance
from . import settings as ec2_settings
from ..base import NOT_SUPPORTED, AdapterError, ConfigError, SettingCheck
from .client import ids_gone, make_client, not_implemented, translate
from .request import CLUSTER_TAG, OWNER_TAG, chunks, cluster_tags, launch_params, tag_filter
from ..redact import secret_values
from .translate import tag_value, to_instance
from ..userdata import Detect, detect_addresses, prepare_user_data

if TYPE_CHECKING:
    from ...config import Config

log = logging.getLogger(__name__)

#: EC2 takes at most 1000 ids per TerminateInstances, 200 values per DescribeInstances filter.
MAX_IDS_PER_CALL = 1000
MAX_FILTER_VALUES = 200


class EC2Cloud:
    """:class:`base.Cloud` on EC2.  ``owner``: the daemon's owner id (None: launches carry
    none and every instance of the cluster is terminated when asked).  Extra keyword arguments
    tune botocore (``max_attempts``: attempts per call, the first included; timeouts in
    seconds), paging, batching, address detection and the environment read for ec2rc.sh."""

    #: Its reads talk to the cloud's API and share nothing with the other port's adapter: the
    #: runtime lists the cloud while it reads the queue (:func:`base.reads_overlap`).
    independent_reads = True

    def __init__(self, config: Config, user_data: Union[bytes, str, None] = None,
                 substitutions: Optional[Mapping[str, str]] = None, client=None,
                 clock: Callable[[], float] = time.time, *, max_attempts: int = 4,
                 connect_timeout: float = 10.0, read_timeout: Optional[float] = None,
                 page_size: int = 1000, batch_size: int = MAX_IDS_PER_CALL,
                 detect: Detect = detect_addresses,
                 environ: Optional[Mapping[str, str]] = None, owner: Optional[str] = None):
        self._ec2 = config.cloud
        self._cluster = config.elastiq.cluster_name
        self.owner = owner
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

    def launch(self, count: int, *, flavour: Optional[str] = None,
               request_id: Optional[str] = None) -> Tuple[str, ...]:
        """Ask for ``count`` VMs in one RunInstances; return the ids granted (1..count).

        ``request_id`` names this launch request: its ``ClientToken``
        (``request.client_token``), so the same request again (same count and flavour)
        answers with the instances the first one made, if it reached EC2, instead of new ones.
        ``flavour``: the instance type (one of ``ec2.flavour``'s); None: the first.
        """
        if count < 1:
            return ()
        request_id = request_id or uuid.uuid4().hex
        params = launch_params(self._ec2, self._cluster, count, request_id, self._user_data,
                               flavour, self.owner)
        with self._boundary("RunInstances"):
            granted = self._client.run_instances(**params).get("Instances") or []
        ids = tuple(item["InstanceId"] for item in granted)
        untagged = [item["InstanceId"] for item in granted
                    if tag_value(item, CLUSTER_TAG) != self._cluster
                    or tag_value(item, OWNER_TAG) != self.owner]
        if untagged:
            self._tag_late(untagged)
        log.debug("launched %d of %d VM(s) requested (request %s): %s",
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
                found.append(to_instance(item, CLUSTER_TAG, self._clock, OWNER_TAG))
        return tuple(found)

    def terminate(self, instance_ids: Sequence[str]) -> None:
        """Terminate those of ``instance_ids`` that carry our cluster tag and no other owner's;
        idempotent.

        Per batch of up to 1000 ids: one DescribeInstances (ids + tag filter) to verify, one
        TerminateInstances for the live ones.  Ids that are not ours, or unknown to the cloud,
        are skipped with a warning; ids already terminated are skipped silently.
        """
        ids = list(dict.fromkeys(i for i in instance_ids if i))
        for batch in chunks(ids, self._batch_size):
            states = self._states_of_ours(batch)
            refused = [i for i in batch if i not in states]
            if refused:
                log.warning("not terminating %s: not tagged %s=%s, or another elastiq's "
                            "(%s), or long gone", " ".join(refused), CLUSTER_TAG, self._cluster,
                            OWNER_TAG)
            alive = [i for i in batch if states.get(i) not in (None, "terminated")]
            if alive:
                self._terminate_ours(alive)

    # ------------------------------------------------------------------------- extras

    def describe_flavours(self, names: Sequence[str]) -> Optional[Dict[str, Tuple[int, int]]]:
        """``name -> (cpus, memory_mb)`` of these instance types, in one DescribeInstanceTypes;
        NOT_SUPPORTED (None) when the cloud has no such call (OpenStack's EC2 API).  A name the
        cloud does not know: ConfigError naming its entry, ``ec2.flavour[i]`` (``ec2.flavour``
        for a single one)."""
        names = list(dict.fromkeys(names))
        if not names:
            return {}
        try:
            with self._boundary("DescribeInstanceTypes", passthrough=not_implemented):
                types = self._client.describe_instance_types(
                    InstanceTypes=names).get("InstanceTypes") or []
        except bce.ClientError:
            return NOT_SUPPORTED
        except ConfigError:  # one of them is unknown: which one?
            if len(names) == 1:
                types = []
            else:
                return {k: v for name in names
                        for k, v in (self.describe_flavours([name]) or {}).items()}
        shapes = {}
        for item in types:
            cpus = (item.get("VCpuInfo") or {}).get("DefaultVCpus")
            memory = (item.get("MemoryInfo") or {}).get("SizeInMiB")
            if cpus and memory:
                shapes[item.get("InstanceType")] = (int(cpus), int(memory))
        known = {item.get("InstanceType") for item in types}
        for name in names:
            if name not in known:
                key = flavour_list.key_named("ec2", self._ec2.flavour, name)
                raise ConfigError(f"unknown instance type {name!r}: the cloud does not know it",
                                  key=key)
        return shapes

    def check_settings(self) -> List[SettingCheck]:
        """See :meth:`base.Cloud.check_settings` (:func:`.settings.check`)."""
        return ec2_settings.check(self._ec2, self._client, self._boundary, self.describe_flavours)

    # ------------------------------------------------------------------------- helpers

    def _tag_late(self, ids: List[str]) -> None:
        """Tag instances the cloud launched without confirming our tags; if that fails,
        terminate them (they are ours: ids from our own RunInstances) rather than orphan them."""
        log.warning("the cloud did not confirm the tags of %d new instance(s): tagging them",
                    len(ids))
        try:
            for chunk in chunks(ids, self._batch_size):
                with self._boundary("CreateTags"):
                    self._client.create_tags(Resources=chunk,
                                             Tags=cluster_tags(self._cluster, self.owner))
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
        """EC2 state name of each id that carries our tag and no other owner's (ids not ours
        are absent)."""
        try:
            with self._boundary("DescribeInstances", passthrough=ids_gone):
                items = list(self._describe(InstanceIds=ids, Filters=[tag_filter(self._cluster)]))
        except bce.ClientError:  # some ids unknown to the cloud: a filter on ids ignores them
            with self._boundary("DescribeInstances"):
                items = [item for chunk in chunks(ids, MAX_FILTER_VALUES)
                         for item in self._describe(
                             Filters=[tag_filter(self._cluster),
                                      {"Name": "instance-id", "Values": chunk}],
                             PaginationConfig={"PageSize": self._page_size})]
        return {item["InstanceId"]: item["State"]["Name"] for item in items
                if self.owner is None or tag_value(item, OWNER_TAG) in (None, self.owner)}

    def _terminate_ours(self, ids: List[str]) -> None:
        log.debug("terminating %d instance(s): %s", len(ids), " ".join(ids))
        try:
            with self._boundary("TerminateInstances", passthrough=ids_gone):
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
        return translate(err, operation, self._client, self._secrets)
