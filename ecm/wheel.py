"""The wheel of the running ecm, for the master to install: exactly this elastiq, whatever way
it was installed here.

* From a source checkout (``python3 ecm.py``, or an editable install): the tree is copied and
  built with ``pip wheel``.  Without build isolation when the local setuptools can make wheels
  (setuptools >= 70.1, or an older one with the ``wheel`` package), so nothing is downloaded;
  otherwise pip fetches the build backend from its configured index, as the set-up's own
  ``pip install .`` did.
* From a regular install (``sh tools/venv.sh .``, then ``.venv/bin/ecm``): there is no source
  tree, and none is needed: the installed files, checked against the hashes pip recorded
  when it installed them, are packed back into the wheel they came from.

A failure names its cause (pip's own error lines), never just "see above".
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import List, Tuple

from elastiq import __version__ as OWN_VERSION

SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: What a wheel built from the source tree needs (pyproject.toml's packages and data).
_TREE = ("pyproject.toml", "README.md", "elastiq", "ecm", "slave_files", "systemd")
#: Files pip adds to an installed distribution that are not part of its wheel.
_INSTALLER_FILES = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")
#: Every file of a repacked wheel gets this date, so the same install gives the same wheel.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_PIP_NOISE = re.compile(r"^\s*(\[notice\]|hint: See above|note: This error originates)")
_ERROR_LINE = re.compile(r"(error|ERROR)\b:? |[A-Za-z_][\w.]*(Error|Exception): ")
_GENERIC = re.compile(r"subprocess-exited-with-error|metadata-generation-failed|"
                      r"^ERROR: Exception:$|Failed building wheel|legacy-install-failure")


class WheelError(ValueError):
    pass


@dataclass(frozen=True)
class Wheel:
    """A wheel file (its name is ``path.name``) and the sha256 the master checks it by."""

    path: Path
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_checkout(root: Path = SOURCE_ROOT) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "elastiq").is_dir()


def own_wheel(dest: Path, root: Path = SOURCE_ROOT) -> Wheel:
    """The wheel of the running ecm in ``dest``: built from its checkout, else repacked from
    its installed distribution (see the module docstring)."""
    return build(dest, root) if is_checkout(root) else repack_installed(dest)


# ----------------------------------------------------------------------------- from a checkout


def local_backend_builds_wheels() -> bool:
    """Whether the setuptools next to ecm can build a wheel without downloading anything."""
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return False
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers >= (70, 1):  # bdist_wheel is part of setuptools since 70.1
        return True
    try:
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return numbers >= (64,)


def build(dest: Path, root: Path = SOURCE_ROOT) -> Wheel:
    """Build the wheel of the checkout ``root`` (copied first, so the checkout gets no build/
    debris and stale build output never enters the wheel)."""
    isolated = not local_backend_builds_wheels()
    with tempfile.TemporaryDirectory(prefix="ecm-wheel-") as tmp:
        tree = Path(tmp) / "src"
        for name in _TREE:
            src = root / name
            if src.is_dir():
                shutil.copytree(src, tree / name, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.pyc", "*.egg-info"))
            elif src.is_file():
                tree.mkdir(exist_ok=True)
                shutil.copy2(src, tree / name)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "-w", str(dest), str(tree)]
        if not isolated:
            cmd.insert(5, "--no-build-isolation")
        result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"elastiq-{OWN_VERSION}-*.whl"))
    if result.returncode != 0 or not wheels:
        how = ("pip fetched the build backend (setuptools) from its index: none is installed "
               "here that builds wheels" if isolated else "with the setuptools installed here")
        raise WheelError(f"building the elastiq wheel of {root} failed ({how}); pip said:\n"
                         + cause(result.stdout + "\n" + result.stderr))
    return Wheel(wheels[0], sha256_of(wheels[0]))


def cause(output: str, lines: int = 12) -> str:
    """The lines of pip's (or its build backend's) output that say what went wrong, indented:
    the specific error lines and exceptions (``error: invalid command 'bdist_wheel'``), else
    the last lines.  pip's generic summaries and pointers ("See above") are left out."""
    kept = [line.strip() for line in output.splitlines()
            if line.strip() and not _PIP_NOISE.match(line)]
    specific = [line for line in kept if _ERROR_LINE.match(line) and not _GENERIC.search(line)]
    chosen = list(dict.fromkeys(specific))[-lines:] or kept[-lines:]
    return "\n".join(f"  {line}" for line in chosen) or "  (no output)"


# ----------------------------------------------------------------------------- from an install


def repack_installed(dest: Path, name: str = "elastiq") -> Wheel:
    """Pack the installed distribution ``name`` (which must be this ecm's, unchanged since
    pip installed it) back into its wheel."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise WheelError(_no_source(f"no {name} distribution is installed")) from None
    if dist.version != OWN_VERSION:
        raise WheelError(_no_source(f"the installed {name} is {dist.version}, this ecm is "
                                    f"{OWN_VERSION}"))
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        raise WheelError(_no_source("it is an editable install whose source tree is gone"))
    files = _packed_files(dist)
    info = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.dist-info"
    wheel_path = dest / f"{name}-{dist.version}-py3-none-any.whl"
    record: List[str] = []
    with zipfile.ZipFile(wheel_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, data in files:
            archive.writestr(zipfile.ZipInfo(relative, _ZIP_DATE), data)
            record.append(f"{relative},sha256={_b64_digest(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", _ZIP_DATE),
                         "\n".join(record) + "\n")
    return Wheel(wheel_path, sha256_of(wheel_path))


def _packed_files(dist: metadata.Distribution) -> List[Tuple[str, bytes]]:
    """``(path in the wheel, content)`` of every file pip installed from the wheel, each one
    checked against its hash in RECORD."""
    wheel_info = dist.read_text("WHEEL") or ""
    if "Tag: py3-none-any" not in wheel_info:
        raise WheelError(_no_source("the installed distribution is not a py3-none-any wheel"))
    out = []
    for entry in dist.files or ():
        relative = entry.as_posix()
        parts = relative.split("/")
        if relative.startswith("..") or "__pycache__" in parts or relative.endswith(".pyc"):
            continue  # scripts made by pip, byte code compiled by pip
        if parts[0].endswith(".dist-info") and parts[-1] in _INSTALLER_FILES:
            continue
        data = Path(dist.locate_file(entry)).read_bytes()
        if entry.hash is None or entry.hash.mode != "sha256" or \
                entry.hash.value != _b64_digest(data):
            raise WheelError(_no_source(f"the installed {relative} is not the file pip "
                                        "installed (changed since)"))
        out.append((relative, data))
    if not out:
        raise WheelError(_no_source("pip recorded no files for it"))
    return out


def _b64_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _no_source(why: str) -> str:
    return (f"cannot make the wheel of this ecm: it does not run from a source checkout and "
            f"{why}.  Run ecm from the checkout (python3 ecm.py), reinstall it "
            f"(sh tools/venv.sh . in the checkout), or pass --elastiq-source with the wheel "
            f"file of elastiq {OWN_VERSION}")

