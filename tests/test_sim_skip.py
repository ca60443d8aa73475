"""What only a replay needs (elastiq/sim/skip.py): the agenda arithmetic over the daemon's
Agenda, and the observer noting a skipped tick's listing."""
from elastiq.core import get_policy
from elastiq.runtime.scheduler import Agenda
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from elastiq.sim import skip
from elastiq.sim.skip import ReplayObserver
from tests.support.world import make_config, world


def test_skipped_ticks_and_the_tick_that_last_served_each_check():
    agenda = Agenda((("queue", 30), ("errors", 10)), start=0.0)
    for now in (10, 20, 30):
        agenda.take(now)  # next: errors at 40, queue at 60
    assert skip.tick_at_or_after(agenda, 41) == 50 and skip.last_tick_before(agenda, 60) == 50
    assert skip.last_tick_before(agenda, 40) is None  # the next tick (40) is not before 40
    # if the ticks up to 90 run: errors last served at 90, queue (due 60, 90) at 90 too
    assert skip.last_served(agenda, 90) == {"queue": 90, "errors": 90}
    assert skip.last_served(agenda, 80) == {"queue": 60, "errors": 80}


def test_a_listing_noted_as_read_again_is_reused_from_then(tmp_path):
    """What a tick the simulator skips leaves behind: the listing counts as read at that time
    (a later queue check reuses it), and the listing is the cloud's own."""
    clock, cloud, batch = world()
    rt = Runtime(make_config(tmp_path), get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "state")), clock=clock, observer_class=ReplayObserver)
    rt.tick("vms")
    age = rt.config.elastiq.list_vms_every_s
    clock.advance(age)
    rt.observer.relisted(clock.now)
    assert cloud.list_calls == 2
    clock.advance(age - 1)
    rt.tick("queue")
    assert cloud.list_calls == 2  # younger than list_vms_every_s since the note
    clock.advance(1)
    rt.tick("queue")
    assert cloud.list_calls == 3
