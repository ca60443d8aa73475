"""A real HTCondor pool (Debian trixie's 23.9 daemons) for tests, run from a provisioned root.

The root is built by ``.ci/provision-htcondor-root.sh`` (``$ELASTIQ_CI_ROOT``, default
``/var/lib/elastiq-ci/trixie``, complete when ``.elastiq-provisioned`` exists).  Every daemon
runs as ``unshare --mount`` + ``chroot ROOT env CONDOR_CONFIG=... /usr/sbin/condor_master -f``:
``proc`` and ``/dev`` are mounted in that private mount namespace only, so nothing is mounted on
the host and nothing is left behind (several pools, of parallel runs, never share a mount).
Each pool lives in its own directory ``ROOT/tmp/elastiq-pools/<name>-XXXX/`` (configurations,
LOCAL_DIR, logs), listens on 127.0.0.1 only, and takes a collector port free at start.

    pool = CondorPool.start(fragments=["NEGOTIATOR_INTERVAL = 1"])   # central manager + schedd
    worker = pool.start_startd("i-0abc", cpus=2, memory_mb=4096, cluster="c1")
    pool.env()                    # os.environ + CONDOR_CONFIG = the host-side client config
    pool.submit({"executable": "/bin/sleep", "arguments": "5"}, count=3)     # condor_submit
    pool.submit_with_bindings({...}, count=3)    # htcondor2 from PyPI, as the test user
    pool.wait_for(lambda: ..., timeout=60, what="3 jobs done")   # AssertionError + logs
    pool.log("SchedLog"); worker.log("StartLog")
    pool.stop_startd(worker); pool.stop()          # SIGTERM by pid, then SIGKILL

Jobs are owned by the unprivileged test user (``elastiq-ci``, same uid inside the root and on
the host): the schedd refuses jobs owned by root.  ``pool.client_config`` (a file on the host)
is what host processes (the bindings, ``elastiq run``) use: COLLECTOR_HOST, CLAIMTOBE, and
SCHEDD_NAME so that ``Collector().locate(Schedd)`` finds the schedd.

``unavailable()`` says why a pool cannot run here (not root, no provisioned root...); the
``condor_pool`` fixture (tests/support/condor_fixtures.py) skips with it, or fails when
``ELASTIQ_REQUIRE_REAL_POOL=1`` (CI).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TypeVar

ROOT = os.environ.get("ELASTIQ_CI_ROOT", "/var/lib/elastiq-ci/trixie")
MARKER = ".elastiq-provisioned"
TEST_USER = os.environ.get("ELASTIQ_CI_USER", "elastiq-ci")
POOLS_DIR = "/tmp/elastiq-pools"  # inside the root, and symbolic links to them on the host
T = TypeVar("T")

#: Every daemon of every pool: one host, several masters, jobs run in this sandbox (issue 9).
COMMON = """\
RELEASE_DIR = /usr
BIN = $(RELEASE_DIR)/bin
SBIN = $(RELEASE_DIR)/sbin
LIB = $(RELEASE_DIR)/lib/condor
LIBEXEC = $(RELEASE_DIR)/libexec/condor
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
CONDOR_HOST = 127.0.0.1
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
USE_SHARED_PORT = False
UID_DOMAIN = elastiq.test
FILESYSTEM_DOMAIN = elastiq.test
TRUST_UID_DOMAIN = True
SOFT_UID_DOMAIN = True
SEC_DEFAULT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_CLIENT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_DEFAULT_ENCRYPTION = OPTIONAL
SEC_DEFAULT_INTEGRITY = OPTIONAL
SEC_USE_FAMILY_SESSION = False
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
ALLOW_ADMINISTRATOR = *
ALLOW_OWNER = *
ALLOW_CONFIG = *
UPDATE_INTERVAL = 2
MASTER_UPDATE_INTERVAL = 5
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
BASE_CGROUP =
CGROUP_MEMORY_LIMIT_POLICY = none
DISCARD_SESSION_KEYRING_ON_STARTUP = False
USE_PID_NAMESPACES = False
MOUNT_UNDER_SCRATCH =
ASSIGN_CPU_AFFINITY = False
START = True
SUSPEND = False
PREEMPT = False
KILL = False
WANT_SUSPEND = False
WANT_VACATE = False
RunBenchmarks = False
"""


#: Run by :meth:`CondorPool.submit_with_bindings`: argv = description (JSON), count, uid, gid.
_BINDINGS_SUBMIT = """
import json, os, sys
import htcondor2
description, count, uid, gid = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
schedd = htcondor2.Schedd(htcondor2.Collector().locate(htcondor2.DaemonType.Schedd))
os.setgroups([]); os.setgid(gid); os.setuid(uid)
print(schedd.submit(htcondor2.Submit(description), count=count).cluster())
"""


class PoolUnavailable(RuntimeError):
    """A pool cannot run here (see :func:`unavailable`) or did not come up."""


def unavailable(root: str = ROOT) -> Optional[str]:
    """Why no pool can run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a real HTCondor pool needs root (chroot, mount namespaces)"
    if not os.path.exists(os.path.join(root, MARKER)):
        return (f"no provisioned HTCondor root at {root} (no {MARKER}): run "
                ".ci/provision-htcondor-root.sh as root on Debian")
    for tool in ("unshare", "chroot"):
        if shutil.which(tool) is None:
            return f"{tool} not found on the host"
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        return f"no test user {TEST_USER} on the host (created by the provisioning script)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _condor_ids(root: str) -> tuple:
    with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(":")
            if fields[0] == "condor":
                return int(fields[2]), int(fields[3])
    raise PoolUnavailable(f"no condor user in {root}/etc/passwd")


