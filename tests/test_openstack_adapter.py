"""elastiq's OpenStack adapter against the real Nova of the test cloud
(tests/support/openstack_fixtures.py; skipped unless ELASTIQ_TEST_OPENSTACK=1, as root on a
provisioned Debian 12).  Each test uses its own cluster name and removes what it made.
"""
from __future__ import annotations

import time
import uuid

import pytest

from elastiq import flavours as flavour_list
from elastiq.adapters.base import AuthError, ConfigError, QuotaError, TransientError
from elastiq.adapters.openstack.cloud import OpenStackCloud
from elastiq.model import InstanceState
from tests.support.net import free_port
from tests.support.openstack_proxy import NovaFaultProxy
from tests.support.ports import check_cloud

pytestmark = pytest.mark.timeout(900)


def _cluster(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _states(cloud):
    return {i.id: i.state for i in cloud.list_instances()}


def _wait(what, check, timeout=120):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {timeout} s"
        time.sleep(0.5)


def _cleanup(conn, ids):
    from openstack.compute.v2.server import Server

    for server_id in ids:
        conn.compute.delete_server(server_id, ignore_missing=True)
    for server_id in ids:
        conn.compute.wait_for_delete(Server.new(id=server_id), wait=120)


def test_launch_list_terminate_ours_only(openstack_cloud):
    oc, conn = openstack_cloud, openstack_cloud.conn
    cluster = _cluster()
    cloud = OpenStackCloud(oc.config(cluster, user_data_b64="IyEvYmluL3NoCnRydWUK"))
    foreign = conn.compute.create_server(name="foreign", flavor_id=oc.flavor.id,
                                         image_id=oc.image.id, networks="none")
    neighbour = OpenStackCloud(oc.config(_cluster("neighbour")))
    theirs = neighbour.launch(1)
    ids = ()
    try:
        ids = cloud.launch(3)
        assert len(ids) == 3
        servers = [conn.compute.get_server(i) for i in ids]
        # one create: Nova gives one reservation to the servers of one request
        assert len({s.reservation_id for s in servers}) == 1
        assert all(s.tags == [f"elastiq:{cluster}"] for s in servers)
        assert all(s.metadata["elastiq:cluster"] == cluster for s in servers)
        listed = cloud.list_instances()
        assert sorted(i.id for i in listed) == sorted(ids)
        assert {i.cluster for i in listed} == {cluster}
        assert {i.instance_type for i in listed} == {oc.flavor.name}
        assert all(abs(i.launched_at - time.time()) < 120 for i in listed)
        _wait("ACTIVE", lambda: set(_states(cloud).values()) == {InstanceState.RUNNING})

        cloud.terminate([foreign.id, *theirs])  # not ours: refused
        assert conn.compute.get_server(foreign.id).status == "ACTIVE"
        assert conn.compute.get_server(theirs[0]).task_state != "deleting"

        cloud.terminate(list(ids))
        states = _states(cloud)
        assert set(states.values()) <= {InstanceState.SHUTTING_DOWN, InstanceState.GONE}, states
        cloud.terminate(list(ids))  # idempotent, while deleting and once gone
        _wait("gone", lambda: not _states(cloud))
        cloud.terminate(list(ids))
        assert conn.compute.get_server(foreign.id).status == "ACTIVE"
        assert [i.id for i in neighbour.list_instances()] == list(theirs)
    finally:
        _cleanup(conn, [*ids, *theirs, foreign.id])


def test_flavour_shape_and_unknown_settings_name_their_key(openstack_cloud):
    oc = openstack_cloud
    cluster = _cluster()
    settings = oc.config(cluster)
    name = flavour_list.first_name(settings.cloud.flavour)
    assert OpenStackCloud(settings).describe_flavours([name]) == {name: (1, 64)}
    with pytest.raises(ConfigError) as refused:
        OpenStackCloud(oc.config(cluster, flavour="m9.huge")).describe_flavours(["m9.huge"])
    assert refused.value.key == "openstack.flavour"
    # found missing before the create
    for key, value in (("flavour", "m9.huge"), ("image", "no-such-image"),
                       ("networks", ("no-such-net",))):
        with pytest.raises(ConfigError) as refused:
            OpenStackCloud(oc.config(cluster, **{key: value})).launch(1)
        assert refused.value.key == f"openstack.{key}", refused.value
    # what Nova itself refuses at create time, translated
    for key, value in (("key_name", "no-such-key"), ("security_groups", ("no-such-sg",))):
        with pytest.raises(ConfigError) as refused:
            OpenStackCloud(oc.config(cluster, **{key: value})).launch(1)
        assert refused.value.key == f"openstack.{key}", refused.value
    assert list(oc.conn.network.networks()) == []  # so Nova cannot pick one
    with pytest.raises(ConfigError) as refused:
        _cleanup(oc.conn, OpenStackCloud(oc.config(cluster, networks=("auto",))).launch(1))
    assert refused.value.key == "openstack.networks"
    assert OpenStackCloud(oc.config(cluster)).list_instances() == ()


def test_quota_grants_what_it_can_then_refuses(openstack_cloud):
    oc, conn = openstack_cloud, openstack_cloud.conn
    cloud = OpenStackCloud(oc.config(_cluster()))
    project = conn.current_project_id
    used = len([s for s in conn.compute.servers(all_projects=False)])
    conn.set_compute_quotas(project, instances=used + 2)
    ids = ()
    try:
        ids = cloud.launch(5)
        assert len(ids) == 2  # min_count=1, max_count=5: what the quota allows
        with pytest.raises(QuotaError) as refused:
            cloud.launch(1)
        assert "Quota exceeded" in str(refused.value)
    finally:
        conn.set_compute_quotas(project, instances=-1)
        _cleanup(conn, ids)
    assert len(_states(cloud)) == 0


def test_credentials_and_endpoints(openstack_cloud, tmp_path):
    oc = openstack_cloud
    cluster = _cluster()
    wrong = oc.write_clouds(tmp_path / "wrong.yaml", auth={"password": "not-the-password-1"})
    cloud = OpenStackCloud(oc.config(cluster, clouds_yaml=wrong))
    with pytest.raises(AuthError) as refused:
        cloud.list_instances()
    assert "not-the-password-1" not in str(refused.value)
    with pytest.raises(ConfigError) as unknown:
        OpenStackCloud(oc.config(cluster, cloud="no-such-cloud"))
    assert unknown.value.key == "openstack.cloud"
    closed = oc.write_clouds(tmp_path / "closed.yaml",
                             auth={"auth_url": f"http://127.0.0.1:{free_port()}/v3"})
    with pytest.raises(TransientError):
        OpenStackCloud(oc.config(cluster, clouds_yaml=closed), read_timeout=5).list_instances()


def _behind_proxy(oc, tmp_path, cluster, proxy):
    nova = oc.conn.compute.get_endpoint()
    path = oc.write_clouds(tmp_path / "proxied.yaml",
                           compute_endpoint_override=proxy.url + "/v2.1")
    assert nova.endswith("/v2.1")
    return OpenStackCloud(oc.config(cluster, clouds_yaml=path), read_timeout=4)


def test_nova_500s_and_lost_answers(openstack_cloud, tmp_path):
    oc, conn = openstack_cloud, openstack_cloud.conn
    upstream = conn.compute.get_endpoint().rsplit("/v2.1", 1)[0]
    cluster = _cluster()
    with NovaFaultProxy(upstream, hold_s=6) as proxy:
        cloud = _behind_proxy(oc, tmp_path, cluster, proxy)
        ids = ()
        try:
            proxy.inject("500", action="GET /servers/detail")
            with pytest.raises(TransientError):
                cloud.list_instances()
            proxy.inject("500", action="POST /servers")
            with pytest.raises(TransientError):
                cloud.launch(2)
            assert _states(cloud) == {}  # Nova did nothing
            # Nova made the servers, the answer was lost: found by the request id, kept
            proxy.inject("500-after", action="POST /servers")
            ids = cloud.launch(2)
            assert len(ids) == 2 and sorted(_states(cloud)) == sorted(ids)
            proxy.inject("timeout-after", action="POST /servers")
            more = cloud.launch(1, request_id="retry-" + uuid.uuid4().hex)
            ids = (*ids, *more)
            assert len(more) == 1 and len(_states(cloud)) == 3
            # a whole launch retried with the same request id makes nothing new
            request = "again-" + uuid.uuid4().hex
            first = cloud.launch(1, request_id=request)
            ids = (*ids, *first)
            assert cloud.launch(1, request_id=request) == first and len(_states(cloud)) == 4
            # created, but its servers cannot be listed: the first is known, the other is
            # ours by its tag (the next listing shows it, the daemon adopts it)
            proxy.inject("500", action="GET /servers/detail")
            partial = cloud.launch(2)
            ids = (*ids, *[i for i in _states(cloud) if i not in ids])
            assert len(partial) == 1 and len(_states(cloud)) == 6
            posts = [f for a, f in proxy.seen if a == "POST /servers"]
            assert posts == ["500", "500-after", "timeout-after", "pass", "pass"], proxy.seen
            proxy.inject("500", action="DELETE /servers/*")
            with pytest.raises(TransientError):
                cloud.terminate(list(ids))
            cloud.terminate(list(ids))  # the rest of the first attempt went through
            _wait("gone", lambda: not _states(cloud))
        finally:
            _cleanup(conn, ids)


def test_stuck_in_build_and_error_are_seen(openstack_cloud):
    oc, conn = openstack_cloud, openstack_cloud.conn
    cloud = OpenStackCloud(oc.config(_cluster()))
    ids = ()
    try:
        with oc.paused("nova-conductor"):  # nothing schedules: BUILD until deleted
            ids = cloud.launch(2)
            time.sleep(3)
            assert set(_states(cloud).values()) == {InstanceState.BOOTING}
            cloud.terminate([ids[0]])
            _wait("the BUILD server deleted", lambda: ids[0] not in _states(cloud), 60)
        _wait("ACTIVE", lambda: _states(cloud).get(ids[1]) == InstanceState.RUNNING)
        conn.compute.reset_server_state(ids[1], "error")
        assert _states(cloud) == {ids[1]: InstanceState.ERROR}
        cloud.terminate([ids[1]])
        _wait("gone", lambda: not _states(cloud))
    finally:
        _cleanup(conn, ids)


def test_the_cloud_port_contract(openstack_cloud):
    """The contract every Cloud and test double is held to (tests/support/ports.py)."""
    cluster = _cluster("port")
    cloud = OpenStackCloud(openstack_cloud.config(cluster), owner="ours")
    theirs = OpenStackCloud(openstack_cloud.config(cluster), owner="theirs")
    ids = ()
    try:
        ids = check_cloud(cloud, cluster, catch_up_s=60, other=theirs)
    finally:
        _cleanup(openstack_cloud.conn, ids)
