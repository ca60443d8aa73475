"""Each plugin owns its configuration section (issue 13.2): the registry's plugins follow the
contract, and a cloud that elastiq's core does not know (the test-only example cloud, by dotted
path) is loaded, checked, summarised, redacted and run by a daemon tick without core changes."""
from __future__ import annotations

import ast
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from elastiq import config
from elastiq.adapters import BATCH_SYSTEMS, CLOUDS, config_module
from elastiq.runtime import factory

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = "tests.support.example_cloud:ExampleCloud"
TOKEN = "tok-0123456789-very-secret"


def _elastiq(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "elastiq", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _example_yaml(tmp_path, example=None, **elastiq) -> str:
    data = {"elastiq": {"cluster_name": "ex", "cloud_plugin": EXAMPLE,
                        "batch_plugin": "tests.support.world:IdleBatch",
                        "state_dir": str(tmp_path / "state"),
                        "log_file": str(tmp_path / "elastiq.log"), **elastiq},
            "quota": {"min_vms": 2, "max_vms": 4},
            "example": {"state_file": str(tmp_path / "cloud.json"), "region": "region-9",
                        "flavour": "large", "api_token": TOKEN, **(example or {})}}
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("registry, name", [(CLOUDS, n) for n in CLOUDS] +
                         [(BATCH_SYSTEMS, n) for n in BATCH_SYSTEMS] +
                         [(CLOUDS, EXAMPLE)])
def test_every_plugin_config_module_follows_the_contract(registry, name):
    module = config_module(registry, name)
    settings = module.Settings()
    assert isinstance(module.NAME, str) and module.NAME not in config.CORE_SECTIONS
    fields = {f.name: f for f in dataclasses.fields(settings)}
    assert module.SECRET_KEYS <= set(fields)
    assert all(not fields[key].repr for key in module.SECRET_KEYS), "secrets stay out of repr"
    assert list(module.validate(settings)) == []
    assert isinstance(module.summary(settings), str)
    assert list(module.secret_texts(settings)) == []
    flavour = module.flavour(settings)
    assert flavour is None or isinstance(flavour, str)


def test_reading_the_configuration_imports_no_sdk():
    code = ("import sys; from elastiq import config; from elastiq.adapters import CLOUDS, "
            "BATCH_SYSTEMS, config_module; cfg = config.load(None, ['ec2.flavour=x']); "
            "[config_module(r, n) for r in (CLOUDS, BATCH_SYSTEMS) for n in r]; "
            "print(sorted(m for m in ('boto3', 'botocore', 'htcondor2', 'classad2', 'openstack') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _runtime_imports(path: pathlib.Path):
    """Modules imported by ``path`` outside ``if TYPE_CHECKING:`` blocks (absolute names)."""
    package = "elastiq." + ".".join(path.relative_to(ROOT / "elastiq").with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.rstrip(".").split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else []))
                if not node.module:
                    yield from (".".join(base + [a.name]) for a in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_adapters_do_not_import_the_configuration():
    """The configuration imports the registry; no adapter imports the configuration back
    (the runtime's factory builds adapters from it)."""
    found = {}
    for path in sorted((ROOT / "elastiq" / "adapters").rglob("*.py")):
        bad = [m for m in _runtime_imports(path) if m.startswith("elastiq.config")]
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert found == {}
    assert "elastiq.adapters" in set(_runtime_imports(ROOT / "elastiq" / "config" / "sections.py"))


def test_the_example_cloud_section_is_loaded_checked_and_summarised(tmp_path):
    cfg = config.load(_example_yaml(tmp_path))
    assert (cfg.cloud.region, cfg.cloud.flavour, cfg.cloud.api_token) == ("region-9", "large", TOKEN)
    assert config.summary(cfg).startswith("cluster 'ex': 2-4 VMs of large in region-9, ")
    assert TOKEN not in repr(cfg) and TOKEN not in config.to_yaml(cfg, include_secrets=False)
    assert TOKEN in config.secret_texts(cfg)
    assert factory.flavour_name(cfg) == "large"
    assert config.to_dict(cfg)["example"]["region"] == "region-9"
    assert config.load(None, [f"elastiq.cloud_plugin={EXAMPLE}", "example.flavour=small"]) \
        .cloud.flavour == "small"


@pytest.mark.parametrize("example, key, words", [
    ({"flavour": "huge"}, "example.flavour", "unknown flavour 'huge' (known: small, large)"),
    ({"max_per_call": 0}, "example.max_per_call", "must be >= 1"),
    ({"colour": "red"}, "example.colour", "unknown key"),
    ({"api_token": ["a", TOKEN]}, "example.api_token", "expected a string (value hidden)"),
])
def test_the_example_section_is_validated_by_its_plugin(tmp_path, example, key, words):
    path = _example_yaml(tmp_path, example)
    with pytest.raises(config.InvalidConfig) as err:
        config.load(path)
    assert err.value.key == key and words in str(err.value) and TOKEN not in str(err.value)
    done = _elastiq("config", "check", path)
    assert done.returncode == 2 and key in done.stderr and TOKEN not in done.stderr


def test_config_check_and_show_with_the_example_cloud(tmp_path):
    path = _example_yaml(tmp_path)
    done = _elastiq("config", "check", path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"OK {path}: cluster 'ex': 2-4 VMs of large in region-9")
    shown = _elastiq("config", "show", path)
    assert shown.returncode == 0 and "api_token: '***'" in shown.stdout
    assert TOKEN not in shown.stdout + done.stdout + done.stderr


def test_a_daemon_tick_runs_the_example_cloud(tmp_path):
    """``elastiq run --once``: min_vms launched through the example cloud, the flavour's shape
    read from it, its token (echoed by the cloud into a warning) masked in the log."""
    path = _example_yaml(tmp_path)
    done = _elastiq("run", "--config", path, "--once")
    assert done.returncode == 0, done.stderr
    cloud = json.loads((tmp_path / "cloud.json").read_text())
    assert sorted(cloud) == ["ex-1", "ex-2"] and {i["cluster"] for i in cloud.values()} == {"ex"}
    log = (tmp_path / "elastiq.log").read_text()
    assert "starting: cluster 'ex': 2-4 VMs of large in region-9" in log
    assert "worker VM shape of flavour large: 4 cpu(s), 8192 MiB" in log
    assert "Authorization: Bearer ***" in log and TOKEN not in log


def test_a_section_of_a_registered_plugin_not_configured_is_checked_and_ignored(tmp_path):
    path = _example_yaml(tmp_path)
    data = yaml.safe_load(pathlib.Path(path).read_text())
    data["ec2"] = {"flavour": "m1.large"}
    pathlib.Path(path).write_text(yaml.safe_dump(data))
    cfg = config.load(path)
    assert cfg.cloud.flavour == "large" and "ec2" not in config.to_dict(cfg)
    assert any(n.startswith("section ec2 is not used") for n in cfg.notes)
    data["ec2"] = {"flavor": "m1.large"}
    pathlib.Path(path).write_text(yaml.safe_dump(data))
    with pytest.raises(config.InvalidConfig, match=r"ec2.flavor: unknown key"):
        config.load(path)


def test_htcondor_words_moved_from_vm_to_the_htcondor_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("vm: {cpus: 2, opsys: WINDOWS, has_docker: false}\n")
    cfg = config.load(str(path))
    assert (cfg.batch.opsys, cfg.batch.arch, cfg.batch.has_docker) == ("WINDOWS", "X86_64", False)
    assert cfg.vm.cpus == 2 and not hasattr(cfg.vm, "opsys")
    assert cfg.notes == ("vm.opsys is deprecated: write it as htcondor.opsys (read as such)",
                         "vm.has_docker is deprecated: write it as htcondor.has_docker (read as "
                         "such)")
    assert config.load(None, ["vm.arch=AARCH64"]).batch.arch == "AARCH64"
    assert config.load(str(path), ["quota.max_vms=5"]).notes == cfg.notes  # kept by --set
    done = _elastiq("config", "check", str(path), "--set", "ec2.region=r")
    assert done.returncode == 0, done.stderr
    assert "note: " in done.stderr and "vm.opsys is deprecated" in done.stderr
    path.write_text("vm: {opsys: WINDOWS}\nhtcondor: {opsys: LINUX}\n")
    with pytest.raises(config.InvalidConfig, match=r"vm.opsys: moved to htcondor.opsys, which "
                       r"is set too"):
        config.load(str(path))
    path.write_text("htcondor: {arch: 'x86 64'}\n")
    with pytest.raises(config.InvalidConfig, match=r"htcondor.arch: expected a word"):
        config.load(str(path))


def test_the_configuration_notes_are_in_the_daemon_log(tmp_path):
    path = _example_yaml(tmp_path)
    data = yaml.safe_load(pathlib.Path(path).read_text())
    data["vm"] = {"has_docker": False}
    pathlib.Path(path).write_text(yaml.safe_dump(data))
    assert config.load(path).notes == (
        "vm.has_docker is deprecated: write it as htcondor.has_docker (read as such)",
        "section htcondor is not used (elastiq.cloud_plugin is "
        "'tests.support.example_cloud:ExampleCloud', elastiq.batch_plugin "
        "'tests.support.world:IdleBatch')")
    done = _elastiq("run", "--config", path, "--once")
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "elastiq.log").read_text()
    assert f"WARNING elastiq.daemon: {path}: vm.has_docker is deprecated" in log
    assert "section htcondor is not used" in log
