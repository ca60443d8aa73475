"""Replay a workload against a simulated cloud and HTCondor pool, in virtual time.

Runs the real decision core (--policy default) or the original elastiq's algorithm
(--policy legacy) with the knobs of --config/--set, and prints what it cost (VM-hours,
idle VM-hours, ratio to the oracle lower bound) and how long jobs waited.  --policy cobald,
cobald-relative or autoscaler runs the field's tools instead (COBalD/TARDIS's controllers,
Kubernetes cluster-autoscaler's policy); --policy all runs every policy on the same workload
and prints one table (with --json: one object, a key per policy).

Without --trace, a built-in synthetic workload (two bursts of short and long jobs) shows
scale-up and scale-down in well under a second.  --trace reads a Standard Workload Format file,
gzip-compressed or not.  Without --config, the simulation uses 4-cpu / 8 GiB VMs, and
max_vms 10 and idle_timeout_max_s 600 for the built-in workload, or max_vms sized on the
trace's MaxProcs for a trace.  With --config, the VM shape is vm.cpus / vm.memory_mb of that
file (the simulator cannot ask a cloud for the flavour's shape: unset, it is 1 cpu / 2 GiB per
cpu, and says so).  --set changes any knob.  --report needs the `report` extra
(pip install 'elastiq[report]': matplotlib).

  elastiq simulate
  elastiq simulate --policy legacy --report /tmp/sim
  elastiq simulate --trace LPC-EGEE-2004-1.2-cln.swf.gz --window 60d:90d --json
  elastiq simulate --set quota.max_vms=20 --boot-delay lognormal:180:0.5 --error-share 0.05
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from .. import cli, config
from ..runtime.actuator import describe

#: The --policy names (those of ``elastiq.sim.engine.POLICY_NAMES``, kept here so that building
#: the parser imports no simulator module).
POLICIES = ("default", "legacy", "cobald", "cobald-relative", "autoscaler")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _checked(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..sim.cloud import BootDelay
    from ..sim.workload import parse_window

    cli.add_config_arguments(parser, default=None)
    work = parser.add_argument_group("workload")
    work.add_argument("--trace", metavar="FILE", help="SWF trace (.swf or .swf.gz); default: built-in synthetic workload")
    work.add_argument("--max-jobs", type=_positive, metavar="N", help="replay only the first N jobs")
    work.add_argument("--window", type=_checked(parse_window), metavar="START:END",
                      help="replay only jobs submitted in this window of trace time, counted from the "
                      "trace's time 0; units s/m/h/d, bare numbers are seconds (e.g. 10d:20d, :6h)")
    work.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    sim = parser.add_argument_group("simulated cloud and pool")
    sim.add_argument("--policy", choices=POLICIES + ("all",), default="default",
                     help="default: elastiq's core; legacy: the original elastiq algorithm; cobald,"
                     " cobald-relative: COBalD's Linear/RelativeSupply controller over TARDIS-like"
                     " drones (needs elastiq[peers]); autoscaler: Kubernetes cluster-autoscaler's"
                     " policy; all: every policy on the same workload, one table")
    sim.add_argument("--boot-delay", type=_checked(BootDelay.parse), default=BootDelay(), metavar="SPEC",
                     help="launch to join: fixed:S, uniform:MIN:MAX or lognormal:MEDIAN:SIGMA "
                     "(default uniform:120:300)")
    sim.add_argument("--never-join-share", type=_share, default=0.0, metavar="P",
                     help="share of VMs that run but never join the pool")
    sim.add_argument("--error-share", type=_share, default=0.0, metavar="P", help="share of VMs that go to error")
    sim.add_argument("--cloud-capacity", type=_positive, metavar="N",
                     help="the cloud's own quota of instances (partial grants, then quota errors)")
    sim.add_argument("--unreadable-share", type=_share, default=0.0, metavar="P",
                     help="probability that each of queue, pool and cloud listing fails at a tick")
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print only a JSON object on stdout")
    out.add_argument("--report", metavar="DIR", help="write simulation.png, metrics.json, summary.txt, "
                     "timeline.csv (needs the report extra: pip install 'elastiq[report]')")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    out.add_argument("--decisions", action="store_true",
                     help="print every decision with its reason (virtual time) on stderr")


def sim_defaults(trace_header: dict = None, vm: bool = True) -> list:
    """Knobs used when no --config is given (--set applies on top); ``vm``: with a VM shape
    (not when the first flavour's entry gives one, which the daemon would use)."""
    knobs = ["vm.cpus=4", "vm.memory_mb=8192"] if vm else []
    if trace_header is None:
        return knobs + ["quota.max_vms=10", "elastiq.idle_timeout_max_s=600"]
    try:
        procs = int(trace_header.get("MaxProcs", "").split()[0])
    except (ValueError, IndexError):
        procs = 200
    return knobs + [f"quota.max_vms={max(1, math.ceil(procs / 4))}"]


def print_decision(elapsed_s: float, plan) -> None:
    hours, rest = divmod(int(elapsed_s), 3600)
    stamp = f"+{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    for action in plan.actions:
        print(f"{stamp} {describe(action)[1]}", file=sys.stderr)


class Progress:
    """A one-line progress bar on stderr (shown only when stderr is a terminal)."""

    def __init__(self, total_s: float):
        self.total_s, self.last = total_s, 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last < 0.25 and fraction < 1.0:
            return
        self.last = now
        filled = int(fraction * 30)
        done_d = fraction * self.total_s / 86400
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}"
                         f"  day {done_d:.0f} of {self.total_s / 86400:.0f}")
        sys.stderr.flush()

    def close(self) -> None:
        self.__call__(1.0)
        sys.stderr.write("\n")


