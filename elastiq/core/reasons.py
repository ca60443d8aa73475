"""Why: every action and every note of a plan carries a :class:`Reason`, a code and its
parameters.  Decisions, tests and metrics read the code; text is rendered only to be logged
or shown (``str(reason)``), here, from each code's template.

A template is a ``str.format`` string over the parameters, with two extra format specs:
``{n:#job}`` is "1 job" / "2 jobs", and ``{ids:,}`` joins a tuple with ", ".  A parameter
that is itself a Reason renders as its text.  ``volatile`` names the parameters that change
from tick to tick while the reason stays the same (elapsed times): :attr:`Reason.key` leaves
them out, so a note repeated with a longer wait is not news.

Each policy may add its codes as another :class:`ReasonCode` enum (the baselines of the
simulator do); a code's value is the ``reason`` label of ``elastiq_actions_total``.
"""
from __future__ import annotations

import enum
import string
from dataclasses import dataclass
from typing import Any, Tuple


class ReasonCode(str, enum.Enum):
    """Base of the code enums: ``NAME = "value", "template"[, ("volatile", ...)]``."""

    def __new__(cls, value: str, template: str, volatile: Tuple[str, ...] = ()):
        member = str.__new__(cls, value)
        member._value_ = value
        member.template = template
        member.volatile = frozenset(volatile)
        return member

    def __str__(self) -> str:
        return self.value


class Code(ReasonCode):
    """The reasons of the default policy (and of the runtime's look before terminating)."""

    # launch
    MIN_VMS = "min-vms", "{alive} VMs < min_vms {min_vms}{jobs_part}{context}"
    JOBS_WAITING = ("jobs-waiting", "{jobs:#job} waiting{held_part}{context}", ("held",))
    RETRY = "retry", "retry of launch request {request}, whose outcome is unknown"
    LAUNCH_HELD = ("launch-held", "launch {count} held back: an earlier launch's outcome is not"
                   " known yet")
    # drain
    IDLE = ("idle", "idle for {idle:.0f} s >= {timeout:g} s ({basis})", ("idle",))
    IDLE_TIMEOUT_MAX = "idle-timeout-max", "idle_timeout_max_s"  # the basis of an idle timeout
    BOOT_TO_JOIN = ("boot-to-join", "{factor:g} x median boot-to-join {median:.0f} s, within"
                    " {low:g}-{high:g} s")
    CONSOLIDATION = ("consolidation", "consolidation: {used:.0%} used < {below:.0%} for"
                     " {underused:.0f} s, no job needs a new VM; its {jobs} job(s) finish"
                     " there, no new job lands", ("underused",))
    # terminate
    IN_ERROR = "in-error", "in error"
    STILL_ALIVE = "still-alive", "termination requested earlier, still alive"
    NOT_JOINED = "not-joined", "not joined the pool {deploy:g} s after launch"
    LEFT_POOL = "left-pool", "left the pool more than {deploy:g} s ago"
    DRAINED = "drained", "drained, no claimed slot"
    UNNEEDED = "unneeded", "booting, no longer needed: the waiting jobs found room"
    # the look before terminating (runtime): held back, or drained instead
    WORKER_BUSY = "worker-busy", "its worker {worker} runs {jobs} job(s)"
    WORKER_ACCEPTS = "worker-accepts", "its worker {worker} accepts jobs"
    POOL_UNREADABLE = "pool-unreadable", "the pool cannot be read ({kind} error)"
    HELD_BACK = "held-back", "terminate {ids:,} held back: {cause}{instead}"
    # notes: why nothing (more) was done
    NO_DECISION = "no-decision", "no decision this tick: {problems}"
    NO_SCALE_DOWN = "no-scale-down", "no scale-down this tick: {cause}"
    INCOMPLETE = "incomplete", "{problems}"
    LOST_RUN_JOBS = ("lost-run-jobs", "pool partial: {count} worker(s) missing from it run"
                     " jobs according to the queue ({workers:,})")
    RUNNING_UNSEEN = ("running-unseen", "pool partial: the queue counts {count:#running job}"
                      " more than the pool's workers run, and {lost} worker(s) are missing from"
                      " it")
    COLLECTOR_RESTARTED = ("collector-restarted", "pool partial: the collector started"
                           " {ago:.0f} s ago and {count} worker(s) have not advertised since",
                           ("ago",))
    DRAINING_BUSY = ("draining-busy", "{worker} draining: waiting for {slots} claimed slot(s)")
    KEPT_LAUNCHING = "kept-launching", "{count} idle worker(s) kept: launching this tick"
    KEPT_FOR_JOBS = "kept-for-jobs", "{count} idle worker(s) kept: {jobs} jobs waiting for them"
    KEPT_MIN_VMS = "kept-min-vms", "{count} idle worker(s) kept to honour min_vms {min_vms}"
    CLAIMED = "claimed", "not terminating {ids:,} ({cause}): it has a claimed slot"
    ENDED_OUTSIDE = ("ended-outside", "{ids:,} ended without elastiq terminating {them}:"
                     " deleted outside elastiq, or powered off by a safety net")
    NEVER_LISTED = ("never-listed", "{ids:,} launched but never listed by the cloud in"
                    " {deploy:g} s: forgotten")
    UNMATCHABLE = "unmatchable", "{count:#idle job} can never run on a worker VM: ignored"
    NO_ROOM = "no-room", "{count:#job} without room: max_vms {max_vms} reached ({alive} alive)"
    NO_ROOM_QUOTA = ("no-room-quota", "{count:#job} without room: the quota's cores or memory"
                     " are used up ({used})")
    WAITING = ("waiting", "{count:#job} waiting for {held:.0f} s of {wait:g} s before launching",
               ("held",))
    BELOW_THRESHOLD = ("below-threshold", "{count:#job} waiting, not above the threshold of"
                       " {threshold}")
    MAX_VMS = "max-vms", "{count:#more VM} wanted but max_vms {max_vms} reached ({alive} alive)"
    QUOTA = ("quota", "{count:#more VM} wanted but the quota's cores or memory are used up"
             " ({used})")
    BACKOFF = ("backoff", "launch of {count} held back: backing off after {failures:#failure}"
               " for {left:.0f} s more", ("left",))
    UNSTARTED = ("unstarted", "{count} idle job(s) did not start in {idle_for:g} s next to an"
                 " idle worker they fit (the pool does not match them): no VM is launched or"
                 " kept for them")


