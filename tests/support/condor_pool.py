"""A real HTCondor pool (Debian trixie's 23.9 daemons) for tests, run from a provisioned root.

The root is built by ``.ci/provision-htcondor-root.sh`` (``$ELASTIQ_CI_ROOT``, default
``/var/lib/elastiq-ci/trixie``, complete when ``.elastiq-provisioned`` exists).  Every daemon
runs as ``unshare --mount`` + ``chroot ROOT env CONDOR_CONFIG=... /usr/sbin/condor_master -f``:
``proc`` and ``/dev`` are mounted in that private mount namespace only, so nothing is mounted on
the host and nothing is left behind (several pools, of parallel runs, never share a mount).
Each pool lives in its own directory ``ROOT/tmp/elastiq-pools/<name>-XXXX/`` (configurations,
LOCAL_DIR, logs), listens on 127.0.0.1 only, and takes a collector port free at start.

    pool = CondorPool.start(fragments=["NEGOTIATOR_INTERVAL = 1"])   # central manager + schedd
    worker = pool.start_startd("i-0abc", cpus=2, memory_mb=4096, cluster="c1",
                               instance_id="i-0abc", fragments=[...], wait=60)
    pool.env()                  # os.environ + CONDOR_CONFIG = the host-side client config
    pool.htcondor2              # the PyPI bindings, configured for this pool in this process
    pool.submit({"executable": "/bin/sleep", "arguments": "5"}, count=3)     # condor_submit
    pool.submit_with_bindings({...}, count=3)    # htcondor2 from PyPI, as the test user
    pool.jobs("ClusterId == 3", ["JobStatus", "NumJobStarts"])   # queue + history
    pool.run_in_root(["condor_q", "-af", "Owner"])             # any tool, as the test user
    pool.wait_for(lambda: ..., 60, "3 jobs done")   # AssertionError with the logs' tails
    pool.log("SchedLog"); worker.log("StartLog")    # daemon logs (also MasterLog, master.out)
    pool.stop_startd(worker); pool.stop()           # SIGTERM by pid, then SIGKILL

``fragments`` are configuration lines appended last (they win): e.g. a master or worker
configuration rendered by ecm, minus what must stay (LOCAL_DIR, COLLECTOR_HOST, the sandbox
knobs of ``condor_daemons.COMMON``).  A startd is named after its ``name`` (slots
``slot1@<name>@<host>``), with one partitionable slot of ``cpus``/``memory_mb``.

Jobs are owned by the unprivileged test user (``elastiq-ci``, same uid inside the root and on
the host): the schedd refuses jobs owned by root.  ``pool.client_config`` (a file on the host)
is what host processes (the bindings, ``elastiq run``) use: COLLECTOR_HOST, CLAIMTOBE, and
SCHEDD_NAME so that ``Collector().locate(Schedd)`` finds the schedd.  The jobs' default
initial directory ``pool.job_dir`` is the same path inside the root and on the host.

In tests, use the fixtures of tests/support/condor_fixtures.py: ``condor_pool`` (one pool per
module) or ``condor_pools(fragments=..., name=...)`` (pools of one test).  Where no pool can
run (``unavailable()``: not root, no provisioned root...) they skip with the reason, or fail
when ``ELASTIQ_REQUIRE_REAL_POOL=1`` (CI).
"""
from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from tests.support.condor_daemons import (  # noqa: F401 (wait_for, unavailable: the API)
    COMMON, MOUNTS, POOLS_DIR, ROOT, TEST_USER, Daemons, PoolUnavailable, T, free_port,
    in_root, unavailable, wait_for)

#: Run by :meth:`CondorPool.submit_with_bindings`: argv = description (JSON), count, uid, gid.
_BINDINGS_SUBMIT = """
import json, os, sys
import htcondor2
description, count, uid, gid = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
schedd = htcondor2.Schedd(htcondor2.Collector().locate(htcondor2.DaemonType.Schedd))
os.setgroups([]); os.setgid(gid); os.setuid(uid)
print(schedd.submit(htcondor2.Submit(description), count=count).cluster())
"""


