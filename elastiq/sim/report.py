"""The picture of a replay: VMs by state, idle and running jobs over time (matplotlib).

matplotlib is an optional extra (``pip install elastiq[report]``); it is imported only here,
only when a report is asked for.
"""
from __future__ import annotations

import json
import os
from typing import List, Sequence, Tuple

from .metrics import TIMELINE_COLUMNS, summary_table

MAX_POINTS = 4000


class ReportError(Exception):
    pass


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


def write(directory: str, result: dict, timeline: Sequence[Tuple[float, ...]]) -> List[str]:
    """Write ``simulation.png``, ``metrics.json``, ``summary.txt`` and ``timeline.csv`` into
    ``directory``; return their paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("--report needs matplotlib: pip install 'elastiq[report]'") from None
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise ReportError(f"{directory}: cannot create: {err.strerror}") from None

    rows = _thin(timeline)
    hours = [r[0] for r in rows]
    column = {name: [r[i + 1] for r in rows] for i, name in enumerate(TIMELINE_COLUMNS)}
    days = hours and hours[-1] > 72
    x = [h / 24 for h in hours] if days else hours

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    states = [("busy", "#2b8a3e"), ("idle", "#f59f00"), ("draining", "#1971c2"),
              ("booting", "#adb5bd"), ("error", "#c92a2a")]
    top.stackplot(x, *[column[s] for s, _ in states], labels=[s for s, _ in states],
                  colors=[c for _, c in states], step="post")
    top.axhline(result["knobs"]["max_vms"], color="black", linestyle="--", linewidth=1,
                label=f"max_vms {result['knobs']['max_vms']}")
    top.set_ylabel("VMs")
    top.legend(loc="upper right", ncol=6, fontsize=9)
    top.set_title(f"{result['workload']} - policy {result['policy']}: "
                  f"{result['vm_hours']:.0f} VM-h (idle {result['idle_vm_hours']:.0f}), "
                  f"p95 wait {result['wait_p95_s']:.0f} s, oracle ratio {result['oracle_ratio']}")
    bottom.step(x, column["idle_jobs"], where="post", label="idle jobs", color="#e8590c")
    bottom.step(x, column["running_jobs"], where="post", label="running jobs", color="#2b8a3e")
    bottom.set_ylabel("jobs")
    bottom.set_xlabel("days from the first job" if days else "hours from the first job")
    bottom.legend(loc="upper right", fontsize=9)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    peak = max([sum(r[1:6]) for r in rows] + [result["knobs"]["max_vms"], 1])
    top.set_ylim(0, peak * 1.3)
    bottom.set_ylim(0, max(column["idle_jobs"] + column["running_jobs"] + [1]) * 1.25)
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
