"""Several policies on the same workload: one table, one row per policy (``--policy all``)."""
from __future__ import annotations

from typing import Mapping

from .metrics import _hours, quota_limits

#: (heading, result key, format) of each column after the policy's name.
COLUMNS = (
    ("VM-h", "vm_hours", "{:.1f}"),
    ("busy", "busy_vm_hours", "{:.1f}"),
    ("booting", "booting_vm_hours", "{:.1f}"),
    ("idle", "idle_vm_hours", "{:.1f}"),
    ("wait mean", "wait_mean_s", _hours),
    ("wait p95", "wait_p95_s", _hours),
    ("done", "jobs_completed", "{}"),
    ("killed", "jobs_killed", "{}"),
    ("peak VMs", "vms_peak", "{}"),
    ("ticks over max", "max_vms_violations", "{}"),
)


def _cell(fmt, value) -> str:
    return fmt(value) if callable(fmt) else fmt.format(value)


def comparison_table(results: Mapping[str, dict]) -> str:
    """``results``: policy name -> metrics of one replay (same workload and knobs).  "ticks
    over max" counts the ticks with more of our VMs alive than max_vms; busy, booting and idle
    add up to VM-h."""
    first = next(iter(results.values()))
    k = first["knobs"]
    limits = quota_limits(k)
    head = (f"{first['workload']}: {first['jobs']} jobs; max_vms {k['max_vms']}, min_vms {k['min_vms']},"
            f"{' ' + limits + ',' if limits else ''} VM {k['vm_cpus']} cpus / {k['vm_memory_mb']} MiB")
    columns = COLUMNS + ((("ticks over quota", "quota_violations", "{}"),) if limits else ())
    rows = [("policy",) + tuple(h for h, _, _ in columns)]
    rows += [(name,) + tuple(_cell(fmt, r[key]) for _, key, fmt in columns) for name, r in results.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    stops = [f"{name}: {r['stop_reason']}" for name, r in results.items()
             if r["stop_reason"] != "all jobs done and VMs back to min_vms"]
    return "\n".join([head] + lines + (["stopped: " + "; ".join(stops)] if stops else []))
