"""Run the elastiq daemon: grow and shrink the pool until SIGTERM or SIGINT.

Each tick observes the queue, the pool and the cloud, lets the core decide, carries out the
plan (launch, drain, terminate) and saves the state.  The checks run at the configured
intervals and, in between, whenever a time-based decision falls due.

On SIGTERM/SIGINT the action under way is finished, the remaining ones are abandoned, the
state is saved and the process exits 0.  Exit codes: 1 already running or failed (with
--once: the tick could not read the queue, the pool or the cloud), 2 bad configuration (the
checks of :func:`prepare`, which ``elastiq config check`` shares; logged too), 4 permission
denied on the state or log location.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from typing import Optional

from .. import __version__, cli, config
from ..adapters import BATCH_SYSTEMS, CLOUDS, load_class
from ..adapters.base import AdapterError
from ..core import get_policy
from . import logs, paths, pidfile
from .metrics import Metrics, MetricsServer
from .pidfile import AlreadyRunning, PidLock
from .state import StateStore
from .status import EXIT_PERMISSION
from .tick import Runtime, build_runtime

log = logging.getLogger("elastiq.daemon")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_config_arguments(parser, config.DEFAULT_PATH)
    parser.add_argument("--dry-run", action="store_true",
                        help="log what would be launched, drained and terminated; change nothing")
    parser.add_argument("--log-stderr", action="store_true",
                        help="log to stderr (for journald under systemd) instead of the log file")
    parser.add_argument("--once", action="store_true", help="run a single tick and exit")


def _adapter_class(cfg: config.Config, key: str, registry: dict):
    name = getattr(cfg.elastiq, key)
    try:
        return load_class(registry, name)
    except (ImportError, AttributeError) as err:
        raise config.InvalidConfig(cfg.source, f"elastiq.{key}",
                                   f"cannot load {name!r}: {err}") from None


def build_cloud(cfg: config.Config):
    """The cloud named by the configuration."""
    return _adapter_class(cfg, "cloud_plugin", CLOUDS)(cfg)


def build_adapters(cfg: config.Config, read_shape: bool = True):
    """``(config, batch system, cloud)`` named by the configuration.

    The cloud comes first: with ``read_shape``, the worker VM's shape it knows (see
    :func:`fill_vm_shape`, one call to the cloud) is part of the configuration returned, and the
    batch system is built from that configuration, so that its idea of a worker VM (which jobs
    fit one) is the flavour's, not the defaults."""
    batch_class = _adapter_class(cfg, "batch_plugin", BATCH_SYSTEMS)
    cloud = build_cloud(cfg)
    if read_shape:
        cfg = fill_vm_shape(cfg, cloud)
    return cfg, batch_class(cfg), cloud


def prepare(cfg: config.Config, read_shape: bool = False):
    """The one check of a configuration for running, shared by ``run`` and ``config check``:
    build the batch system and the cloud as ``run`` does, so a setting the adapters refuse
    (user-data file, endpoint, keys, region...) is an :class:`config.InvalidConfig` naming the
    file and key.  No call to either is made unless ``read_shape`` (``run``: see
    :func:`build_adapters`).  Returns what :func:`build_adapters` returns."""
    from ..adapters.base import ConfigError
    try:
        return build_adapters(cfg, read_shape)
    except ConfigError as err:
        raise config.InvalidConfig(cfg.source, err.key, str(err)) from None


