"""The one entry point of the default policy: ``plan(snapshot, fleet, memory, params, now,
catalogue)`` (the fleet: the runtime's lifecycle records brought up to the observation, see
:mod:`.records`; the params: the settings the core reads, see :mod:`.params`; the catalogue:
the worker VMs' shape and flavours, see :class:`~elastiq.model.Catalogue`).

Pure: the same arguments always give the same Plan and Memory.  What it guarantees:

- never plans more alive instances of ours than ``max_vms`` (booting and requested included),
  nor more cores or memory than ``max_cores``/``max_memory_mb`` (:mod:`.quota`);
- never terminates an instance whose worker has a claimed slot; idle workers are drained
  first and terminated only once drained and unclaimed;
- never drains or terminates anything unless queue, pool and cloud were all read completely;
- makes no decision at all when the cloud could not be listed;
- launches only for jobs that can run on a worker VM, after they waited long enough, and
  not for jobs that did not start next to an idle worker they fit (see :mod:`.wanted`);
- drains a worker no sooner than the idle timeout (:func:`.wanted.idle_timeout`, at most
  ``idle_timeout_max_s``) after it was last seen busy, and cancels
  a drain only for jobs that would keep the worker from being drained (one rule, both sides);
- while no job that fits a worker waits for a new VM, drains workers under-used for ``consolidate_after_s``
  (:mod:`.consolidate`): their jobs finish, none is killed;
- scales nothing down from a pool that lost workers the queue says run jobs, or right after
  the collector restarted;
- every action and every note (why nothing more was done) carries a typed
  :class:`~.reasons.Reason`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..model import Catalogue, Lifecycle, LaunchOutcome, Memory, Plan, Snapshot, Worker
from . import demand as demand_mod
from . import mix, quota
from .lifecycle import Fleet
from .params import Params
from .reasons import Code, Reason
from .scaledown import scale_down
from .scaleup import scale_up
from .wanted import pool_doubt, release_unstarted, unstarted_note


def initial_memory() -> Memory:
    return Memory()


def backoff_delay(failures: int, params: Params) -> float:
    """Exponential back-off after ``failures`` consecutive failures, capped."""
    e = params.launching
    if failures <= 0:
        return 0.0
    return min(e.launch_backoff_s * 2 ** min(failures - 1, 30), e.launch_backoff_max_s)


def placeable(snapshot: Snapshot, params: Params, catalogue: Catalogue, now: float,
              unstarted=None) -> Optional[demand_mod.Placeable]:
    """The idle jobs sorted by shape (fresh: waiting less than ``idle_timeout_max_s``), those
    known not to start (``unstarted``) set apart; None when the queue is unreadable."""
    if snapshot.queue is None:
        return None
    return demand_mod.classify(snapshot.queue.idle, catalogue.cpus, catalogue.memory_mb,
                               now - params.releasing.idle_timeout_max_s, unstarted)


def quota_room(fleet: Fleet, params: Params, catalogue: Catalogue) -> quota.Room:
    """The room the quota leaves for new VMs, counting every alive VM of ours."""
    return quota.room_left(params.limits, catalogue, fleet.alive,
                           (m.flavour for m in fleet.members))


def compute_demand(jobs: Optional[demand_mod.Placeable], snapshot: Snapshot, fleet: Fleet,
                   params: Params, catalogue: Catalogue, booting: Optional[int] = None,
                   limit: Optional[int] = None,
                   room: Optional[quota.Room] = None,
                   sure_room_only: bool = False) -> Optional[demand_mod.Demand]:
    """Demand of the idle jobs given our fleet; None when queue or pool is unreadable.

    ``booting`` and ``limit`` default to the VMs booting now and the room left under the
    quota (``room``, by default :func:`quota_room`'s), plus draining workers, whose drain
    can be cancelled.  ``sure_room_only``: a worker the schedd says runs a job while its slot
    ad shows none (an ad older than the claim) counts as full, not free."""
    if jobs is None or snapshot.pool is None:
        return None
    n_jobs_per_vm = params.launching.n_jobs_per_vm
    accepting = [m.worker for m in fleet.members if m.accepting]
    if sure_room_only:
        accepting = [w for w in accepting if not _claimed_since_its_ad(w, snapshot)]
    if booting is None:
        booting = fleet.booting
    budget = None
    if limit is None:
        room = room or quota_room(fleet, params, catalogue)
        draining = [m for m in fleet.members if m.record.lifecycle is Lifecycle.DRAINING]
        if room.limits_shape:
            budget = room.plus(quota.shape_of(m.flavour, catalogue) for m in draining)
            limit = budget.holds((catalogue.cpus, catalogue.memory_mb))
        else:
            limit = room.vms + len(draining)
    if n_jobs_per_vm:
        return demand_mod.by_count(jobs, [w.running_jobs for w in accepting], booting,
                                   n_jobs_per_vm, limit)
    free = [(w.free_cpus, w.free_memory_mb) for w in accepting]
    flavours = mix.usable(catalogue.flavours)
    if flavours:
        names = [m.flavour for m in fleet.members if m.booting][:booting]
        return mix.by_flavours(jobs, free, names, flavours, budget.vms if budget else limit,
                               fleet.alive, params.limits.max_vms, budget)
    return demand_mod.by_shape(jobs, free, booting, catalogue.cpus, catalogue.memory_mb, limit)


def surplus_booting(jobs: Optional[demand_mod.Placeable], snapshot: Snapshot, fleet: Fleet,
                    params: Params, catalogue: Catalogue,
                    demand: Optional[demand_mod.Demand]) -> int:
    """How many booting VMs no waiting job needs any more (the jobs they were launched for
    found room on workers that freed up, or left the queue).  Only room the pool and the
    queue agree on counts: terminating a booting VM for room a job has just taken would
    launch another one at the next tick."""
    booting = fleet.booting
    if demand is None or not booting or demand.uncovered:
        return 0
    flavours = mix.usable(catalogue.flavours) if not params.launching.n_jobs_per_vm else ()
    if flavours:  # several sizes: the newest booting VMs that no job is packed into
        free = [(m.worker.free_cpus, m.worker.free_memory_mb) for m in fleet.members
                if m.accepting and not _claimed_since_its_ad(m.worker, snapshot)]
        on_way = [m for m in fleet.members if m.booting]
        listed = sorted((m for m in on_way if m.listed),  # oldest first
                        key=lambda m: (-m.record.launched_at, m.id), reverse=True)
        return mix.unneeded_booting(jobs, free, [m.flavour for m in on_way if not m.listed],
                                    [m.flavour for m in listed], flavours)
    needed = compute_demand(jobs, snapshot, fleet, params, catalogue, booting=0, limit=booting,
                            sure_room_only=True)
    return booting - needed.new_vms


def _claimed_since_its_ad(worker: Worker, snapshot: Snapshot) -> bool:
    """The schedd says a job runs on ``worker`` while its slot ad shows none: the ad predates
    the claim (the collector hears of it later), so its free room may be gone."""
    return worker.running_jobs == 0 and snapshot.queue is not None and \
        worker.name in snapshot.queue.running_on


def no_decision(snapshot: Snapshot) -> Reason:
    """The note of a tick without a cloud listing (no decision from missing data)."""
    return Reason.of(Code.NO_DECISION, problems="; ".join(snapshot.problems) or "cloud unreadable")


def plan(snapshot: Snapshot, fleet: Optional[Fleet], memory: Memory, params: Params, now: float,
         catalogue: Optional[Catalogue] = None):
    """Decide this tick.  Returns ``(Plan, Memory)``; see the module docstring.  ``fleet``
    None: the cloud could not be listed.  ``catalogue`` None: the configured one
    (``params.catalogue``: the ``vm`` section, one flavour)."""
    catalogue = catalogue or params.catalogue
    if fleet is None:
        return Plan(notes=(no_decision(snapshot),)), memory

    idle_max = params.releasing.idle_timeout_max_s
    failures = memory.failures
    if any(r.joined_at == now for r in fleet.records.values()):
        failures = 0  # a VM joined: launches work again

    draining = [m for m in fleet.members if m.record.lifecycle is Lifecycle.DRAINING and m.worker]
    draining.sort(key=lambda m: (-m.worker.free_cpus, m.id))
    jobs = placeable(snapshot, params, catalogue, now, memory.unstarted)
    unstarted = memory.unstarted
    if jobs is not None and snapshot.pool is not None:
        jobs, unstarted = release_unstarted(jobs, fleet, unstarted, idle_max, now)
    room = quota_room(fleet, params, catalogue)
    demand = compute_demand(jobs, snapshot, fleet, params, catalogue, room=room)
    up = scale_up(demand, fleet, draining, memory, params, now,
                  catalogue.flavours[0].name if catalogue.flavours else None, room, catalogue)
    down = scale_down(
        snapshot, fleet, params, now, launching=bool(up.launches),
        keep=frozenset(c.instance_id for c in up.cancel_drains),
        surplus_booting=surplus_booting(jobs, snapshot, fleet, params, catalogue, demand),
        jobs_waiting=jobs.waiting if jobs is not None else 0,
        doubt=pool_doubt(snapshot, fleet, now),
        waiting=tuple(jobs.shapes.items()) if jobs is not None else None)

    backoff_until = memory.backoff_until
    if down.failures:
        failures += down.failures
        backoff_until = max(backoff_until, now + backoff_delay(failures, params))

    actions = (up.cancel_drains + up.launches + down.drains
               + down.consolidations + down.terminates)
    wakes = [t for t in (up.wake, down.wake) if t is not None and t > now]
    new_memory = Memory(up.waiting_since, backoff_until, failures, unstarted)
    notes = (ended_notes(fleet, params.estimated_vm_deploy_time_s) + unstarted_note(jobs, idle_max)
             + up.notes + down.notes)
    return Plan(actions, notes, min(wakes) if wakes else None), new_memory


def ended_notes(fleet: Fleet, deploy_time_s: float) -> tuple:
    """Say once which instances ended or vanished without elastiq terminating them."""
    if not fleet.ended:
        return ()
    outside = tuple(i for i, r in fleet.ended if r.listed_at is not None)
    never = tuple(i for i, r in fleet.ended if r.listed_at is None)
    notes = ()
    if outside:
        notes += (Reason.of(Code.ENDED_OUTSIDE, ids=outside,
                            them="it" if len(outside) == 1 else "them"),)
    if never:
        notes += (Reason.of(Code.NEVER_LISTED, ids=never, deploy=deploy_time_s),)
    return notes


def record_launch(memory: Memory, outcome: LaunchOutcome, params: Params, now: float) -> Memory:
    """Fold the result of a Launch into memory: a launch that granted nothing because of an
    error starts or extends the back-off (the instances granted are the runtime's records,
    :func:`.records.launched`)."""
    if outcome.error is not None and not outcome.granted:
        failures = memory.failures + 1
        return replace(memory, failures=failures,
                       backoff_until=now + backoff_delay(failures, params))
    return memory
