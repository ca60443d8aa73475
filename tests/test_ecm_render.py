"""Rendering of the master and worker user-data: valid shell (bash -n, shellcheck) for every OS,
elastiq.yaml that elastiq's own loader accepts, the worker embedded intact, hostile answers kept
literal, and the user-data size limits."""
from __future__ import annotations

import base64
import gzip
import hashlib
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ecm import render
from ecm.oses import OPERATING_SYSTEMS, matching_images
from elastiq import config as elastiq_config
from tests.support import tools

ROOT = Path(__file__).resolve().parent.parent
OS_IDS = sorted(OPERATING_SYSTEMS)
TOKEN = "eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.eyJzdWIiOiJjb25kb3JAYzEifQ.c2lnbmF0dXJl"
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ3bm\n-----END CERTIFICATE-----\n"


def answers(os_id: str = "almalinux9", **changes) -> render.Answers:
    base = render.Answers(
        os_id=os_id, image_id="ami-0123456789abcdef0", cluster_name="physics-2024",
        flavour="m1.large", min_vms=1, max_vms=8, jobs_per_vm=4, idle_time_s=1800,
        key_name="mykey", signing_key="k" * 64, api_url="https://cloud.example.org:8773/",
        region="nova")
    return replace(base, **changes)


VARIANTS = {
    "plain": {},
    "credentials+ca": {"access_key": "AKIAEXAMPLE", "secret_key": "s3cr3t/+key",
                       "ca_bundle_pem": CA, "security_groups": ("workers", "ssh"),
                       "subnet_id": "subnet-1"},
}


