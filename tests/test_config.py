"""Configuration: YAML, legacy INI, overrides, and the `elastiq config` command."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import yaml

from elastiq import config
from elastiq.cli import main

LEGACY = """\
[elastiq]
sleep_s = 5
check_queue_every_s = 15
waiting_jobs_threshold = 10
waiting_jobs_time_s = 100
n_jobs_per_vm = 4
idle_for_time_s = 3600
estimated_vm_deploy_time_s = 600
batch_plugin = htcondor
log_level = 0

[debug]
dry_run_shutdown_vms = 1
#dry_run_boot_vms = 1

[quota]
min_vms = 0
max_vms = 3

[ec2]
api_url = https://cloud.example.org:8773/services/Cloud
aws_access_key_id = AKIAEXAMPLEKEY
aws_secret_access_key = s3cr3t-Value-Never-Shown
image_id = ami-00000042
api_version = 2013-02-01
key_name =
flavour = m1.large
user_data_b64 = IyEvYmluL2Jhc2gK

[substitute]
ipv4 = 10.0.0.1
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_are_valid_and_summarised():
    cfg = config.load(None)
    assert cfg.quota.max_vms == 3 and cfg.elastiq.n_jobs_per_vm == 0
    assert "0-3 VMs" in config.summary(cfg)


def test_yaml_round_trip(tmp_path):
    cfg = config.load(None, ["quota.max_vms=40", "vm.cpus=8", "ec2.security_groups=[a, b]"])
    path = write(tmp_path, "e.yaml", config.to_yaml(cfg))
    again = config.load(path)
    assert again.quota.max_vms == 40 and again.vm.cpus == 8
    assert again.cloud.security_groups == ("a", "b")
    assert again.source == path


@pytest.mark.parametrize("text,key,problem", [
    ("elastiq: {waiting_jobs_tme_s: 4}", "elastiq.waiting_jobs_tme_s", "unknown key"),
    ("quota: {max_vms: lots}", "quota.max_vms", "expected an integer (got 'lots')"),
    ("quota: {min_vms: 5, max_vms: 2}", "quota.min_vms", "greater than max_vms"),
    ("quota: {max_cores: many}", "quota.max_cores", "expected an integer (got 'many')"),
    ("quota: {max_cores: 0}", "quota.max_cores", "must be >= 1 (got 0); leave it out"),
    ("quota: {max_memory_mb: -5}", "quota.max_memory_mb", "must be >= 1"),
    ("{vm: {cpus: 8}, quota: {max_cores: 4}}", "quota.max_cores",
     "4 is less than one VM's 8 cpus (vm.cpus): no VM could start"),
    ("{vm: {memory_mb: 4096}, quota: {min_vms: 3, max_memory_mb: 10000}}", "quota.max_memory_mb",
     "less than min_vms x 4096 MiB (12288): min_vms could not be kept"),
    ("elastiq: {idle_timeout_max_s: -1}", "elastiq.idle_timeout_max_s", "must not be negative"),
    ("elastiq: {check_queue_every_s: 0}", "elastiq.check_queue_every_s", "must be > 0"),
    ("debug: {dry_run_boot_vms: maybe}", "debug.dry_run_boot_vms", "expected true or false"),
    ("vm: {cpus: 0}", "vm.cpus", "must be >= 1"),
    ("clouds: {}", "clouds", "unknown section"),
    ("quota: 3", "quota", "expected a mapping"),
    ("elastiq: {batch_plugin: pbs}", "elastiq.batch_plugin", "unknown 'pbs'"),
    ("ec2: {security_groups: 3}", "ec2.security_groups", "expected a list of strings"),
])
def test_bad_values_name_file_and_key(tmp_path, text, key, problem):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(config.InvalidConfig) as err:
        config.load(path)
    assert err.value.key == key and err.value.source == path
    assert problem in str(err.value) and str(err.value).startswith(f"{path}: {key}: ")


def test_cores_and_memory_quotas_are_read_and_summarised(tmp_path):
    path = write(tmp_path, "q.yaml", "quota: {max_vms: 400, max_cores: 160, max_memory_mb: 327680}")
    cfg = config.load(path)
    assert (cfg.quota.max_cores, cfg.quota.max_memory_mb) == (160, 327680)
    assert "0-400 VMs (at most 160 cores, 327680 MiB)" in config.summary(cfg)
    unset = config.load(None)
    assert (unset.quota.max_cores, unset.quota.max_memory_mb) == (None, None)
    assert "0-3 VMs of" in config.summary(unset) and "at most" not in config.summary(unset)


def test_wrong_type_of_a_secret_is_not_echoed(tmp_path):
    path = write(tmp_path, "s.yaml", "ec2: {aws_secret_access_key: [hunter2]}")
    with pytest.raises(config.InvalidConfig) as err:
        config.load(path)
    assert "hunter2" not in str(err.value) and "value hidden" in str(err.value)


