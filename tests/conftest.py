# Shared pytest plugins.  EC2: fake cloud fixtures (moto server, fault proxy, configs).
# HTCondor: real pools from the provisioned trixie root (.ci/provision-htcondor-root.sh).
import os

import pytest

from tests.support import tools

pytest_plugins = ["tests.support.ec2_fixtures", "tests.support.condor_fixtures",
                  "tests.support.openstack_fixtures", "tests.support.sigterm_teardown"]


#: Test tiers (markers), fastest first: ``unit`` runs in this process on our code alone (pure
#: code, captured ads, test doubles: ``pytest -m unit`` takes well under a minute); ``local``
#: starts processes on this machine (the moto server, our own commands, pip, pexpect);
#: ``daemons`` runs real HTCondor daemons (and podman) from the provisioned trixie root;
#: ``cloud`` the real OpenStack.  A test is in the tier of the fixtures it uses, or of the
#: marker its module declares (``pytestmark = pytest.mark.local``), else in ``unit``.
TIER_FIXTURES = {
    "cloud": {"openstack_cloud"},
    "daemons": {"condor_pool", "condor_pools"},
    "local": {"moto_server", "moto", "moto_image", "ec2_world", "ec2_config", "fault_proxy"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(item.fixturenames)
        tier = next((name for name, fixtures in TIER_FIXTURES.items()
                     if item.get_closest_marker(name) or used & fixtures), "unit")
        item.add_marker(tier)


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
