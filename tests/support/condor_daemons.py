"""The daemons of a test HTCondor pool: configuration shared by all, one condor_master run
inside the provisioned root (tests/support/condor_pool.py has the pool and its API).

``in_root`` runs a command as ``unshare --mount`` + ``chroot``: ``proc`` and ``/dev`` are
mounted in a private mount namespace only, so nothing is mounted on the host and nothing is
left behind when the command ends.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, TypeVar

from .net import free_port  # noqa: F401 (the pools import it from here)

ROOT = os.environ.get("ELASTIQ_CI_ROOT", "/var/lib/elastiq-ci/trixie")
MARKER = ".elastiq-provisioned"
TEST_USER = os.environ.get("ELASTIQ_CI_USER", "elastiq-ci")
POOLS_DIR = "/tmp/elastiq-pools"  # inside the root, and symbolic links to them on the host
T = TypeVar("T")

#: What any HTCondor node needs in this sandbox (one host, several masters; issue 9): Debian's
#: paths, loopback only, no family session, and the knobs without which jobs do not execute.
SANDBOX = """\
RELEASE_DIR = /usr
LIB = $(RELEASE_DIR)/lib/condor
LIBEXEC = $(RELEASE_DIR)/libexec/condor
LOG = $(LOCAL_DIR)/log
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
LOCK = $(LOCAL_DIR)/lock
RUN = $(LOCAL_DIR)/run
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
USE_SHARED_PORT = False
SEC_USE_FAMILY_SESSION = False
BASE_CGROUP =
CGROUP_MEMORY_LIMIT_POLICY = none
DISCARD_SESSION_KEYRING_ON_STARTUP = False
USE_PID_NAMESPACES = False
MOUNT_UNDER_SCRATCH =
ASSIGN_CPU_AFFINITY = False
RunBenchmarks = False
"""

#: Every daemon of every pool: the sandbox's knobs, CLAIMTOBE, open ALLOW lists, fast cycles.
#: A startd keeps HTCondor's UPDATE_INTERVAL (300 s) as a real worker does: between two
#: updates, the collector holds what the startd sent on its last change of state.
COMMON = SANDBOX + """\
BIN = $(RELEASE_DIR)/bin
SBIN = $(RELEASE_DIR)/sbin
CONDOR_HOST = 127.0.0.1
UID_DOMAIN = elastiq.test
FILESYSTEM_DOMAIN = elastiq.test
TRUST_UID_DOMAIN = True
SOFT_UID_DOMAIN = True
SEC_DEFAULT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_CLIENT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_DEFAULT_ENCRYPTION = OPTIONAL
SEC_DEFAULT_INTEGRITY = OPTIONAL
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
ALLOW_ADMINISTRATOR = *
ALLOW_OWNER = *
ALLOW_CONFIG = *
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
START = True
SUSPEND = False
PREEMPT = False
KILL = False
WANT_SUSPEND = False
WANT_VACATE = False
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


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM ``proc`` (by its pid); SIGKILL its process group if it has not exited within
    ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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
        stop_process(self.proc, timeout)
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
