"""A real Slurm cluster (Debian trixie's 24.11 daemons) for tests, run from the provisioned root.

Slurm is installed into the HTCondor root by ``.ci/provision-slurm.sh`` (complete when
``ROOT/.elastiq-slurm-provisioned`` exists).  Each daemon runs as ``unshare --mount`` +
``chroot ROOT env -i SLURM_CONF=...`` (:func:`tests.support.condor_daemons.in_root`): proc and
/dev are mounted in its private mount namespace only (the processes: tests/support/
slurm_daemons.py).  A cluster lives in its own directory
``ROOT/tmp/elastiq-slurm/<name>-XXXX/`` (slurm.conf, cgroup.conf, the munge key and socket,
state, spool, logs, the jobs' directory), listens on 127.0.0.1 on ports free at start, and
stops every daemon by its pid (SIGTERM, then SIGKILL of its process group).

    cluster = SlurmCluster.start(worker_cpus=2, worker_memory_mb=2048)  # munged + slurmctld
    node = cluster.start_node("w1", cpus=2, memory_mb=2048, cluster="c1",
                              instance_id="i-0abc", wait=30)            # slurmd -Z
    job = cluster.sbatch(["--exclusive", "--wrap", "sleep 5"])          # as the test user
    cluster.json(["scontrol", "show", "node", "--json"])               # any client, as root
    cluster.bin_dir                       # squeue/sinfo/scontrol/sbatch wrappers for the host
    cluster.stop_node(node); cluster.stop()

Choices, and what Slurm 24.11 needs on this machine (found by running it here):

* munge: ``munged -F`` as root with a key made per cluster by ``mungekey``, its socket in the
  cluster's directory (``AuthInfo=socket=...``); the directory must be 0755 and owned by root
  (munged refuses "insecure" or inaccessible ones).
* Workers are **dynamic nodes**: ``slurmd -Z -N <name> --conf "CPUs= RealMemory= Port=
  NodeAddr=127.0.0.1 Features=elastiq,elastiq-cluster-<cluster>,elastiq-instance-<id>"``.
  The instance id and the cluster are **features**: ``--conf`` accepts no ``Extra``,
  ``Comment`` nor ``InstanceId`` (24.11: "Parsing error at unrecognized key"; those are set
  only by a later ``scontrol update``), and a feature is there from the node's first
  registration.  The ``elastiq`` feature puts the node in the partition (``Nodeset``).
* One host, several slurmd: each has its own Port, and ``SlurmdSpoolDir``/``SlurmdPidFile``/
  ``SlurmdLogFile`` carry ``%n`` (the spool directory is made before the slurmd starts).
* No cgroups in this sandbox: ``CgroupPlugin=disabled`` (cgroup.conf), ``ProctrackType=
  proctrack/linuxproc``, ``TaskPlugin=task/none``, ``JobAcctGatherType=jobacct_gather/none``;
  hwloc complains that sysfs has no CPU topology and slurmd goes on.  Unlike 22.05 (Debian 12),
  24.11's slurmd needs neither ``unshare --time`` nor a cleared signal mask here: it starts and
  its slurmstepd runs jobs from a plain ``subprocess.Popen`` (the test process blocks no signal:
  SigBlk is 0).
* With no node in the partition, slurmctld refuses every submission ("Requested node
  configuration is not available").  ``NodeName=elastiq-shape[1-N] State=FUTURE`` with the
  worker's shape and the ``elastiq`` feature makes it accept jobs that fit a worker (and still
  refuse those that never could, e.g. more CPUs than a worker has); N is the most nodes one
  job may ask for.  FUTURE nodes never run anything.  Real masters need the same lines.
* slurmstepd (one per running job step) runs in its own session and outlives slurmd by
  design, then waits for slurmctld forever: :meth:`SlurmCluster.stop` cancels the jobs left
  and kills by pid whatever still holds a file of the cluster's directory open.
* ``SlurmdTimeout`` is short (``slurmd_timeout``, 6 s) so that a stopped slurmd is marked not
  responding in seconds (tests of what must not wait for it make it long),
  and ``bf_interval=1`` so that a node that joins gets its pending jobs within a second or two.
"""
from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence

from tests.support.condor_daemons import ROOT, TEST_USER, in_root, wait_for
from tests.support.instance_startds import InstanceStartds
from tests.support.tools import skip_or_fail
from tests.support.net import free_port
from tests.support.slurm_daemons import (
    SlurmNode, SlurmUnavailable, _Process, features, holding_files_under, slurm_unavailable)

