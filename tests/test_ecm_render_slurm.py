"""Rendering of ``ecm --batch slurm`` and ``--shared-home`` (issue 28): valid shell, the
placeholders elastiq fills in, the elastiq.yaml the master writes (slurm plugin, the munge key
as a substituted secret), the key never printed, the OSes refused, and the shared /home units
run by bash.  The Slurm units against real daemons: tests/test_ecm_slurm_units.py."""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecm import render
from elastiq import config as elastiq_config
from elastiq.runtime import factory
from elastiq.adapters.userdata import substitute
from elastiq.adapters.slurm.batch import SlurmBatch
from elastiq.config.text import InvalidConfig
from tests.test_ecm_render import OS_IDS, VARIANTS, _yaml_block, answers, shell_checks
from tests.test_ecm_wizard import (ecm_moto, embedded_config, master_text, run,  # noqa: F401
                                   workdir)

pytestmark = pytest.mark.local  # runs shellcheck and the wizard as processes

ROOT = Path(__file__).resolve().parent.parent
KEY = "Zm9vYmFyYmF6cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9maHVnb3Rob3Jk"


def slurm(**changes) -> render.Answers:
    return answers("debian13", batch="slurm", **{"signing_key": KEY, **changes})


def _write_yaml(master: str, tmp_path: Path, **env: str) -> Path:
    """Run the master's own elastiq.yaml-writing lines with bash, into tmp_path."""
    target = tmp_path / "elastiq.yaml"
    block = _yaml_block(master).replace("/etc/elastiq/elastiq.yaml", str(target))
    subprocess.run(["bash", "-euc", block], check=True,
                   env={"MASTER_IP": "10.1.2.3", "PATH": "/usr/bin:/bin", **env})
    return target


