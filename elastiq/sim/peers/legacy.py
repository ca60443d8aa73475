"""The original elastiq's algorithm (2014-2018), as a pure policy: a baseline of ``elastiq
simulate --policy legacy``, to compare elastiq's own policy against.  The daemon does not run
it: a site migrating from the original elastiq that wants its behaviour first would not get
it here either (the deviations below: other ports, tags, drains), nothing of its memory
outlives a restart, and what it does worse (idle hosts terminated without a drain, hosts
counted by a counter) is what elastiq's policy fixes.

Each call of :func:`plan` is one run of the original's ``check_queue`` (the daemon calls it
every ``check_queue_every_s``); ``check_vms`` and ``check_vm_errors`` run inside it at their
own cadence (``legacy_check_vms_every_s`` and ``list_vms_every_s``, the original's
``check_vms_every_s`` and ``check_vms_in_error_every_s``), and the per-VM events
the original queued at launch time fire when their deadline has passed.  So the wake-ups this
policy asks for (``Plan.next_check``) fall on its queue checks, one every
``check_queue_every_s`` from its first call, which the daemon runs anyway: a time-based
decision waits for the next one, at most ``check_queue_every_s`` (the original's own loop
looked at its timers every ``sleep_s``, here ``recheck_after_action_s``).

What it does, faithfully:

- **Queue** (every call): ``n = idle jobs - vms_allegedly_running * n_jobs_per_vm``, every
  idle job counted whatever its cpus or memory.  When ``n > waiting_jobs_threshold``, the
  time is remembered (``first_seen_above_threshold``); once it stays above for more than
  ``waiting_jobs_time_s``, ``ceil(n / n_jobs_per_vm)`` VMs are launched (capped so that our
  instances stay within ``max_vms``) and the remembered time is reset, whatever the outcome.
- **Allegedly running**: +1 per VM granted; -1 when its deadline
  (``estimated_vm_deploy_time_s`` after the launch) fires, and -1 per VM terminated by the
  idle scale-down (VMs that joined long ago included: the original's counting, floored at 0).
- **Deploy deadline** (``check_owned_instance``): at that deadline, a VM still listed by the
  cloud that is not among the hosts seen at the last VM check is terminated.
- **VM check**: per host, the number of claimed slots and since when it is unchanged; a
  host with no job whose count has not changed for more than ``idle_timeout_max_s`` (the
  original's ``idle_for_time_s``; the adaptive idle timeout is the default policy's) is
  terminated directly, *without draining*, in random order, keeping ``min_vms`` of the
  instances known to the pool; its timer is reset.  Then VMs are launched up to ``min_vms``
  counting joined instances plus allegedly running ones.
- **Error check**: instances in error are terminated and relaunched one for one.
- ``n_jobs_per_vm`` 0 (elastiq's "pack by cpu/memory") means the worker VM's cpus here.

Deviations, so that both policies run on the same ports and can be compared:

- hosts map to instances by ``Worker.instance_id``, not by IP address;
- the ``max_vms`` cap counts all our alive instances (requested, booting, running, error);
  the original counted the cloud's ``running`` ones (pending VMs were missed, so it could
  overshoot while VMs booted; its last version also subtracted the allegedly-running count);
- ``quota.max_cores``/``max_memory_mb`` (the original had only ``max_vms``) cap its launches
  as the default policy's (:mod:`.quota`);
- the threshold test is ``>`` as in most versions (its last version used ``>=``);
- terminations are assumed to succeed (the original retried a failed one 10 s later);
- the daemon looks at the pool before terminating and drains a worker that accepts jobs
  instead (a job may have been matched since the observation: the original killed it); such
  a host is terminated at the next VM check that finds it without a job (``drained``), not
  after another ``idle_timeout_max_s``, and not counted off the allegedly-running VMs twice;
- only instances with our cluster tag are seen (the original saw every VM of the tenant);
- the random order comes from a seeded generator held in memory, so the policy stays pure;
- a partial queue or pool counts as read (the original had no such notion); an unreadable
  one skips that check, as the original did.

Under 400 lines, a seventh of them this account of what is faithful and what deviates:
one algorithm, kept whole in one place so that it can be read against the original's.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Dict, FrozenSet, List, Mapping, Optional, TYPE_CHECKING, Tuple

from ...core.policy import BasePolicy
from ...core.quota import room_left, used_text
from ...core.reasons import Code, Reason
from ...model import (ALIVE_STATES, Catalogue, Instance, InstanceState, Launch, LaunchOutcome,
                      Plan, Pool, Snapshot, Terminate)
from .views import LegacyCode

if TYPE_CHECKING:  # annotations only
    from ...config import Config


@dataclass(frozen=True)
class HostStatus:
    """What the last VM check saw of one host: claimed slots and since when unchanged."""

    instance_id: Optional[str]
    jobs: int
    unchanged_since: float


@dataclass(frozen=True)
class LegacyMemory:
    """The original's state between ticks: its allegedly-running counter and the deadlines
    that decrement it (and check that the VM joined), the time demand was first seen above
    the threshold, the last VM check's view of the hosts, when the periodic checks are due,
    and the state of the random generator used to order idle hosts."""

    vms_allegedly_running: int = 0
    deadlines: Tuple[Tuple[float, str], ...] = ()  # (when, instance id) per launched VM, in order
    first_seen_above_threshold: Optional[float] = None
    hosts: Mapping[str, HostStatus] = field(default_factory=dict)
    next_vms_check: Optional[float] = None  # None: due now
    next_error_check: Optional[float] = None
    rng_state: int = 0
    queue_checks_from: Optional[float] = None  # the first call: its queue checks' rhythm
    drained: FrozenSet[str] = frozenset()  # drained instead of terminated: terminate when idle


#: The original elastiq's ``waiting_jobs_time_s``, used when the configuration leaves it unset.
ORIGINAL_WAITING_JOBS_TIME_S = 40.0


def waiting_time(configured: Optional[float]) -> float:
    return ORIGINAL_WAITING_JOBS_TIME_S if configured is None else configured


def initial_memory(seed: int = 0) -> LegacyMemory:
    return LegacyMemory(rng_state=seed)


def jobs_per_vm(config: Config, catalogue: Catalogue) -> int:
    return config.elastiq.n_jobs_per_vm or catalogue.cpus


class _Tick:
    """Working state of one plan() call."""

    def __init__(self, snapshot: Snapshot, memory: LegacyMemory, config: Config, now: float,
                 catalogue: Catalogue):
        self.m, self.config, self.now, self.catalogue = memory, config, now, catalogue
        self.allegedly = memory.vms_allegedly_running
        self.actions: List = []
        self.notes: List[Reason] = []
        # our instances by id (None: no listing), and those the cloud lists in error
        self.ours, self.in_error = _ours(snapshot.instances, config.elastiq.cluster_name)
        self.terminated: set = set()
        self.launched = 0

    def alive(self) -> int:
        if self.ours is None:
            return 0
        n = sum(1 for i in self.ours.values() if i.state in ALIVE_STATES and i.id not in self.terminated)
        return n + self.launched

    def _alive_flavours(self):
        """The flavours of the VMs :meth:`alive` counts (launched this tick: the configured)."""
        for i in (self.ours or {}).values():
            if i.state in ALIVE_STATES and i.id not in self.terminated:
                yield i.instance_type
        yield from [None] * self.launched

    def terminate(self, ids: List[str], reason: Reason) -> None:
        ids = [i for i in ids if i not in self.terminated]
        if ids:
            self.terminated.update(ids)
            self.actions.append(Terminate(tuple(ids), reason))

    def scale_up(self, wanted: int, reason: Reason) -> None:
        """``ec2_scale_up``: launch up to ``wanted``, within max_vms; nothing if no listing."""
        if wanted <= 0:
            return
        if self.ours is None:
            self.notes.append(Reason.of(LegacyCode.NO_LISTING, count=wanted))
            return
        q, vm = self.config.quota, self.catalogue
        room = room_left(q, vm, self.alive(), self._alive_flavours())
        count = min(wanted, room.holds((vm.cpus, vm.memory_mb)))
        if count <= 0:
            self.notes.append(Reason.of(LegacyCode.OVER_QUOTA, alive=self.alive(),
                                        max_vms=q.max_vms) if room.vms <= 0 else
                              Reason.of(Code.QUOTA, count=wanted, used=used_text(q, room)))
            return
        self.launched += count
        self.actions.append(Launch(count, reason))


_last_listing: tuple = (None, None, (None, ()))


def _ours(instances: Optional[Tuple[Instance, ...]], cluster: str):
    """(our instances by id, the ids of those in error) of a listing; (None, ()) without one.
    Read only.  The observer reuses a listing until the cloud is read again, so the last answer
    is kept: most ticks do not rebuild it."""
    global _last_listing
    if _last_listing[0] is instances and _last_listing[1] == cluster:
        return _last_listing[2]
    answer = (None, ())
    if instances is not None:
        ours = {i.id: i for i in instances if i.cluster == cluster}
        answer = ours, tuple(i.id for i in ours.values() if i.state is InstanceState.ERROR)
    _last_listing = (instances, cluster, answer)
    return answer


def plan(snapshot: Snapshot, memory: LegacyMemory, config: Config, now: float,
         catalogue: Optional[Catalogue] = None):
    """One check_queue tick of the original elastiq.  Returns ``(Plan, LegacyMemory)``;
    ``catalogue`` None: the configuration's own worker VM shape."""
    e = config.elastiq
    catalogue = catalogue or Catalogue.of(config.vm)
    tick = _Tick(snapshot, memory, config, now, catalogue)

    # change_vms_allegedly_running(-1) and check_owned_instance, both due at the deadline
    passed = 0
    for when, instance_id in memory.deadlines:
        if when > now:
            break
        passed += 1
        tick.allegedly = max(0, tick.allegedly - 1)
        instance = tick.ours.get(instance_id) if tick.ours is not None else None
        joined = any(h.instance_id == instance_id for h in memory.hosts.values())
        if instance is not None and instance.state in ALIVE_STATES and not joined:
            tick.terminate([instance_id], Reason.of(LegacyCode.NOT_JOINED,
                                                    deploy=e.estimated_vm_deploy_time_s))
    deadlines = memory.deadlines[passed:]

    next_error_check = memory.next_error_check
    if next_error_check is None or now >= next_error_check:
        next_error_check = _cadence(next_error_check, now, e.list_vms_every_s)
        if tick.ours is not None:
            errors = [i for i in tick.in_error if i not in tick.terminated]
            if errors:
                tick.terminate(errors, Reason.of(LegacyCode.IN_ERROR))
                tick.allegedly = max(0, tick.allegedly - len(errors))
                deadlines = tuple(d for d in deadlines if d[1] not in errors)
                tick.scale_up(len(errors), Reason.of(LegacyCode.REPLACE_ERROR, count=len(errors)))

    hosts, next_vms_check, rng_state = memory.hosts, memory.next_vms_check, memory.rng_state
    if snapshot.pool is not None and (next_vms_check is None or now >= next_vms_check):
        hosts, rng_state = _check_vms(snapshot, tick, rng_state)
        next_vms_check = _cadence(next_vms_check, now, e.legacy_check_vms_every_s)

    first_seen = memory.first_seen_above_threshold
    n_waiting = None
    if snapshot.queue is not None:
        per_vm = jobs_per_vm(config, catalogue)
        n_waiting = len(snapshot.queue.idle) - tick.allegedly * per_vm
        if n_waiting > e.waiting_jobs_threshold:
            if first_seen is None:
                first_seen = now
            elif now - first_seen > waiting_time(e.waiting_jobs_time_s):
                tick.scale_up(math.ceil(n_waiting / per_vm),
                              Reason.of(LegacyCode.JOBS_WAITING, jobs=n_waiting,
                                        threshold=e.waiting_jobs_threshold,
                                        wait=waiting_time(e.waiting_jobs_time_s)))
                first_seen = None
        else:
            first_seen = None
    else:
        tick.notes.append(Reason.of(LegacyCode.NO_QUEUE))

    drained = memory.drained
    if drained and tick.ours is not None:  # forget the gone and those terminated now
        drained = frozenset(i for i in drained if i in tick.ours and i not in tick.terminated)
    new = LegacyMemory(tick.allegedly, deadlines, first_seen, hosts, next_vms_check,
                       next_error_check, rng_state,
                       now if memory.queue_checks_from is None else memory.queue_checks_from,
                       drained)
    wake = _next_check(snapshot, tick, new, n_waiting, now)
    return Plan(tuple(tick.actions), tuple(tick.notes), wake), new


