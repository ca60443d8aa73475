"""The OpenStack adapter's pure parts and its configuration section, without a cloud: Nova
statuses, Nova's error answers (texts as the Zed test cloud gives them), the cluster tag, the
``openstack`` section, and what the adapter refuses before any call."""
from __future__ import annotations

import base64

import pytest

from elastiq import config
from elastiq.adapters.openstack import config as openstack_config
from elastiq.adapters.base import AuthError, ConfigError, FatalError, QuotaError, TransientError
from elastiq.adapters.openstack.translate import (STATES, cluster_tag, error_from_status,
                                                  state_of, to_instance)
from elastiq.model import InstanceState
from elastiq.runtime import logs

S = InstanceState


@pytest.mark.parametrize("status,task,expected", [
    ("BUILD", "scheduling", S.BOOTING), ("BUILD", None, S.BOOTING), ("ACTIVE", None, S.RUNNING),
    ("ERROR", None, S.ERROR), ("SHUTOFF", None, S.ERROR), ("DELETED", None, S.GONE),
    ("SOFT_DELETED", None, S.GONE), ("ACTIVE", "deleting", S.SHUTTING_DOWN),
    ("ERROR", "deleting", S.SHUTTING_DOWN), ("BUILD", "deleting", S.SHUTTING_DOWN),
    ("DELETED", "deleting", S.GONE), ("REBOOT", "rebooting", S.RUNNING),
    ("SHELVED_OFFLOADED", None, S.ERROR), ("SOMETHING_NEW", None, S.ERROR), (None, None, S.ERROR),
])
def test_nova_status_to_state(status, task, expected):
    assert state_of(status, task) == expected


def test_every_alive_state_is_reachable_from_nova():
    assert set(STATES.values()) == {S.BOOTING, S.RUNNING, S.ERROR, S.GONE}


@pytest.mark.parametrize("status,message,kind,key", [
    (403, "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances",
     QuotaError, None),
    (413, "Quota exceeded for cores", QuotaError, None),
    (400, "Can not find requested image", ConfigError, "openstack.image"),
    (400, "Flavor nope could not be found.", ConfigError, "openstack.flavour"),
    (400, "Invalid key_name provided.", ConfigError, "openstack.key_name"),
    (400, "Network 0c0ffee0 could not be found.", ConfigError, "openstack.networks"),
    (400, "Unable to find security_group with name or id 'nosg'", ConfigError,
     "openstack.security_groups"),
    (400, "Unable to automatically allocate a network for project 1a3d", ConfigError,
     "openstack.networks"),
    (400, "User data too large. User data must be no larger than 65535 bytes once base64 "
     "encoded.", ConfigError, "openstack.user_data_b64"),
    (401, "The request you have made requires authentication.", AuthError, None),
    (403, "Policy doesn't allow os_compute_api:servers:create to be performed.", AuthError, None),
    (500, "Unexpected API Error.", TransientError, None),
    (503, "Service Unavailable", TransientError, None),
    (409, "Cannot 'delete' instance while it is in task_state deleting", TransientError, None),
    (429, "Rate limit exceeded", TransientError, None),
    (405, "Method not allowed", FatalError, None),
])
def test_nova_errors_become_domain_errors(status, message, kind, key):
    err = error_from_status(status, message, "create servers")
    assert type(err) is kind, err
    assert getattr(err, "key", None) == key


def test_error_messages_hide_secrets():
    err = error_from_status(400, "bad request carrying s3cret-value-123 back", "x",
                            ["s3cret-value-123"])
    assert "s3cret-value-123" not in str(err) and "***" in str(err)


def test_cluster_tag_fits_nova():
    assert cluster_tag("physics") == "elastiq:physics"
    for name in ("a" * 64, "with,comma", "with/slash"):
        tag = cluster_tag(name)
        assert len(tag) <= 60 and "," not in tag and "/" not in tag
        assert tag == cluster_tag(name) != cluster_tag(name + "x")


