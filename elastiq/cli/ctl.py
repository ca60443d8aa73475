"""elastiqctl: start, stop, restart, status, log and conf of the elastiq daemon.

With the systemd unit installed and systemd running, start/stop/restart go through systemctl
and log follows the journal.  Otherwise the daemon runs as a background process whose pid file
tells whether it runs (:mod:`elastiq.cli.ctl_process`).

Exit codes: 0 success, 1 failure, 2 bad configuration or usage, 3 not running (status),
4 permission denied.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from typing import List, Optional

from .. import __version__, cli, config
from .ctl_process import Denied, config_file, follow, start, stop
from ..runtime import paths
from ..runtime import status as status_mod

UNIT = "elastiq.service"
SYSTEMD_RUN_DIR = "/run/systemd/system"
PACKAGES = ("elastiq", "boto3", "htcondor", "apscheduler", "PyYAML", "Jinja2")


def uses_systemd(run_dir: str = SYSTEMD_RUN_DIR) -> bool:
    """True when systemd runs and knows the elastiq unit."""
    if not os.path.isdir(run_dir) or shutil.which("systemctl") is None:
        return False
    found = subprocess.run(["systemctl", "cat", UNIT], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    return found.returncode == 0


def _systemctl(verb: str) -> int:
    return subprocess.call(["systemctl", verb, UNIT])


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
    cfg = config.load(config_file(args), args.overrides)
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
            from ..adapters.factory import prepare
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
        return cli.EXIT_PERMISSION


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
