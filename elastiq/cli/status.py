"""Show whether the daemon runs, its VMs, boot-to-join times and its last decisions.

Reads the state the daemon saves after every tick, so it works while the daemon runs (and
after it stopped).  --live also lists the cluster's instances from the cloud and points out
the ones the state does not know.  A configuration file that no longer loads (a typo made
while the daemon runs) is reported, and the status read from the daemon's files all the same
(see :mod:`elastiq.cli.standin`).  Exit codes: 0 running, 3 not running, 2 bad
configuration (--live), 4 the state file cannot be read (permissions), 1 the state file is
unreadable otherwise.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import config
from ..adapters.base import AdapterError, error_kind
from ..core import get_policy
from ..core.policy import MemoryView, Policy
from ..core.reasons import Code
from ..runtime import hostlist, owner, paths, pidfile
from . import standin
from .options import (EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_OK, EXIT_PERMISSION,
                      add_config_arguments, config_path, load_config)
from ..model import Lifecycle
from ..runtime.state import State, StateStore

#: the state shown for a VM drained for consolidation (under-used), apart from idle drains
CONSOLIDATING = "consolidating"
#: the lifecycle as ``status`` lists it, consolidation drains right after idle ones
ORDER = tuple(v for s in Lifecycle for v in (
    (s.value, CONSOLIDATING) if s is Lifecycle.DRAINING else (s.value,)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, config.DEFAULT_PATH)
    add_options(parser)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``status`` (shared with ``elastiqctl status``)."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--live", action="store_true",
                        help="also list the cluster's instances from the cloud now")
    parser.add_argument("--decisions", type=int, default=10, metavar="N",
                        help="how many of the last decisions to show (default 10)")


def boot_to_join(seconds: Sequence[float]) -> Optional[Dict[str, float]]:
    """min, max, mean, median and standard deviation (sample; 0 for one value)."""
    if not seconds:
        return None
    return {
        "count": len(seconds), "min": min(seconds), "max": max(seconds),
        "mean": statistics.fmean(seconds), "median": statistics.median(seconds),
        "sd": statistics.stdev(seconds) if len(seconds) > 1 else 0.0,
    }


def report(state: Optional[State], policy: Policy, running: pidfile.PidStatus,
           where: paths.Paths, now: float, decisions: int = 10,
           live: Optional[List[Dict[str, Any]]] = None, live_error: Optional[str] = None,
           owner: Optional[str] = None) -> dict:
    """Everything ``status`` shows, as plain data (the JSON output); ``policy``: the one that
    wrote the state (it says what its memory holds); ``live_error``: why the cloud could not
    be listed for ``--live``; ``owner``: the daemon's owner id (None: unknown), which tells
    another daemon's instances of the same cluster name (``others``) from untracked ones."""
    held = policy.view(state.memory) if state is not None else MemoryView()
    records = state.records if state is not None else {}
    out: Dict[str, Any] = {
        "running": running.running, "pid": running.pid if running.running else None,
        "stale_pid_file": running.stale, "state_file": where.state_file,
        "log_file": where.log_file, "state": state is not None,
    }
    if live_error is not None:
        out["live_error"] = live_error
    if live is not None:
        known = set(records)
        alive = [i for i in live if i["instance_id"] not in known and i["state"] != "gone"]
        out["live"] = live
        out["others"] = sorted(i["instance_id"] for i in alive
                               if owner and i.get("owner") not in (None, owner))
        out["untracked"] = sorted(i["instance_id"] for i in alive
                                  if i["instance_id"] not in out["others"])
    if state is None:
        return out
    obs = state.observation
    views = {v.instance_id: v for v in (obs.vms if obs else ())}
    vms = []
    for iid, record in sorted(records.items()):
        view = views.get(iid)
        vms.append({
            "instance_id": iid, "state": _shown(record), "drain": record.drain,
            "flavour": record.flavour,
            "since": record.since,
            "worker": record.worker or (view.worker if view else None),
            "address": view.address if view else None,
            "cloud_state": view.cloud_state if view else None,
            "jobs": view.jobs if view else 0,
        })
    summary = {}
    for name in ORDER:
        members = [v for v in vms if v["state"] == name]
        if members:
            named = [v["worker"] for v in members if v["worker"]]
            unnamed = [v["instance_id"] for v in members if not v["worker"]]
            hosts = ",".join(h for h in (hostlist.compact(named), ",".join(unnamed)) if h)
            summary[name] = {"count": len(members), "hosts": hosts}
    out.update({
        "cluster": state.cluster, "saved_at": state.saved_at, "vms": vms, "summary": summary,
        "waiting_since": held.waiting_since, "failures": held.failures,
        "backoff_until": held.backoff_until if held.backoff_until > now else None,
        "idle_jobs": obs.idle_jobs if obs else None,
        "running_jobs": obs.running_jobs if obs else None,
        "problems": list(obs.problems) if obs else [],
        "boot_to_join_s": boot_to_join(state.join_times),
        "decisions": [{"at": d.at, "kind": d.kind, "text": d.text}
                      for d in state.decisions[-decisions:]] if decisions > 0 else [],
    })
    return out