def _cadence(scheduled: Optional[float], now: float, every: float) -> float:
    """Next run of a periodic check that was due at ``scheduled`` and runs at ``now``: the
    cadence is kept, as if it had also run (with nothing to do) at calls that did not happen."""
    if scheduled is None:
        return now + every
    return _first_run_after(now, scheduled, every)


def _first_run_after(when: float, scheduled: float, every: float) -> float:
    """First run of a check due at ``scheduled`` (then every ``every``) strictly after ``when``."""
    if scheduled > when:
        return scheduled
    return scheduled + every * (math.floor((when - scheduled) / every) + 1)


def _check_vms(snapshot: Snapshot, tick: _Tick, rng_state: int):
    """``check_vms``: refresh host statuses, terminate idle hosts, keep min_vms."""
    e, q, now = tick.config.elastiq, tick.config.quota, tick.now
    old = tick.m.hosts
    hosts: Dict[str, HostStatus] = {}
    for w in snapshot.pool.workers:
        if tick.ours is not None and w.instance_id not in tick.ours:
            continue  # not one of our VMs: ignored
        prev = old.get(w.name)
        if prev is None or prev.jobs != w.running_jobs:
            hosts[w.name] = HostStatus(w.instance_id, w.running_jobs, now)
        elif prev.instance_id != w.instance_id:
            hosts[w.name] = HostStatus(w.instance_id, w.running_jobs, prev.unchanged_since)
        else:
            hosts[w.name] = prev  # unchanged

    drained = tick.m.drained
    idle = [n for n, h in hosts.items() if h.jobs == 0 and (
        now - h.unchanged_since > e.idle_timeout_max_s or h.instance_id in drained)]
    for name in idle:
        hosts[name] = replace(hosts[name], unchanged_since=now)
    known: List[str] = []
    if tick.ours is not None and (idle or q.min_vms >= 1):
        host_ids = {h.instance_id for h in hosts.values()}
        known = [i for i, inst in tick.ours.items()
                 if inst.state is InstanceState.RUNNING and i in host_ids and i not in tick.terminated]
    if idle and known:
        candidates = [hosts[n].instance_id for n in idle if hosts[n].instance_id in known]
        rng = random.Random(rng_state)
        rng.shuffle(candidates)
        rng_state = rng.getrandbits(32)
        chosen = candidates[: max(0, len(known) - q.min_vms)]
        if len(chosen) < len(candidates):
            tick.notes.append(Reason.of(LegacyCode.KEPT_MIN_VMS, count=len(candidates) - len(chosen),
                                        min_vms=q.min_vms))
        tick.terminate(chosen, Reason.of(LegacyCode.IDLE, idle_for=e.idle_timeout_max_s))
        tick.allegedly = max(0, tick.allegedly - sum(1 for i in chosen if i not in drained))
    if q.min_vms >= 1 and tick.ours is not None:
        running = sum(1 for i in known if i not in tick.terminated)
        tick.scale_up(q.min_vms - running - tick.allegedly,
                      Reason.of(LegacyCode.MIN_VMS, min_vms=q.min_vms))
    return hosts, rng_state