def shell_checks(path: Path) -> None:
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    shellcheck = tools.require("shellcheck", tools.SHELLCHECK_HINT)
    lint = subprocess.run([shellcheck, "--shell=bash", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("os_id", OS_IDS)
def test_master_is_valid_shell(tmp_path, os_id, variant):
    text = render.render_master(answers(os_id, **VARIANTS[variant]))
    assert text.startswith("#!/bin/bash\n")
    path = tmp_path / f"master-{os_id}"
    path.write_text(text)
    shell_checks(path)


@pytest.mark.parametrize("os_id", OS_IDS)
def test_worker_is_valid_shell_before_and_after_substitution(tmp_path, os_id):
    text = render.render_worker(answers(os_id))
    assert text.startswith("#!/bin/bash\n")
    assert text.count("%ipv4%") == 1 and text.count("%token%") == 1
    assert set(re.findall(r"%[A-Za-z_][A-Za-z0-9_]*%", text)) == {"%ipv4%", "%token%"}
    for name, body in (("raw", text),
                       ("filled", text.replace("%ipv4%", "10.1.2.3").replace("%token%", TOKEN))):
        path = tmp_path / f"worker-{os_id}-{name}"
        path.write_text(body)
        shell_checks(path)


def test_every_os_has_a_worker_template():
    assert render.available_worker_templates() == OS_IDS
    names = sorted(p.name for p in (ROOT / "slave_files").glob("*.sh.j2"))
    assert names == [f"{os_id}.sh.j2" for os_id in OS_IDS]


def _yaml_block(master: str) -> str:
    found = re.search(r"^umask 077\n(.*?)^umask 022\n", master, re.S | re.M)
    assert found, "elastiq.yaml block not found in the master user-data"
    return found.group(1)


def _run_yaml_block(master: str, tmp_path: Path, token: str = TOKEN) -> Path:
    """Run the master's own elastiq.yaml-writing lines with bash, into tmp_path."""
    target = tmp_path / "elastiq.yaml"
    block = _yaml_block(master).replace("/etc/elastiq/elastiq.yaml", str(target))
    subprocess.run(["bash", "-euc", block], check=True,
                   env={"MASTER_IP": "10.1.2.3", "WORKER_TOKEN": token, "PATH": "/usr/bin:/bin"})
    return target


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("os_id", OS_IDS)
def test_elastiq_yaml_loads_with_elastiqs_loader_and_embeds_the_worker(tmp_path, os_id, variant):
    a = answers(os_id, **VARIANTS[variant])
    path = _run_yaml_block(render.render_master(a), tmp_path)
    cfg = elastiq_config.load(str(path))
    assert (cfg.elastiq.cluster_name, cfg.elastiq.n_jobs_per_vm, cfg.elastiq.idle_timeout_max_s) == \
        ("physics-2024", 4, 1800)
    assert (cfg.quota.min_vms, cfg.quota.max_vms) == (1, 8)
    assert (cfg.cloud.flavour, cfg.cloud.image_id, cfg.cloud.key_name, cfg.cloud.api_url,
            cfg.cloud.region) == ("m1.large", a.image_id, "mykey", a.api_url, "nova")
    assert dict(cfg.substitute) == {"ipv4": "10.1.2.3", "token": TOKEN}
    worker = base64.b64decode(cfg.cloud.user_data_b64).decode("utf-8")
    assert worker == render.render_worker(a)
    if variant == "plain":
        assert cfg.cloud.aws_access_key_id is None and cfg.cloud.aws_secret_access_key is None
        assert cfg.cloud.ca_bundle is None
    else:
        assert (cfg.cloud.aws_access_key_id, cfg.cloud.aws_secret_access_key) == \
            ("AKIAEXAMPLE", "s3cr3t/+key")
        assert cfg.cloud.ca_bundle == render.CA_BUNDLE_PATH
        assert (cfg.cloud.security_groups, cfg.cloud.subnet_id) == (("workers", "ssh"), "subnet-1")
    assert elastiq_config.from_dict(yaml.safe_load(render.elastiq_yaml(a))).cloud.flavour == \
        "m1.large"


def test_worker_join_limit_is_elastiqs_deploy_time_and_its_default_otherwise():
    def deploy_time(a):
        return elastiq_config.from_dict(yaml.safe_load(render.elastiq_yaml(a))).elastiq \
            .estimated_vm_deploy_time_s

    assert deploy_time(answers(worker_join_limit_s=1800)) == 1800
    assert "estimated_vm_deploy_time_s" not in render.elastiq_yaml(answers())
    assert deploy_time(answers()) == elastiq_config.ElastiqSection().estimated_vm_deploy_time_s


HOSTILE = [
    "x'; touch {canary}; echo '",
    'x"; touch {canary}; echo "',
    "$(touch {canary})",
    "`touch {canary}`",
    "a b\\c ${{HOME}} $HOME ; | & > < * ? ! #",
]


def _answers_block(master: str) -> str:
    found = re.search(r"^# --- answers \(ecm\) ---\n(.*?)^# --- end of answers ---\n", master,
                      re.S | re.M)
    assert found
    return found.group(1)


@pytest.mark.parametrize("pattern", HOSTILE)
def test_hostile_answers_stay_literal(tmp_path, pattern):
    canary = tmp_path / "pwned"
    value = pattern.format(canary=canary)
    staged = f"elastiq @ https://s3.example.org/b/{value.replace(' ', '%20')}#sha256={'0' * 64}"
    a = answers("ubuntu2404", key_name=value, flavour=value, elastiq_source=staged,
                access_key=value, secret_key=value, api_url=value)
    master = render.render_master(a)
    path = tmp_path / "master"
    path.write_text(master)
    shell_checks(path)
    # The answers block, run by bash, assigns the values literally.
    script = _answers_block(master) + 'printf "%s" "$ELASTIQ_SOURCE"'
    shown = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, check=True)
    assert shown.stdout == staged
    # elastiq.yaml written by the master's own here-document holds them literally too.
    cfg = elastiq_config.load(str(_run_yaml_block(master, tmp_path)))
    assert (cfg.cloud.key_name, cfg.cloud.flavour, cfg.cloud.api_url, cfg.cloud.aws_access_key_id,
            cfg.cloud.aws_secret_access_key) == (value,) * 5
    assert not canary.exists()
    worker = tmp_path / "worker"
    worker.write_text(render.render_worker(a))
    shell_checks(worker)
    assert not canary.exists()


@pytest.mark.parametrize("field", ["key_name", "flavour", "secret_key"])
def test_control_characters_are_refused_naming_the_field(field):
    a = answers(access_key="AK", secret_key="SK")
    with pytest.raises(render.RenderError) as err:
        render.render_master(replace(a, **{field: "x\nELASTIQ_YAML\nreboot"}))
    assert err.value.field == field and "control characters" in str(err.value)
    assert "reboot" not in str(err.value)


@pytest.mark.parametrize("changes, field", [
    ({"cluster_name": "bad name"}, "cluster_name"),
    ({"cluster_name": "-x"}, "cluster_name"),
    ({"htcondor_series": "25; reboot"}, "htcondor_series"),
    ({"os_id": "windows"}, "os_id"),
    ({"min_vms": 9}, "max_vms"),
    ({"access_key": "AK"}, "access_key"),
    ({"signing_key": "short"}, "signing_key"),
    ({"ca_bundle_pem": "not a certificate"}, "ca_bundle"),
    ({"ca_bundle_pem": CA + "ELASTIQ_CA_BUNDLE\n"}, "ca_bundle"),
])
def test_unsafe_or_senseless_answers_are_refused(changes, field):
    with pytest.raises(render.RenderError) as err:
        render.render_master(answers(**changes))
    assert err.value.field == field


def test_worker_values_become_a_valid_htcondor_config(tmp_path):
    import classad2

    worker = render.render_worker(answers("debian12"))
    (tmp_path / "config.d").mkdir()
    subprocess.run(["bash", "-euc", render.units(worker)["worker-condor"]], check=True, env={
        "MASTER_ADDRESS": "10.1.2.3", "CLUSTER_NAME": "physics-2024", "INSTANCE_ID": "i-0abc12",
        "NOCLAIM_SHUTDOWN_S": "7200", "WORKER_TOKEN": TOKEN, "CONDOR_ETC": str(tmp_path),
        "SBIN": "/usr/local/sbin", "PATH": "/usr/bin:/bin"})
    target = tmp_path / "config.d" / "40-elastiq-values.conf"
    values = dict(line.split(" = ", 1) for line in target.read_text().splitlines())
    assert values["CONDOR_HOST"] == "10.1.2.3"
    assert classad2.ExprTree(values["ElastiqInstanceId"]).eval() == "i-0abc12"
    assert classad2.ExprTree(values["ElastiqCluster"]).eval() == "physics-2024"
    assert values["STARTD_NOCLAIM_SHUTDOWN"] == "7200"
    assert (tmp_path / "tokens.d" / "elastiq-worker.token").read_text() == TOKEN + "\n"


def test_noclaim_shutdown_default_follows_idle_time():
    assert answers(idle_time_s=3600).noclaim_shutdown_s == 4 * 3600
    assert answers(idle_time_s=7200).noclaim_shutdown_s == 4 * 7200
    assert answers(worker_noclaim_shutdown_s=0).noclaim_shutdown_s == 0


def test_small_master_is_plain_text_and_large_one_is_gzipped():
    small = render.master_user_data(answers(), limit=render.NOVA_USER_DATA_LIMIT)
    assert not small.compressed and small.data.startswith(b"#!/bin/bash\n")
    assert len(small.data) <= render.NOVA_USER_DATA_LIMIT
    tight = render.master_user_data(answers(), limit=len(small.data) - 1)
    assert tight.compressed and gzip.decompress(tight.data) == small.data
    many = "".join(CA.replace("MIIBszCCAVmgAwIBAgIUQ3bm", f"MIIB{i:060d}") for i in range(150))
    a = answers(ca_bundle_pem=many)
    big = render.master_user_data(a)
    assert big.compressed and len(big.data) <= render.USER_DATA_LIMIT < big.text_size
    assert gzip.decompress(big.data).decode("utf-8") == render.render_master(a)


def test_nova_limit_keeps_a_larger_master_as_plain_text():
    many = "".join(CA.replace("MIIBszCCAVmgAwIBAgIUQ3bm", f"MIIB{i:060d}") for i in range(150))
    a = answers(ca_bundle_pem=many)
    assert render.master_user_data(a).compressed
    nova = render.master_user_data(a, render.NOVA_USER_DATA_LIMIT)
    assert not nova.compressed and nova.data.decode("utf-8") == render.render_master(a)
    assert len(base64.b64encode(b"x" * render.NOVA_USER_DATA_LIMIT)) <= 65535


def test_user_data_that_does_not_fit_even_compressed_is_refused():
    pem = "".join(
        "-----BEGIN CERTIFICATE-----\n"
        + base64.b64encode(b"".join(hashlib.sha512(f"{i}-{j}".encode()).digest()
                                    for j in range(8))).decode()
        + "\n-----END CERTIFICATE-----\n" for i in range(60))
    with pytest.raises(render.UserDataTooLarge) as err:
        render.master_user_data(answers(ca_bundle_pem=pem))
    assert "gzip-compressed" in str(err.value) and str(render.USER_DATA_LIMIT) in str(err.value)


def test_worker_larger_than_the_limit_is_refused_with_the_reason():
    with pytest.raises(render.UserDataTooLarge) as err:
        render.worker_user_data_b64(answers(), limit=2000)
    assert "cannot be compressed" in str(err.value)


@pytest.mark.parametrize("name, os_id", [
    ("AlmaLinux OS 9.4.20240805 x86_64", "almalinux9"),
    ("AlmaLinux-9-GenericCloud-9.4-20240507.x86_64", "almalinux9"),
    ("Rocky-9-EC2-Base-9.4-20240509.0.x86_64", "rocky9"),
    ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240801", "ubuntu2204"),
    ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801", "ubuntu2404"),
    ("Ubuntu 24.04 LTS", "ubuntu2404"),
    ("debian-12-amd64-20240717-1811", "debian12"),
    ("debian-13-genericcloud-amd64-20250814-2204", "debian13"),
    ("Debian 13 (trixie)", "debian13"),
])
def test_image_names_match_exactly_one_os(name, os_id):
    hits = [o for o in OS_IDS if matching_images(o, [("ami-1", name)])]
    assert hits == [os_id]


def _install_lines(script: str) -> list:
    return [line for line in script.splitlines() if re.match(r"(retry )?(apt-get|dnf|curl) ", line)
            or "sources.list.d" in line]


@pytest.mark.parametrize("os_id", OS_IDS)
def test_htcondor_comes_from_the_os_archive_or_the_htcondor_repository(os_id):
    """debian13 installs Debian's own htcondor (23.9) and docker.io, naming no HTCondor
    repository at all; the others add the HTCondor repository of the chosen series."""
    a = answers(os_id, htcondor_repo="https://mirror.example.org/htcondor")
    for script in (render.render_master(a), render.render_worker(a)):
        lines = _install_lines(script)
        if OPERATING_SYSTEMS[os_id].htcondor_source == "os":
            assert ("retry apt-get install -y --no-install-recommends curl ca-certificates "
                    "htcondor") in " ".join(lines)
            assert "mirror.example.org" not in script and "HTCONDOR_REPO" not in script
            assert "htcss-downloads" not in script
        else:
            assert any("HTCONDOR_REPO" in line for line in lines)
            assert "HTCONDOR_REPO=https://mirror.example.org/htcondor" in script.splitlines()
    worker = render.render_worker(a)
    docker = {"el": "retry dnf install -y docker-ce docker-ce-cli containerd.io",
              "deb": "retry apt-get install -y docker.io"}[OPERATING_SYSTEMS[os_id].family]
    if OPERATING_SYSTEMS[os_id].htcondor_source == "os":  # Debian's docker.io: the CLI is apart
        docker = "retry apt-get install -y --no-install-recommends docker.io docker-cli apparmor"
    assert docker in worker.splitlines()


@pytest.mark.parametrize("name", ["AlmaLinux OS 8.10.20240819 x86_64", "debian-11-amd64",
                                  "Rocky-8-EC2-Base-8.10", "CentOS 7", "ubuntu-focal-20.04"])
def test_other_releases_match_no_os(name):
    assert not [o for o in OS_IDS if matching_images(o, [("ami-1", name)])]
