"""The replay's agenda arithmetic (elastiq/sim/skip.py) over the daemon's Agenda."""
from elastiq.runtime.scheduler import Agenda
from elastiq.sim import skip


def test_skipped_ticks_and_the_tick_that_last_served_each_check():
    agenda = Agenda((("queue", 30), ("errors", 10)), start=0.0)
    for now in (10, 20, 30):
        agenda.take(now)  # next: errors at 40, queue at 60
    assert skip.tick_at_or_after(agenda, 41) == 50 and skip.last_tick_before(agenda, 60) == 50
    assert skip.last_tick_before(agenda, 40) is None  # the next tick (40) is not before 40
    # if the ticks up to 90 run: errors last served at 90, queue (due 60, 90) at 90 too
    assert skip.last_served(agenda, 90) == {"queue": 90, "errors": 90}
    assert skip.last_served(agenda, 80) == {"queue": 60, "errors": 80}
