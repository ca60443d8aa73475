"""The simulated HTCondor pool (schedd + collector + negotiator) behind ``elastiq simulate``.

Jobs of a workload are submitted at their submit time (``advance``).  At each negotiation
(``negotiate``) idle jobs are matched in FIFO order of their queue time onto the free
cpus/memory of joined, non-draining workers: partitionable slots, the first worker in join
order that fits (depth-first filling, so that other workers go idle: what the master's
negotiator is configured to do, ecm/templates/master.sh.j2, checked by
tests/test_placement_live.py); a job whose shape did not fit is not retried in the same cycle.
A job runs for its run time.  A worker reports ``idle_since`` from its join or its last job's
end.  When its VM is terminated while jobs run
on it, they are killed, counted in ``jobs_killed`` and requeued with their original queue
time, as HTCondor does.  ``queue()``/``pool()``/``workers_of()`` raise TransientError with the
configured probabilities.  The queue names the workers running jobs (``running_on``);
``restart_collector`` makes the pool list no worker until they advertise again.  Views are
cached and rebuilt only after a change (``version`` counts them); the queue's idle jobs carry
their summary per kind (``model.IdleJobs``), kept up to date as jobs come and go.
A little over 300 lines: schedd, collector and negotiator share the jobs' and slots' state,
which this one class keeps consistent (the replay's hot path: no indirection between them).
"""
from __future__ import annotations

import bisect
import heapq
import random
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from ..model import IdleJobs, Job, Pool, Queue, Worker
from ..adapters.base import TransientError, forgets_by_itself


class _Slotted:
    """Mutable state of one simulated worker (a partitionable slot)."""

    __slots__ = ("name", "instance_id", "cpus", "memory", "free_cpus", "free_memory",
                 "running", "idle_since", "draining", "busy_since", "view")

    def __init__(self, instance_id: str, cpus: int, memory: int, now: float):
        self.name, self.instance_id = f"slot1@{instance_id}.sim", instance_id
        self.cpus, self.memory, self.free_cpus, self.free_memory = cpus, memory, cpus, memory
        self.running: Dict[int, None] = {}
        self.idle_since: Optional[float] = now
        self.draining = False
        self.busy_since: Optional[float] = None
        self.view: Optional[Worker] = None

    def as_worker(self) -> Worker:
        if self.view is None:
            self.view = Worker(self.name, self.instance_id, None, self.cpus, self.memory,
                               len(self.running), self.free_cpus, self.free_memory,
                               self.idle_since, self.draining)
        return self.view