#: What :func:`in_root` mounts in its private namespace ("$1": the root), unless told otherwise.
MOUNTS = 'mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev"'


def in_root(root: str, argv: Sequence[str], env: Mapping[str, str], user: Optional[str] = None,
            mounts: str = MOUNTS) -> List[str]:
    """The host command running ``argv`` inside ``root`` (own mount namespace with proc and
    /dev, or ``mounts``), with exactly ``env``, as ``user`` (default root).  The command
    execs: its pid is the pid of ``argv``."""
    assign = " ".join(f"{k}={v}" for k, v in env.items())
    userspec = f"--userspec={user}:{user} " if user else ""
    script = (f'{mounts} && '
              f'shift_root="$1" && shift && exec chroot {userspec}"$shift_root" env -i {assign} "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", root, *argv]


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.5,
             explain: Callable[[], str] = lambda: "") -> T:
    """Poll ``check`` until it returns something true (returned); AssertionError naming
    ``what`` (and ``explain()``) after ``timeout`` seconds.  Real daemons: polling is all there is."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(every)


class Daemons:
    """One condor_master (and its children) with its own directory inside the root."""

    mounts = MOUNTS  #: its mount namespace (see :func:`in_root`)

    def __init__(self, root: str, directory: str, config: str, name: str):
        self.root, self.directory, self.name = root, directory, name  # directory: inside the root
        self.host_dir = root + directory
        self.config = f"{directory}/condor_config"
        os.makedirs(self.host_dir + "/local", exist_ok=True)
        os.chmod(self.host_dir, 0o755)
        uid, gid = _condor_ids(root)
        for sub in ("log", "spool", "execute", "lock", "run"):
            path = f"{self.host_dir}/local/{sub}"
            os.makedirs(path, exist_ok=True)
            os.chown(path, uid, gid)
        os.chmod(self.host_dir + "/local/execute", 0o755)
        with open(self.host_dir + "/condor_config", "w", encoding="utf-8") as handle:
            handle.write(f"LOCAL_DIR = {directory}/local\n{config}")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Daemons":
        env = {"CONDOR_CONFIG": self.config, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        out = open(self.host_dir + "/master.out", "wb")
        self.proc = subprocess.Popen(in_root(self.root, ["/usr/sbin/condor_master", "-f"], env,
                                             mounts=self.mounts),
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the master (it stops its daemons and jobs), SIGKILL its group if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log(self, name: str) -> str:
        """A daemon log of this master (``MasterLog``, ``SchedLog``, ``StartLog``...), or ''."""
        path = f"{self.host_dir}/local/log/{name}"
        if name == "master.out":
            path = f"{self.host_dir}/master.out"
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def tail(self, names: Iterable[str], lines: int = 15) -> str:
        return "\n".join(f"--- {self.name} {n}:\n" + "\n".join(self.log(n).splitlines()[-lines:])
                         for n in names)


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
        super().__init__(root, host_dir[len(root):], self.base_config + extra + (
            "DAEMON_LIST = MASTER, COLLECTOR, NEGOTIATOR, SCHEDD\n"
            f"MASTER_NAME = {os.path.basename(host_dir)}\n"), name)
        self.client_config = self.host_dir + "/client_config"
        with open(self.client_config, "w", encoding="utf-8") as handle:
            handle.write(f"COLLECTOR_HOST = 127.0.0.1:{self.port}\nSCHEDD_NAME = {self.schedd_name}\n"
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
        os.symlink(self.host_dir, self.directory)
        self._bindings = None

    @classmethod
    def start(cls, root: str = ROOT, name: str = "pool", fragments: Sequence[str] = (),
              timeout: float = 60.0) -> "CondorPool":
        """A running pool whose schedd answers; stopped again if it does not come up."""
        pool = cls(root, name, fragments)
        Daemons.start(pool)
        try:
            wait_for(pool._schedd_ready, timeout, "the collector and the schedd",
                     explain=lambda: pool.tail(["master.out", "MasterLog", "CollectorLog", "SchedLog"]))
        except BaseException:
            pool.stop()
            raise
        return pool

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
        env = {"CONDOR_CONFIG": self.config, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
               "HOME": "/tmp", "LANG": "C.UTF-8"}
        return subprocess.run(in_root(self.root, argv, env, user), input=input, text=True,
                              capture_output=True, timeout=timeout, cwd="/")

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
        """Job ads in the queue and in the history (finished jobs)."""
        schedd = self.schedd()
        queue = list(schedd.query(constraint=constraint, projection=list(projection)))
        history = list(schedd.history(constraint, list(projection), match=-1))
        return queue + history

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
