"""The runtime tests' cloud and batch doubles (tests/support/world.py) keep the ports'
promises (tests/support/ports.py), as the real adapters do: what the runtime tests prove
rests on them."""
from __future__ import annotations

from tests.support.ports import check_batch, check_cloud
from tests.support.world import world


def test_the_doubles_behave_as_the_ports_say():
    clock, cloud, batch = world()
    check_cloud(cloud, "test", settle=lambda: clock.advance(1))
    owned = cloud.sharing("ours")
    check_cloud(owned, "test", settle=lambda: clock.advance(1), other=owned.sharing("theirs"))
    clock.advance(batch.join_after_s)  # the instance left joins the pool
    check_batch(batch, settle=lambda: clock.advance(1))
