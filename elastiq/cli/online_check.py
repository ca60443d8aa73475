"""``elastiq config check --online``: ask the cloud and the batch system what ``run`` will
ask them, without launching, draining or terminating anything.

Each answer is one line: ``ok`` or ``PROBLEM`` with the configuration key.  Exit code: 2 when a
setting names what the cloud does not know or the credentials are refused (fix the file), 1 when
the cloud or the pool cannot be reached (retry later, or fix the network), else 0."""
from __future__ import annotations

import sys
from typing import Callable, Dict, List, Optional, Tuple

from .. import config
from ..adapters.base import NOT_SUPPORTED, AdapterError, AuthError, ConfigError
from ..model import ALIVE_STATES, Instance
from ..runtime import owner as owner_file
from ..runtime import paths
from .options import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

Line = Tuple[str, str]  # (verdict, text)


def run(cfg: config.Config, path: str, batch, cloud) -> int:
    """Print what ``cloud`` and ``batch`` (built from ``cfg`` by ``factory.prepare``) answer;
    the exit code above."""
    e = cfg.elastiq
    worst = EXIT_OK
    sections = (
        (f"cloud ({e.cloud_plugin})", lambda: _cloud(cloud, e.cluster_name, _owner(cfg))),
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


def _owner(cfg: config.Config) -> Tuple[Optional[str], str]:
    """This configuration's daemon's owner id (None: it has none yet, or it cannot be read
    here) and the file that keeps it."""
    state_dir = paths.resolve(cfg).state_dir
    where = owner_file.path_in(state_dir)
    try:
        return owner_file.read(state_dir), where
    except (OSError, config.InvalidConfig):
        return None, where


def _cloud(cloud, cluster: str, owner: Tuple[Optional[str], str]) -> List[Line]:
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
    lines.extend(_instances(cloud.list_instances(), cluster, *owner))
    return lines


def _instances(instances: Tuple[Instance, ...], cluster: str, owner: Optional[str],
               where: str) -> List[Line]:
    """The cluster's instances; alive ones carrying another daemon's owner id are a PROBLEM
    (two clusters share the name: ``run`` leaves them alone) when this daemon's id is known,
    a note when it is not (it has not run here, or keeps its state elsewhere)."""
    alive = [i for i in instances if i.state in ALIVE_STATES]
    lines: List[Line] = [("ok", f"instances of cluster {cluster!r}: {len(alive)} alive, "
                                f"{len(instances) - len(alive)} ending or gone")]
    others: Dict[str, List[str]] = {}
    for instance in alive:
        if instance.owner not in (None, owner):
            others.setdefault(instance.owner, []).append(instance.id)
    for other, ids in sorted(others.items()):
        text = owner_file.foreign_text(cluster, other, ids, owner, where)
        lines.append(("PROBLEM" if owner else "-",
                      text if owner else f"{text} (no owner id read from {where}: if the "
                                         "daemon keeps its state elsewhere, ignore this)"))
    unowned = [i.id for i in alive if i.owner is None]
    if unowned:
        lines.append(("-", owner_file.unowned_text(
            cluster, unowned, "are kept by run only if its saved state knows them")))
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
