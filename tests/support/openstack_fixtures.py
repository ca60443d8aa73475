"""pytest fixtures for the real OpenStack test cloud (tests/support/openstack_cloud.py): one
cloud per session, and elastiq configurations pointing at it.

Loaded through ``pytest_plugins`` in ``tests/conftest.py``.  The cloud starts (2-3 min) as root
on a Debian 12 host provisioned by .ci/provision-openstack.sh, when ELASTIQ_TEST_OPENSTACK=1
or ELASTIQ_REQUIRE_OPENSTACK=1 (then a cloud that cannot run fails instead of skipping).
``ELASTIQ_TEST_OPENSTACK_ROOT=<dir>`` uses a cloud already running under ``dir`` (its
``clouds.yaml`` and ``pids/``) instead of starting one: for working on the tests.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from elastiq import config
from elastiq.adapters.openstack.config import Settings

CLOUD = "elastiq-test"


@dataclasses.dataclass
class TestCloud:
    conn: Any  # openstacksdk Connection of the cloud's admin
    flavor: Any
    image: Any
    root: Path  # pids/<service> and clouds.yaml

    __test__ = False

    @property
    def clouds_yaml(self) -> str:
        return str(self.root / "clouds.yaml")

    def document(self) -> dict:
        return yaml.safe_load(Path(self.clouds_yaml).read_text())

    def write_clouds(self, path: Path, **changes: Any) -> str:
        """A clouds.yaml at ``path``: the admin's entry with ``changes`` (``auth`` merged)."""
        doc = self.document()
        entry = doc["clouds"][CLOUD]
        entry["auth"].update(changes.pop("auth", {}))
        entry.update(changes)
        path.write_text(yaml.safe_dump(doc))
        return str(path)

    def config(self, cluster: str, substitute=None, elastiq=None, **section: Any) -> config.Config:
        """An elastiq Config for ``cluster`` on this cloud; ``section`` overrides Settings."""
        values = dict(cloud=CLOUD, clouds_yaml=self.clouds_yaml, image=self.image.name,
                      flavour=self.flavor.name, networks=("none",))
        values.update(section)
        return config.Config(
            elastiq=config.ElastiqSection(cluster_name=cluster, cloud_plugin="openstack",
                                          **(elastiq or {})),
            cloud=Settings(**values), substitute=substitute or {})

    @contextlib.contextmanager
    def paused(self, service: str) -> Iterator[None]:
        """SIGSTOP the process group of ``service`` (e.g. nova-conductor), SIGCONT after."""
        pid = int((self.root / "pids" / service).read_text())
        os.killpg(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(pid, signal.SIGCONT)


@pytest.fixture(scope="session")
def openstack_cloud(tmp_path_factory) -> Iterator[TestCloud]:
    """A running private OpenStack cloud (see the module docstring), seeded with a flavour and
    an image."""
    from tests.support import openstack_cloud as oc

    required = os.environ.get("ELASTIQ_REQUIRE_OPENSTACK") == "1"
    reason = oc.unavailable_reason()
    if not reason and os.environ.get("ELASTIQ_TEST_OPENSTACK") != "1" and not required:
        reason = ("the real OpenStack tests (a cloud start-up of 2-3 min) run with "
                  "ELASTIQ_TEST_OPENSTACK=1 (.ci/run sets ELASTIQ_REQUIRE_OPENSTACK=1)")
    if reason:
        if required:
            pytest.fail(f"ELASTIQ_REQUIRE_OPENSTACK=1 but {reason}")
        pytest.skip(reason)
    import openstack

    running = os.environ.get("ELASTIQ_TEST_OPENSTACK_ROOT")
    cloud = None
    if running:
        root = Path(running)
        conn = openstack.connect(**yaml.safe_load((root / "clouds.yaml").read_text())
                                 ["clouds"][CLOUD])
    else:
        root = tmp_path_factory.mktemp("openstack")
        cloud = oc.OpenStackCloud(root)
    try:
        if cloud is not None:
            document = cloud.start()
            (root / "clouds.yaml").write_text(yaml.safe_dump(document))
            conn = openstack.connect(**document["clouds"][CLOUD])
            cloud.seed(conn)
            print(f"openstack test cloud started: {cloud.timings}")
        yield TestCloud(conn, conn.compute.find_flavor(oc.FLAVOR, ignore_missing=False),
                        conn.image.find_image(oc.IMAGE, ignore_missing=False), root)
        conn.close()
    finally:
        if cloud is not None:
            cloud.stop()
