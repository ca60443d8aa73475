"""Which VMs to drain and which to terminate.

Nothing here runs unless the observation is complete (queue, pool and cloud all read, none
partial) and the pool is not in doubt (:func:`.wanted.pool_doubt`): a missing startd ad must
never look like an idle or vanished worker.

Terminated, each with its reason:
- instances the cloud reports in error (they are replaced through the normal scale-up);
- instances that never joined the pool within ``estimated_vm_deploy_time_s`` of their launch;
- instances whose worker left the pool more than ``estimated_vm_deploy_time_s`` ago;
- workers we drained that have no claimed slot any more;
- instances we already asked to terminate that the cloud still shows alive (idempotent retry).

Drained (never terminated directly): workers with no claimed slot for the idle timeout
(:func:`.wanted.idle_timeout`) since they were last seen busy (:func:`.wanted.idle_start`) and no job that can start on them
waiting, biggest first (their removal frees the most), then the longest idle, keeping ``min_vms``
alive counting the VMs already on their way out.  No drain while this tick launches.
Also drained, while no job that fits a worker waits for a new VM: workers under-used for ``consolidate_after_s``
(:mod:`.consolidate`), with a reason of their own.

The final guard: an instance whose worker has a claimed slot is never terminated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

from ..model import Drain, Lifecycle, Snapshot, Terminate
from .consolidate import consolidation_drains
from .lifecycle import Fleet, Member
from .params import Params
from .reasons import Code, Reason
from .wanted import idle_start, idle_timeout


@dataclass(frozen=True)
class ScaleDown:
    drains: Tuple[Drain, ...]
    terminates: Tuple[Terminate, ...]
    failures: int  # instances given up on (error, never joined): they count for the back-off
    notes: Tuple[Reason, ...]
    wake: Optional[float]
    consolidations: Tuple[Drain, ...] = ()  # drains of under-used workers (:mod:`.consolidate`)


def _incomplete_reason(snapshot: Snapshot) -> Reason:
    parts = list(snapshot.problems)
    if snapshot.queue is not None and snapshot.queue.partial:
        parts.append("queue partly read")
    if snapshot.pool is not None and snapshot.pool.partial:
        parts.append("pool partly read")
    for name in ("queue", "pool"):
        if getattr(snapshot, name) is None and not snapshot.problems:
            parts.append(f"{name} unreadable")
    return Reason.of(Code.INCOMPLETE, problems="; ".join(parts) or "observation incomplete")


def scale_down(snapshot: Snapshot, fleet: Fleet, params: Params, now: float, *,
               launching: bool = False, keep: FrozenSet[str] = frozenset(),
               surplus_booting: int = 0, jobs_waiting: int = 0,
               doubt: Optional[Reason] = None, waiting=None) -> ScaleDown:
    """``launching``: this tick launches, so no worker is drained.  ``keep``: instances whose
    drain this tick cancels.  ``surplus_booting``: booting VMs no job needs any more.
    ``jobs_waiting``: jobs that fit a worker and that can still start (not *unstarted*): while there are
    any, idle workers are kept for them.  ``doubt``: why the pool is not trusted (no
    scale-down).  ``waiting``: the shapes of those jobs (None: no consolidation)."""
    if not snapshot.complete or doubt:
        why = doubt or _incomplete_reason(snapshot)
        return ScaleDown((), (), 0, (Reason.of(Code.NO_SCALE_DOWN, cause=why),), None)

    releasing, q = params.releasing, params.limits
    deploy = params.estimated_vm_deploy_time_s
    idle_for, idle_basis = idle_timeout(fleet, releasing)
    reasons: Dict[Reason, List[str]] = {}
    notes: List[Reason] = []
    wakes: List[float] = []
    failures = 0
    idle: List[Member] = []

    def terminate(member: Member, reason: Reason) -> None:
        reasons.setdefault(reason, []).append(member.id)

    for m in fleet.members:
        life, worker = m.record.lifecycle, m.worker
        if life is Lifecycle.ERROR:
            terminate(m, Reason.of(Code.IN_ERROR))
            failures += 1
        elif life is Lifecycle.TERMINATING:
            terminate(m, Reason.of(Code.STILL_ALIVE))
        elif m.booting:
            deadline = m.record.launched_at + deploy
            if now >= deadline:
                terminate(m, Reason.of(Code.NOT_JOINED, deploy=deploy))
                failures += 1
            else:
                wakes.append(deadline)
        elif worker is None:  # joined once, not in the pool now
            missing = m.record.missing_since
            deadline = (missing if missing is not None else m.record.since) + deploy
            if now >= deadline:
                terminate(m, Reason.of(Code.LEFT_POOL, deploy=deploy))
            else:
                wakes.append(deadline)
        elif life is Lifecycle.DRAINING:
            if m.id in keep:  # its drain is cancelled this tick: nothing to say or do
                continue
            if worker.busy:
                notes.append(Reason.of(Code.DRAINING_BUSY, worker=worker.name,
                                       slots=worker.running_jobs))
            else:
                terminate(m, Reason.of(Code.DRAINED))
        elif not worker.busy and not worker.draining and (start := idle_start(m)) is not None:
            if now - start >= idle_for:
                idle.append(m)
            else:
                wakes.append(start + idle_for)

    _cancel_surplus(fleet, reasons, surplus_booting, q.min_vms)
    if idle and (launching or jobs_waiting):
        notes.append(Reason.of(Code.KEPT_LAUNCHING, count=len(idle)) if launching else
                     Reason.of(Code.KEPT_FOR_JOBS, count=len(idle), jobs=jobs_waiting))
        idle = []
    drains = _choose_drains(idle, fleet, reasons, q.min_vms, (idle_for, idle_basis), now, notes)
    consolidations: Tuple[Drain, ...] = ()
    if (releasing.consolidate_below > 0 and not launching and waiting is not None
            and any(m.record.underused_since is not None for m in fleet.members)):
        leaving = _leaving(fleet, reasons) | {d.instance_id for d in drains}
        allowed = max(0, fleet.alive - len(leaving) - q.min_vms)
        consolidations = consolidation_drains(
            fleet, leaving, allowed, releasing.consolidate_below, releasing.consolidate_after_s,
            now, wakes, waiting)
    terminates = _guarded(reasons, snapshot, notes)
    return ScaleDown(drains, terminates, failures, tuple(notes), min(wakes) if wakes else None,
                     consolidations)


def _leaving(fleet: Fleet, reasons: Dict[Reason, List[str]]) -> set:
    leaving = {i for ids in reasons.values() for i in ids}
    return leaving | {m.id for m in fleet.members if m.record.lifecycle is Lifecycle.DRAINING}


def _cancel_surplus(fleet: Fleet, reasons: Dict[Reason, List[str]], surplus: int, min_vms: int) -> None:
    """Terminate the newest booting VMs no job needs any more (they run no job yet)."""
    if surplus <= 0:
        return
    leaving = _leaving(fleet, reasons)
    candidates = [m for m in fleet.members if m.booting and m.listed and m.id not in leaving]
    candidates.sort(key=lambda m: (-m.record.launched_at, m.id))
    allowed = max(0, fleet.alive - len(leaving) - min_vms)
    for m in candidates[: min(surplus, allowed)]:
        reasons.setdefault(Reason.of(Code.UNNEEDED), []).append(m.id)


def _choose_drains(idle, fleet, reasons, min_vms, timeout, now, notes) -> Tuple[Drain, ...]:
    idle_for, basis = timeout
    if not idle:
        return ()
    leaving = _leaving(fleet, reasons)
    allowed = max(0, fleet.alive - len(leaving) - min_vms)
    if allowed < len(idle):
        notes.append(Reason.of(Code.KEPT_MIN_VMS, count=len(idle) - allowed, min_vms=min_vms))
    idle.sort(key=lambda m: (-m.worker.cpus, -m.worker.memory_mb, idle_start(m)))
    return tuple(
        Drain(m.worker.name, m.id,
              Reason.of(Code.IDLE, idle=now - idle_start(m), timeout=idle_for, basis=basis))
        for m in idle[:allowed]
    )


def _guarded(reasons: Dict[Reason, List[str]], snapshot: Snapshot, notes: List[Reason]) -> Tuple[Terminate, ...]:
    if not reasons:
        return ()
    claimed = {w.instance_id for w in snapshot.pool.workers if w.busy}
    claimed |= {w.instance_id for w in snapshot.pool.workers if w.name in snapshot.queue.running_on}
    out = []
    for reason, ids in reasons.items():
        kept = [i for i in ids if i in claimed]
        if kept:
            notes.append(Reason.of(Code.CLAIMED, ids=tuple(kept), cause=reason))
        ids = tuple(i for i in ids if i not in claimed)
        if ids:
            out.append(Terminate(ids, reason))
    return tuple(out)
