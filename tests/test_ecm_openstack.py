"""``ecm --cloud openstack``: the master's elastiq.yaml for OpenStack (rendered, then loaded and
checked by elastiq's own configuration code), and the wizard against a real Nova (the session's
test cloud of tests/support/openstack_fixtures.py: skipped like the other OpenStack tests)."""
from __future__ import annotations

import base64
import contextlib
import os
import shlex
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ecm import render
from elastiq import __version__ as OWN_VERSION
from elastiq import config as elastiq_config

ROOT = Path(__file__).resolve().parent.parent
ECM = str(ROOT / "ecm.py")
IMAGE = "3f1c2a8e-6b0e-4d8f-9c55-1b2a3c4d5e6f"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GIT = f"git+https://git.example.org/elastiq.git@{COMMIT}"


def answers(**changes) -> render.Answers:
    base = render.Answers(
        os_id="almalinux9", image_id=IMAGE, cluster_name="physics-os", flavour="m1.large",
        min_vms=0, max_vms=4, jobs_per_vm=2, idle_time_s=900, key_name="lab",
        signing_key="k" * 64, api_url="https://keystone.example.org:5000/v3", region="RegionOne",
        cloud="openstack", networks=("private",), security_groups=("workers",))
    return replace(base, **changes)


def embedded_config(text: str) -> dict:
    start = text.index("<<'ELASTIQ_YAML'\n") + len("<<'ELASTIQ_YAML'\n")
    return yaml.safe_load(text[start:text.index("\nELASTIQ_YAML\n")])


def checked(data: dict) -> elastiq_config.Config:
    """``data`` through elastiq's loader and ``config check``'s validation: no problem."""
    cfg = elastiq_config.from_dict(data, "elastiq.yaml")
    assert list(elastiq_config.problems(cfg)) == []
    return cfg


def test_embedded_application_credential_loads_as_the_openstack_section(tmp_path):
    a = answers(access_key="app-cred-id", secret_key="app-cred-secret-xyz")
    path = tmp_path / "elastiq.yaml"
    path.write_text(render.elastiq_yaml(a))
    cfg = elastiq_config.load(str(path))
    assert list(elastiq_config.problems(cfg)) == []
    assert cfg.elastiq.cloud_plugin == "openstack"
    s = cfg.cloud
    assert (s.auth_url, s.region, s.application_credential_id, s.application_credential_secret) \
        == (a.api_url, "RegionOne", "app-cred-id", "app-cred-secret-xyz")
    assert (s.cloud, s.image, s.flavour, s.key_name) == (None, IMAGE, "m1.large", "lab")
    assert (s.networks, s.security_groups) == (("private",), ("workers",))
    worker = base64.b64decode(s.user_data_b64).decode()
    assert "/openstack/latest/meta_data.json" in worker  # workers advertise the Nova UUID
    assert "ec2" not in elastiq_config.to_dict(cfg)


def test_without_embedding_the_master_names_the_clouds_yaml_entry():
    data = render.elastiq_config(answers(os_cloud="physics", networks=()))
    section = data["openstack"]
    assert section["cloud"] == "physics" and "networks" not in section
    assert not {"auth_url", "application_credential_id", "application_credential_secret"} \
        & set(section)
    assert checked(data).cloud.cloud == "physics"


@pytest.mark.parametrize("source, installed", [
    (f"elastiq=={OWN_VERSION}", f"elastiq[openstack]=={OWN_VERSION}"),
    (GIT, f"elastiq[openstack] @ {GIT}"),
    (f"{GIT}#egg=elastiq", f"elastiq[openstack] @ {GIT}"),
    (f"elastiq @ https://s3.example.org/b/elastiq.whl#sha256={'a' * 64}",
     f"elastiq[openstack] @ https://s3.example.org/b/elastiq.whl#sha256={'a' * 64}"),
])
def test_the_master_installs_elastiq_with_the_openstack_extra(source, installed):
    text = render.render_master(answers(elastiq_source=source))
    assert f"ELASTIQ_SOURCE={shlex.quote(installed)}\n" in text
    ec2 = render.render_master(answers(elastiq_source=source, cloud="ec2"))
    assert f"ELASTIQ_SOURCE={shlex.quote(source)}\n" in ec2 and "[openstack]" not in ec2


def test_ec2_rendering_is_unchanged_by_the_cloud_field():
    data = render.elastiq_config(answers(cloud="ec2", networks=()))
    assert data["elastiq"]["cloud_plugin"] == "ec2" and "openstack" not in data
    assert data["ec2"]["image_id"] == IMAGE


# ----------------------------------------------------------------------------- real Nova

CONF = "FLAVOR_VMS={flavour}\nMAX_VMS=3\nMIN_VMS=0\nJOBS_PER_VM=1\nIDLE_TIME=600\nKEY_NAME={key}\n"


