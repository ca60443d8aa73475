"""Where the daemon keeps its state, pid file and log: root vs unprivileged user.

As root (or as the dedicated ``elastiq`` service user under systemd, which gets the directories
from the unit) the system locations are used; anybody else gets ``~/.elastiq``, like the
original elastiq.  ``elastiq.state_dir`` / ``elastiq.log_file`` override both.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..config import Config

SYSTEM_STATE_DIR = "/var/lib/elastiq"
SYSTEM_LOG_FILE = "/var/log/elastiq/elastiq.log"


@dataclass(frozen=True)
class Paths:
    state_dir: str
    log_file: str

    @property
    def state_file(self) -> str:
        return os.path.join(self.state_dir, "state.json")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.state_dir, "elastiq.pid")

    @property
    def stderr_file(self) -> str:
        """Where ``elastiqctl start`` sends a background daemon's stdout/stderr."""
        return os.path.join(self.state_dir, "daemon.out")


def _system_wide(euid: int, user: Optional[str]) -> bool:
    return euid == 0 or user == "elastiq"


def resolve(cfg: Config, euid: Optional[int] = None, home: Optional[str] = None,
            user: Optional[str] = None) -> Paths:
    """The paths for ``cfg``; ``euid``/``home``/``user`` default to the current process's."""
    euid = os.geteuid() if euid is None else euid
    home = home or os.path.expanduser("~")
    if user is None:
        try:
            import pwd

            user = pwd.getpwuid(euid).pw_name
        except (KeyError, ImportError):
            user = None
    system = _system_wide(euid, user)
    user_dir = os.path.join(home, ".elastiq")
    state_dir = cfg.elastiq.state_dir or (SYSTEM_STATE_DIR if system else user_dir)
    log_file = cfg.elastiq.log_file or (SYSTEM_LOG_FILE if system else os.path.join(user_dir, "log"))
    return Paths(os.path.expanduser(state_dir), os.path.expanduser(log_file))