class _PortTaken(Exception):
    """The collector could not bind the port chosen for it."""


class Startd(Daemons):
    """An execute node: its own condor_master running one startd, one partitionable slot."""

    def __init__(self, pool: "CondorPool", name: str, cpus: int, memory_mb: int,
                 attrs: Mapping[str, str], fragments: Sequence[str]):
        self.pool = pool
        ads = "".join(f"{k} = {v}\n" for k, v in attrs.items())
        config = (f"{pool.base_config}DAEMON_LIST = MASTER, STARTD\nMASTER_NAME = {name}\n"
                  f"STARTD_NAME = {name}\nNUM_CPUS = {cpus}\nMEMORY = {memory_mb}\n"
                  "NUM_SLOTS_TYPE_1 = 1\nSLOT_TYPE_1 = 100%\nSLOT_TYPE_1_PARTITIONABLE = True\n"
                  f"{ads}STARTD_ATTRS = $(STARTD_ATTRS) {' '.join(attrs)}\n" + "".join(
                      f"{f}\n" for f in fragments))
        super().__init__(pool.root, tempfile.mkdtemp(prefix=f"startd-{name}-", dir=pool.host_dir)
                         [len(pool.root):], config, name)

    def slots(self) -> list:
        """This startd's slot ads in the collector (empty until it has advertised)."""
        return self.pool.collector().query(self.pool.htcondor2.AdType.Startd,
                                           constraint=f'regexp("^slot[0-9_]+@{self.name}@", Name)')


