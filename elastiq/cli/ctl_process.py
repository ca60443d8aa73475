"""elastiqctl without systemd: the daemon as a background process, known by its pid file
(``<state dir>/elastiq.pid``, locked while the daemon lives; one left behind by a crash is
stale and removed), and its log file, followed across rotations."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .. import cli
from ..runtime import paths, pidfile


class Denied(Exception):
    """Permission denied, with what to do about it."""


def config_file(args: argparse.Namespace) -> str:
    return os.path.abspath(cli.config_path(args))


def _check(pid_file: str) -> pidfile.PidStatus:
    try:
        return pidfile.status(pid_file)
    except PermissionError:
        raise Denied(f"cannot read {pid_file}: permission denied (run as root or as the "
                     "elastiq user)") from None


def start(args: argparse.Namespace, where: paths.Paths) -> int:
    now = _check(where.pid_file)
    if now.running:
        print(f"elastiq is already running (pid {now.pid or 'not yet written'})")
        return cli.EXIT_OK
    if now.stale and pidfile.remove_stale(where.pid_file):
        print(f"removed a stale pid file (pid {now.pid} is not running)")
    try:
        os.makedirs(where.state_dir, mode=0o700, exist_ok=True)
        out = os.open(where.stderr_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except PermissionError as err:
        raise Denied(f"cannot write to {err.filename}: permission denied (run as root, or set "
                     "elastiq.state_dir and elastiq.log_file)") from None
    cmd = [sys.executable, "-m", "elastiq", "run", "--config", config_file(args)]
    for assignment in args.overrides:
        cmd += ["--set", assignment]
    try:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True, close_fds=True)
    finally:
        os.close(out)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            print(f"elastiq failed to start (exit {code}):", file=sys.stderr)
            sys.stderr.write(_tail(where.stderr_file, 20) or "(no output)\n")
            # its reason, as the table says it: a configuration (2) or permission (4) problem
            return code if code in (cli.EXIT_USAGE, cli.EXIT_PERMISSION) else cli.EXIT_FAILURE
        running = pidfile.status(where.pid_file)
        if running.running and running.pid == child.pid:
            print(f"elastiq started (pid {child.pid}); log: {where.log_file}")
            return cli.EXIT_OK
        time.sleep(0.05)
    print(f"elastiq (pid {child.pid}) did not confirm its start within {args.timeout:g} s; "
          f"see {where.log_file} and {where.stderr_file}", file=sys.stderr)
    return cli.EXIT_FAILURE


def stop(args: argparse.Namespace, where: paths.Paths) -> int:
    now = _check(where.pid_file)
    if not now.running:
        if now.stale and pidfile.remove_stale(where.pid_file):
            print(f"removed a stale pid file (pid {now.pid} is not running)")
        print("elastiq is not running")
        return cli.EXIT_OK
    if now.pid is None:  # it holds the lock but has not announced itself yet
        print("elastiq is still starting (no pid in its pid file yet); try again in a moment",
              file=sys.stderr)
        return cli.EXIT_FAILURE
    try:
        os.kill(now.pid, signal.SIGTERM)
    except PermissionError:
        raise Denied(f"not allowed to stop pid {now.pid} (run as root or as the elastiq "
                     "user)") from None
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not pidfile.status(where.pid_file).running and _gone(now.pid):
            print(f"elastiq stopped (was pid {now.pid})")
            return cli.EXIT_OK
        time.sleep(0.05)
    print(f"elastiq (pid {now.pid}) did not stop within {args.timeout:g} s", file=sys.stderr)
    return cli.EXIT_FAILURE


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaps, as in some containers, counts)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def _last_lines(handle, lines: int) -> str:
    """The last ``lines`` lines of an open binary file; leaves it positioned at its end."""
    handle.seek(0, os.SEEK_END)
    handle.seek(max(0, handle.tell() - 64 * 1024))
    text = handle.read().decode("utf-8", "replace")
    return "".join(text.splitlines(keepends=True)[-lines:] if lines > 0 else [])


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as handle:
            return _last_lines(handle, lines)
    except FileNotFoundError:
        return ""


def follow(path: str, lines: int, keep_following: bool, poll_s: float = 0.2) -> int:
    """Print the last ``lines`` of ``path``, then what is appended, across rotations.

    No file yet: say so and where it will be; exit 1 without ``keep_following``."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        handle = None
        print(f"elastiqctl: no log yet: {path} does not exist (elastiq writes it once it "
              f"starts){'; waiting for it' if keep_following else ''}", file=sys.stderr)
        if not keep_following:
            return cli.EXIT_FAILURE
    except PermissionError:
        raise Denied(f"cannot read {path}: permission denied") from None
    try:
        if handle is not None:
            _write(_last_lines(handle, lines).encode())
        while keep_following:
            if handle is None:
                try:
                    handle = open(path, "rb")  # created or rotated in: read it from the start
                except FileNotFoundError:
                    time.sleep(poll_s)
                    continue
            chunk = handle.read()
            if chunk:
                _write(chunk)
                continue
            try:
                rotated = os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                rotated = True
            if rotated:
                _write(handle.read())  # what was written just before the rename
                handle.close()
                handle = None
                continue
            time.sleep(poll_s)
    except KeyboardInterrupt:
        pass
    finally:
        if handle is not None:
            handle.close()
    return cli.EXIT_OK


def _write(data: bytes) -> None:
    if data:  # bytes as they are: a chunk may end inside a multi-byte character
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
