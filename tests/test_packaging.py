"""The wheel holds every package of the source tree and the worker templates of slave_files/."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_all_packages_and_worker_templates(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True)
    wheel = next(tmp_path.glob("elastiq-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("elastiq", "ecm"):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.relative_to(ROOT).as_posix()
            assert relative in names, f"{relative} missing: add its package to pyproject.toml"
    for template in (ROOT / "slave_files").glob("*.sh.j2"):
        assert f"ecm/slave_files/{template.name}" in names
    assert "ecm/templates/master.sh.j2" in names
    assert "elastiq/systemd/elastiq.service" in names  # the master user-data installs it from there
