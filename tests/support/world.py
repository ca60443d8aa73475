"""A small deterministic world for runtime tests: a cloud and a batch system on a virtual clock.

They implement the ``Cloud`` and ``BatchSystem`` protocols the way the real adapters behave
from the runtime's point of view: the cloud grants at most its capacity, instances boot and
their workers join the pool ``join_after_s`` after launch; errors can be injected per call.
Nothing of the runtime is faked here.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Dict, Mapping, List, Optional, Sequence, Set, Tuple

from elastiq.adapters.base import NOT_SUPPORTED, forgets_by_itself, look_in_pool
from elastiq.model import Instance, InstanceState, Job, Pool, Queue, Worker


class Clock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Faults:
    """``fail(name, exc, times=1)``: the next ``times`` calls of ``name`` raise ``exc``."""

    def __init__(self) -> None:
        self._pending: Dict[str, List[BaseException]] = {}

    def fail(self, name: str, exc: BaseException, times: int = 1) -> None:
        self._pending.setdefault(name, []).extend([exc] * times)

    def check(self, name: str) -> None:
        pending = self._pending.get(name)
        if pending:
            raise pending.pop(0)


class FakeCloud:
    """``owner``: the owner id its launches carry (None: none, as a cloud without owners);
    ``add(owner=...)`` makes another daemon's instance, which ``terminate`` refuses."""

    def __init__(self, clock: Clock, cluster: str = "test", capacity: Optional[int] = None,
                 boot_s: float = 10.0, owner: Optional[str] = None):
        self.clock, self.cluster, self.capacity, self.boot_s = clock, cluster, capacity, boot_s
        self.owner = owner
        self.instances: Dict[str, Instance] = {}
        self.faults = Faults()
        self.launch_calls: List[Tuple[float, int]] = []
        self.terminate_calls: List[Tuple[str, ...]] = []
        self.list_calls = 0
        self._ids = itertools.count(1)

    def sharing(self, owner: str) -> "FakeCloud":
        """The same cloud (its instances) as another daemon, with owner id ``owner``, uses it."""
        other = FakeCloud(self.clock, self.cluster, self.capacity, self.boot_s, owner)
        other.instances, other._ids = self.instances, self._ids
        return other

    def alive(self) -> List[Instance]:
        return [i for i in self.instances.values() if i.state is not InstanceState.GONE]

    def list_instances(self) -> Tuple[Instance, ...]:
        self.list_calls += 1
        self.faults.check("list_instances")
        now = self.clock()
        for iid, inst in self.instances.items():
            if inst.state is InstanceState.BOOTING and now - inst.launched_at >= self.boot_s:
                self.instances[iid] = replace(inst, state=InstanceState.RUNNING)
        return tuple(self.instances.values())

    def add(self, state: InstanceState = InstanceState.RUNNING, launched_at: Optional[float] = None,
            cluster: Optional[str] = None, owner: Optional[str] = None) -> str:
        n = next(self._ids)
        iid = f"i-{n:08x}"
        self.instances[iid] = Instance(iid, state, self.clock() if launched_at is None else launched_at,
                                       cluster or self.cluster, f"10.0.0.{n}", "m1.small",
                                       owner)
        return iid

    def launch(self, count: int, *, flavour: Optional[str] = None,
               request_id: Optional[str] = None) -> Tuple[str, ...]:
        self.faults.check("launch")
        self.launch_calls.append((self.clock(), count))
        room = count if self.capacity is None else max(0, min(count, self.capacity - len(self.alive())))
        return tuple(self.add(InstanceState.BOOTING, owner=self.owner) for _ in range(room))

    def describe_flavours(self, names: Sequence[str]) -> None:
        return NOT_SUPPORTED

    def check_settings(self) -> None:
        return NOT_SUPPORTED

    def terminate(self, instance_ids: Sequence[str]) -> None:
        self.faults.check("terminate")
        self.terminate_calls.append(tuple(instance_ids))
        for iid in instance_ids:
            if iid in self.instances and self.instances[iid].owner in (None, self.owner):
                self.instances[iid] = replace(self.instances[iid], state=InstanceState.GONE)


