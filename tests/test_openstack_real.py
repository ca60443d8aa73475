"""openstacksdk against a real Nova (Zed, fake compute driver) on loopback.

The cloud (tests/support/openstack_fixtures.py) starts once per session, as root on a Debian 12
host provisioned by .ci/provision-openstack.sh; the tests skip elsewhere, and fail when
ELASTIQ_REQUIRE_OPENSTACK=1. Each test removes the servers it made.
"""
from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.timeout(900)


def _wait_gone(conn, server_ids, timeout=120):
    from openstack.compute.v2.server import Server

    for server_id in server_ids:
        conn.compute.delete_server(server_id, ignore_missing=True)
    for server_id in server_ids:
        conn.compute.wait_for_delete(Server.new(id=server_id), wait=timeout)


def test_three_servers_in_one_call_tagged_listed_active_deleted(openstack_cloud, record_property):
    conn, flavor, image = openstack_cloud.conn, openstack_cloud.flavor, openstack_cloud.image
    tag = f"elastiq-cluster-{uuid.uuid4().hex[:8]}"
    foreign = conn.compute.create_server(name="foreign", flavor_id=flavor.id, image_id=image.id,
                                         networks="none")
    t0 = time.monotonic()
    first = conn.compute.create_server(
        name="elastiq-worker", flavor_id=flavor.id, image_id=image.id, networks="none",
        min_count=3, max_count=3, tags=[tag], metadata={"elastiq-cluster": tag})
    created = time.monotonic() - t0
    ours = list(conn.compute.servers(tags=tag))
    ids = sorted(s.id for s in ours)
    try:
        assert first.id in ids and len(ids) == 3, ids
        assert foreign.id not in ids
        for server in ours:
            server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
            assert server.status == "ACTIVE"
            assert tag in server.tags and server.metadata == {"elastiq-cluster": tag}
        active = time.monotonic() - t0
    finally:
        t1 = time.monotonic()
        _wait_gone(conn, ids + [foreign.id])
        deleted = time.monotonic() - t1
    assert [s.id for s in conn.compute.servers(tags=tag) if s.status != "DELETED"] == []
    record_property("create_s", round(created, 2))
    record_property("active_s", round(active, 2))
    record_property("delete_s", round(deleted, 2))
    print(f"3 servers: create {created:.2f} s, ACTIVE {active:.2f} s, deleted {deleted:.2f} s")


def test_server_without_a_valid_host_goes_error(openstack_cloud):
    conn, image = openstack_cloud.conn, openstack_cloud.image
    huge = conn.compute.create_flavor(name=f"huge-{uuid.uuid4().hex[:6]}", ram=10 ** 8,
                                      vcpus=1, disk=1)
    server = conn.compute.create_server(name="too-big", flavor_id=huge.id, image_id=image.id,
                                        networks="none")
    try:
        server = conn.compute.wait_for_server(server, status="ERROR", failures=[], wait=120)
        assert server.status == "ERROR"
        assert "No valid host" in (server.fault or {}).get("message", ""), server.fault
    finally:
        _wait_gone(conn, [server.id])
        conn.compute.delete_flavor(huge)


def test_admin_forces_an_active_server_into_error(openstack_cloud):
    conn, flavor, image = openstack_cloud.conn, openstack_cloud.flavor, openstack_cloud.image
    server = conn.compute.create_server(name="forced", flavor_id=flavor.id, image_id=image.id,
                                        networks="none")
    try:
        conn.compute.wait_for_server(server, status="ACTIVE", wait=120)
        conn.compute.reset_server_state(server, "error")
        assert conn.compute.get_server(server.id).status == "ERROR"
    finally:
        _wait_gone(conn, [server.id])


def test_quota_exceeded_is_refused_before_any_server(openstack_cloud):
    import openstack.exceptions

    conn, flavor, image = openstack_cloud.conn, openstack_cloud.flavor, openstack_cloud.image
    project = conn.current_project_id
    tag = f"quota-{uuid.uuid4().hex[:8]}"
    conn.set_compute_quotas(project, instances=2)
    try:
        with pytest.raises(openstack.exceptions.HttpException) as refused:
            conn.compute.create_server(name="over", flavor_id=flavor.id, image_id=image.id,
                                       networks="none", min_count=3, max_count=3, tags=[tag])
    finally:
        conn.set_compute_quotas(project, instances=-1)
    assert refused.value.status_code == 403
    assert "Quota exceeded" in str(refused.value)
    assert list(conn.compute.servers(tags=tag)) == []
