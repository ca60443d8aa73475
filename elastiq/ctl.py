"""elastiqctl: start, stop, restart, status, log and conf of the elastiq daemon.

With the systemd unit installed and systemd running, start/stop/restart go through systemctl
and log follows the journal.  Otherwise the daemon runs as a background process whose pid file
(``<state dir>/elastiq.pid``, locked while the daemon lives) tells whether it runs; a pid file
left behind by a crash is recognised as stale and removed.

Exit codes: 0 success, 1 failure, 2 bad configuration or usage, 3 not running (status),
4 permission denied.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from typing import List, Optional

from . import __version__, cli, config
from .runtime import paths, pidfile
from .runtime import status as status_mod

UNIT = "elastiq.service"
SYSTEMD_RUN_DIR = "/run/systemd/system"
PACKAGES = ("elastiq", "boto3", "htcondor", "apscheduler", "PyYAML", "Jinja2")


class Denied(Exception):
    """Permission denied, with what to do about it."""


def uses_systemd(run_dir: str = SYSTEMD_RUN_DIR) -> bool:
    """True when systemd runs and knows the elastiq unit."""
    if not os.path.isdir(run_dir) or shutil.which("systemctl") is None:
        return False
    found = subprocess.run(["systemctl", "cat", UNIT], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    return found.returncode == 0


def _config_path(args: argparse.Namespace) -> str:
    return os.path.abspath(cli.config_path(args))


def _systemctl(verb: str) -> int:
    return subprocess.call(["systemctl", verb, UNIT])


# ----------------------------------------------------------------------------- pid-file mode


def _check(pid_file: str) -> pidfile.PidStatus:
    try:
        return pidfile.status(pid_file)
    except PermissionError:
        raise Denied(f"cannot read {pid_file}: permission denied (run as root or as the "
                     "elastiq user)") from None


def start(args: argparse.Namespace, where: paths.Paths) -> int:
    now = _check(where.pid_file)
    if now.running:
        print(f"elastiq is already running (pid {now.pid})")
        return cli.EXIT_OK
    if now.stale and pidfile.remove_stale(where.pid_file):
        print(f"removed a stale pid file (pid {now.pid} is not running)")
    try:
        os.makedirs(where.state_dir, mode=0o700, exist_ok=True)
        out = os.open(where.stderr_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except PermissionError as err:
        raise Denied(f"cannot write to {err.filename}: permission denied (run as root, or set "
                     "elastiq.state_dir and elastiq.log_file)") from None
    cmd = [sys.executable, "-m", "elastiq", "run", "--config", _config_path(args)]
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
            return cli.EXIT_FAILURE
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


# ----------------------------------------------------------------------------- verbs


def conf(cfg: config.Config, where: paths.Paths, systemd: bool) -> int:
    from importlib import metadata

    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} {__version__ if name == 'elastiq' else '(not installed)'}")
    print(f"# configuration file: {cfg.source or 'built-in defaults'} (secrets masked)")
    sys.stdout.write(config.to_yaml(cfg, include_secrets=False))
    print(f"# python: {platform.python_version()} ({sys.executable})")
    print(f"# packages: {', '.join(versions)}")
    print(f"# state: {where.state_file}")
    log_where = "the journal (journalctl -u elastiq)" if systemd else where.log_file
    print(f"# log: {log_where}")
    control = f"systemd ({UNIT})" if systemd else f"pid file {where.pid_file}"
    print(f"# control: {control}")
    return cli.EXIT_OK


def _run(args: argparse.Namespace) -> int:
    cfg = config.load(_config_path(args), args.overrides)
    if args.verb == "status":  # reads the state file and the pid file, with or without systemd
        return status_mod.show(args, cfg)
    where = paths.resolve(cfg)
    systemd = uses_systemd()
    try:
        if args.verb == "conf":
            return conf(cfg, where, systemd)
        if args.verb == "log":
            if systemd:
                cmd = ["journalctl", "-u", UNIT, "-n", str(args.lines)]
                return subprocess.call(cmd + (["-f"] if args.follow else []))
            return follow(where.log_file, args.lines, args.follow)
        if args.verb in ("start", "restart"):  # refused by `elastiq run`: refused here, at once
            from .adapters.factory import prepare
            prepare(cfg)
        if systemd:
            return _systemctl(args.verb)
        if args.verb == "start":
            return start(args, where)
        if args.verb == "stop":
            return stop(args, where)
        code = stop(args, where)
        return code if code else start(args, where)
    except Denied as err:
        print(f"elastiqctl: {err}", file=sys.stderr)
        return status_mod.EXIT_PERMISSION


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elastiqctl", description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit codes: 0 ok, 1 failure, 2 bad configuration, 3 not running, "
               "4 permission denied.")
    parser.add_argument("--version", action="version", version=f"elastiqctl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)
    cli.add_config_arguments(common, config.DEFAULT_PATH)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, text in (("start", "start the daemon"), ("stop", "stop the daemon"),
                       ("restart", "stop, then start the daemon")):
        action = sub.add_parser(verb, help=text, description=text, parents=[common])
        action.add_argument("--timeout", type=float, default=30.0, metavar="S",
                            help="how long to wait for the daemon (default 30 s)")
    status = sub.add_parser("status", help="is it running, its VMs and last decisions",
                            parents=[common])
    status_mod.add_options(status)
    log = sub.add_parser("log", help="follow the log (journal or file)", parents=[common])
    log.add_argument("-n", "--lines", type=int, default=50, metavar="N",
                     help="lines of history to show first (default 50)")
    log.add_argument("--no-follow", dest="follow", action="store_false",
                     help="print the last lines and exit")
    sub.add_parser("conf", help="the configuration in use (secrets masked), versions, locations",
                   parents=[common])
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.run_envelope(_run, args, "elastiqctl")


if __name__ == "__main__":
    sys.exit(main())
