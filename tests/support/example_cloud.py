"""A small cloud for the tests only: instances kept in a JSON file (``example.state_file``).

Not a product cloud: it proves that a cloud is one adapter module + its configuration module
(:mod:`tests.support.example_cloud_config`) + its tests, with no change to elastiq's core.
Configured as ``elastiq.cloud_plugin: tests.support.example_cloud:ExampleCloud``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Dict, Sequence, Tuple

from elastiq.adapters.base import AuthError, ConfigError, SettingCheck, check_setting
from elastiq.model import Instance, InstanceState

from .example_cloud_config import FLAVOURS, Settings

log = logging.getLogger(__name__)


class ExampleCloud:
    def __init__(self, config, clock=time.time):
        self.settings: Settings = config.cloud
        self._cluster, self._clock = config.elastiq.cluster_name, clock
        if not self.settings.state_file:
            raise ConfigError("set example.state_file", key="example.state_file")
        self.calls = 0

    def _load(self) -> Dict[str, dict]:
        if not os.path.exists(self.settings.state_file):
            return {}
        with open(self.settings.state_file, encoding="utf-8") as handle:
            return json.load(handle)

    def _save(self, instances: Dict[str, dict]) -> None:
        with open(self.settings.state_file, "w", encoding="utf-8") as handle:
            json.dump(instances, handle)

    def _call(self) -> None:
        """One API call; like a chatty SDK, it echoes the token it sends into a warning, which
        the daemon's log redaction must mask."""
        self.calls += 1
        if self.settings.api_token == "expired":
            raise AuthError("the example API refused the token")
        log.warning("example API request: Authorization: Bearer %s", self.settings.api_token)

    def launch(self, count: int, *, flavour=None, request_id=None) -> Tuple[str, ...]:
        instances = self._load()
        ids = []
        for _ in range(0, count, self.settings.max_per_call):
            self._call()
            for _ in range(min(self.settings.max_per_call, count - len(ids))):
                name = f"ex-{len(instances) + 1}"
                instances[name] = {"cluster": self._cluster, "state": "booting",
                                   "at": self._clock()}
                ids.append(name)
        self._save(instances)
        return tuple(ids)

    def list_instances(self) -> Tuple[Instance, ...]:
        self._call()
        return tuple(Instance(id=name, state=InstanceState(item["state"]), launched_at=item["at"],
                              cluster=item["cluster"], instance_type=self.settings.flavour)
                     for name, item in self._load().items() if item["cluster"] == self._cluster)

    def terminate(self, instance_ids: Sequence[str]) -> None:
        self._call()
        instances = self._load()
        for name in instance_ids:
            if name in instances and instances[name]["cluster"] == self._cluster:
                instances[name]["state"] = "gone"
        self._save(instances)

    def describe_flavours(self, names: Sequence[str]) -> Dict[str, Tuple[int, int]]:
        return {name: FLAVOURS[name] for name in names if name in FLAVOURS}

    def check_settings(self) -> Sequence[SettingCheck]:
        def shape() -> str:
            self._call()
            if self.settings.flavour not in FLAVOURS:
                raise ConfigError(f"no flavour {self.settings.flavour!r}", key="example.flavour")
            return "%d cpu(s), %d MiB" % FLAVOURS[self.settings.flavour]
        return [check_setting("example.flavour", self.settings.flavour, shape)]
