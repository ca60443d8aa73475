"""The suite's warning policy (pyproject.toml, filterwarnings): a warning raised from our own
code fails the test that raised it; openstacksdk's own deprecation noise stays ignored."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["elastiq.runtime.tick", "ecm.wizard", "tests.support.world",
                                    "test_something"])
def test_a_warning_from_our_code_is_an_error(module):
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("deprecated call", DeprecationWarning, "x.py", 1, module=module)


def shown(*args, **kwargs) -> list:
    """The messages of the warning ``warnings.warn_explicit(*args, **kwargs)`` under the
    suite's filters (recorded, not raised)."""
    with warnings.catch_warnings(record=True) as seen:  # keeps the filters in force
        warnings.warn_explicit(*args, **kwargs)
    return [str(w.message) for w in seen]


def test_a_warning_from_elsewhere_is_not():
    assert shown("deprecated call", DeprecationWarning, "x.py", 1,
                 module="boto3.x") == ["deprecated call"]


def test_openstacksdks_own_noise_is_ignored():
    from openstack import warnings as os_warnings
    message = "The _compute_attributes method is deprecated for removal"
    assert shown(message, os_warnings.RemovedInSDK50Warning, "resource.py", 855,
                 module="openstack.resource") == []
    assert shown(message, DeprecationWarning, "resource.py", 855,
                 module="openstack.resource") == [message]  # only that category


def test_our_openstacksdk_look_ups_do_not_use_the_deprecated_default():
    """openstacksdk warns from its own module whoever calls ``find_*`` with ignore_missing
    left True, so the filters cannot tell our calls from its own: read the sources."""
    found = []
    for folder in ("elastiq", "ecm", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for call in re.finditer(r"\.(?:compute|image|network|identity|block_storage)\.find_\w+\((?P<args>[^()]*)\)", text):
                if "ignore_missing=False" not in call["args"]:
                    found.append(f"{path.relative_to(ROOT)}: {call[0]}")
    assert found == []
