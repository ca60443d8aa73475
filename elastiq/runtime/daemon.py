"""The daemon's life once started: build the runtime on the saved state, serve the metrics,
tick at the scheduled moments until told to stop, and save the state on the way out (the
``elastiq run`` command around it, with its signals, pid lock and exit codes, is
:mod:`elastiq.cli.run`)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional, Tuple

from .. import config
from ..core import get_policy
from . import paths
from .metrics import Metrics, MetricsServer
from .state import StateStore
from .tick import Runtime, build_runtime

log = logging.getLogger("elastiq.daemon")


def serve(cfg: config.Config, where: paths.Paths, catalogue, batch, cloud, stop: threading.Event,
          serving: Callable[[], None], *, dry_run: bool, once: bool) -> Tuple[str, ...]:
    """Tick until ``stop`` (``once``: a single tick), then save the state.  ``serving()`` is
    called once the metrics port (if any) listens.  Returns the problems of a ``once`` tick
    that could not observe (empty otherwise); PermissionError: the state is not ours to read."""
    policy = get_policy(cfg.elastiq.policy)
    store = StateStore(where.state_dir, policy=policy)
    state = store.load()
    metrics = Metrics()
    runtime = build_runtime(cfg, batch, cloud, store, state, time.time, metrics,
                            dry_run=dry_run, stopping=stop, policy=policy,
                            catalogue=catalogue)
    if state is not None:
        owned = len(state.records)
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
    serving()
    problems: tuple = ()
    try:
        if once:
            runtime.tick("once")
            problems = runtime.state.observation.problems if runtime.state.observation else ()
        elif not stop.is_set():
            _loop(cfg, runtime, stop)
    finally:
        if server is not None:
            server.stop()
    runtime.save()
    log.info("stopped; state saved to %s", store.path)
    return tuple(problems)


def _loop(cfg: config.Config, runtime: Runtime, stop: threading.Event) -> None:
    from ..runtime.scheduler import Scheduler, checks  # apscheduler: only when running

    scheduler = Scheduler(runtime.tick, checks(cfg))
    scheduler.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.stop()
