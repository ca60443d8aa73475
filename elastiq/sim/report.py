"""The pictures of replays: VMs by state, waiting and running jobs over time, one chart per
policy (same scales for all), and the policies side by side (VM-hours against p95 wait).

matplotlib is an optional extra (``pip install elastiq[report]``); it is imported only here,
only when a report is asked for.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

from .metrics import TIMELINE_COLUMNS, summary_table

MAX_POINTS = 4000


class ReportError(Exception):
    pass


@dataclass(frozen=True)
class Scale:
    """The axes' extent: shared by the charts of several policies so they compare by eye."""

    hours: float
    vms: int
    jobs: int

    @classmethod
    def of(cls, timelines: Sequence[Sequence[Tuple[float, ...]]]) -> "Scale":
        rows = [r for timeline in timelines for r in timeline]
        return cls(max([r[0] for r in rows] + [0.0]), max([sum(r[1:6]) for r in rows] + [1]),
                   max([r[6] + r[7] for r in rows] + [1]))


def vm_axis_top(scale: Scale, limit: int) -> float:
    """The top of the VM axis: the most VMs that ran, with room above, and max_vms when it is
    near (a limit far above what ran would flatten the picture: it is named instead)."""
    top = max(scale.vms, 1) * 1.3
    return max(top, limit * 1.1) if limit <= top else top


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("--report needs matplotlib: pip install 'elastiq[report]'") from None
    return plt


def _folder(directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise ReportError(f"{directory}: cannot create: {err.strerror}") from None


def _thin(rows: Sequence[Tuple[float, ...]], limit: int = MAX_POINTS) -> List[Tuple[float, ...]]:
    """Keep at most ``limit`` points, each bucket represented by its row with most VMs alive
    (peaks stay visible on a 239-day replay)."""
    if len(rows) <= limit:
        return list(rows)
    size = len(rows) / limit
    out = []
    for b in range(limit):
        bucket = rows[int(b * size): int((b + 1) * size)] or rows[-1:]
        out.append(max(bucket, key=lambda r: sum(r[1:6])))
    return out


def write(directory: str, result: dict, timeline: Sequence[Tuple[float, ...]],
          scale: Optional[Scale] = None) -> List[str]:
    """Write ``simulation.png``, ``metrics.json``, ``summary.txt`` and ``timeline.csv`` into
    ``directory``; return their paths.  ``scale``: the axes' extent (default: this replay's)."""
    plt = _pyplot()
    _folder(directory)
    scale = scale or Scale.of([timeline])
    rows = _thin(timeline)
    hours = [r[0] for r in rows]
    column = {name: [r[i + 1] for r in rows] for i, name in enumerate(TIMELINE_COLUMNS)}
    days = scale.hours > 72
    x = [h / 24 for h in hours] if days else hours

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    states = [("busy", "#2b8a3e"), ("idle", "#f59f00"), ("draining", "#1971c2"),
              ("booting or never joined", "#adb5bd"), ("error", "#c92a2a")]
    top.stackplot(x, *[column[c] for c in ("busy", "idle", "draining", "booting", "error")],
                  labels=[s for s, _ in states], colors=[c for _, c in states], step="post")
    limit = result["knobs"]["max_vms"]
    top_vms = vm_axis_top(scale, limit)
    if limit <= top_vms:
        top.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"max_vms {limit}")
    top.set_ylabel("VMs" + ("" if limit <= top_vms else f" (max_vms {limit}, off the scale)"))
    top.legend(loc="upper right", ncol=3, fontsize=9)
    top.set_title(f"{result['workload']} - policy {result['policy']}: "
                  f"{result['vm_hours']:.0f} VM-h (busy {result['busy_vm_hours']:.0f}, idle "
                  f"{result['idle_vm_hours']:.0f}), p95 wait {result['wait_p95_s']:.0f} s; "
                  f"{result['vms_launched']} VMs launched, {result['vms_in_error']} in error, "
                  f"{result['vms_never_joined']} never joined", fontsize=10)
    bottom.step(x, column["idle_jobs"], where="post", label="waiting jobs", color="#7048e8")
    bottom.step(x, column["running_jobs"], where="post", label="running jobs", color="#2b8a3e")
    bottom.set_ylabel("jobs")
    bottom.set_xlabel("days from the first job" if days else "hours from the first job")
    bottom.legend(loc="upper right", fontsize=9)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, (scale.hours / 24 if days else scale.hours) or 1)
    top.set_ylim(0, top_vms)
    bottom.set_ylim(0, scale.jobs * 1.25)
    fig.tight_layout()
    png = os.path.join(directory, "simulation.png")
    fig.savefig(png, dpi=100)
    plt.close(fig)

    metrics = os.path.join(directory, "metrics.json")
    with open(metrics, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    summary = os.path.join(directory, "summary.txt")
    with open(summary, "w", encoding="utf-8") as handle:
        handle.write(summary_table(result) + "\n")
    csv = os.path.join(directory, "timeline.csv")
    with open(csv, "w", encoding="utf-8") as handle:
        handle.write("hours," + ",".join(TIMELINE_COLUMNS) + "\n")
        for row in timeline:
            handle.write(f"{row[0]:.4f}," + ",".join(str(v) for v in row[1:]) + "\n")
    return [png, metrics, summary, csv]


def write_comparison(directory: str, results: Mapping[str, dict]) -> str:
    """``comparison.png``: one point per policy, VM-hours against p95 wait (lower left is
    better on both; a cross: jobs killed, max_vms or the cores/memory quota exceeded); its path."""
    plt = _pyplot()
    _folder(directory)
    fig, ax = plt.subplots(figsize=(9, 6))
    for n, (name, r) in enumerate(results.items()):
        flags = [f"{r['jobs_killed']} jobs killed"] if r["jobs_killed"] else []
        flags += [f"{r['max_vms_violations']} ticks over max_vms"] if r["max_vms_violations"] else []
        flags += [f"{r['quota_violations']} ticks over quota"] if r.get("quota_violations") else []
        ax.scatter(r["wait_p95_s"], r["vm_hours"], s=70, color=f"C{n % 10}",
                   marker="X" if flags else "o",
                   label=f"{name}: {r['vm_hours']:.1f} VM-h, p95 {r['wait_p95_s']:.0f} s"
                         + (f" ({', '.join(flags)})" if flags else ""))
    first = next(iter(results.values()))
    oracle = first["oracle_vm_hours"]
    ax.axhline(oracle, color="black", linestyle=":", linewidth=1, label=f"oracle {oracle:.0f} VM-h")
    ax.set_xlabel("p95 wait (s)")
    ax.set_ylabel(first.get("vm_hours_unit", "VM-hours"))
    ax.set_title(f"{first['workload']}: {first['jobs']} jobs, max_vms {first['knobs']['max_vms']}"
                 " - lower left is better", fontsize=10)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9, ncol=2)
    fig.tight_layout()
    png = os.path.join(directory, "comparison.png")
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