def _next_check(snapshot: Snapshot, tick: _Tick, m: LegacyMemory, n_waiting, now: float):
    """The first queue check at or after the earliest time a time-based condition of this
    policy can change (see Plan.next_check)."""
    e, q = tick.config.elastiq, tick.config.quota
    wakes = [m.deadlines[0][0]] if m.deadlines else []  # the first to pass
    if n_waiting is not None and n_waiting > e.waiting_jobs_threshold:
        wakes.append(m.first_seen_above_threshold + waiting_time(e.waiting_jobs_time_s)
                     if m.first_seen_above_threshold is not None else now + e.check_queue_every_s)
    if any(i not in tick.terminated for i in tick.in_error):
        wakes.append(m.next_error_check)
    vms_check = m.next_vms_check if m.next_vms_check is not None else now + e.check_queue_every_s
    if snapshot.pool is None:
        wakes.append(vms_check)
    else:
        # the next VM check will see a change (none when it ran on this very pool)
        if m.hosts is tick.m.hosts and _pool_changed(snapshot.pool, tick.ours, m.hosts):
            wakes.append(vms_check)
        idle_since = [h.unchanged_since for h in m.hosts.values() if h.jobs == 0]
        if idle_since:  # the first idle host's timeout: the others' come later
            wakes.append(_first_run_after(min(idle_since) + e.idle_timeout_max_s, vms_check,
                                          e.legacy_check_vms_every_s))
        if m.drained and any(h.jobs == 0 and h.instance_id in m.drained for h in m.hosts.values()):
            wakes.append(vms_check)  # a drained host to terminate
        if q.min_vms > len(m.hosts) + m.vms_allegedly_running:
            wakes.append(vms_check)
    future = [w for w in wakes if w is not None]
    if not future:
        return None
    anchor, every = m.queue_checks_from, e.check_queue_every_s
    return anchor + max(0, math.ceil((min(future) - anchor) / every - 1e-9)) * every


