"""What a replay measured, and the summary table.

- ``vm_hours``: every VM from its launch request to its termination request (or the end);
- ``busy_vm_hours``: time a joined worker had at least one running job;
  ``booting_vm_hours``: from launch to joining (or to termination for VMs that never joined);
  ``idle_vm_hours``: the rest (idle, draining, in error): busy + booting + idle = vm_hours;
- ``oracle_vm_hours``: sum of cores x run time / cores per VM, the lower bound no policy beats;
- waits: submission to (last) start of each completed job; ``wait_p95_s`` is nearest-rank;
- ``vms_peak``: most instances alive at once (checked after every launch); the limit is
  ``knobs.max_vms``;
- ``max_vms_violations``: ticks in which more of our instances were alive than max_vms;
- ``quota_violations``: ticks in which our alive instances held more cores or memory than
  ``quota.max_cores``/``max_memory_mb`` (each VM with its flavour's shape, booting included);
  ``cores_peak``/``memory_mb_peak``: the most they held at once;
- ``vms_in_error``: VMs that went to the cloud's error state; ``vms_never_joined``: VMs not in
  error that were terminated (or still alive at the end) without ever joining the pool;
- ``jobs_skipped``: trace jobs left out (unknown run time), ``jobs_unmatchable``: larger than
  any VM;
- ``jobs_killed``: jobs that were running on a VM when it was terminated (they are requeued).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

#: The keys ``elastiq simulate --json`` always prints.
REQUIRED_KEYS = (
    "jobs", "jobs_completed", "vm_hours", "busy_vm_hours", "idle_vm_hours", "oracle_vm_hours",
    "wait_mean_s", "wait_p95_s", "vms_peak", "launch_calls", "vms_launched", "vms_terminated",
    "vms_in_error", "vms_never_joined", "max_vms_violations", "quota_violations", "jobs_killed",
)

#: Timeline columns after the time (hours from the first job).
TIMELINE_COLUMNS = ("booting", "idle", "busy", "draining", "error", "idle_jobs", "running_jobs")


class Recorder:
    """Counts per tick and the timeline; ``result()`` computes the metrics at the end."""

    def __init__(self, sim, timeline: bool = True):
        self.sim = sim
        self.keep_timeline = timeline
        self.timeline: List[Tuple[float, ...]] = []
        self._last: Optional[Tuple[int, ...]] = None
        self.ticks = self.plan_calls = self.violations = self.problem_ticks = 0
        self.quota_violations = 0
        self.max_alive = self.max_cores = self.max_memory_mb = 0
        self.stop_reason: Optional[str] = None

    def tick(self, t: float, peak_alive: int, problems: bool, peak_cores: int = 0,
             peak_memory_mb: int = 0) -> None:
        """End of a tick; ``peak_alive``: most instances alive at any point of it;
        ``peak_cores``/``peak_memory_mb``: most cores and MiB they held."""
        self.ticks += 1
        self.problem_ticks += problems
        q = self.sim.config.quota
        if peak_alive > q.max_vms:
            self.violations += 1
        if ((q.max_cores is not None and peak_cores > q.max_cores)
                or (q.max_memory_mb is not None and peak_memory_mb > q.max_memory_mb)):
            self.quota_violations += 1
        if peak_cores > self.max_cores:
            self.max_cores = peak_cores
        if peak_memory_mb > self.max_memory_mb:
            self.max_memory_mb = peak_memory_mb
        self.max_alive = max(self.max_alive, peak_alive)
        if self.keep_timeline:
            self.sample(t)

    def sample(self, t: float) -> None:
        pool, cloud = self.sim.pool, self.sim.cloud
        busy = draining = 0
        for slot in pool.workers.values():
            if slot.running:
                busy += 1
            elif slot.draining:
                draining += 1
        joined = len(pool.workers)
        row = (cloud.alive - joined - cloud.in_error, joined - busy - draining, busy, draining,
               cloud.in_error, len(pool.idle), pool.running)
        if row != self._last:
            self._last = row
            self.timeline.append(((t - self.sim.workload_start) / 3600.0,) + row)

    def result(self, end: float, wall_s: float) -> dict:
        sim = self.sim
        pool, cloud, w, cfg = sim.pool, sim.cloud, sim.workload, sim.config
        shape = sim.catalogue
        if self.keep_timeline:
            self.sample(end)
        rows = _size_rows(sim, end)  # several flavours: price-weighted (one: price 1)
        vm_s = sum(r["vm_s"] * r["price"] for r in rows.values())
        boot_s = sum(r["boot_s"] * r["price"] for r in rows.values())
        busy = (sum(r["busy_s"] * r["price"] for r in rows.values()) if shape.flavours
                else pool.busy_s) / 3600.0
        start = sim.workload_start
        waits = sorted(pool.started[i] - (start + w.submit[i])
                       for i in range(len(w)) if pool.finished[i] is not None)
        oracle = w.core_seconds() / shape.cpus / 3600.0
        vm_hours = vm_s / 3600.0
        return {
            "vm_hours_unit": (f"price-weighted VM-hours of the first flavour "
                              f"({shape.flavours[0].name})" if shape.flavours else "VM-hours"),
            "by_size": by_size(rows),
            "policy": sim.options.policy,
            "workload": w.name,
            "jobs": len(w),
            "jobs_completed": pool.completed,
            "jobs_unmatchable": sim.unmatchable,
            "jobs_skipped": sum(v for k, v in w.skipped.items() if k != "zero_runtime_as_1s"),
            "vm_hours": round(vm_hours, 3),
            "busy_vm_hours": round(busy, 3),
            "idle_vm_hours": round(vm_hours - busy - boot_s / 3600.0, 3),
            "booting_vm_hours": round(boot_s / 3600.0, 3),
            "oracle_vm_hours": round(oracle, 3),
            "oracle_ratio": round(vm_hours / oracle, 3) if oracle else None,
            "wait_mean_s": round(sum(waits) / len(waits), 1) if waits else 0.0,
            "wait_p95_s": round(waits[max(0, math.ceil(0.95 * len(waits)) - 1)], 1) if waits else 0.0,
            "wait_max_s": round(waits[-1], 1) if waits else 0.0,
            "vms_peak": self.max_alive,
            "launch_calls": cloud.launch_calls,
            "vms_launched": len(cloud.vms),
            "vms_terminated": sum(1 for vm in cloud.vms.values() if vm.terminated_at is not None),
            "vms_alive_at_end": cloud.alive,
            "vms_never_used": len(cloud.vms) - len(pool.used),
            "vms_in_error": sum(_went_to_error(vm, end) for vm in cloud.vms.values()),
            "vms_never_joined": sum(_never_joined(vm, end) for vm in cloud.vms.values()),
            "max_vms_violations": self.violations,
            "quota_violations": self.quota_violations,
            "cores_peak": self.max_cores,
            "memory_mb_peak": self.max_memory_mb,
            "jobs_killed": pool.jobs_killed,
            "sim_span_s": round(end - start, 1),
            "ticks": self.ticks,
            "plan_calls": self.plan_calls,
            "ticks_with_unreadable_observation": self.problem_ticks,
            "stop_reason": self.stop_reason or "all jobs done and VMs back to min_vms",
            "wall_s": round(wall_s, 3),
            "knobs": {
                "max_vms": cfg.quota.max_vms, "min_vms": cfg.quota.min_vms,
                "max_cores": cfg.quota.max_cores, "max_memory_mb": cfg.quota.max_memory_mb,
                "vm_cpus": shape.cpus, "vm_memory_mb": shape.memory_mb,
                "n_jobs_per_vm": cfg.elastiq.n_jobs_per_vm,
                "waiting_jobs_threshold": cfg.elastiq.waiting_jobs_threshold,
                "waiting_jobs_time_s": cfg.elastiq.waiting_jobs_time_s,
                "idle_timeout_max_s": cfg.elastiq.idle_timeout_max_s,
                "estimated_vm_deploy_time_s": cfg.elastiq.estimated_vm_deploy_time_s,
                "check_queue_every_s": cfg.elastiq.check_queue_every_s,
            },
        }


def _joined(vm, end: float) -> float:
    """When ``vm`` joined, or stopped costing without joining."""
    gone = vm.terminated_at if vm.terminated_at is not None else end
    return vm.join_at if vm.join_at is not None and vm.join_at <= gone else gone


def _went_to_error(vm, end: float) -> bool:
    return vm.fails and vm.running_at <= (vm.terminated_at if vm.terminated_at is not None else end)


def _never_joined(vm, end: float) -> bool:
    gone = vm.terminated_at if vm.terminated_at is not None else end
    return not vm.fails and (vm.join_at is None or vm.join_at > gone)


def _size_rows(sim, end: float) -> dict:
    """Per VM size (flavour name, or the VM's cpus for VMs of the one configured shape): its
    cpus and price, and the VMs' count and seconds alive, busy, booting and of cores used."""
    catalogue, pool = sim.catalogue, sim.pool
    price = {f.name: f.price for f in catalogue.flavours}
    rows: dict = {}
    for vm in sim.cloud.vms.values():
        cpus = vm.cpus or catalogue.cpus
        name = vm.flavour or (catalogue.flavours[0].name if catalogue.flavours else f"{cpus} cpus")
        row = rows.setdefault(name, {"cpus": cpus, "price": price.get(name, 1.0), "vms": 0,
                                     "vm_s": 0.0, "busy_s": 0.0, "boot_s": 0.0, "core_s": 0.0})
        row["vms"] += 1
        row["vm_s"] += (vm.terminated_at if vm.terminated_at is not None else end) - vm.launched_at
        row["boot_s"] += _joined(vm, end) - vm.launched_at
        row["busy_s"] += pool.busy_by.get(vm.id, 0.0)
        row["core_s"] += pool.core_s_by.get(vm.id, 0.0)
    return rows


def by_size(rows: dict) -> dict:
    """Where the VM-hours go per VM size (:func:`_size_rows`): VMs launched, their VM-hours
    (not weighted), busy / booting / idle hours (which add up to them), the price relative to the first flavour, the
    weighted VM-hours, and ``core_use``: the share of the busy VMs' cpus that jobs used (1.0:
    no fragmentation)."""
    out = {}
    for name, r in sorted(rows.items(), key=lambda item: -item[1]["cpus"]):
        hours = r["vm_s"] / 3600.0
        out[name] = {
            "cpus": r["cpus"], "price": round(r["price"], 4), "vms": r["vms"],
            "vm_hours": round(hours, 3), "weighted_vm_hours": round(hours * r["price"], 3),
            "busy_vm_hours": round(r["busy_s"] / 3600.0, 3),
            "idle_vm_hours": round((r["vm_s"] - r["busy_s"] - r["boot_s"]) / 3600.0, 3),
            "booting_vm_hours": round(r["boot_s"] / 3600.0, 3),
            "core_use": round(r["core_s"] / (r["cpus"] * r["busy_s"]), 3) if r["busy_s"] else None,
        }
    return out


def _hours(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def quota_limits(knobs: dict) -> str:
    """``max_cores 160, max_memory_mb 327680`` as set in ``knobs`` ("": neither is set)."""
    return ", ".join(f"{name} {knobs[name]}" for name in ("max_cores", "max_memory_mb")
                     if knobs.get(name) is not None)


def summary_table(r: dict) -> str:
    """A readable summary of one result (or of several: pass them one by one)."""
    ok = lambda n: "ok" if n == 0 else "NOT OK"  # noqa: E731
    k = r["knobs"]
    limits = quota_limits(k)
    rows = [
        ("workload", f"{r['workload']}: {r['jobs']} jobs over {_hours(r['sim_span_s'])}"
                     + (f", {r['jobs_unmatchable']} larger than a VM left out" if r["jobs_unmatchable"] else "")
                     + (f", {r['jobs_skipped']} trace jobs skipped (unknown run time)"
                        if r.get("jobs_skipped") else "")),
        ("policy", f"{r['policy']}  (max_vms {k['max_vms']}, min_vms {k['min_vms']}, VM {k['vm_cpus']} cpus"
                   f" / {k['vm_memory_mb']} MiB, idle timeout <= {k['idle_timeout_max_s']:g} s)"),
        ("jobs completed", f"{r['jobs_completed']} / {r['jobs']}"),
        ("wait mean / p95 / max", f"{_hours(r['wait_mean_s'])} / {_hours(r['wait_p95_s'])} / {_hours(r['wait_max_s'])}"),
        ("VM-hours", f"{r['vm_hours']:.1f}  (busy {r['busy_vm_hours']:.1f}, booting"
                     f" {r['booting_vm_hours']:.1f}, idle {r['idle_vm_hours']:.1f})"
                     + (f"  [{r['vm_hours_unit']}]" if r.get("vm_hours_unit", "VM-hours") != "VM-hours" else "")),
        *((f"  {name}", f"{v['vms']} VMs of {v['cpus']} cpus (price {v['price']:g}): {v['vm_hours']:.1f}"
                        f" VM-h, busy {v['busy_vm_hours']:.1f}, booting {v['booting_vm_hours']:.1f},"
                        f" idle {v['idle_vm_hours']:.1f}, cores used when busy {v['core_use']}")
          for name, v in r.get("by_size", {}).items() if len(r.get("by_size", {})) > 1),
        ("oracle VM-hours", f"{r['oracle_vm_hours']:.1f}  (ratio {r['oracle_ratio']})"),
        ("VMs", f"at most {r['vms_peak']} at once (max_vms {k['max_vms']}), {r['vms_launched']}"
                f" launched in {r['launch_calls']} calls, {r['vms_terminated']} terminated,"
                f" {r['vms_never_used']} never ran a job ({r['vms_in_error']} in error,"
                f" {r['vms_never_joined']} never joined), {r['vms_alive_at_end']} alive at the end"),
        ("max_vms violations", f"{r['max_vms_violations']} ticks over max_vms  {ok(r['max_vms_violations'])}"),
        *(("quota violations", f"{r['quota_violations']} ticks over {limits}  (at most"
                               f" {r['cores_peak']} cores, {r['memory_mb_peak']} MiB at once)"
                               f"  {ok(r['quota_violations'])}"),)[:1 if limits else 0],
        ("jobs killed", f"{r['jobs_killed']}  {ok(r['jobs_killed'])}"),
        ("simulation", f"{r['ticks']} ticks, {r['plan_calls']} plan calls, {r['wall_s']:.2f} s wall;"
                       f" stopped: {r['stop_reason']}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
