"""Carry out a Plan, one action at a time: the only place where elastiq changes the world.

- Each action is logged on one INFO line with its reason before it is carried out (the
  adapters log their calls at DEBUG only), and counted by kind and reason code
  (``elastiq_actions_total``).
- Look before you terminate: right before a Terminate, one targeted query asks the pool for
  the workers of its instances (a VM may have joined, or a job been matched, since the
  observation).  One whose worker is there and accepts jobs is drained instead; one whose
  worker runs a job is kept (draining); one whose worker drains with no claimed slot, or that
  has none, is terminated.  When the pool cannot be asked, nothing of that Terminate is.  The
  records note which instance was drained instead (:func:`~elastiq.core.records.drained_instead`,
  and the policy's memory through ``Policy.drained_instead``) or not terminated
  (:func:`~elastiq.core.records.undo`).
- After a terminate the cloud accepted, the batch system forgets those instances' workers
  (``BatchSystem.forget``: Slurm deletes their nodes at once).
- A failing action is logged with its error class and reason; the next actions still run.
  A Terminate of several instances that fails is retried one instance at a time, so one bad
  id does not keep the others alive.
- Every launch outcome (ids granted, or the error class) is recorded (the ids granted as
  *requested* records, :func:`~elastiq.core.records.launched`; the outcome in the policy's
  memory through its ``record_launch``) and handed to ``persist`` at once: a crash right after
  a launch loses nothing (and the cluster tag covers a crash during the call itself).
- Every launch names its request (``request_id``).  A launch that failed with a transient
  error may have reached the cloud (the answer was lost): it is an :class:`UnknownLaunch` of
  the outcome, and :meth:`Actuator.retry_unknown` asks for it again, the same request, before
  the next plan, so a cloud that can (EC2's ClientToken) answers with the VMs the first
  attempt made rather than launching twice.  While one is still unknown, no new launch is
  made (``hold_launches``): if the first attempt never reached the cloud, the retry that
  finally gets through launches it, and a launch made meanwhile for the same jobs could
  take the cluster above ``max_vms``.
- Dry run: ``dry_run_boot_vms`` skips launches, ``dry_run_shutdown_vms`` skips drains, drain
  cancellations and terminations; both log what would have happened.  The records of a
  skipped action's instances are undone, so they match the unchanged world.
- ``should_stop()`` is asked before each action: on shutdown the remaining ones are abandoned,
  and undone in memory as for a dry run (the core decides afresh after the
  restart, rather than carrying out a decision whose reason may no longer hold).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple

from ..adapters.base import AdapterError, BatchSystem, Cloud, error_kind
from ..config import Config, params_of
from ..core import records as rec
from ..core.params import Params
from ..core.reasons import Code, Reason
from ..model import Action, CancelDrain, Drain, LaunchOutcome, Launch, Plan, Terminate
from .metrics import Metrics
from .state import Decision, UnknownLaunch

log = logging.getLogger(__name__)

#: ``persist(records, memory, granted_ids)``: save right after a launch.
Persist = Callable[[rec.Records, Any, Tuple[str, ...]], None]


@dataclass(frozen=True)
class Outcome:
    records: rec.Records
    memory: Any  # the policy's
    decisions: Tuple[Decision, ...]
    launched: Tuple[str, ...]  # ids granted by the cloud this time
    changed_cloud: bool  # a launch or termination was attempted
    acted: int  # actions carried out (successful or not), dry-run ones not counted
    abandoned: int
    unknown: Tuple[UnknownLaunch, ...] = ()  # launches whose outcome is not known


def describe(action: Action) -> Tuple[str, str]:
    """(kind, one-line text with the reason) of an action, as logged and shown by status."""
    if isinstance(action, Launch):
        flavour = f" {action.flavour}" if action.flavour else ""
        return "launch", f"launch {action.count}{flavour}: {action.reason}"
    if isinstance(action, Drain):
        return "drain", f"drain {action.worker}: {action.reason} ({action.instance_id})"
    if isinstance(action, CancelDrain):
        return "cancel-drain", (f"cancel drain of {action.worker}: {action.reason}"
                                f" ({action.instance_id})")
    if isinstance(action, Terminate):
        return "terminate", f"terminate {', '.join(action.instance_ids)}: {action.reason}"
    raise TypeError(f"unknown action {action!r}")


def _instance_ids(action: Action) -> Iterable[str]:
    if isinstance(action, Terminate):
        return action.instance_ids
    return (action.instance_id,)  # type: ignore[union-attr]


class Actuator:
    def __init__(self, batch: BatchSystem, cloud: Cloud, policy, config: Config,
                 clock: Callable[[], float], metrics: Optional[Metrics] = None,
                 dry_run_boot: bool = False, dry_run_shutdown: bool = False,
                 should_stop: Callable[[], bool] = lambda: False,
                 known_ips: Callable[[], Mapping[str, str]] = dict,
                 params: Optional[Params] = None):
        self.batch, self.cloud, self.policy, self.config = batch, cloud, policy, config
        self.params = params or params_of(config)  # the runtime's, or built here
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.dry_run_boot = dry_run_boot or config.debug.dry_run_boot_vms
        self.dry_run_shutdown = dry_run_shutdown or config.debug.dry_run_shutdown_vms
        self.should_stop = should_stop
        self.known_ips = known_ips  # private IP -> instance id, for the look before terminating

    def execute(self, plan: Plan, records: rec.Records, memory: Any, before: rec.Records,
                persist: Persist = lambda r, m, ids: None,
                hold_launches: bool = False) -> Outcome:
        """Carry out ``plan``.  ``records`` and ``memory`` are the records and the policy's
        memory after the plan, ``before`` the records the tick started from (to undo the marks
        of actions not carried out).  ``persist(records, memory, granted_ids)`` is called right
        after each launch.  ``hold_launches``: an earlier launch's outcome is still unknown, so
        the launches are held back (noted, not carried out)."""
        if not plan.actions:
            return Outcome(records, memory, (), (), False, 0, 0)
        decisions: List[Decision] = []
        launched: List[str] = []
        unknown: List[UnknownLaunch] = []
        changed_cloud, acted = False, 0
        for done, action in enumerate(plan.actions):
            if self.should_stop():
                left = plan.actions[done:]
                log.info("shutting down: %d planned action(s) abandoned", len(left))
                for skipped in left:
                    if not isinstance(skipped, Launch):
                        records = rec.undo(records, before, _instance_ids(skipped))
                return Outcome(records, memory, tuple(decisions), tuple(launched), changed_cloud, acted,
                               len(left), tuple(unknown))
            kind, text = describe(action)
            if hold_launches and isinstance(action, Launch):
                note = str(Reason.of(Code.LAUNCH_HELD, count=action.count))
                log.info("%s", note)
                decisions.append(Decision(self.clock(), "note", note))
                continue
            if self._dry(action):
                log.info("dry run, would %s", text)
                decisions.append(Decision(self.clock(), kind, f"dry run, would {text}"))
                if not isinstance(action, Launch):
                    records = rec.undo(records, before, _instance_ids(action))
                continue
            log.info("%s", text)
            decisions.append(Decision(self.clock(), kind, text))
            if not isinstance(action, Terminate):  # a Terminate: what is left after the look
                self.metrics.action(kind, action.reason.code)
            acted += 1
            if isinstance(action, Launch):
                changed_cloud = True
                records, memory, granted, failure, lost = self._launch(action, records, memory)
                launched.extend(granted)
                unknown.extend(lost)
                persist(records, memory, granted)
            elif isinstance(action, Terminate):
                changed_cloud = True
                action, records, memory, held = self._look(action, records, memory, before)
                decisions.extend(Decision(self.clock(), "note", text) for text in held)
                failure = ""
                if action.instance_ids:
                    self.metrics.action(kind, action.reason.code)
                    failure = self._terminate(action)
            elif isinstance(action, Drain):
                failure = self._call("drain", action.worker, self.batch.drain, action.worker,
                                     str(action.reason))
            else:
                failure = self._call("cancel drain", action.worker, self.batch.cancel_drain,
                                     action.worker)
            if failure:
                decisions.append(Decision(self.clock(), "failed", failure))
        return Outcome(records, memory, tuple(decisions), tuple(launched), changed_cloud, acted,
                       0, tuple(unknown))

    def retry_unknown(self, unknown: Tuple[UnknownLaunch, ...], records: rec.Records,
                      memory: Any, persist: Persist = lambda r, m, ids: None
                      ) -> Tuple[rec.Records, Any, Tuple[UnknownLaunch, ...], Tuple[Decision, ...]]:
        """Ask again for each launch whose outcome is unknown, the same request (id, count,
        flavour): what it grants is recorded and persisted as any launch's.  Returns the
        records, the memory, the launches still unknown (another transient error) and the
        decisions.  One unknown
        for longer than ``estimated_vm_deploy_time_s`` is given up: a VM it made is listed by
        then, with the cluster tag, and adopted."""
        left: List[UnknownLaunch] = []
        decisions: List[Decision] = []
        for lost in unknown:
            waited = self.clock() - lost.since
            if waited > self.config.elastiq.estimated_vm_deploy_time_s:
                log.warning("launch request %s: outcome unknown for %.0f s, given up (a VM it "
                            "made carries the cluster tag and is adopted)", lost.request_id, waited)
                continue
            if self.should_stop():
                left.append(lost)
                continue
            action = Launch(lost.count, Reason.of(Code.RETRY, request=lost.request_id),
                            lost.flavour)
            kind, text = describe(action)
            log.info("%s", text)
            decisions.append(Decision(self.clock(), kind, text))
            self.metrics.action(kind, Code.RETRY)
            records, memory, granted, failure, again = self._launch(action, records, memory, lost)
            persist(records, memory, granted)
            left.extend(again)
            if failure:
                decisions.append(Decision(self.clock(), "failed", failure))
        return records, memory, tuple(left), tuple(decisions)

    def _dry(self, action: Action) -> bool:
        return self.dry_run_boot if isinstance(action, Launch) else self.dry_run_shutdown

    def _launch(self, action: Launch, records: rec.Records, memory: Any,
                retry: Optional[UnknownLaunch] = None
                ) -> Tuple[rec.Records, Any, Tuple[str, ...], str, Tuple[UnknownLaunch, ...]]:
        """Launch; ``retry``: the unknown launch this one asks for again (its failure is not
        counted twice).  Returns the records, the memory, the ids granted, the failure and the
        launch left unknown (a transient error)."""
        failure, unknown = "", ()
        request_id = retry.request_id if retry else uuid.uuid4().hex
        try:
            granted = tuple(self.cloud.launch(action.count, flavour=action.flavour,
                                              request_id=request_id))
            outcome = LaunchOutcome(action.count, granted, flavour=action.flavour)
            self.metrics.launched(len(granted))
            refused = action.count - len(granted)
            log.log(logging.INFO if refused else logging.DEBUG, "launched %d%s: %s",
                    len(granted), f", {refused} refused by the cloud" if refused else "",
                    ", ".join(granted) or "-")
        except Exception as err:
            granted = ()
            kind = self._failed("launch", f"{action.count} VM(s)", err)
            outcome = LaunchOutcome(action.count, (), kind if kind != "internal" else "fatal",
                                    action.flavour)
            failure = f"launch {action.count} failed ({kind} error): {_reason(err)}"
            if kind == "transient":  # the answer may be what was lost
                unknown = (retry or UnknownLaunch(request_id, action.count, action.flavour,
                                                  self.clock()),)
            if retry is not None:  # counted (and backed off) the first time
                return records, memory, granted, failure, unknown
        now = self.clock()
        return (rec.launched(records, outcome, now),
                self.policy.record_launch(memory, outcome, self.params, now), granted,
                failure, unknown)

    def _look(self, action: Terminate, records: rec.Records, memory: Any, before: rec.Records
              ) -> Tuple[Terminate, rec.Records, Any, List[str]]:
        """The Terminate left after looking at the pool, the records, the memory, and what
        was held back."""
        ids = action.instance_ids
        try:
            present = self.batch.workers_of(ids, self.known_ips())
        except Exception as err:
            kind = self._failed("look at the pool before terminating", ", ".join(ids), err)
            held = Reason.of(Code.HELD_BACK, ids=ids,
                             cause=Reason.of(Code.POOL_UNREADABLE, kind=kind))
            return (replace(action, instance_ids=()), rec.undo(records, before, ids), memory,
                    [str(held)])
        go, held = [], []
        for instance_id in ids:
            worker = present.get(instance_id)
            if worker is None or (worker.draining and not worker.busy):
                go.append(instance_id)
                continue
            cause = (Reason.of(Code.WORKER_BUSY, worker=worker.name, jobs=worker.running_jobs)
                     if worker.busy else Reason.of(Code.WORKER_ACCEPTS, worker=worker.name))
            text = str(Reason.of(Code.HELD_BACK, ids=(instance_id,), cause=cause,
                                 drained_instead=not worker.draining))
            failure = ""
            log.info("%s", text)
            if not worker.draining:
                self.metrics.action("drain", cause.code)
                failure = self._call("drain", worker.name, self.batch.drain, worker.name, text)
            held.append(text + (f" ({failure})" if failure else ""))
            if failure:
                records = rec.undo(records, before, (instance_id,))
            else:
                now = self.clock()
                records = rec.drained_instead(records, instance_id, worker.name, now)
                memory = self.policy.drained_instead(memory, instance_id, now)
        return replace(action, instance_ids=tuple(go)), records, memory, held

    def _terminate(self, action: Terminate) -> str:
        """Terminate, then have the batch system forget the workers of the VMs terminated
        (its failure is logged and does not make the terminate fail)."""
        ids = action.instance_ids
        failure = self._call("terminate", ", ".join(ids), self.cloud.terminate, ids, quiet=len(ids) > 1)
        if not failure:
            self.metrics.terminated(len(ids))
            self._forget(ids)
            return ""
        if len(ids) == 1:
            return failure
        failed = []
        for instance_id in ids:  # isolate the bad one(s)
            if self._call("terminate", instance_id, self.cloud.terminate, (instance_id,)):
                failed.append(instance_id)
            else:
                self.metrics.terminated(1)
        self._forget(tuple(i for i in ids if i not in failed))
        return f"terminate failed for {', '.join(failed)}" if failed else ""

    def _forget(self, ids: Tuple[str, ...]) -> None:
        if ids:
            self._call("forget the workers of", ", ".join(ids), self.batch.forget, ids)

    def _call(self, what: str, target: str, func, *args, quiet: bool = False) -> str:
        try:
            func(*args)
            return ""
        except Exception as err:
            kind = self._failed(what, target, err, quiet)
            return f"{what} {target} failed ({kind} error): {_reason(err)}"

    def _failed(self, what: str, target: str, err: Exception, quiet: bool = False) -> str:
        kind = error_kind(err) if isinstance(err, AdapterError) else "internal"
        self.metrics.error(kind)
        if quiet:
            log.info("%s %s failed (%s error): %s; retrying one by one", what, target, kind,
                     _reason(err))
        elif isinstance(err, AdapterError):
            log.warning("%s %s failed (%s error): %s", what, target, kind, _reason(err))
        else:
            log.error("%s %s failed (unexpected %s)", what, target, type(err).__name__,
                      exc_info=True)
        return kind


def _reason(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__

