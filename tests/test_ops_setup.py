"""The README's set-up commands and examples as a new user runs them (issue 11): on Debian's own
Python (PEP 668), on a fresh Debian without python3-venv, and the simulator examples from a
clone (with the trace excerpt the repository ships)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import tools

pytestmark = pytest.mark.local  # processes: see tests/conftest.py

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEBIAN_PYTHON = Path("/usr/bin/python3")
TRIXIE = Path("/var/lib/elastiq-ci/trixie")
SAMPLE = ROOT / "examples" / "traces" / "LPC-EGEE-2004-1.2-cln-sample.swf"


def setup_commands():
    block = README[README.index("## Set-up"):]
    block = block[block.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_two_setup_commands_and_ci_runs_the_second():
    commands = setup_commands()
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def _copy_of_the_repository(target: Path) -> Path:
    """The files a clone has (tracked and new, not ignored ones such as .venv)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def _externally_managed(python: Path) -> bool:
    if not python.exists():
        return False
    found = subprocess.run([str(python), "-c", "import sysconfig, os; print(os.path.exists("
                            "os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"],
                           capture_output=True, text=True)
    return found.stdout.strip() == "True"


@pytest.mark.timeout(600)
@pytest.mark.skipif(not _externally_managed(DEBIAN_PYTHON) or not tools.find("git"),
                    reason="needs Debian's own python3 (PEP 668) at /usr/bin/python3 and git")
def test_first_setup_command_works_on_debians_own_python(tmp_path):
    clone = _copy_of_the_repository(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"  # python3 is Debian's
    done = subprocess.run(["sh", "-c", setup_commands()[0]], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "jobs completed" in done.stdout and "118 / 118" in done.stdout
    assert (clone / ".venv" / "bin" / "elastiq").exists()


def _overlay_script(upper: Path, body: str) -> str:
    """Mount a private copy-on-write view of the trixie root (nothing reaches the root itself)
    and run ``body`` (sh) in it; ``$M`` is the mount point."""
    work, merged = upper.parent / "work", upper.parent / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    return (f"set -e; M={merged}; mount -t overlay overlay -o lowerdir={TRIXIE},"
            f"upperdir={upper},workdir={work} $M; mount -t proc proc $M/proc; "
            f"cp /etc/resolv.conf $M/etc/resolv.conf; mkdir -p $M/src/tools; "
            f"cp {ROOT}/tools/venv.sh $M/src/tools/; {body}")


@pytest.mark.daemons
@pytest.mark.timeout(600)
@pytest.mark.skipif(os.geteuid() != 0 or not tools.find("unshare")
                    or not (TRIXIE / ".elastiq-provisioned").exists(),
                    reason="needs root, unshare and the provisioned Debian trixie root")
def test_setup_script_on_a_fresh_debian_without_python3_venv(tmp_path):
    # the lower root has no python3-venv: a plain venv fails there, as on a fresh Debian
    body = ("chroot $M python3 -m venv /tmp/plain >/dev/null 2>&1 && echo PLAIN-VENV-WORKED; "
            # as a user: the command to run is printed, nothing else happens
            "chroot --userspec=nobody:nogroup $M sh -c 'cd /tmp && sh /src/tools/venv.sh pip'"
            " || echo USER-EXIT=$?; "
            # as root: python3-venv is installed with apt-get, then the venv is made and used
            "chroot $M sh -c 'cd /src && sh tools/venv.sh --no-index pip && echo ROOT-OK "
            "&& .venv/bin/python -c \"import sys; print(sys.prefix)\" "
            "&& dpkg-query -W -f=\"\\${Status}\\n\" python3-venv'")
    done = subprocess.run(["unshare", "-m", "sh", "-c", _overlay_script(tmp_path / "up", body)],
                          capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "PLAIN-VENV-WORKED" not in out
    assert "USER-EXIT=1" in out and "install python3-venv python3.13-venv first" in out
    assert "ROOT-OK" in out and "/src/.venv" in out and "install ok installed" in out


def test_readme_simulator_examples_run_from_a_clone(tmp_path):
    block = README[README.index("## Try it: the simulator"):]
    block = block[block.index("```sh\n") + 6:block.index("```\n\n")]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert any("--trace" in c for c in commands)
    for command in commands:
        argv = shlex.split(command.replace("/tmp/sim", str(tmp_path / "sim")))
        assert argv[:3] == ["python3", "-m", "elastiq"]
        done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert done.returncode == 0, (command, done.stderr)
        for path in re.findall(r"--trace (\S+)", command):
            assert (ROOT / path).is_file() and path.startswith("examples/")


def test_the_shipped_trace_is_a_small_excerpt_with_its_attribution():
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    jobs = [line for line in lines if line.strip() and not line.startswith(";")]
    assert 200 <= len(jobs) <= 500
    header = "\n".join(line for line in lines if line.startswith(";"))
    assert "Acknowledge: Emmanuel Medernach" in header
    assert "Parallel Workloads Archive" in header and "licence" in header
