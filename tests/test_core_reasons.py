"""Reasons are data: a code and its parameters; the wording lives in one place.  These golden
tests pin the wording of a few reasons as logged; every other test asserts codes."""
from __future__ import annotations

import pytest

from elastiq.core.reasons import Code, Reason, ReasonCode
from elastiq.sim.peers.views import AutoscalerCode, CobaldCode, LegacyCode

R = Reason.of


@pytest.mark.parametrize("reason,text", [
    (R(Code.JOBS_WAITING, jobs=5, held=40.0, wait=40.0, booting=1, alive=2, max_vms=5),
     "5 jobs waiting 40 s >= 40 s, 1 VM booting, 2/5 VMs"),
    (R(Code.MIN_VMS, alive=0, min_vms=2, booting=0, max_vms=5),
     "0 VMs < min_vms 2, 0/5 VMs"),
    (R(Code.MIN_VMS, alive=1, min_vms=3, jobs=1, held=60.0, wait=40.0, booting=2, max_vms=5),
     "1 VMs < min_vms 3, 1 job waiting 60 s >= 40 s, 2 VMs booting, 1/5 VMs"),
    (R(Code.JOBS_WAITING, jobs=1), "1 job waiting"),  # a cancelled drain's
    (R(Code.IDLE, idle=612.4, timeout=600.0, basis=R(Code.IDLE_TIMEOUT_MAX)),
     "idle for 612 s >= 600 s (idle_timeout_max_s)"),
    (R(Code.NOT_JOINED, deploy=600.0), "not joined the pool 600 s after launch"),
    (R(Code.CLAIMED, ids=("i-1", "i-2"), cause=R(Code.LEFT_POOL, deploy=600.0)),
     "not terminating i-1, i-2 (left the pool more than 600 s ago): it has a claimed slot"),
    (R(Code.NO_SCALE_DOWN, cause=R(Code.COLLECTOR_RESTARTED, ago=30.2, count=2)),
     "no scale-down this tick: pool partial: the collector started 30 s ago and 2 worker(s)"
     " have not advertised since"),
    (R(Code.BACKOFF, count=2, failures=1, left=119.6),
     "launch of 2 held back: backing off after 1 failure for 120 s more"),
    (R(Code.HELD_BACK, ids=("i-1",), cause=R(Code.WORKER_ACCEPTS, worker="w1"),
       drained_instead=True),
     "terminate i-1 held back: its worker w1 accepts jobs; draining it instead"),
    (R(LegacyCode.JOBS_WAITING, jobs=7, threshold=0, wait=40.0),
     "7 jobs waiting above 0 for more than 40 s"),
])
def test_the_wording_of_a_few_reasons(reason, text):
    assert str(reason) == text


def test_the_key_leaves_out_elapsed_times_only():
    """What tells a repeated note from news: a longer wait is the same note; another count,
    or another cause of a nested reason, is news."""
    waiting = R(Code.WAITING, count=3, held=10.0, wait=40.0)
    assert waiting.key == R(Code.WAITING, count=3, held=25.0, wait=40.0).key
    assert waiting.key != R(Code.WAITING, count=4, held=10.0, wait=40.0).key
    doubt = R(Code.NO_SCALE_DOWN, cause=R(Code.COLLECTOR_RESTARTED, ago=5.0, count=2))
    assert doubt.key == R(Code.NO_SCALE_DOWN, cause=R(Code.COLLECTOR_RESTARTED, ago=50.0,
                                                       count=2)).key
    assert doubt.key != R(Code.NO_SCALE_DOWN, cause=R(Code.INCOMPLETE, problems="pool: down")).key


def test_parameters_are_data_in_any_order():
    reason = R(Code.NO_ROOM, count=2, max_vms=5, alive=5)
    assert reason == R(Code.NO_ROOM, alive=5, max_vms=5, count=2)
    assert reason["max_vms"] == 5 and hash(reason) == hash(R(Code.NO_ROOM, alive=5, max_vms=5,
                                                             count=2))
    with pytest.raises(KeyError):
        reason["missing"]


@pytest.mark.parametrize("codes", [Code, LegacyCode, AutoscalerCode, CobaldCode])
def test_each_code_is_a_short_label_and_names_its_own_volatile_parameters(codes):
    """A code's value is a Prometheus label (lower case, dashes); an enum never aliases two
    codes; a volatile parameter is one its template uses."""
    assert issubclass(codes, ReasonCode)
    assert len({c.value for c in codes}) == len(codes.__members__)
    for code in codes:
        assert code.value.replace("-", "").isalpha() and code.value == code.value.lower()
        for name in code.volatile:
            assert "{" + name in code.template
