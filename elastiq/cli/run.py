"""Run the elastiq daemon: grow and shrink the pool until SIGTERM or SIGINT.

Each tick observes the queue, the pool and the cloud, lets the core decide, carries out the
plan (launch, drain, terminate) and saves the state.  The checks run at the configured
intervals and, in between, whenever a time-based decision falls due.

On SIGTERM/SIGINT the action under way is finished, the remaining ones are abandoned, the
state is saved and the process exits 0.  Exit codes: 1 already running or failed (with
--once: the tick could not read the queue, the pool or the cloud), 2 bad configuration or
refused credentials (``elastiq config check`` makes the same checks; logged too), 4 permission
denied on the state or log location (the table: ``elastiq --help``).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .. import __version__, config
from ..adapters.base import AdapterError
from ..runtime import daemon, factory, logs, owner, paths, pidfile
from ..runtime.pidfile import AlreadyRunning, PidLock
from . import options

log = logging.getLogger("elastiq.daemon")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_config_arguments(parser, config.DEFAULT_PATH)
    parser.add_argument("--dry-run", action="store_true",
                        help="log what would be launched, drained and terminated; change nothing")
    parser.add_argument("--log-stderr", action="store_true",
                        help="log to stderr (for journald under systemd) instead of the log file")
    parser.add_argument("--once", action="store_true", help="run a single tick and exit")


def command(args: argparse.Namespace) -> int:
    cfg = options.load_config(args)
    where = paths.resolve(cfg)
    try:
        # a daemon that is refused must not write into (or rotate) the running one's log;
        # the lock taken below settles a race between two starting at once
        running = pidfile.status(where.pid_file)
        if running.running:
            return _already_running(AlreadyRunning(where.pid_file, running.pid))
        logs.setup(cfg, None if args.log_stderr else where.log_file)
    except PermissionError as err:
        return _denied(err)
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not stop.is_set():
            log.info("%s received: finishing the current action, then stopping",
                     signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _start(cfg, where, args, stop)
    except (config.InvalidConfig, AdapterError) as err:  # also in the log: elastiqctl log shows it
        log.error("cannot start: %s", err)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start(cfg: config.Config, where: paths.Paths, args: argparse.Namespace,
           stop: threading.Event) -> int:
    dry_run = args.dry_run or cfg.debug.dry_run_boot_vms or cfg.debug.dry_run_shutdown_vms
    log.info("elastiq %s starting: %s; state in %s%s", __version__, config.summary(cfg),
             where.state_dir, " (dry run)" if dry_run else "")
    for note in cfg.notes:
        log.warning("%s: %s", cfg.source or "configuration", note)
    try:  # made before anything is launched: every VM carries it
        owner_id = owner.load_or_create(where.state_dir)
    except PermissionError as err:
        return _denied(err)
    log.info("owner id %s (%s): the VMs of cluster %r that carry another are not this "
             "daemon's", owner_id, owner.path_in(where.state_dir), cfg.elastiq.cluster_name)
    catalogue, batch, cloud = factory.prepare(cfg, read_shape=True, owner=owner_id)
    lock = PidLock(where.pid_file)
    try:
        lock.acquire(announce=False)
    except AlreadyRunning as err:
        return _already_running(err)
    except PermissionError as err:
        return _denied(err)
    try:
        problems = daemon.serve(cfg, where, catalogue, batch, cloud, stop, lock.announce,
                                dry_run=args.dry_run, once=args.once)
    except PermissionError as err:  # a state file left by root, say
        return _denied(err)
    finally:
        lock.release()
    if problems:  # a tick that could not observe is not a success
        print(f"elastiq: the tick could not observe: {'; '.join(problems)} (see the log)",
              file=sys.stderr)
        return options.EXIT_FAILURE
    return options.EXIT_OK


def _already_running(err: AlreadyRunning) -> int:
    print(f"elastiq: {err}", file=sys.stderr)
    return options.EXIT_FAILURE


def _denied(err: PermissionError) -> int:
    print(f"elastiq: permission denied: {err.filename} (run as root or as the elastiq user, "
          "or set elastiq.state_dir and elastiq.log_file)", file=sys.stderr)
    return options.EXIT_PERMISSION