def test_broken_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "b.yaml", "quota:\n  max_vms: 3\n  min_vms: [1\n")
    with pytest.raises(config.InvalidConfig, match=r"not valid YAML at line \d"):
        config.load(path)


def test_overrides_parse_yaml_scalars_and_name_the_origin():
    cfg = config.load(None, ["debug.dry_run_boot_vms=true", "elastiq.cluster_name=lab"])
    assert cfg.debug.dry_run_boot_vms is True and cfg.elastiq.cluster_name == "lab"
    with pytest.raises(config.InvalidConfig, match="defaults with --set: quota.max_vms"):
        config.load(None, ["quota.max_vms=-1"])
    with pytest.raises(config.InvalidConfig, match="expected SECTION.KEY=VALUE"):
        config.load(None, ["max_vms=4"])


def test_legacy_ini_loads_with_the_originals_knobs(tmp_path):
    cfg = config.load(write(tmp_path, "elastiq.conf", LEGACY))
    assert cfg.elastiq.waiting_jobs_threshold == 10 and cfg.elastiq.n_jobs_per_vm == 4
    assert cfg.elastiq.log_level == "DEBUG"
    assert cfg.debug.dry_run_shutdown_vms is True and cfg.debug.dry_run_boot_vms is False
    assert cfg.cloud.flavour == "m1.large" and cfg.cloud.key_name is None
    assert cfg.substitute == {"ipv4": "10.0.0.1"}


def test_legacy_unlimited_max_vms_is_refused(tmp_path):
    path = write(tmp_path, "elastiq.conf", LEGACY.replace("max_vms = 3", "max_vms = 0"))
    with pytest.raises(config.InvalidConfig, match="quota.max_vms: 0 meant 'no limit'"):
        config.load(path)


def test_config_check_command(tmp_path, capsys):
    good = write(tmp_path, "elastiq.conf", LEGACY)
    assert main(["config", "check", good]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {good}: cluster 'elastiq': 0-3 VMs of m1.large")
    assert "s3cr3t" not in out and "AKIAEXAMPLEKEY" not in out

    bad = write(tmp_path, "bad.yaml", "quota: {min_vms: 4}\n")
    assert main(["config", "check", bad]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"elastiq: configuration error: {bad}: quota.min_vms: "
                           "min_vms (4) is greater than max_vms (3)")


def test_config_check_runs_as_a_program_without_traceback(tmp_path):
    bad = write(tmp_path, "bad.yaml", "elastiq: {nope: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "elastiq", "config", "check", bad],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: elastiq.nope: unknown key" in proc.stderr


def test_config_show_masks_secrets(tmp_path, capsys):
    assert main(["config", "show", write(tmp_path, "elastiq.conf", LEGACY)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["ec2"]["aws_secret_access_key"] == "***"
    assert shown["ec2"]["user_data_b64"] == "***"


def test_migrate_prints_masked_yaml_and_writes_complete_0600_file(tmp_path, capsys):
    old = write(tmp_path, "elastiq.conf", LEGACY)
    assert main(["config", "migrate", old]) == 0
    printed = capsys.readouterr().out
    assert "s3cr3t" not in printed
    assert yaml.safe_load(printed)["elastiq"]["waiting_jobs_threshold"] == 10

    new = str(tmp_path / "elastiq.yaml")
    assert main(["config", "migrate", old, "--output", new]) == 0
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o600
    migrated = config.load(new)
    original = config.load(old)
    assert config.to_dict(migrated) == config.to_dict(original)


def test_config_file_comes_from_flag_then_environment_then_command_default(monkeypatch):
    from elastiq.cli import build_parser, config_path

    monkeypatch.delenv("ELASTIQ_CONFIG", raising=False)
    assert config_path(build_parser().parse_args(["status"])) == config.DEFAULT_PATH
    assert config_path(build_parser().parse_args(["simulate"])) is None  # built-in defaults
    monkeypatch.setenv("ELASTIQ_CONFIG", "/srv/e.yaml")
    assert config_path(build_parser().parse_args(["status"])) == "/srv/e.yaml"
    assert config_path(build_parser().parse_args(["run", "--config", "/x.yaml"])) == "/x.yaml"


def test_secrets_stay_out_of_repr():
    cfg = config.load(None, ["ec2.aws_access_key_id=AKIAREPRTEST", "ec2.aws_secret_access_key=shh-secret",
                             "ec2.user_data_b64=IyEvYmluL2Jhc2g="])
    shown = repr(cfg)
    assert "AKIAREPRTEST" not in shown and "shh-secret" not in shown and "IyEvYmluL2Jhc2g" not in shown
    assert cfg.cloud.aws_secret_access_key == "shh-secret"