def _shown(record) -> str:
    """The lifecycle, with drains for consolidation (their jobs still run) told apart."""
    if record.lifecycle is Lifecycle.DRAINING and record.drain == Code.CONSOLIDATION.value:
        return CONSOLIDATING
    return record.lifecycle.value


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                     ("m", 60, "s", 1)):
        if seconds >= size:
            return f"{seconds // size}{unit}{(seconds % size) // subsize:02d}{sub}"
    return f"{seconds}s"


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _live_lines(data: dict) -> List[str]:
    if "live_error" in data:
        return [f"cloud now: cannot list the instances ({data['live_error']})"]
    if "live" not in data:
        return []
    alive = [i for i in data["live"] if i["state"] != "gone"]
    others = (f"; another elastiq's (the same cluster name, left alone): "
              f"{', '.join(data['others'])}" if data.get("others") else "")
    return [f"cloud now: {len(alive)} tagged instance(s) alive; not in the state: "
            f"{', '.join(data['untracked']) or 'none'}{others}"]


def render(data: dict, now: float) -> str:
    lines = []
    if data["running"]:
        lines.append(f"elastiq is running (pid {data['pid']})")
    else:
        stale = " (stale pid file)" if data["stale_pid_file"] else ""
        lines.append(f"elastiq is not running{stale}")
    if not data["state"]:
        lines.append(f"no saved state at {data['state_file']}: elastiq has not run with "
                     "this configuration yet")
        lines.extend(_live_lines(data))
        return "\n".join(lines) + "\n"
    lines.append(f"cluster {data['cluster']!r}, state saved {_age(now - data['saved_at'])} ago "
                 f"({data['state_file']})")
    jobs = [f"{data[k]} {w}" for k, w in (("idle_jobs", "idle"), ("running_jobs", "running"))
            if data[k] is not None]
    if jobs:
        lines.append("jobs: " + ", ".join(jobs))
    for problem in data["problems"]:
        lines.append(f"last tick: {problem}")
    if data["backoff_until"]:
        lines.append(f"launches backing off for {_age(data['backoff_until'] - now)} after "
                     f"{data['failures']} failure(s)")
    lines.append("")
    flavours = any(v["flavour"] for v in data["vms"])  # several flavours: say which each is
    header = ("INSTANCE", "STATE", "WORKER", "SINCE", "JOBS") + (("FLAVOUR",) if flavours else ())
    rows = [header] + [
        (v["instance_id"], v["state"], v["worker"] or "-",
         f"{_clock(v['since'])} ({_age(now - v['since'])} ago)", str(v["jobs"]))
        + ((v["flavour"] or "-",) if flavours else ())
        for v in data["vms"]
    ]
    if data["vms"]:
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    else:
        lines.append("no VMs")
    if data["summary"]:
        lines.append("")
    for name, entry in data["summary"].items():
        lines.append(f"{name:<12} {entry['count']:>4}  {entry['hosts']}")
    stats = data["boot_to_join_s"]
    if stats:
        lines.append(f"boot to join ({stats['count']} VMs): min {stats['min']:.0f} s, max "
                     f"{stats['max']:.0f} s, mean {stats['mean']:.0f} s, median "
                     f"{stats['median']:.0f} s, SD {stats['sd']:.0f} s")
    lines.extend(_live_lines(data))
    if data["decisions"]:
        lines.append("")
        lines.append("last decisions:")
        lines.extend(f"  {_clock(d['at'])}  {d['text']}" for d in data["decisions"])
    return "\n".join(lines) + "\n"


def _live(cfg: config.Config) -> Tuple[Optional[List[Dict[str, Any]]], Optional[str]]:
    """The cloud's instances of the cluster now, or why they could not be listed (a cloud
    that cannot be built, e.g. an unknown plugin, is a configuration error: raised)."""
    from ..runtime.factory import build_cloud

    cloud = build_cloud(cfg)
    try:
        listed = cloud.list_instances()
    except AdapterError as err:
        return None, f"{error_kind(err)} error: {err}"
    return [{"instance_id": i.id, "state": i.state.value, "address": i.private_ip,
             "owner": i.owner} for i in listed], None


def _owner(where: paths.Paths) -> Optional[str]:
    """The daemon's owner id, None when it cannot be read (not made yet, damaged, denied)."""
    try:
        return owner.read(where.state_dir)
    except (OSError, config.InvalidConfig):
        return None


def command(args: argparse.Namespace) -> int:
    if args.live:
        return show(args, load_config(args))
    return show(args, standin.load(config_path(args), args.overrides, "elastiq", "status")[0])


def show(args: argparse.Namespace, cfg: config.Config) -> int:
    """Print the status for ``cfg`` with the options of :func:`add_options`; the exit code."""
    where = paths.resolve(cfg)
    try:
        running = pidfile.status(where.pid_file)
        policy = get_policy(cfg.elastiq.policy)
        state = StateStore(where.state_dir, policy=policy).read()
    except PermissionError as err:
        print(f"elastiq: permission denied reading {err.filename} (run as root or as the "
              "elastiq user)", file=sys.stderr)
        return EXIT_PERMISSION
    except ValueError as err:
        print(f"elastiq: the state file {where.state_file} is unreadable: {err}",
              file=sys.stderr)
        return EXIT_FAILURE
    now = time.time()
    live, live_error = _live(cfg) if args.live else (None, None)
    data = report(state, policy, running, where, now, args.decisions, live, live_error,
                  _owner(where) if args.live else None)
    if args.json:
        json.dump(data, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(data, now))
    return EXIT_OK if running.running else EXIT_NOT_RUNNING
