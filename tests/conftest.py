# Shared pytest plugins.  EC2: fake cloud fixtures (moto server, fault proxy, configs).
# HTCondor: real pools from the provisioned trixie root (.ci/provision-htcondor-root.sh).
import os

import pytest

from tests.support import tools

pytest_plugins = ["tests.support.ec2_fixtures", "tests.support.condor_fixtures",
                  "tests.support.openstack_fixtures"]


def pytest_report_header(config):
    foreign = tools.foreign_path_entries()
    return [f"PATH outside the base system and {tools.own_bin()}: "
            + (", ".join(foreign) if foreign else "none")]


def pytest_configure(config):
    """In CI, a program found only on a developer's PATH must not make a test pass: refuse to
    run with PATH entries outside the base system folders and the project's environment (the
    README's test command sets exactly those)."""
    foreign = tools.foreign_path_entries()
    if os.environ.get("CI") == "true" and foreign:
        raise pytest.UsageError(
            "CI=true: PATH holds folders outside the base system and the project's environment "
            f"({', '.join(foreign)}): run the README's test command, which sets PATH")
