"""elastiqctl: start, stop, restart, status, log and conf of the elastiq daemon.

With the systemd unit installed and systemd running, start/stop/restart go through systemctl
and log follows the journal.  Otherwise the daemon runs as a background process whose pid file
tells whether it runs (:mod:`elastiq.cli.ctl_process`).

Exit codes: the table of :data:`elastiq.cli.options.EXIT_CODES` (``elastiqctl --help``).
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
from . import standin
from . import status as status_mod

UNIT = "elastiq.service"
SYSTEMD_RUN_DIR = "/run/systemd/system"
PACKAGES = ("elastiq", "boto3", "htcondor", "apscheduler", "PyYAML", "Jinja2")
_INVALID = (".  With a configuration file that no longer loads, it goes on with the daemon's "
            "files only (elastiq.state_dir and log_file as the file still gives them, else "
            "the defaults) and says so.")
#: Every verb and its description (the part before the first colon is its one-line help).
VERBS = (
    ("start", "start the daemon: through systemctl when its unit is installed, else as a "
              "background process with a pid file; refused when the configuration does not "
              "pass the checks of elastiq run."),
    ("stop", "stop the daemon: it finishes the cloud call under way, saves its state and "
             "exits (SIGTERM)" + _INVALID),
    ("restart", "stop, then start the daemon: the way to apply a changed configuration, "
                "refused (nothing is stopped) when the configuration does not pass the checks."),
    ("status", "is it running, its VMs and last decisions: from the state the daemon saves "
               "after every tick; --live also asks the cloud" + _INVALID),
    ("log", "show and follow the log: the journal under systemd, else the log file, across "
            "rotations" + _INVALID),
    ("conf", "the configuration in use (secrets masked), versions, locations: the "
             "configuration file, python and package versions, state, log and control" +
             _INVALID),
)


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


def conf(cfg: config.Config, where: paths.Paths, systemd: bool,
         invalid: Optional[config.InvalidConfig] = None) -> int:
    """The configuration in use (unless ``invalid``: the file no longer loads), versions,
    locations."""
    from importlib import metadata

    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} {__version__ if name == 'elastiq' else '(not installed)'}")
    if invalid is None:
        print(f"# configuration file: {cfg.source or 'built-in defaults'} (secrets masked)")
        sys.stdout.write(config.to_yaml(cfg, include_secrets=False))
    else:
        print(f"# configuration file: {cfg.source}: INVALID now ({invalid}); a running daemon "
              "uses what it read when it started")
    print(f"# python: {platform.python_version()} ({sys.executable})")
    print(f"# packages: {', '.join(versions)}")
    print(f"# state: {where.state_file}")
    log_where = "the journal (journalctl -u elastiq)" if systemd else where.log_file
    print(f"# log: {log_where}")
    control = f"systemd ({UNIT})" if systemd else f"pid file {where.pid_file}"
    print(f"# control: {control}")
    return cli.EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if args.verb in ("start", "restart") or getattr(args, "live", False):
        cfg, invalid = config.load(config_file(args), args.overrides), None
    else:
        cfg, invalid = standin.load(config_file(args), args.overrides, "elastiqctl", args.verb)
    if args.verb == "status":  # reads the state file and the pid file, with or without systemd
        return status_mod.show(args, cfg)
    where = paths.resolve(cfg)
    systemd = uses_systemd()
    try:
        if args.verb == "conf":
            return conf(cfg, where, systemd, invalid)
        if args.verb == "log":
            if systemd:
                cmd = ["journalctl", "-u", UNIT, "-n", str(args.lines)]
                return subprocess.call(cmd + (["-f"] if args.follow else []))
            return follow(where.log_file, args.lines, args.follow)
        if args.verb in ("start", "restart"):  # refused by `elastiq run`: refused here, at once
            from ..runtime.factory import prepare
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
        prog="elastiqctl", description=cli.plain(__doc__ or "").split("\n\n")[0],
        epilog=cli.exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"elastiqctl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)
    cli.add_config_arguments(common, config.DEFAULT_PATH)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, text in VERBS[:3]:
        action = sub.add_parser(verb, help=text.split(":")[0], description=text,
                                parents=[common])
        action.add_argument("--timeout", type=float, default=30.0, metavar="S",
                            help="how long to wait for the daemon (default 30 s)")
    described = dict(VERBS)
    status = sub.add_parser("status", help=described["status"].split(":")[0],
                            description=described["status"], parents=[common])
    status_mod.add_options(status)
    log = sub.add_parser("log", help=described["log"].split(":")[0],
                         description=described["log"], parents=[common])
    log.add_argument("-n", "--lines", type=int, default=50, metavar="N",
                     help="lines of history to show first (default 50)")
    log.add_argument("--no-follow", dest="follow", action="store_false",
                     help="print the last lines and exit")
    sub.add_parser("conf", help=described["conf"].split(":")[0], description=described["conf"],
                   parents=[common])
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.run_envelope(_run, args, "elastiqctl")


if __name__ == "__main__":
    sys.exit(main())
