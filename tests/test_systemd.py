"""systemd/elastiq.service: valid for systemd, hardened, and consistent with elastiq itself."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from elastiq import cli
from elastiq.config import DEFAULT_PATH
from elastiq.runtime import paths
from tests.support import tools
from tests.support.world import make_config

UNIT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "systemd",
                    "elastiq.service")


def parse_unit(path):
    """section -> key -> list of values (systemd allows repeated keys)."""
    sections, current = {}, None
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, sep, value = line.partition("=")
            assert sep and current is not None, f"not a unit line: {raw!r}"
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit():
    return parse_unit(UNIT)


def one(unit, key, section="Service"):
    values = unit[section][key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def test_runs_elastiq_run_as_the_unprivileged_user_and_restarts_on_failure(unit):
    assert one(unit, "User") == "elastiq" and one(unit, "Group") == "elastiq"
    assert one(unit, "Restart") == "on-failure"
    assert one(unit, "WantedBy", "Install") == "multi-user.target"
    argv = shlex.split(one(unit, "ExecStart"))
    assert os.path.basename(argv[0]) == "elastiq"
    args = cli.build_parser().parse_args(argv[1:])  # elastiq's own parser accepts the line
    assert args.command == "run" and args.config == DEFAULT_PATH and args.log_stderr
    assert one(unit, "KillSignal") == "SIGTERM"


@pytest.mark.parametrize("key, value", [
    ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"), ("ProtectControlGroups", "yes"), ("RestrictSUIDSGID", "yes"),
    ("RestrictNamespaces", "yes"), ("LockPersonality", "yes"), ("CapabilityBoundingSet", ""),
    ("UMask", "0077"),
])
def test_hardening(unit, key, value):
    assert one(unit, key) == value


def test_writable_paths_are_exactly_where_elastiq_writes_as_the_service_user(unit):
    writable = one(unit, "ReadWritePaths").split()
    where = paths.resolve(make_config(), euid=999, home="/nonexistent", user="elastiq")
    assert writable == [where.state_dir, os.path.dirname(where.log_file)]
    assert one(unit, "StateDirectory") == os.path.basename(where.state_dir)
    assert one(unit, "LogsDirectory") == os.path.basename(os.path.dirname(where.log_file))
    assert one(unit, "StateDirectoryMode") == "0700"


def test_the_documented_service_user_has_a_home_the_unit_lets_it_read(unit):
    """Its HTCondor IDTOKEN lives in ~elastiq/.condor/tokens.d: not under /home (ProtectHome)."""
    text = Path(UNIT).read_text(encoding="utf-8")
    useradd = shlex.split(re.search(r"\(useradd ([^)]*)\)", text).group(1).replace("#", " "))
    assert "--home-dir" in useradd, useradd
    home = useradd[useradd.index("--home-dir") + 1]
    assert one(unit, "ProtectHome") == "yes" and not home.startswith(("/home", "/root"))
    assert home in one(unit, "ReadWritePaths").split()


@pytest.mark.skipif(tools.find("systemd-analyze") is None,
                    reason="systemd-analyze not found: apt-get install systemd")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    text = Path(UNIT).read_text(encoding="utf-8")
    exe = shlex.split(one(parse_unit(UNIT), "ExecStart"))[0]
    if not os.access(exe, os.X_OK):  # verify checks the binary exists; not installed here
        text = text.replace(f"ExecStart={exe} ", f"ExecStart={sys.executable} -m elastiq ")
    copy = tmp_path / "elastiq.service"
    copy.write_text(text)
    done = subprocess.run([tools.find("systemd-analyze"), "verify", str(copy)], capture_output=True,
                          text=True, timeout=120)
    # verify exits 0 even for ignored lines: any message about our unit is a defect (verify
    # also loads the host's units and may warn about them, e.g. a packaged keystone.service)
    ours = [line for line in (done.stderr + done.stdout).splitlines()
            if line.strip() and not re.match(r"[\w@.-]+\.(service|socket|target|timer|mount): ",
                                             line.replace("elastiq.service:", "ours:"))]
    assert done.returncode == 0 and ours == [], done.stderr + done.stdout
