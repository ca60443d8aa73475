"""What every Cloud and BatchSystem must do (the ports of ``elastiq/adapters/base.py``),
checked through their public methods on a working implementation: shared by the tests of each
adapter and of the test doubles, so that a new adapter is held to the same behaviour (a
``runtime_checkable`` isinstance check only sees method names)."""
from __future__ import annotations

import time
from typing import Callable, Tuple

from elastiq.model import ALIVE_STATES, InstanceState, Pool, Queue


def _nothing() -> None:
    pass


def check_cloud(cloud, cluster: str, settle: Callable[[], None] = _nothing,
                catch_up_s: float = 0.0, other=None) -> Tuple[str, ...]:
    """Launch two instances into a cloud with room for them, see them listed as ours (with
    the cloud's owner id, if it has one) and alive, terminate one (twice: idempotent) and see
    only that one go.  ``settle``: let the cloud's time pass (a no-op for a real API).
    ``catch_up_s``: how long a real cloud's listing may take to show the termination (Nova: a
    server deleted while it is being scheduled is listed as building a moment longer).
    ``other``: the same cloud and cluster for another owner id (a cloud taking an owner): the
    instance it launches is listed with its owner, and ``cloud`` refuses to terminate it.
    Returns the two ids."""
    before = {i.id for i in cloud.list_instances()}
    assert cloud.launch(0) == ()
    ids = cloud.launch(2)
    assert isinstance(ids, tuple) and len(set(ids)) == 2 and not before & set(ids), ids
    settle()
    listed = {i.id: i for i in cloud.list_instances()}
    assert all(i.cluster == cluster for i in listed.values()), listed
    owner = getattr(cloud, "owner", None)
    assert {listed[i].owner for i in ids} == {owner}, listed
    assert {listed[i].state in ALIVE_STATES for i in ids} == {True}, listed
    cloud.terminate([ids[0]])
    settle()
    cloud.terminate([ids[0]])  # idempotent
    settle()
    deadline = time.monotonic() + catch_up_s
    while True:
        after = {i.id: i.state for i in cloud.list_instances()}
        going = after.get(ids[0], InstanceState.GONE) in (InstanceState.SHUTTING_DOWN,
                                                          InstanceState.GONE)
        if going or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    assert going, after
    assert after[ids[1]] in ALIVE_STATES and before <= set(after), after
    cloud.terminate([])
    if other is not None:
        _check_other_owner(cloud, other, settle)
    shapes = cloud.describe_flavours([])  # NOT_SUPPORTED (None) or a mapping, empty here
    assert shapes is None or dict(shapes) == {}, shapes
    return ids


def _check_other_owner(cloud, other, settle: Callable[[], None]) -> None:
    assert cloud.owner and other.owner and other.owner != cloud.owner
    (theirs,) = other.launch(1)
    try:
        settle()
        assert {i.id: i.owner for i in cloud.list_instances()}[theirs] == other.owner
        cloud.terminate([theirs])  # not ours: refused
        settle()
        state = {i.id: i.state for i in other.list_instances()}[theirs]
        assert state in ALIVE_STATES, state
    finally:
        other.terminate([theirs])


def check_batch(batch, settle: Callable[[], None] = _nothing) -> str:
    """Read the queue and the whole pool, drain one accepting worker of a known instance and
    see it draining in the pool and in ``workers_of``, cancel the drain and see it accept
    again.  Returns the worker's name."""
    queue, pool = batch.queue(), batch.pool()
    assert isinstance(queue, Queue) and isinstance(pool, Pool)
    assert not queue.partial and not pool.partial
    worker = next(w for w in pool.workers if w.instance_id and not w.draining)

    def shown():
        (now,) = [w for w in batch.pool().workers if w.name == worker.name]
        found = batch.workers_of([worker.instance_id, "i-not-in-the-pool"])
        assert list(found) == [worker.instance_id] and found[worker.instance_id].name == worker.name
        assert found[worker.instance_id].draining is now.draining
        return now.draining

    assert shown() is False
    batch.drain(worker.name, "port contract")
    settle()
    assert shown() is True
    batch.cancel_drain(worker.name)
    settle()
    assert shown() is False
    return worker.name