def _public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


def _ecm(cwd: Path, clouds_yaml: str, entry: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8",
           "OS_CLOUD": entry, "OS_CLIENT_CONFIG_FILE": clouds_yaml}
    return subprocess.run([sys.executable, ECM, "--cloud", "openstack", *args], cwd=str(cwd),
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.timeout(900)
def test_wizard_on_a_real_nova_lists_checks_and_writes_an_openstack_master(
        openstack_cloud, tmp_path, monkeypatch):
    """The wizard, non-interactively: refusals (unknown network, a password to embed), then a
    master with an application credential; the listing through the same connection."""
    conn = openstack_cloud.conn
    suffix = uuid.uuid4().hex[:6]
    secret = f"ecm-app-secret-{uuid.uuid4().hex}"
    with contextlib.ExitStack() as made:
        keypair = conn.compute.create_keypair(name=f"ecm-key-{suffix}", public_key=_public_key())
        made.callback(conn.compute.delete_keypair, keypair, ignore_missing=True)
        network = conn.network.create_network(  # the test cloud has flat networks only
            name=f"ecm-net-{suffix}", provider_network_type="flat",
            provider_physical_network=f"ecm-{suffix}")
        made.callback(conn.network.delete_network, network, ignore_missing=True)
        credential = conn.identity.create_application_credential(
            user=conn.current_user_id, name=f"ecm-{suffix}", secret=secret)
        made.callback(conn.identity.delete_application_credential, conn.current_user_id,
                      credential, ignore_missing=True)
        _wizard_on(openstack_cloud, tmp_path, monkeypatch, keypair, network, credential, secret)


def _wizard_on(openstack_cloud, tmp_path, monkeypatch, keypair, network, credential, secret):
    from ecm import clouds
    flavor, image = openstack_cloud.flavor, openstack_cloud.image
    entry = openstack_cloud.document()["clouds"]["elastiq-test"]
    app = {"auth_type": "v3applicationcredential", "region_name": entry.get("region_name"),
           "auth": {"auth_url": entry["auth"]["auth_url"],
                    "application_credential_id": credential.id,
                    "application_credential_secret": secret}}
    clouds_yaml = tmp_path / "clouds.yaml"
    clouds_yaml.write_text(yaml.safe_dump({"clouds": {"elastiq-test": entry, "ecm-app": app}}))
    (tmp_path / "ecm.conf").write_text(CONF.format(flavour=flavor.name, key=keypair.name))
    # listing, through the adapter's connection (the application credential)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds_yaml))
    cloud = clouds.connect("openstack", environ={"OS_CLOUD": "ecm-app"})
    cloud.check()
    assert (image.id, image.name) in [(i.image_id, i.name) for i in cloud.list_images()]
    assert flavor.name in cloud.list_flavours()
    assert cloud.flavour_shapes(flavor.name)[flavor.name] == (flavor.vcpus, flavor.ram)
    assert cloud.has_key_pair(keypair.name) and not cloud.has_key_pair("no-such-key")
    assert cloud.has_network(network.name) and not cloud.has_network("no-such-net")

    common = ("--yes", "--os", "debian12", "--image", image.name, "--cluster-name", "os-1",
              "--network", network.name, "--elastiq-source", GIT)
    unknown = _ecm(tmp_path, str(clouds_yaml), "ecm-app", *common, "--network", "nope",
                   "--output", "bad.ud")
    assert unknown.returncode == 2 and "--network nope: no such network" in unknown.stderr
    password = _ecm(tmp_path, str(clouds_yaml), "elastiq-test", *common,
                    "--embed-credentials", "--output", "pw.ud")
    assert password.returncode == 2 and "only an application credential" in password.stderr
    assert not (tmp_path / "pw.ud").exists() and not (tmp_path / "bad.ud").exists()

    result = _ecm(tmp_path, str(clouds_yaml), "ecm-app", *common, "--embed-credentials",
                  "--output", "master.ud")
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert "aws ec2" not in result.stdout and "openstack server create" in result.stdout
    text = (tmp_path / "master.ud").read_text()
    assert f"ELASTIQ_SOURCE='elastiq[openstack] @ {GIT}'" in text
    cfg = checked(embedded_config(text))
    s = cfg.cloud
    assert cfg.elastiq.cloud_plugin == "openstack"
    assert (s.image, s.flavour, s.key_name, s.networks) == (
        image.id, flavor.name, keypair.name, (network.name,))
    assert (s.auth_url, s.application_credential_id, s.application_credential_secret) == (
        app["auth"]["auth_url"], credential.id, secret)
    assert "/openstack/latest/meta_data.json" in base64.b64decode(s.user_data_b64).decode()
