"""Where the master gets elastiq from: exactly the version of the running ecm, or nothing.

``--elastiq-source`` takes one of three shapes; anything else (a bare name, another version, an
unpinned branch) is refused before anything is written:

* default, or a local wheel file: a wheel of the running ecm (built from its source tree, or
  the given ``elastiq-<own version>-*.whl``) is put in a private bucket of the cloud's object
  store through the same credentials (S3 API: ``S3_URL`` of ec2rc.sh, or AWS S3), and the master
  installs it from a presigned URL pinned by its sha256 (``elastiq @ URL#sha256=...``);
* ``elastiq==<own version>``: the wizard checks with ``pip index versions`` that the index
  (``--index-url``, else pip's configuration) serves that version; the master uses that index;
* ``git+https://...@<40-hex commit>``: a VCS URL pinned to a commit.

The master's install step checks that the version it installed is the wizard's.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from elastiq import __version__ as OWN_VERSION

from .wheel import Wheel, own_wheel, sha256_of

_PIN = re.compile(r"elastiq\s*==\s*([A-Za-z0-9.+!_-]+)")
_VCS = re.compile(r"git\+https://[^\s@'\"\\#]+@([0-9a-f]{40})(#egg=elastiq)?")
_STAGED = re.compile(r"elastiq @ https?://\S+#sha256=[0-9a-f]{64}")
WHEEL_NAME = re.compile(r"elastiq-([^-]+)-py3-none-any\.whl")


class SourceError(ValueError):
    pass


def problem(spec: str, version: str = OWN_VERSION) -> Optional[str]:
    """Why ``spec`` (what the master's pip installs) is not pinned to ``version`` (None: it is).
    Pure: the checks that need the network are :func:`check_index` and the staging."""
    pin = _PIN.fullmatch(spec.strip())
    if pin:
        return None if pin.group(1) == version else (
            f"elastiq=={pin.group(1)} is not the version of this ecm ({version}): the master "
            f"must run the elastiq that wrote it (elastiq=={version})")
    if _VCS.fullmatch(spec) or _STAGED.fullmatch(spec):
        return None
    if spec.startswith("git+"):
        return "a VCS URL must be git+https://HOST/PATH@<full 40-hex commit id> (no branch or tag)"
    return (f"expected elastiq=={version}, git+https://...@<commit>, or a wheel file to stage "
            f"(got {spec!r}; a bare name is not pinned)")


def is_pin(spec: str) -> bool:
    """``elastiq==VERSION``: the shape whose index :func:`check_index` asks."""
    return _PIN.fullmatch(spec.strip()) is not None


def local_wheel(path: str, version: str = OWN_VERSION) -> Wheel:
    """A wheel file the user points at: it must be this ecm's version."""
    found = WHEEL_NAME.fullmatch(os.path.basename(path))
    if not found:
        raise SourceError(f"{path}: not an elastiq wheel (elastiq-VERSION-py3-none-any.whl)")
    if found.group(1) != version:
        raise SourceError(f"{path}: elastiq {found.group(1)} is not the version of this ecm "
                          f"({version})")
    if not os.path.isfile(path):
        raise SourceError(f"{path}: no such file")
    return Wheel(Path(path), sha256_of(Path(path)))


def staged_spec(url: str, wheel: Wheel) -> str:
    return f"elastiq @ {url}#sha256={wheel.sha256}"


Runner = Callable[..., subprocess.CompletedProcess]


def check_index(version: str, index_url: Optional[str], run: Runner = subprocess.run) -> None:
    """Raise :class:`SourceError` unless the index serves ``elastiq==version`` (asked with
    ``pip index versions``, so pip's own configuration applies when no ``index_url``)."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", "elastiq", "--pre"]
    if index_url:
        cmd += ["--index-url", index_url]
    where = index_url or "pip's configured index"
    try:
        result = run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise SourceError(f"{where} did not answer within 120 s") from None
    listed = re.search(r"Available versions:\s*(.*)", result.stdout or "")
    versions = {v.strip() for v in listed.group(1).split(",")} if listed else set()
    if version not in versions:
        raise SourceError(
            f"{where} does not serve elastiq=={version}"
            + (f" (it has: {', '.join(sorted(versions))})" if versions else "")
            + ": publish it there, or leave --elastiq-source out to stage this ecm's own wheel")


PLACEHOLDER = f"elastiq @ https://staged.invalid/{'x' * 400}#sha256={'0' * 64}"
#: Presigned URLs of the staged wheel are valid this long (SigV4's maximum): boot the master
#: within it, or run ecm again.
STAGE_EXPIRY_S = 7 * 86400


def kind(spec: Optional[str]) -> str:
    """"build" (default: this ecm's wheel), "wheel" (a file to stage) or "spec" (checked)."""
    if spec is None:
        return "build"
    if spec.endswith(".whl"):
        local_wheel(spec)
        return "wheel"
    unpinned = problem(spec)
    if unpinned:
        raise SourceError(unpinned)
    return "spec"


@dataclass(frozen=True)
class Staged:
    """A wheel put in the cloud's object store: the master's pip spec and what was done."""

    spec: str
    wheel: Wheel
    bucket: str
    key: str
    bucket_created: bool
    size: int
    #: When the presigned URL stops working (seconds since the epoch).
    expires_at: float


def stage(cloud, wheel_file: Optional[str], bucket: Optional[str], cluster_name: str,
          progress, now: float) -> Staged:
    """Build this ecm's wheel (or take ``wheel_file``), put it in the cloud's object store and
    return the master's pip spec (presigned URL pinned by sha256) with what was done.
    ``progress(text)`` is a context manager shown while a step runs; :class:`ecm.wheel.WheelError`
    when the wheel cannot be made."""
    with tempfile.TemporaryDirectory(prefix="ecm-") as tmp:
        if wheel_file:
            wheel = local_wheel(wheel_file)
        else:
            with progress(f"Building the wheel of this ecm (elastiq {OWN_VERSION})"):
                wheel = own_wheel(Path(tmp))
        endpoint = cloud.endpoint
        owner = hashlib.sha256((endpoint.access_key or endpoint.shown).encode()).hexdigest()
        bucket = bucket or f"elastiq-stage-{owner[:12]}"
        key = f"{cluster_name}/{wheel.path.name}"
        with progress(f"Staging {wheel.path.name} in bucket {bucket}"):
            url, created = cloud.stage_file(str(wheel.path), bucket, key, STAGE_EXPIRY_S)
        size = wheel.path.stat().st_size
    return Staged(staged_spec(url, wheel), wheel, bucket, key, created, size,
                  now + STAGE_EXPIRY_S)