def fill_vm_shape(cfg: config.Config, cloud) -> config.Config:
    """Complete ``vm.cpus``/``vm.memory_mb`` from the cloud's flavour when they are not set."""
    vm = cfg.vm
    if vm.cpus is not None and vm.memory_mb is not None:
        return cfg
    describe = getattr(cloud, "describe_flavour", None)
    shape = None
    if describe is not None:
        try:
            shape = describe()
        except AdapterError as err:
            log.warning("cannot read the flavour's shape (%s error): %s", err.kind, err)
    if not shape:
        log.warning("worker VM shape unknown: assuming %d cpu(s), %d MiB (set vm.cpus and "
                    "vm.memory_mb)", vm.effective_cpus, vm.effective_memory_mb)
        return cfg
    cpus, memory_mb = shape
    vm = dataclasses.replace(vm, cpus=vm.cpus or cpus, memory_mb=vm.memory_mb or memory_mb)
    log.info("worker VM shape of flavour %s: %d cpu(s), %d MiB", cfg.ec2.flavour or "?",
             vm.cpus, vm.memory_mb)
    return dataclasses.replace(cfg, vm=vm)


def command(args: argparse.Namespace) -> int:
    cfg = cli.load_config(args)
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
    cfg, batch, cloud = prepare(cfg, read_shape=True)
    lock = PidLock(where.pid_file)
    try:
        lock.acquire()
    except AlreadyRunning as err:
        return _already_running(err)
    except PermissionError as err:
        return _denied(err)
    try:
        return _serve(cfg, where, args, batch, cloud, stop)
    finally:
        lock.release()


def _already_running(err: AlreadyRunning) -> int:
    print(f"elastiq: {err}", file=sys.stderr)
    return cli.EXIT_FAILURE


def _denied(err: PermissionError) -> int:
    print(f"elastiq: permission denied: {err.filename} (run as root or as the elastiq user, "
          "or set elastiq.state_dir and elastiq.log_file)", file=sys.stderr)
    return EXIT_PERMISSION


def _serve(cfg: config.Config, where: paths.Paths, args: argparse.Namespace, batch, cloud,
           stop: threading.Event) -> int:
    policy = get_policy(cfg.elastiq.policy)
    store = StateStore(where.state_dir, policy=policy)
    try:
        state = store.load()
    except PermissionError as err:  # a state file left by root, say
        return _denied(err)
    metrics = Metrics()
    runtime = build_runtime(cfg, batch, cloud, store, state, time.time, metrics,
                            dry_run=args.dry_run, stopping=stop, policy=policy)
    if state is not None:
        owned = len(runtime.policy.owned(state.memory))
        log.info("loaded the state: %d instance(s) owned", owned)
        if state.cluster and state.cluster != cfg.elastiq.cluster_name:
            log.warning("the state was saved for cluster %r, the configuration names %r: the "
                        "%d instance(s) tagged %r are no longer managed by this elastiq",
                        state.cluster, cfg.elastiq.cluster_name, owned, state.cluster)
    server: Optional[MetricsServer] = None
    if cfg.elastiq.metrics_port:
        e = cfg.elastiq
        try:
            server = MetricsServer(metrics, e.metrics_port, e.metrics_address).start()
        except OSError as err:
            raise config.InvalidConfig(cfg.source, "elastiq.metrics_port", f"cannot listen on "
                                       f"{e.metrics_address}:{e.metrics_port}: {err.strerror or err}") from None
        log.info("metrics on http://%s:%d/metrics", *server.address)
    problems: tuple = ()
    try:
        if args.once:
            runtime.tick("once")
            problems = runtime.state.observation.problems if runtime.state.observation else ()
        elif not stop.is_set():
            _loop(cfg, runtime, stop)
    finally:
        if server is not None:
            server.stop()
    runtime.save()
    log.info("stopped; state saved to %s", store.path)
    if args.once and problems:  # a tick that could not observe is not a success
        print(f"elastiq: the tick could not observe: {'; '.join(problems)} (see the log)",
              file=sys.stderr)
        return cli.EXIT_FAILURE
    return cli.EXIT_OK


def _loop(cfg: config.Config, runtime: Runtime, stop: threading.Event) -> None:
    from .scheduler import Scheduler, checks  # apscheduler: only when running

    scheduler = Scheduler(runtime.tick, checks(cfg))
    scheduler.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.stop()