def _pool_changed(pool: Pool, ours: Optional[Mapping[str, Instance]],
                  hosts: Mapping[str, HostStatus]) -> bool:
    """The claimed slots of our hosts in ``pool`` differ from those of the last VM check."""
    seen = 0
    for w in pool.workers:
        if ours is None or w.instance_id in ours:
            h = hosts.get(w.name)
            if h is None or h.jobs != w.running_jobs:
                return True
            seen += 1
    return seen != len(hosts)


def drained_instead(memory: LegacyMemory, instance_id: str) -> LegacyMemory:
    """The daemon drained ``instance_id`` instead of terminating it: terminate it at the next
    VM check that finds it without a job."""
    return replace(memory, drained=memory.drained | {instance_id})


def record_launch(memory: LegacyMemory, outcome: LaunchOutcome, config: Config, now: float) -> LegacyMemory:
    """Every VM granted is allegedly running until its deploy deadline; failures change nothing
    (the original only logged them)."""
    if not outcome.granted:
        return memory
    deadline = now + config.elastiq.estimated_vm_deploy_time_s
    return replace(
        memory,
        vms_allegedly_running=memory.vms_allegedly_running + len(outcome.granted),
        deadlines=tuple(sorted(memory.deadlines + tuple((deadline, i) for i in outcome.granted),
                               key=lambda d: d[0])),  # in time order whatever the clock did
    )


class LegacyPolicy(BasePolicy):
    """The original elastiq's algorithm as a policy object; it reads no lifecycle record
    (the original kept none: the runtime keeps them all the same) and nothing of its memory
    outlives a restart (as the original, which had no state)."""

    name = "legacy"

    def initial_memory(self, seed: int = 0):
        return initial_memory(seed)

    def plan(self, snapshot, fleet, memory, config, now, catalogue=None):
        return plan(snapshot, memory, config, now, catalogue)

    def record_launch(self, memory, outcome, config, now):
        return record_launch(memory, outcome, config, now)

    def resting_vms(self, config: Config) -> int:
        return config.quota.min_vms

    def drained_instead(self, memory, instance_id, now):
        return drained_instead(memory, instance_id)
