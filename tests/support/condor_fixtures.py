"""pytest fixtures for real HTCondor pools (tests/support/condor_pool.py).

Loaded through ``pytest_plugins`` in ``tests/conftest.py``.

- ``condor_pool``: one running pool (central manager + schedd, no startd) per test module;
- ``condor_pools``: a factory, ``condor_pools(fragments=[...], name=...)`` -> a new pool,
  stopped at the end of the test (for tests that need their own configuration).

Where no pool can run (not root, no provisioned root) they skip with the reason, unless
``ELASTIQ_REQUIRE_REAL_POOL=1`` (set by .ci/run): then a missing pool is a failure.
"""
from __future__ import annotations

from typing import Callable, Iterator, List

import pytest

from tests.support.condor_pool import CondorPool, unavailable
from tests.support.tools import skip_or_fail


def require_real_pool() -> None:
    """Skip (or fail, under ELASTIQ_REQUIRE_REAL_POOL=1) when no pool can run here."""
    skip_or_fail(unavailable(), "ELASTIQ_REQUIRE_REAL_POOL", "a real HTCondor pool")


@pytest.fixture(scope="module")
def condor_pool() -> Iterator[CondorPool]:
    require_real_pool()
    pool = CondorPool.start(name="module")
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def condor_pools() -> Iterator[Callable[..., CondorPool]]:
    require_real_pool()
    started: List[CondorPool] = []

    def start(**options) -> CondorPool:
        pool = CondorPool.start(**options)
        started.append(pool)
        return pool

    try:
        yield start
    finally:
        for pool in started:
            pool.stop()
