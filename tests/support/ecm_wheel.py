"""The wheel of this checkout, built once per test process (ecm's own build, as the wizard's
default path does it), for tests that point ecm at a build instead of building each time."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from ecm import wheel


@functools.lru_cache(maxsize=None)
def own_wheel() -> wheel.Wheel:
    dest = Path(tempfile.mkdtemp(prefix="elastiq-test-wheel-"))
    atexit.register(shutil.rmtree, dest, True)
    return wheel.build(dest)
