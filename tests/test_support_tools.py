"""How the tests find programs (tests/support/tools.py): the project's environment first,
whatever PATH says, and which PATH entries CI refuses."""
from __future__ import annotations

import os

from tests.support import tools


def test_shellcheck_comes_from_the_projects_environment_even_off_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert tools.find("shellcheck") == str(tools.own_bin() / "shellcheck")
    assert tools.find("bash") is None  # PATH is still asked, after the environment


def test_entries_outside_the_base_system_and_the_environment_are_named():
    path = os.pathsep.join(["/usr/bin", "/opt/tools/bin", str(tools.own_bin()), "/bin",
                            "/usr/local/bin"])
    assert tools.foreign_path_entries(path) == ["/opt/tools/bin", "/usr/local/bin"]
