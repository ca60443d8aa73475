"""``elastiq config check --online``: ask the cloud and the batch system what ``run`` will
ask them, without launching, draining or terminating anything.

Each answer is one line: ``ok`` or ``PROBLEM`` with the configuration key.  Exit code: 2 when a
setting names what the cloud does not know or the credentials are refused (fix the file), 1 when
the cloud or the pool cannot be reached (retry later, or fix the network), else 0."""
from __future__ import annotations

import sys
from typing import Callable, List, Tuple

from .. import config
from ..adapters.base import NOT_SUPPORTED, AdapterError, AuthError, ConfigError
from ..model import ALIVE_STATES
from .options import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

Line = Tuple[str, str]  # (verdict, text)


def run(cfg: config.Config, path: str, batch, cloud) -> int:
    """Print what ``cloud`` and ``batch`` (built from ``cfg`` by ``factory.prepare``) answer;
    the exit code above."""
    e = cfg.elastiq
    worst = EXIT_OK
    sections = (
        (f"cloud ({e.cloud_plugin})", lambda: _cloud(cloud, e.cluster_name)),
        (f"batch system ({e.batch_plugin})", lambda: _batch(batch)),
    )
    for title, ask in sections:
        print(f"{title}:")
        lines, code = _asked(ask)
        for verdict, text in lines:
            print(f"  {verdict:<8} {text}")
        worst = max(worst, code)  # the exit codes grow with the severity: 0 < 1 < 2
    print(("OK " if worst == EXIT_OK else "NOT OK ") + f"{path}: {config.summary(cfg)}",
          file=sys.stdout if worst == EXIT_OK else sys.stderr)
    return worst


def _asked(ask: Callable[[], List[Line]]) -> Tuple[List[Line], int]:
    """The lines of one side, or the one line saying why it could not be asked."""
    try:
        lines = ask()
    except (AuthError, ConfigError) as err:
        key = f"{err.key}: " if getattr(err, "key", None) else ""
        return [("PROBLEM", f"{key}{err}")], EXIT_USAGE
    except AdapterError as err:
        return [("PROBLEM", f"cannot be asked ({err.kind} error): {err}")], EXIT_FAILURE
    code = EXIT_USAGE if any(verdict == "PROBLEM" for verdict, _ in lines) else EXIT_OK
    return lines, code


def _cloud(cloud, cluster: str) -> List[Line]:
    lines: List[Line] = []
    checks = cloud.check_settings()
    if checks is NOT_SUPPORTED:
        lines.append(("-", "launch settings: this cloud cannot check them"))
    for check in checks or ():
        value = f" {check.value}" if check.value else ""
        if check.problem:
            lines.append(("PROBLEM", f"{check.key}{value}: {check.problem}"))
        else:
            lines.append(("ok", f"{check.key}{value}: {check.found}"))
    instances = cloud.list_instances()
    alive = sum(i.state in ALIVE_STATES for i in instances)
    lines.append(("ok", f"instances of cluster {cluster!r}: {alive} alive, "
                        f"{len(instances) - alive} ending or gone"))
    return lines


def _batch(batch) -> List[Line]:
    queue, pool = batch.queue(), batch.pool()
    lines: List[Line] = [
        ("PROBLEM" if queue.partial else "ok",
         f"queue: {len(queue.idle)} idle job(s), {queue.running} running"
         + (" (some schedd could not be read: see the log lines above)" if queue.partial else "")),
        ("PROBLEM" if pool.partial else "ok",
         f"pool: {len(pool.workers)} worker(s) of this cluster"
         + (" (the answer is partial)" if pool.partial else "")),
    ]
    return lines