class SimPool:
    """BatchSystem port over a simulated schedd + collector fed by a workload."""

    def __init__(self, clock: Callable[[], float], workload, *, start: float, vm_cpus: int,
                 vm_memory_mb: int, queue_failure: float = 0.0, pool_failure: float = 0.0,
                 seed: int = 0):
        self.clock, self.w, self.start = clock, workload, start
        self.vm_cpus, self.vm_memory = vm_cpus, vm_memory_mb
        self.queue_failure, self.pool_failure = queue_failure, pool_failure
        self.rng = random.Random(seed + 1)
        n = len(workload)
        self.started: List[Optional[float]] = [None] * n
        self.finished: List[Optional[float]] = [None] * n
        self.kills = [0] * n
        self._run_gen = [0] * n
        self._next_submit = 0
        self.idle: List[Job] = []  # FIFO by (queued_since, index)
        self._kinds: Dict[tuple, List[float]] = {}  # the idle jobs' summary (model.IdleJobs)
        self._summary: Dict[tuple, tuple] = {}  # the same as tuples, non-empty kinds only
        self._stale_kinds: set = set()  # kinds changed since the summary (never mutated once out)
        self._idle_view: Optional[IdleJobs] = None  # the queue's idle jobs, until they change
        self._n = n
        self._index: Dict[int, int] = {}  # id(Job) -> workload index
        self._finishes: List[Tuple[float, int, int]] = []
        self._running_on: Dict[int, str] = {}
        self.workers: Dict[str, _Slotted] = {}
        self.by_name: Dict[str, _Slotted] = {}
        self.running = 0
        self.completed = 0
        self.jobs_killed = 0
        self.used: set = set()  # instances that ran at least one job
        self.busy_s = 0.0
        self.busy_by: Dict[str, float] = {}  # instance -> seconds it ran a job
        self.core_s_by: Dict[str, float] = {}  # instance -> cpu-seconds of the jobs it ran
        self.version = 0
        self._dirty_match = True
        self._queue: Optional[Queue] = None
        self._busy_names: Optional[frozenset] = None  # workers running jobs, until one changes
        self._pool: Optional[Pool] = None
        self.collector_started: Optional[float] = None
        self._hidden_until = float("-inf")

    # -- the BatchSystem port
    def queue(self) -> Queue:
        """Idle jobs in FIFO order, and how many run."""
        if self.queue_failure and self.rng.random() < self.queue_failure:
            raise TransientError("simulated schedd timeout")
        if self._queue is None:
            if self._busy_names is None:
                self._busy_names = frozenset(s.name for s in self.workers.values() if s.running)
            if self._idle_view is None:
                summary = self._summary = dict(self._summary)
                for kind in self._stale_kinds:
                    times = self._kinds[kind]
                    if times:
                        summary[kind] = tuple(times)
                    else:
                        summary.pop(kind, None)
                self._stale_kinds.clear()
                self._idle_view = IdleJobs(self.idle, summary)
            self._queue = Queue(self._idle_view, self.running, running_on=self._busy_names)
        return self._queue

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        """Every joined worker, in join order.  ``known_ips`` is accepted as the port requires
        and not needed: every simulated worker names its instance."""
        self._maybe_fail()
        if self.clock() < self._hidden_until:
            return Pool((), collector_started=self.collector_started)
        if self._pool is None:
            self._pool = Pool(tuple(s.as_worker() for s in self.workers.values()),
                              collector_started=self.collector_started)
        return self._pool

    def workers_of(self, instance_ids, known_ips: Optional[Mapping[str, str]] = None):
        """The workers of these instances now (one look, as the collector would answer)."""
        self._maybe_fail()
        if self.clock() < self._hidden_until:
            return {}
        return {i: self.workers[i].as_worker() for i in instance_ids if i in self.workers}

    #: The simulated cloud removes a worker when its VM stops.
    forget = forgets_by_itself

    def _maybe_fail(self) -> None:
        if self.pool_failure and self.rng.random() < self.pool_failure:
            raise TransientError("simulated collector timeout")

    def restart_collector(self, now: float, readvertise_s: float) -> None:
        """The collector restarts: it lists no worker for ``readvertise_s``."""
        self.collector_started, self._hidden_until = now, now + readvertise_s
        self._touch(None)

    def drain(self, worker: str, reason: str) -> None:
        """The worker takes no new job; running ones finish.  Unknown workers are ignored."""
        self._set_draining(worker, True)

    def cancel_drain(self, worker: str) -> None:
        self._set_draining(worker, False)

    def _set_draining(self, name: str, value: bool) -> None:
        slot = self.by_name.get(name)
        if slot is not None and slot.draining != value:
            slot.draining = value
            self._touch(slot)

    # -- workers
    def add_worker(self, instance_id: str, now: float, cpus: Optional[int] = None,
                   memory_mb: Optional[int] = None) -> None:
        """The VM's startd joined the pool (called by SimCloud); of the VM shape unless
        ``cpus``/``memory_mb`` say otherwise."""
        slot = _Slotted(instance_id, cpus or self.vm_cpus, memory_mb or self.vm_memory, now)
        self.workers[instance_id] = slot
        self.by_name[slot.name] = slot
        self._touch(slot)

    def remove_worker(self, instance_id: str, now: float) -> int:
        """The VM is gone: its running jobs are killed and requeued.  Returns how many."""
        slot = self.workers.pop(instance_id, None)
        if slot is None:
            return 0
        del self.by_name[slot.name]
        killed = list(slot.running)
        for index in killed:
            self._stop(slot, index, now)
            self.kills[index] += 1
            self.started[index] = None
            self._run_gen[index] += 1
            self._enqueue(index)
        self.jobs_killed += len(killed)
        self._touch(None)
        return len(killed)

    # -- virtual time
    def all_submitted(self) -> bool:
        return self._next_submit >= self._n

    def all_done(self) -> bool:
        return self.all_submitted() and not self.idle and not self.running

    def next_event(self) -> Optional[float]:
        times = []
        if self._next_submit < self._n:
            times.append(self.start + self.w.submit[self._next_submit])
        if self._finishes:
            times.append(self._finishes[0][0])
        return min(times) if times else None

    def advance(self, now: float) -> None:
        """Submit and finish every job due at or before ``now``."""
        w, start = self.w, self.start
        while self._next_submit < self._n and start + w.submit[self._next_submit] <= now:
            self._enqueue(self._next_submit)
            self._next_submit += 1
        while self._finishes and self._finishes[0][0] <= now:
            when, index, gen = heapq.heappop(self._finishes)
            if gen != self._run_gen[index]:
                continue
            slot = self.workers[self._running_on[index]]
            self._stop(slot, index, when)
            self.finished[index] = when
            self.completed += 1

    def negotiate(self, now: float) -> int:
        """Match idle jobs FIFO onto free capacity; returns how many started."""
        if not self._dirty_match or not self.idle:
            self._dirty_match = False
            return 0
        self._dirty_match = False
        open_slots = [s for s in self.workers.values() if not s.draining and s.free_cpus > 0]
        if not open_slots:
            return 0
        free = sum(s.free_cpus for s in open_slots)
        matched: List[int] = []
        failed = set()
        for pos, job in enumerate(self.idle):
            if free <= 0:
                break
            shape = (job.cpus, job.memory_mb)
            if job.cpus > free or shape in failed:
                continue
            for slot in open_slots:
                if slot.free_cpus >= job.cpus and slot.free_memory >= job.memory_mb:
                    kind = (job.cpus, job.memory_mb, True)
                    times = self._kinds[kind]
                    del times[bisect.bisect_left(times, job.queued_since)]
                    self._stale_kinds.add(kind)
                    self._start(slot, self._index.pop(id(job)), now)
                    free -= job.cpus
                    matched.append(pos)
                    break
            else:
                failed.add(shape)
        if matched:
            if matched[-1] == len(matched) - 1:
                del self.idle[: len(matched)]
            else:
                gone = set(matched)
                self.idle = [j for p, j in enumerate(self.idle) if p not in gone]
            self._queue = self._idle_view = None
            self.version += 1
        return len(matched)

    # -- internals
    def _enqueue(self, index: int) -> None:
        job = Job(self.w.ids[index], self.w.cpus[index], self.w.memory_mb[index],
                  self.start + self.w.submit[index])
        self._index[id(job)] = index
        kind = (job.cpus, job.memory_mb, True)
        bisect.insort(self._kinds.setdefault(kind, []), job.queued_since)
        self._stale_kinds.add(kind)
        if self.idle and self.idle[-1].queued_since > job.queued_since:
            keys = [j.queued_since for j in self.idle]
            self.idle.insert(bisect.bisect_right(keys, job.queued_since), job)
        else:
            self.idle.append(job)
        self._queue = self._idle_view = None
        self._dirty_match = True
        self.version += 1

    def _start(self, slot: _Slotted, index: int, now: float) -> None:
        cpus, memory = self.w.cpus[index], self.w.memory_mb[index]
        slot.free_cpus -= cpus
        slot.free_memory -= memory
        if not slot.running:
            slot.busy_since, slot.idle_since = now, None
            self._busy_names = None
        slot.running[index] = None
        self._running_on[index] = slot.instance_id
        self.used.add(slot.instance_id)
        self.started[index] = now
        self.running += 1
        heapq.heappush(self._finishes, (now + self.w.runtime[index], index, self._run_gen[index]))
        self._touch(slot)

    def _stop(self, slot: _Slotted, index: int, now: float) -> None:
        self._cores_used(slot, index, now)
        del slot.running[index]
        self._running_on.pop(index, None)
        slot.free_cpus += self.w.cpus[index]
        slot.free_memory += self.w.memory_mb[index]
        self.running -= 1
        if not slot.running:
            self._busy(slot, now)
            slot.busy_since, slot.idle_since = None, now
            self._busy_names = None
        self._touch(slot)

    def _touch(self, slot: Optional[_Slotted]) -> None:
        if slot is not None:
            slot.view = None
        self._pool = None
        self._queue = None
        self._dirty_match = True
        self.version += 1

    def close(self, now: float) -> None:
        """End of the simulation: account the busy time of workers still running jobs."""
        for slot in self.workers.values():
            if slot.running:
                for index in slot.running:
                    self._cores_used(slot, index, now)
                self._busy(slot, now)
                slot.busy_since = now

    def _cores_used(self, slot: _Slotted, index: int, now: float) -> None:
        """Account the cpu-seconds job ``index`` used on ``slot`` since it started."""
        self.core_s_by[slot.instance_id] = (self.core_s_by.get(slot.instance_id, 0.0)
                                            + self.w.cpus[index] * (now - self.started[index]))

    def _busy(self, slot: _Slotted, now: float) -> None:
        """Account the busy stretch of ``slot`` that ends ``now``."""
        self.busy_s += now - slot.busy_since
        self.busy_by[slot.instance_id] = self.busy_by.get(slot.instance_id, 0.0) \
            + now - slot.busy_since