@pytest.mark.parametrize("cloud", ["ec2", "openstack"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("shared_home", [False, True])
def test_slurm_master_and_worker_are_valid_shell(tmp_path, cloud, variant, shared_home):
    a = slurm(cloud=cloud, shared_home=shared_home, **VARIANTS[variant])
    master, worker = render.render_master(a), render.render_worker(a)
    assert master.startswith("#!/bin/bash\n") and worker.startswith("#!/bin/bash\n")
    assert set(re.findall(r"%[a-z][a-z0-9_]{2,}%", worker)) == {"%ipv4%", "%munge_key%"}
    filled = substitute(worker, {"ipv4": "10.1.2.3", "munge_key": KEY})
    assert f"MUNGE_KEY='{KEY}'" in filled
    for name, text in (("master", master), ("worker", worker), ("filled", filled)):
        path = tmp_path / name
        path.write_text(text)
        shell_checks(path)


def test_the_slurm_master_configures_elastiq_for_the_slurm_plugin(tmp_path):
    a = slurm()
    path = _write_yaml(render.render_master(a), tmp_path, MUNGE_KEY=KEY)
    cfg = elastiq_config.load(str(path))
    assert (cfg.elastiq.batch_plugin, cfg.elastiq.cloud_plugin) == ("slurm", "ec2")
    assert dict(cfg.substitute) == {"ipv4": "10.1.2.3", "munge_key": KEY}
    assert base64.b64decode(cfg.cloud.user_data_b64).decode() == render.render_worker(a)
    _, batch, _ = factory.prepare(cfg)  # what `elastiq run` builds (no call made)
    assert isinstance(batch, SlurmBatch)


def test_the_munge_key_is_ecms_per_cluster_secret_and_never_printed():
    """The key is ecm's random secret of this cluster (never a fixed one), assigned once in the
    answers block; every other line naming it writes it to a file, quoted, never echoes or
    logs it (nor runs it on a command line)."""
    other = slurm(signing_key="another-cluster-key-" + "y" * 40)
    assert render.render_master(slurm()) != render.render_master(other)
    for text, writes in ((render.render_master(slurm()), {
            "MUNGE_KEY=" + KEY,
            """(umask 077; printf '%s' "$MUNGE_KEY" > "$MUNGE_ETC/munge.key")""",
            'echo "  munge_key: \\"$MUNGE_KEY\\""', "unset MUNGE_KEY"}),
            (render.render_worker(slurm()), {
                "MUNGE_KEY='%munge_key%'",
                """(umask 077; printf '%s' "$MUNGE_KEY" > "$MUNGE_ETC/munge.key")""",
                'case "$MASTER_ADDRESS$MUNGE_KEY" in', "unset MUNGE_KEY"})):
        lines = {line.strip() for line in text.splitlines() if "MUNGE_KEY" in line}
        assert lines == writes
        assert text.count(KEY) == (1 if KEY in text else 0)


def test_a_munge_key_elastiq_cannot_use_is_refused_without_showing_it(tmp_path):
    a = slurm()
    path = _write_yaml(render.render_master(a), tmp_path, MUNGE_KEY="short-secret")
    with pytest.raises(InvalidConfig) as err:
        elastiq_config.load(str(path))
    assert "substitute.munge_key" in str(err.value) and "short-secret" not in str(err.value)


@pytest.mark.parametrize("os_id", [o for o in OS_IDS if o not in render.SLURM_OSES])
def test_slurm_is_refused_where_the_os_has_no_suitable_slurm(os_id):
    with pytest.raises(render.RenderError) as err:
        render.render_master(answers(os_id, batch="slurm"))
    assert err.value.field == "batch" and "debian13" in str(err.value)


def test_an_unknown_batch_system_is_refused():
    with pytest.raises(render.RenderError) as err:
        render.render_worker(answers(batch="pbs"))
    assert err.value.field == "batch"


def test_the_slurm_worker_joins_as_a_dynamic_node_of_its_instance_configless():
    worker = render.render_worker(slurm())
    unit = render.units(worker)["worker-slurmd"]
    assert '-Z -N "$NODE_NAME" --conf-server "$MASTER_ADDRESS:$MASTER_PORT"' in unit
    assert "elastiq-cluster-$CLUSTER_NAME" in unit and "elastiq-instance-$INSTANCE_ID" in unit
    assert "NODE_NAME=${INSTANCE_ID:-$(hostname -s)}" in worker
    assert worker.index("systemctl restart munge") < worker.index("systemctl restart slurmd")
    (install,) = [line for line in worker.splitlines() if "apt-get install" in line]
    assert {"slurmd", "slurm-client", "munge"} <= set(install.split())  # the watch's scontrol
    assert "systemctl enable --now elastiq-unclaimed-watch.timer" in worker


# ----------------------------------------------------------------------- shared /home


@pytest.mark.parametrize("os_id", OS_IDS)
def test_without_shared_home_nothing_of_it_is_rendered(os_id):
    """The default renders no NFS, no FILESYSTEM_DOMAIN and no htcondor section (the
    HTCondor renders were also checked byte-identical to those before the option existed)."""
    a = answers(os_id)
    assert not a.shared_home
    for text in (render.render_master(a), render.render_worker(a)):
        assert not re.search(r"nfs|FILESYSTEM_DOMAIN|SOFT_UID_DOMAIN|/home|FSTAB|exportfs", text)
    assert "htcondor" not in yaml.safe_load(render.elastiq_yaml(a))


@pytest.mark.parametrize("os_id", OS_IDS)
def test_htcondor_with_shared_home_is_valid_shell(os_id, tmp_path):
    a = answers(os_id, shared_home=True)
    for name, text in (("master", render.render_master(a)), ("worker", render.render_worker(a))):
        assert "worker-shared-home" in text or "master-shared-home" in text
        path = tmp_path / name
        path.write_text(text)
        shell_checks(path)


def _bash(unit: str, **env: str) -> None:
    subprocess.run(["bash", "-euc", "log() { echo \"$*\"; }\n" + unit], check=True,
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env})


@pytest.mark.parametrize("os_id", ["debian13", "almalinux9"])
def test_shared_home_gives_master_and_workers_one_filesystem_domain(os_id, tmp_path):
    a = answers(os_id, cluster_name="physics-c1", shared_home=True)
    master, worker = render.units(render.render_master(a)), render.units(render.render_worker(a))
    for name, units, unit, env in (
            ("master", master, "master-condor-config", {"MASTER_IP": "10.1.2.3"}),
            ("worker", worker, "worker-condor", {"MASTER_ADDRESS": "10.1.2.3",
                                                 "INSTANCE_ID": "i-1", "NOCLAIM_SHUTDOWN_S": "0",
                                                 "WORKER_TOKEN": "t", "SBIN": "/sbin"})):
        etc = tmp_path / name
        (etc / "config.d").mkdir(parents=True)
        _bash(units[unit], CLUSTER_NAME="physics-c1", CONDOR_ETC=str(etc), **env)
        values = (etc / "config.d" / "40-elastiq-values.conf").read_text()
        assert "FILESYSTEM_DOMAIN = physics-c1" in values.splitlines(), values
    cfg = elastiq_config.from_dict(yaml.safe_load(render.elastiq_yaml(a)))
    assert cfg.batch.filesystem_domain == "physics-c1"


def test_shared_home_exports_to_the_masters_subnet_and_workers_mount_it(tmp_path):
    for a in (answers("debian13", shared_home=True), slurm(shared_home=True)):
        master, worker = render.render_master(a), render.render_worker(a)
        ip = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()[0]
        _bash(render.units(master)["master-shared-home"], MASTER_IP=ip,
              EXPORTS_DIR=str(tmp_path / "exports.d"))
        (line,) = (tmp_path / "exports.d" / "elastiq-home.exports").read_text().splitlines()
        assert re.fullmatch(r"/home \d+\.\d+\.\d+\.\d+/\d+\(rw,sync,no_subtree_check,root_squash\)",
                            line)
        fstab = tmp_path / "fstab"
        fstab.write_text("# the image's\n")
        _bash(render.units(worker)["worker-shared-home"], MASTER_ADDRESS="10.1.2.3",
              FSTAB=str(fstab))
        assert fstab.read_text().splitlines()[-1].startswith("10.1.2.3:/home /home nfs4 ")
        daemon = "slurmd" if a.batch == "slurm" else "condor"
        assert worker.index("retry mount /home") < worker.index(f"systemctl restart {daemon}")
        assert "nfs-kernel-server" in master and "nfs-common" in worker


def test_the_wizard_writes_a_slurm_master_with_a_fresh_key_per_cluster(ecm_moto, workdir):  # noqa: F811
    image = ecm_moto.images["debian-12-amd64-20240717-1811"]  # any image: the OS is the flag's
    keys = []
    for out in ("a", "b"):
        result = run(ecm_moto, workdir, "--yes", "--os", "debian13", "--image", image, "-o", out,
                     "--batch", "slurm", "--shared-home")
        assert result.returncode == 0, result.stderr
        master = master_text(workdir / out)
        assert "slurmctld" in master and "master-shared-home" in master
        assert embedded_config(master)["elastiq"]["batch_plugin"] == "slurm"
        (key,) = re.findall(r"^MUNGE_KEY='?([A-Za-z0-9_-]+)'?$", master, re.M)
        keys.append(key)
        assert key not in result.stdout + result.stderr
    assert keys[0] != keys[1] and all(len(k) >= 32 for k in keys)
    refused = run(ecm_moto, workdir, "--yes", "--os", "debian12", "--image", image, "-o", "r",
                  "--batch", "slurm")
    assert refused.returncode == 2 and "batch" in refused.stderr and "debian13" in refused.stderr
    assert "Traceback" not in refused.stderr and not (workdir / "r").exists()


def test_the_master_reads_the_workers_shape_for_slurm_conf_from_the_cloud(tmp_path, moto,
                                                                           ec2_world):
    """The master-worker-shape unit, with elastiq's own Python, on the elastiq.yaml ecm
    writes (no vm section): the flavour's shape as the EC2 API (moto) describes it; a
    configuration it cannot use leaves the stated default, with a log line."""
    from tests.support.ec2_fixtures import ACCESS_KEY, SECRET_KEY
    from tests.support.ec2_server import REGION

    a = slurm(image_id=ec2_world.image_id, flavour="t3.small", api_url=moto.url, region=REGION,
              key_name=ec2_world.key_name, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    path = _write_yaml(render.render_master(a), tmp_path, MUNGE_KEY=KEY)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python3").symlink_to(sys.executable)
    unit = render.units(render.render_master(a))["master-worker-shape"]
    shown = 'printf "%s %s" "$WORKER_CPUS" "$WORKER_MEMORY_MB"'
    for config, expected in ((path, "2 2048"), (tmp_path / "missing.yaml", "1 2048")):
        done = subprocess.run(
            ["bash", "-euc", 'log() { echo "LOG $*"; }\n' + unit + shown], capture_output=True,
            text=True, env={"PATH": "/usr/bin:/bin", "ELASTIQ_VENV": str(venv),
                            "ELASTIQ_CONFIG": str(config), "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        assert done.stdout.endswith(expected)
        assert ("LOG cannot read the workers' shape" in done.stdout) is (expected == "1 2048")
        assert "Traceback" not in done.stderr


def test_the_user_data_names_the_batch_system_the_os_archive_installs():
    slurm, condor = answers("debian13", batch="slurm"), answers("debian13")
    for script in (render.render_master(slurm), render.render_worker(slurm)):
        head = script.splitlines()[1]
        assert "Debian 13 (trixie), Slurm 24.11 from Debian" in head and "HTCondor" not in head
    for script in (render.render_master(condor), render.render_worker(condor)):
        assert "Debian 13 (trixie), HTCondor 23.9 from Debian" in script.splitlines()[1]
