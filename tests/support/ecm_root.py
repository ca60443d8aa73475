"""Run the HTCondor units of a rendered master and worker user-data for real, with Debian
trixie's HTCondor 23.9 from the shared provisioned root (issue 9's recipe): each command runs in
its own mount namespace (``unshare --mount``: proc and /dev mounted there only, so nothing is
left mounted) and ``chroot``; each node gets a directory of its own under ``ROOT/tmp``.

A node's ``condor_config`` holds only what this sandbox needs (paths inside the node's
directory, 127.0.0.1, a free collector port, the knobs that let jobs run here); everything
else comes from the units, written by their own bash lines into ``config.d``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence

from . import condor_daemons
from .condor_daemons import MARKER, ROOT, unavailable  # noqa: F401
from .net import free_port  # noqa: F401
from .condor_daemons import TEST_USER as USER
from .condor_daemons import in_root as _in_root
from .condor_daemons import wait_for as _wait_for

#: What every node needs here: the sandbox's knobs, and quick updates and cycles.
SANDBOX = condor_daemons.SANDBOX + """\
UPDATE_INTERVAL = 2
MASTER_UPDATE_INTERVAL = 5
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
"""


def in_root(argv: Sequence[str], env: Mapping[str, str], user: Optional[str] = None) -> List[str]:
    """The host command running ``argv`` in the root with exactly ``env`` (as ``user``)."""
    return _in_root(ROOT, argv, env, user)


def wait_for(check, timeout: float, what: str, explain=lambda: ""):
    """Poll ``check`` until it returns something true (see condor_daemons.wait_for)."""
    return _wait_for(check, timeout, what, explain=explain)


class Node:
    """One HTCondor node (a condor_master and its daemons) in ``ROOT/tmp/elastiq-ecm-*/name``.
    ``path`` is the directory as seen inside the root; ``host`` the same on the host."""

    def __init__(self, base: str, name: str, collector_port: int, extra: str = ""):
        self.name, self.path = name, f"{base}/{name}"
        self.host = ROOT + self.path
        self.config = f"{self.path}/condor_config"
        uid, gid = _root_ids("condor")
        for sub in ("config.d", "tokens.d", "passwords.d", "sbin", "bin"):
            os.makedirs(f"{self.host}/{sub}", exist_ok=True)
        for sub in ("log", "spool", "execute", "lock", "run"):
            os.makedirs(f"{self.host}/local/{sub}", exist_ok=True)
            os.chown(f"{self.host}/local/{sub}", uid, gid)
        os.chmod(f"{self.host}/local/execute", 0o755)
        for sub in ("tokens.d", "passwords.d"):
            os.chmod(f"{self.host}/{sub}", 0o700)
        with open(self.host + "/condor_config", "w", encoding="utf-8") as handle:
            handle.write(f"LOCAL_DIR = {self.path}/local\nLOCAL_CONFIG_DIR = {self.path}/config.d\n"
                         f"SEC_PASSWORD_DIRECTORY = {self.path}/passwords.d\n"
                         f"SEC_TOKEN_SYSTEM_DIRECTORY = {self.path}/tokens.d\n" + SANDBOX)
        # Read after the units' files (config.d is read in name order).
        with open(self.host + "/config.d/99-sandbox.conf", "w", encoding="utf-8") as handle:
            handle.write(f"COLLECTOR_HOST = 127.0.0.1:{collector_port}\n{extra}")
        self.proc: Optional[subprocess.Popen] = None

    def env(self, **more: str) -> Dict[str, str]:
        return {"CONDOR_CONFIG": self.config,
                "PATH": f"{self.path}/bin:/usr/sbin:/usr/bin:/sbin:/bin", **more}

    def run(self, script: str, user: Optional[str] = None, check: bool = True,
            **env: str) -> subprocess.CompletedProcess:
        """bash -euc ``script`` in the root with this node's configuration."""
        done = subprocess.run(in_root(["bash", "-euc", script], self.env(**env), user),
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def start(self) -> "Node":
        out = open(self.host + "/master.out", "wb")
        self.proc = subprocess.Popen(in_root(["/usr/sbin/condor_master", "-f"], self.env()),
                                     stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the condor_master by pid (it stops its daemons), SIGKILL its group if stuck."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log(self, name: str) -> str:
        try:
            with open(f"{self.host}/local/log/{name}", encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError as err:
            return f"({name}: {err.strerror})"


def _root_ids(user: str):
    with open(os.path.join(ROOT, "etc/passwd"), encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
    raise RuntimeError(f"no {user} in {ROOT}/etc/passwd")


def new_base() -> str:
    """A fresh directory under ROOT/tmp for one test's nodes (path inside the root)."""
    host = tempfile.mkdtemp(prefix="elastiq-ecm-", dir=os.path.join(ROOT, "tmp"))
    os.chmod(host, 0o755)
    return host[len(ROOT):]
