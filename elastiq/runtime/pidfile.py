"""One daemon per state directory: a pid file that is also an exclusive ``flock``.

The running daemon holds the lock for its whole life, so "is it running?" is answered by trying
the lock, not by trusting the pid written in the file: after a crash (SIGKILL, power loss) the
file stays behind but the kernel has released the lock, and the file is recognised as stale
even if its pid has been reused by another process.
"""
from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from typing import Optional


class AlreadyRunning(Exception):
    def __init__(self, path: str, pid: Optional[int]):
        self.path, self.pid = path, pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"elastiq is already running ({who} holds {path})")


@dataclass(frozen=True)
class PidStatus:
    running: bool
    pid: Optional[int]  # the pid in the file (the daemon's when running)
    stale: bool  # a file left behind by a daemon that is gone


def _read_pid(fd: int) -> Optional[int]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class PidLock:
    """Held by the daemon: ``acquire()`` once at start-up, ``release()`` at clean exit.

    ``acquire(announce=False)`` takes the lock but leaves the file empty until ``announce()``
    writes the pid: elastiqctl confirms a start by that pid, so a daemon announces only once it
    serves (a metrics port it cannot bind is then reported as a failed start)."""

    def __init__(self, path: str):
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self, announce: bool = True) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                pid = _read_pid(fd)
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    raise AlreadyRunning(self.path, pid) from None
                raise
            try:  # the previous holder may have unlinked the file we opened: lock the new one
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        self._fd = fd
        if announce:
            self.announce()

    def announce(self) -> None:
        """Write this process's pid into the held file."""
        assert self._fd is not None, "announce() before acquire()"
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, f"{os.getpid()}\n".encode("ascii"))
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the lock
        self._fd = None


def status(path: str) -> PidStatus:
    """Is a daemon holding ``path``?  Raises PermissionError when the file cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return PidStatus(False, None, False)
    try:
        pid = _read_pid(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return PidStatus(True, pid, False)
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return PidStatus(False, pid, True)
    finally:
        os.close(fd)


def remove_stale(path: str) -> bool:
    """Delete the pid file if no daemon holds it; True if something was removed."""
    if status(path).stale:
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False
    return False