CLUSTERS_DIR = "/tmp/elastiq-slurm"  # inside the root
CLIENTS = ("squeue", "sinfo", "scontrol", "sbatch", "scancel")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class SlurmCluster:
    """munged and slurmctld; workers are added with :meth:`start_node`."""

    def __init__(self, root: str = ROOT, name: str = "slurm", worker_cpus: int = 2,
                 worker_memory_mb: int = 2048, max_job_nodes: int = 2, extra: Sequence[str] = (),
                 slurmd_timeout: int = 6):
        why = slurm_unavailable(root)
        if why:
            raise SlurmUnavailable(why)
        self.root = root
        os.makedirs(root + CLUSTERS_DIR, mode=0o755, exist_ok=True)
        self.host_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=root + CLUSTERS_DIR)
        self.directory = self.host_dir[len(root):]
        os.chmod(self.host_dir, 0o755)
        for sub in ("munge", "state", "spool", "log", "jobs", "bin"):
            os.makedirs(f"{self.host_dir}/{sub}", mode=0o755)
        user = pwd.getpwnam(TEST_USER)
        os.chown(f"{self.host_dir}/jobs", user.pw_uid, user.pw_gid)
        self.job_dir = f"{self.directory}/jobs"
        self.config = f"{self.directory}/slurm.conf"
        self.port = free_port()
        d = self.directory
        conf = [
            f"ClusterName={os.path.basename(d).replace('-', '_').lower()}",
            f"SlurmctldHost={socket.gethostname()}(127.0.0.1)", f"SlurmctldPort={self.port}",
            "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={d}/munge/munge.socket", f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool/%n", f"SlurmdPidFile={d}/spool/%n.pid",
            f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmctldLogFile={d}/log/slurmctld.log",
            f"SlurmdLogFile={d}/log/slurmd-%n.log", "SlurmctldDebug=info", "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none", "MpiDefault=none", "MailProg=/bin/true",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=256", "ReturnToService=2", "MaxNodeCount=64", "TreeWidth=65533",
            "SchedulerType=sched/backfill", "SchedulerParameters=bf_interval=1",
            f"SlurmdTimeout={slurmd_timeout}", "MessageTimeout=5", "MinJobAge=600",
            f"NodeName=elastiq-shape[1-{max_job_nodes}] CPUs={worker_cpus} "
            f"RealMemory={worker_memory_mb} Features=elastiq State=FUTURE",
            "Nodeset=elastiq Feature=elastiq",
            "PartitionName=main Nodes=elastiq Default=YES MaxTime=INFINITE State=UP",
            *extra]
        with open(f"{self.host_dir}/slurm.conf", "w", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in conf))
        with open(f"{self.host_dir}/cgroup.conf", "w", encoding="utf-8") as handle:
            handle.write("CgroupPlugin=disabled\n")
        self.key = f"{d}/munge/munge.key"
        self.run(["mungekey", "--create", f"--keyfile={self.key}"], user=None, check=True)
        self.daemons: List[_Process] = []
        self.nodes: Dict[str, SlurmNode] = {}
        self._write_clients()

    @classmethod
    def start(cls, timeout: float = 60.0, **options) -> "SlurmCluster":
        """munged and slurmctld, answering; stopped again (directory kept) if they do not."""
        return cls(**options).start_daemons(timeout)

    def start_daemons(self, timeout: float = 60.0) -> "SlurmCluster":
        """munged (with :attr:`key`) and slurmctld (with :attr:`config`) of a cluster made
        but not started (its files may be replaced first, e.g. by a rendered slurm.conf)."""
        cluster = self
        try:
            d = cluster.directory
            munged = _Process(cluster, "munged", [
                "munged", "-F", f"--key-file={cluster.key}", f"--socket={d}/munge/munge.socket",
                f"--pid-file={d}/munge/munged.pid", f"--seed-file={d}/munge/munged.seed"])
            cluster.daemons.append(munged)
            wait_for(lambda: os.path.exists(f"{cluster.host_dir}/munge/munge.socket")
                     or not munged.alive(), timeout, "munged's socket", explain=cluster.explain)
            cluster.daemons.append(_Process(cluster, "slurmctld", ["slurmctld", "-D", "-i"]))
            wait_for(cluster._controller_answers, timeout, "slurmctld", explain=cluster.explain)
            return cluster
        except BaseException:
            cluster.stop(keep=True)
            raise

    # ------------------------------------------------------------------ clients

    def env(self) -> Dict[str, str]:
        return {"SLURM_CONF": self.config, "PATH": PATH, "HOME": "/tmp", "LANG": "C.UTF-8"}

    def run(self, argv: Sequence[str], user: Optional[str] = None, check: bool = False,
            timeout: float = 60.0) -> subprocess.CompletedProcess:
        """A command inside the root with this cluster's SLURM_CONF (as root by default)."""
        done = subprocess.run(in_root(self.root, argv, self.env(), user), text=True,
                              capture_output=True, timeout=timeout, cwd="/",
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): "
                                 f"{done.stderr.strip()}\n{self.explain()}")
        return done

    def json(self, argv: Sequence[str]) -> dict:
        return json.loads(self.run(argv, check=True).stdout)

    def sbatch(self, options: Sequence[str]) -> int:
        """Submit as the unprivileged test user from the jobs' directory; the job id."""
        done = self.run(["sbatch", "--parsable", f"--chdir={self.job_dir}", *options],
                        user=TEST_USER)
        if done.returncode != 0:
            raise AssertionError(f"sbatch {' '.join(options)} failed: {done.stderr.strip()}")
        return int(done.stdout.strip().split(";")[0])

    def jobs(self) -> Dict[int, dict]:
        """Every job slurmctld still knows (finished ones for MinJobAge), by id."""
        return {j["job_id"]: j for j in self.json(["scontrol", "show", "job", "--json"])["jobs"]}

    def node_names(self) -> List[str]:
        return [n["name"] for n in self.json(["scontrol", "show", "node", "--json"])["nodes"]]

    def _write_clients(self) -> None:
        """``bin/<client>``: a host-side wrapper running the root's client (as root) against
        this cluster, for host processes such as ``elastiq run`` (``slurm.bin_dir``)."""
        self.bin_dir = self.clients_as(None)

    def clients_as(self, user: Optional[str]) -> str:
        """A directory of client wrappers running as ``user`` (None: root); its path."""
        directory = f"{self.host_dir}/bin" + (f"-{user}" if user else "")
        os.makedirs(directory, mode=0o755, exist_ok=True)
        for client in CLIENTS:
            command = " ".join(shlex.quote(a)
                               for a in in_root(self.root, [client], self.env(), user))
            path = f"{directory}/{client}"
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(f'#!/bin/sh\nexec {command} "$@"\n')
            os.chmod(path, 0o755)
        return directory

    def _controller_answers(self) -> bool:
        if not all(d.alive() for d in self.daemons):
            raise AssertionError("a Slurm daemon exited\n" + self.explain())
        return self.run(["scontrol", "ping"]).returncode == 0

    # ------------------------------------------------------------------ workers

    def start_node(self, name: str, cpus: int = 1, memory_mb: int = 1024,
                   cluster: Optional[str] = None, instance_id: Optional[str] = None,
                   wait: float = 0, argv: Optional[Sequence[str]] = None,
                   mounts: Optional[str] = None) -> SlurmNode:
        """A dynamic node carrying the cluster and instance id as features (see the module
        docstring); ``wait``: seconds to wait until slurmctld lists it (0: do not wait).
        ``argv``: slurmd's arguments instead (after ``slurmd -D``; ``{port}``: its port); ``mounts``: what its
        mount namespace gets instead of proc and /dev (:func:`condor_daemons.in_root`)."""
        node = SlurmNode(self, name, cpus, memory_mb, features(cluster, instance_id), argv,
                         mounts)
        self.nodes[name] = node
        if wait:
            wait_for(lambda: name in self.node_names() or not node.alive(), wait,
                     f"node {name} registered", explain=self.explain)
            if not node.alive():
                raise AssertionError(f"slurmd {name} exited\n{node.tail()}")
        return node

    def stop_node(self, node: SlurmNode) -> None:
        node.stop()
        self.nodes.pop(node.node_name, None)

    def leftovers(self) -> List[int]:
        """Pids of the processes holding a file of this cluster's directory open: the
        slurmstepds (each in its own session, they outlive slurmd by design and wait for a
        slurmctld that is gone; they overwrite their environment, their log file tells) and
        their jobs."""
        return holding_files_under(self.host_dir + "/")

    def explain(self) -> str:
        tails = [d.tail() for d in self.daemons + list(self.nodes.values())]
        try:
            with open(f"{self.host_dir}/log/slurmctld.log", encoding="utf-8",
                      errors="replace") as log:
                tails.append("--- slurmctld.log:\n" + "\n".join(log.read().splitlines()[-20:]))
        except FileNotFoundError:
            pass
        return "\n".join(tails)

    def stop(self, keep: bool = False) -> None:
        """Cancel the jobs left, stop every slurmd, then slurmctld and munged, by pid, and
        the job steps that outlived them (:meth:`leftovers`); remove the directory unless
        ``keep`` or ``$ELASTIQ_KEEP_POOL``."""
        if self.daemons and self.daemons[-1].alive():
            self.run(["scancel", "--full", f"--user={TEST_USER}"])
            try:
                wait_for(lambda: not self.json(["squeue", "--json"])["jobs"], 15, "jobs gone")
            except AssertionError:
                pass  # their steps are killed below
        for node in list(self.nodes.values()):
            self.stop_node(node)
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not (keep or os.environ.get("ELASTIQ_KEEP_POOL")):
            shutil.rmtree(self.host_dir, ignore_errors=True)


class InstanceNodes(InstanceStartds):
    """:class:`~tests.support.instance_startds.InstanceStartds` for Slurm: each running
    instance of the cluster becomes a slurmd named after its id, stopped when it stops."""

    def start_worker(self, instance_id: str):
        return self.pool.start_node(instance_id, cpus=self.cpus, memory_mb=self.memory_mb,
                                    cluster=self.cluster, instance_id=instance_id)

    def stop_worker(self, worker) -> None:
        self.pool.stop_node(worker)


def require_slurm() -> None:
    """Skip (or fail, under ELASTIQ_REQUIRE_SLURM=1) when no Slurm cluster can run here."""
    skip_or_fail(slurm_unavailable(), "ELASTIQ_REQUIRE_SLURM", "a real Slurm cluster")