class CondorPool(Daemons):
    """A central manager (collector, negotiator) and a schedd, one condor_master."""

    def __init__(self, root: str = ROOT, name: str = "pool", fragments: Sequence[str] = ()):
        why = unavailable(root)
        if why:
            raise PoolUnavailable(why)
        os.makedirs(root + POOLS_DIR, mode=0o755, exist_ok=True)
        host_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=root + POOLS_DIR)
        os.chmod(host_dir, 0o755)
        self.port = free_port()
        self.schedd_name = f"{os.path.basename(host_dir)}@elastiq.test"
        self.base_config = (f"{COMMON}COLLECTOR_HOST = 127.0.0.1:{self.port}\n"
                            f"SCHEDD_NAME = {self.schedd_name}\n")
        extra = "".join(f"{f}\n" for f in fragments)
        super().__init__(root, host_dir[len(root):], self.base_config + (
            "DAEMON_LIST = MASTER, COLLECTOR, NEGOTIATOR, SCHEDD\nUPDATE_INTERVAL = 2\n"
            f"MASTER_NAME = {os.path.basename(host_dir)}\n") + extra, name)
        self.client_config = self.host_dir + "/client_config"
        with open(self.client_config, "w", encoding="utf-8") as handle:
            handle.write(f"COLLECTOR_HOST = 127.0.0.1:{self.port}\nSCHEDD_NAME = {self.schedd_name}\n"
                         f"BIN = {self._host_tools()}\n"
                         "SEC_CLIENT_AUTHENTICATION_METHODS = CLAIMTOBE\n"
                         "SEC_DEFAULT_AUTHENTICATION_METHODS = CLAIMTOBE\n"
                         "NETWORK_INTERFACE = 127.0.0.1\nUSE_SHARED_PORT = False\n"
                         "UID_DOMAIN = elastiq.test\nFILESYSTEM_DOMAIN = elastiq.test\n"
                         f"LOG = {self.host_dir}/client-log\n")
        os.makedirs(self.host_dir + "/client-log", exist_ok=True)
        self.startds: List[Startd] = []
        self.user = pwd.getpwnam(TEST_USER)
        #: the jobs' initial directory inside the root (owned by the test user)
        self.job_dir = self.directory + "/jobs"
        os.makedirs(self.root + self.job_dir)
        os.chown(self.root + self.job_dir, self.user.pw_uid, self.user.pw_gid)
        # the same path on the host (the bindings check the initial directory there)
        os.makedirs(POOLS_DIR, mode=0o755, exist_ok=True)
        if os.path.islink(self.directory):  # left by a kept or killed pool whose root dir is gone
            os.unlink(self.directory)
        os.symlink(self.host_dir, self.directory)
        self._bindings = None

    @classmethod
    def start(cls, root: str = ROOT, name: str = "pool", fragments: Sequence[str] = (),
              timeout: float = 60.0, attempts: int = 3) -> "CondorPool":
        """A running pool whose schedd answers; stopped again if it does not come up.  The
        collector's port is free when chosen; taken meanwhile, the pool is started anew."""
        for attempt in range(attempts):
            pool = cls(root, name, fragments)
            Daemons.start(pool)
            try:
                wait_for(pool._schedd_ready, timeout, "the collector and the schedd",
                         explain=lambda: pool.tail(["master.out", "MasterLog", "CollectorLog", "SchedLog"]))
                return pool
            except _PortTaken:
                pool.stop()
                if attempt + 1 == attempts:
                    raise AssertionError(f"no free collector port in {attempts} attempts") from None
            except BaseException:
                pool.stop(keep=True)
                raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ host-side clients

    def env(self, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """An environment for host processes talking to this pool (CONDOR_CONFIG)."""
        return dict(os.environ if base is None else base, CONDOR_CONFIG=self.client_config)

    @property
    def htcondor2(self):
        """The PyPI bindings configured for this pool (CONDOR_CONFIG of this process)."""
        import htcondor2

        if os.environ.get("CONDOR_CONFIG") != self.client_config:
            os.environ["CONDOR_CONFIG"] = self.client_config
            htcondor2.reload_config()
        return htcondor2

    def collector(self):
        return self.htcondor2.Collector(f"127.0.0.1:{self.port}")

    def schedd(self):
        bindings = self.htcondor2
        return bindings.Schedd(self.collector().locate(bindings.DaemonType.Schedd, self.schedd_name))

    def _schedd_ready(self) -> bool:
        if f"Failed to create IPv4 command socket for ports {self.port}/" in self.log("MasterLog"):
            raise _PortTaken(self.port)
        if not self.alive():
            raise AssertionError("the pool's condor_master exited\n" + self.tail(["master.out", "MasterLog"]))
        try:
            self.schedd().query(constraint="false", projection=["ClusterId"])
            return True
        except Exception:  # not up yet: the collector or the schedd
            return False

    # ------------------------------------------------------------------ jobs

    def run_in_root(self, argv: Sequence[str], user: Optional[str] = TEST_USER, input: str = "",
                    timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run a command inside the root with this pool's configuration (as the test user)."""
        return subprocess.run(in_root(self.root, argv, self._root_env(), user), input=input,
                              text=True, capture_output=True, timeout=timeout, cwd="/")

    def _root_env(self) -> Dict[str, str]:
        return {"CONDOR_CONFIG": self.config, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                "HOME": "/tmp", "LANG": "C.UTF-8"}

    def _host_tools(self) -> str:
        """A directory of HTCondor's tools for host processes (the client configuration's
        BIN: elastiq runs ``condor_drain`` from there): each runs the root's own tool inside
        the root, as root, with this pool's configuration."""
        directory = self.host_dir + "/bin"
        os.makedirs(directory)
        for tool in ("condor_drain",):
            path = f"{directory}/{tool}"
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(f'#!/bin/sh\nexec {shlex.join(in_root(self.root, [tool], self._root_env()))} "$@"\n')
            os.chmod(path, 0o755)
        return directory

    def submit(self, description: Mapping[str, str], count: int = 1) -> int:
        """Submit with the pool's own ``condor_submit`` as the test user; the cluster id."""
        description = {"initialdir": self.job_dir, **description}
        text = "".join(f"{k} = {v}\n" for k, v in description.items()) + f"queue {count}\n"
        done = self.run_in_root(["condor_submit", "-terse", "-"], input=text)
        if done.returncode != 0:
            raise AssertionError(f"condor_submit failed ({done.returncode}): {done.stderr.strip()}")
        return int(done.stdout.split(".", 1)[0])

    def submit_with_bindings(self, description: Mapping[str, str], count: int = 1) -> int:
        """Submit with the htcondor2 bindings from PyPI as the test user (the schedd refuses
        jobs owned by root): a fresh Python process (no security session of ours to reuse)
        imports the bindings as root, drops to the test user, submits; the cluster id."""
        description = {"initialdir": self.job_dir, **description}
        done = subprocess.run(
            [sys.executable, "-c", _BINDINGS_SUBMIT, json.dumps(description), str(count),
             str(self.user.pw_uid), str(self.user.pw_gid)],
            env=dict(self.env(), USER=TEST_USER, LOGNAME=TEST_USER, HOME=self.directory),
            capture_output=True, text=True, timeout=60, cwd="/")
        if done.returncode != 0:
            raise AssertionError(f"submit with the bindings as {TEST_USER} failed: {done.stderr.strip()}")
        return int(done.stdout)

    def jobs(self, constraint: str = "true", projection: Sequence[str] = ()) -> list:
        """Job ads in the queue and in the history (finished jobs), one per job: a job seen in
        both (it left the queue between the two queries) as the history has it."""
        schedd = self.schedd()
        fields = list(projection) + ["ClusterId", "ProcId"] if projection else []
        queue = list(schedd.query(constraint=constraint, projection=fields))
        history = list(schedd.history(constraint, fields, match=-1))
        return list({(ad["ClusterId"], ad["ProcId"]): ad for ad in queue + history}.values())

    def wait_for(self, check: Callable[[], T], timeout: float, what: str, every: float = 0.5,
                 logs: Sequence[str] = ("SchedLog", "NegotiatorLog")) -> T:
        """:func:`wait_for`, explaining a timeout with the tails of the pool's and startds' logs."""
        def explain() -> str:
            return "\n".join([self.tail(logs)] + [s.tail(["StartLog", "StarterLog"])
                                                  for s in self.startds])
        return wait_for(check, timeout, what, every, explain)

    # ------------------------------------------------------------------ execute nodes

    def start_startd(self, name: str, cpus: int = 1, memory_mb: int = 1024,
                     cluster: Optional[str] = None, instance_id: Optional[str] = None,
                     fragments: Sequence[str] = (), wait: float = 0) -> Startd:
        """An execute node advertising ``ElastiqCluster``/``ElastiqInstanceId`` (when given);
        ``wait``: seconds to wait for its slot in the collector (0: do not wait)."""
        attrs = {}
        if cluster is not None:
            attrs["ElastiqCluster"] = f'"{cluster}"'
        if instance_id is not None:
            attrs["ElastiqInstanceId"] = f'"{instance_id}"'
        startd = Startd(self, name, cpus, memory_mb, attrs, fragments)
        self.startds.append(startd)
        startd.start()
        if wait:
            self.wait_for(lambda: startd.slots() or not startd.alive(), wait,
                          f"the slot of startd {name}", logs=())
            if not startd.alive():
                raise AssertionError(f"startd {name}: its condor_master exited\n"
                                     + startd.tail(["master.out", "MasterLog", "StartLog"]))
        return startd

    def stop_startd(self, startd: Startd) -> None:
        startd.stop()
        if startd in self.startds:
            self.startds.remove(startd)

    def stop(self, timeout: float = 20.0, keep: bool = False) -> None:
        """Stop every startd, then the pool's master; remove the pool's directory unless
        ``keep`` or ``$ELASTIQ_KEEP_POOL`` is set (to read the logs after a failure)."""
        for startd in list(self.startds):
            self.stop_startd(startd)
        Daemons.stop(self, timeout)
        if os.environ.get("CONDOR_CONFIG") == self.client_config:
            os.environ.pop("CONDOR_CONFIG")
        if not (keep or os.environ.get("ELASTIQ_KEEP_POOL")):
            os.unlink(self.directory)
            shutil.rmtree(self.host_dir, ignore_errors=True)
