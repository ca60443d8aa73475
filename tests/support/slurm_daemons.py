"""The daemons of a test Slurm cluster (tests/support/slurm_cluster.py has the cluster and
its API): whether one can run here, the processes run inside the provisioned root (their pid
is the daemon's), the features a worker registers with, and the processes left holding a
cluster's files.
"""
from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, List, Optional, Sequence

from tests.support.condor_daemons import ROOT, in_root, stop_process, unavailable
from tests.support.net import free_port

if TYPE_CHECKING:
    from tests.support.slurm_cluster import SlurmCluster

MARKER = ".elastiq-slurm-provisioned"


class SlurmUnavailable(RuntimeError):
    """No Slurm cluster can run here (see :func:`slurm_unavailable`)."""


def slurm_unavailable(root: str = ROOT) -> Optional[str]:
    """Why no Slurm cluster can run here, or None."""
    why = unavailable(root)
    if why:
        return why
    if not os.path.exists(os.path.join(root, MARKER)):
        return f"no Slurm in {root} (no {MARKER}): run .ci/provision-slurm.sh as root"
    return None


def features(cluster: Optional[str], instance_id: Optional[str]) -> List[str]:
    """The features a worker of ``cluster`` on ``instance_id`` registers with."""
    return ["elastiq"] + ([f"elastiq-cluster-{cluster}"] if cluster else []) + (
        [f"elastiq-instance-{instance_id}"] if instance_id else [])


def holding_files_under(prefix: str) -> List[int]:
    """Pids of the processes (but this one) with an open file whose path starts with ``prefix``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.readlink(f"/proc/{entry}/fd/{fd}").startswith(prefix) for fd in fds):
                found.append(int(entry))
        except OSError:  # gone meanwhile
            continue
    return found


class _Process:
    """One daemon run inside the root; its pid is the daemon's (in_root execs)."""

    def __init__(self, cluster: "SlurmCluster", name: str, argv: Sequence[str],
                 mounts: Optional[str] = None):
        self.name = name
        self.out = f"{cluster.host_dir}/log/{name}.out"
        more = {"mounts": mounts} if mounts else {}
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(in_root(cluster.root, argv, cluster.env(), **more),
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        stop_process(self.proc, timeout)

    def tail(self, lines: int = 15) -> str:
        try:
            with open(self.out, encoding="utf-8", errors="replace") as handle:
                text = handle.read().splitlines()[-lines:]
        except FileNotFoundError:
            text = []
        return f"--- {self.name}:\n" + "\n".join(text)


class SlurmNode(_Process):
    """A worker: one ``slurmd -Z`` (dynamic node); ``argv``: its arguments instead of the
    rig's, where ``{port}`` stands for the port picked for it."""

    def __init__(self, cluster: "SlurmCluster", name: str, cpus: int, memory_mb: int,
                 node_features: Sequence[str], argv: Optional[Sequence[str]] = None,
                 mounts: Optional[str] = None):
        os.makedirs(f"{cluster.host_dir}/spool/{name}", exist_ok=True)
        self.port = free_port()
        conf = (f"CPUs={cpus} RealMemory={memory_mb} Port={self.port} NodeAddr=127.0.0.1 "
                f"Features={','.join(node_features)}")
        args = (["-Z", "-N", name, "--conf", conf] if argv is None
                else [a.replace("{port}", str(self.port)) for a in argv])
        super().__init__(cluster, f"slurmd-{name}", ["slurmd", "-D", *args], mounts)
        self.node_name = name