def command(args: argparse.Namespace) -> int:
    from ..sim import compare, engine, metrics, peers, report, workload as workloads

    if args.window and not args.trace:
        print("elastiq simulate: --window needs --trace", file=sys.stderr)
        return cli.EXIT_USAGE
    try:
        if args.trace:
            work = workloads.read_swf(args.trace, args.max_jobs, args.window or (None, None))
        else:
            work = workloads.synthetic(args.seed)
            if args.max_jobs:
                work = workloads.truncate(work, args.max_jobs)
    except workloads.WorkloadError as err:
        print(f"elastiq simulate: {err}", file=sys.stderr)
        return cli.EXIT_USAGE
    if not len(work):
        print(f"elastiq simulate: no job to replay: {_why_empty(args, work)}", file=sys.stderr)
        return cli.EXIT_USAGE

    path = cli.config_path(args)
    cfg = config.load(path, list(args.overrides))
    if not path:
        shaped = engine.first_flavour_shape(cfg) is not None
        cfg = config.load(None, sim_defaults(work.header if args.trace else None, not shaped)
                          + list(args.overrides))
    if cfg.quota.max_vms == 0:
        print(f"elastiq simulate: quota.max_vms is 0: no VM can start, so none of the "
              f"{len(work)} jobs can run (set e.g. --set quota.max_vms=10)", file=sys.stderr)
        return cli.EXIT_USAGE
    if path and (cfg.vm.cpus is None or cfg.vm.memory_mb is None) \
            and engine.first_flavour_shape(cfg) is None:
        from ..runtime.factory import flavour_name
        shape = engine.sim_catalogue(cfg)
        print(f"elastiq simulate: worker VM shape {shape.cpus} cpu(s), {shape.memory_mb} MiB: "
              f"vm.cpus / vm.memory_mb are not set in {path}, and the simulator cannot ask the "
              f"cloud for the shape of flavour {flavour_name(cfg) or '(none)'}; set them with "
              "--set vm.cpus=N --set vm.memory_mb=M", file=sys.stderr)
    if args.report:
        problem = _report_problem(args.report)
        if problem:
            print(f"elastiq simulate: {problem}", file=sys.stderr)
            return cli.EXIT_USAGE

    policies = POLICIES if args.policy == "all" else (args.policy,)
    try:
        for policy in policies:
            engine.get_policy(policy)
    except peers.PolicyUnavailable as err:
        print(f"elastiq simulate: {err}", file=sys.stderr)
        return cli.EXIT_USAGE
    results, sims = {}, {}
    for policy in policies:
        show = not args.quiet and sys.stderr.isatty()
        progress = Progress(work.span_s) if show else None
        options = engine.SimOptions(
            policy=policy, seed=args.seed, boot_delay=args.boot_delay,
            never_join_share=args.never_join_share, error_share=args.error_share,
            cloud_capacity=args.cloud_capacity, queue_failure=args.unreadable_share,
            pool_failure=args.unreadable_share, list_failure=args.unreadable_share,
            timeline=bool(args.report), progress=progress,
            on_decision=print_decision if args.decisions else None,
        )
        sim = sims[policy] = engine.Simulation(work, cfg, options)
        results[policy] = sim.run()
        if progress is not None:
            progress.close()

    # the summary first: a report that fails to write must not lose it
    if len(policies) > 1:
        print(json.dumps(results) if args.json else compare.comparison_table(results))
    elif args.json:
        print(json.dumps(results[policies[0]]))
    else:
        print(metrics.summary_table(results[policies[0]]))
    sys.stdout.flush()
    if args.report:
        files = []
        scale = report.Scale.of([sim.recorder.timeline for sim in sims.values()])
        for policy, sim in sims.items():
            folder = args.report if len(policies) == 1 else os.path.join(args.report, policy)
            try:
                files += report.write(folder, results[policy], sim.recorder.timeline, scale)
            except (report.ReportError, OSError) as err:
                print(f"elastiq simulate: --report {folder}: {err}", file=sys.stderr)
                return cli.EXIT_FAILURE
        if len(policies) > 1:
            try:
                files.append(report.write_comparison(args.report, results))
            except (report.ReportError, OSError) as err:
                print(f"elastiq simulate: --report {args.report}: {err}", file=sys.stderr)
                return cli.EXIT_FAILURE
        print("report: " + ", ".join(files), file=sys.stderr if args.json else sys.stdout)
    return cli.EXIT_OK


def _why_empty(args: argparse.Namespace, work) -> str:
    if not args.trace:
        return "--max-jobs left none"
    skipped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in work.skipped.items() if n)
    if args.window:
        return f"no job of {args.trace} was submitted in --window (check --window)"
    return f"{args.trace} has no job line" + (f" that can be replayed (skipped: {skipped})"
                                              if skipped else "")


def _report_problem(directory: str):
    """Why ``--report DIR`` cannot be written (checked before a long replay), or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--report needs matplotlib: pip install 'elastiq[report]' (the report extra)"
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        return f"--report {directory}: cannot create it: {err.strerror or err}"
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        return f"--report {directory}: not a writable directory"
    return None