@dataclass(frozen=True)
class Reason:
    """A code and its parameters (``(name, value)`` pairs of hashable values, sorted by name:
    make one with :meth:`of`)."""

    code: ReasonCode
    params: Tuple[Tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, code: ReasonCode, **params: Any) -> "Reason":
        return cls(code, tuple(sorted(params.items())))

    def __getitem__(self, name: str) -> Any:
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(name)

    @property
    def key(self) -> tuple:
        """The code and the parameters but the volatile ones (nested reasons likewise)."""
        return (self.code, tuple((k, v.key if isinstance(v, Reason) else v)
                                 for k, v in self.params if k not in self.code.volatile))

    def __str__(self) -> str:
        return _FORMATTER.format(self.code.template, **_derived(self))

    def __format__(self, spec: str) -> str:
        return str(self)


class _Formatter(string.Formatter):
    def format_field(self, value: Any, spec: str) -> str:
        if spec.startswith("#"):  # "{n:#job}": "1 job", "2 jobs"
            return f"{value} {spec[1:]}" + ("" if value == 1 else "s")
        if spec == ",":
            return ", ".join(str(v) for v in value)
        return super().format_field(value, spec)


_FORMATTER = _Formatter()


def _derived(reason: Reason) -> dict:
    """The parameters, plus the optional parts of the launch reasons."""
    params = dict(reason.params)
    if reason.code in (Code.MIN_VMS, Code.JOBS_WAITING):
        held = params.get("held")
        params["held_part"] = (f" {held:.0f} s >= {params['wait']:g} s"
                               if held is not None else "")
        jobs = params.get("jobs")
        params["jobs_part"] = (", " + _FORMATTER.format("{jobs:#job} waiting{held_part}", **params)
                               if jobs else "")
        booting = params.get("booting")
        context = [_FORMATTER.format("{booting:#VM} booting", **params)] if booting else []
        if "max_vms" in params:
            context.append(f"{params['alive']}/{params['max_vms']} VMs")
        params["context"] = "".join(", " + c for c in context)
    elif reason.code is Code.HELD_BACK:
        params["instead"] = "; draining it instead" if params.get("drained_instead") else ""
    return params