class FakeBatch:
    """Workers are the cloud's running instances ``join_after_s`` after their launch."""

    def __init__(self, clock: Clock, cloud: FakeCloud, join_after_s: float = 30.0, cpus: int = 1):
        self.clock, self.cloud, self.join_after_s, self.cpus = clock, cloud, join_after_s, cpus
        self.idle: List[Job] = []
        self.running = 0
        self.claimed: Dict[str, int] = {}  # instance id -> claimed slots
        self.idle_since: Dict[str, float] = {}
        self.draining: Set[str] = set()  # worker names
        self.faults = Faults()
        self.known_ips: Dict[str, str] = {}  # as the runtime passed them to the last pool()
        self.drain_calls: List[str] = []
        self.cancel_calls: List[str] = []
        self.forget_calls: List[Tuple[str, ...]] = []

    @staticmethod
    def worker_name(instance: Instance) -> str:
        return (instance.private_ip or instance.id).replace(".", "-")

    def submit(self, count: int, cpus: int = 1, memory_mb: int = 1024) -> None:
        start = len(self.idle)
        self.idle += [Job(f"1.{start + i}", cpus, memory_mb, self.clock()) for i in range(count)]

    def queue(self) -> Queue:
        self.faults.check("queue")
        return Queue(tuple(self.idle), self.running)

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        self.faults.check("pool")
        self.known_ips = dict(known_ips or {})
        now = self.clock()
        workers = []
        for inst in self.cloud.instances.values():
            if inst.state is InstanceState.GONE or now - inst.launched_at < self.join_after_s:
                continue
            claimed = self.claimed.get(inst.id, 0)
            since = None if claimed else self.idle_since.setdefault(inst.id, inst.launched_at +
                                                                    self.join_after_s)
            name = self.worker_name(inst)
            workers.append(Worker(name, inst.id, inst.private_ip, self.cpus, 2048, claimed,
                                  self.cpus - claimed, 2048, since, name in self.draining))
        return Pool(tuple(workers))

    def drain(self, worker: str, reason: str) -> None:
        self.faults.check("drain")
        self.drain_calls.append(worker)
        self.draining.add(worker)

    def cancel_drain(self, worker: str) -> None:
        self.faults.check("cancel_drain")
        self.cancel_calls.append(worker)
        self.draining.discard(worker)

    workers_of = look_in_pool

    def forget(self, instance_ids) -> None:
        self.faults.check("forget")
        self.forget_calls.append(tuple(instance_ids))


def world(clock: Optional[Clock] = None, **cloud_args) -> Tuple[Clock, FakeCloud, FakeBatch]:
    clock = clock or Clock()
    cloud = FakeCloud(clock, **cloud_args)
    return clock, cloud, FakeBatch(clock, cloud)


def make_config(tmp_path=None, **sections):
    """A validated Config for tests: short times, cluster "test", state under ``tmp_path``."""
    from elastiq import config

    data = {
        "elastiq": {"cluster_name": "test", "waiting_jobs_time_s": 40, "idle_timeout_max_s": 100,
                    "estimated_vm_deploy_time_s": 120, "n_jobs_per_vm": 1},
        "quota": {"min_vms": 0, "max_vms": 3},
        "vm": {"cpus": 1, "memory_mb": 2048},
    }
    if tmp_path is not None:
        data["elastiq"].update(state_dir=str(tmp_path / "state"), log_file=str(tmp_path / "log" / "elastiq.log"))
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config.from_dict(data, "test-config")


class IdleCloud:
    """A cloud with no instances that launches nothing (for process-control tests)."""

    def __init__(self, config=None, **_):
        pass

    def list_instances(self) -> Tuple[Instance, ...]:
        return ()

    def launch(self, count: int, *, flavour=None, request_id=None) -> Tuple[str, ...]:
        return ()

    def terminate(self, instance_ids: Sequence[str]) -> None:
        pass

    def describe_flavours(self, names: Sequence[str]) -> None:
        return NOT_SUPPORTED

    def check_settings(self) -> None:
        return NOT_SUPPORTED


class IdleBatch:
    """An empty queue and pool (for process-control tests)."""

    def __init__(self, config=None, **_):
        pass

    def queue(self) -> Queue:
        return Queue()

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        return Pool()

    def drain(self, worker: str, reason: str) -> None:
        pass

    def cancel_drain(self, worker: str) -> None:
        pass

    workers_of = look_in_pool
    forget = forgets_by_itself