def test_server_to_instance():
    server = {"id": "u1", "status": "ACTIVE", "task_state": None,
              "created_at": "2026-11-29T22:27:25Z", "metadata": {"elastiq:cluster": "c"},
              "addresses": {"net": [{"version": 6, "addr": "fd00::5"},
                                    {"version": 4, "addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed"},
                                    {"version": 4, "addr": "192.0.2.9",
                                     "OS-EXT-IPS:type": "floating"}]},
              "flavor": {"original_name": "m1.large", "vcpus": 4}}
    instance = to_instance(server, clock=lambda: 0.0)
    assert (instance.id, instance.state, instance.cluster) == ("u1", S.RUNNING, "c")
    assert instance.launched_at == 1795991245.0
    assert (instance.private_ip, instance.instance_type) == ("10.0.0.5", "m1.large")
    bare = to_instance({"id": "u2", "status": "BUILD"}, clock=lambda: 42.0)
    assert (bare.launched_at, bare.private_ip, bare.cluster) == (42.0, None, None)


# ----------------------------------------------------------------------------- the section

def _load(section, **elastiq):
    return config.from_dict({"elastiq": {"cloud_plugin": "openstack", **elastiq},
                             "openstack": section}, "test.yaml")


def test_section_loads_and_summarises_without_secrets(tmp_path):
    cfg = _load({"cloud": "mycloud", "image": "alma9", "flavour": "m1.large",
                 "networks": "workers, storage", "application_credential_id": "abc",
                 "application_credential_secret": "super-secret-credential"})
    assert cfg.cloud.networks == ("workers", "storage")
    line = config.summary(cfg)
    assert "m1.large" in line and "mycloud" in line and "super-secret" not in line
    assert "super-secret" not in repr(cfg)
    assert "super-secret-credential" in logs.secrets_of(cfg)
    shown = config.to_dict(cfg, include_secrets=False)["openstack"]
    assert shown["application_credential_secret"] == "***"


@pytest.mark.parametrize("section,key", [
    ({"clouds_yaml": "/nonexistent/clouds.yaml", "cloud": "x"}, "openstack.clouds_yaml"),
    ({"application_credential_id": "abc"}, "openstack.application_credential_secret"),
    ({"application_credential_id": "a", "application_credential_secret": "b"},
     "openstack.auth_url"),
    ({"networks": ["auto", "workers"]}, "openstack.networks"),
    ({"user_data_b64": "not base64!"}, "openstack.user_data_b64"),
    ({"user_data_b64": "IyEK", "user_data_file": "/x"}, "openstack.user_data_file"),
    ({"ca_bundle": "/nonexistent/ca.pem"}, "openstack.ca_bundle"),
    ({"read_timeout_s": 0}, "openstack.read_timeout_s"),
    ({"image_id": "x"}, "openstack.image_id"),  # EC2's word: unknown key
])
def test_section_problems_name_the_key(section, key):
    with pytest.raises(config.InvalidConfig) as bad:
        _load(section)
    assert bad.value.key == key, bad.value
    assert "not base64!" not in str(bad.value)


def test_section_is_checked_only_for_the_openstack_plugin():
    cfg = config.from_dict({"openstack": {"networks": ["auto", "x"]}})
    assert cfg.elastiq.cloud_plugin == "ec2"


def test_secret_texts_cover_the_user_data_lines(tmp_path):
    text = "#!/bin/sh\nTOKEN='eyJhbGciOiJIUzI1NiJ9.payload.signature'\n"
    inline = openstack_config.Settings(user_data_b64=base64.b64encode(text.encode()).decode())
    path = tmp_path / "worker.sh"
    path.write_text(text)
    from_file = openstack_config.Settings(user_data_file=str(path))
    for settings in (inline, from_file):
        assert "TOKEN='eyJhbGciOiJIUzI1NiJ9.payload.signature'" in \
            openstack_config.secret_texts(settings)


def test_adapter_refuses_before_any_call(tmp_path):
    from elastiq.adapters.openstack.cloud import OpenStackCloud

    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  here:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n")
    with pytest.raises(ConfigError) as unknown:
        OpenStackCloud(_load({"cloud": "elsewhere", "clouds_yaml": str(clouds)}))
    assert unknown.value.key == "openstack.cloud"
    big = base64.b64encode(b"#!/bin/sh\n" + b"x" * 60000).decode()
    with pytest.raises(ConfigError) as too_big:
        OpenStackCloud(_load({"cloud": "here", "clouds_yaml": str(clouds), "user_data_b64": big}))
    assert too_big.value.key == "openstack.user_data_b64" and "Nova" in str(too_big.value)
    cloud = OpenStackCloud(_load({"cloud": "here", "clouds_yaml": str(clouds)}))
    assert cloud.describe_flavours([]) == {}  # no flavour set: nothing asked
