"""Telling the operator once about idle jobs with a problem (a job that can never run on a
worker VM, a request that is not a number): one log line per problem, naming its jobs in
runs (``schedd#4.0-19999``), not one line per job -- 100,000 jobs alike would be 100,000
lines and a second of a tick.  Used by the batch adapters; pure apart from the log.
"""
from __future__ import annotations

import logging
import re
from typing import Dict, Iterable, List, Set, Tuple

#: A job id ending in a number (``schedd#4.17``, Slurm's ``1234_7``): its runs are merged.
_NUMBERED = re.compile(r"(.*?)(\d+)\Z")
_DIGITS = re.compile(r"(\d+)")
#: At most this many runs of job ids are named in one line.
MAX_RUNS = 10


def jobs_named(ids: Iterable[str]) -> str:
    """``job X`` for one job; ``N jobs R1 R2 ...`` for several, consecutive numbers of one
    prefix merged into a run (``s#4.0-19999``), the first :data:`MAX_RUNS` runs named."""
    ids = sorted(set(ids), key=_order)
    if len(ids) == 1:
        return f"job {ids[0]}"
    runs: List[List] = []  # [prefix, first, last] or [id, None, None]
    for jid in ids:
        found = _NUMBERED.match(jid)
        prefix, number = (found.group(1), int(found.group(2))) if found else (jid, None)
        last = runs[-1] if runs else None
        if number is not None and last and last[0] == prefix and last[2] == number - 1:
            last[2] = number
        else:
            runs.append([prefix, number, number])
    shown = [p if n is None else f"{p}{n}" if n == m else f"{p}{n}-{m}"
             for p, n, m in runs[:MAX_RUNS]]
    more = " ..." if len(runs) > MAX_RUNS else ""
    return f"{len(ids)} jobs {' '.join(shown)}{more}"


def _order(jid: str) -> Tuple:
    """Numbers in ids by their value (``s#2.0`` before ``s#12.0``): text and numbers
    alternate in the parts, so two ids compare part by part alike."""
    return tuple(int(part) if n % 2 else part for n, part in enumerate(_DIGITS.split(jid)))


class TellOnce:
    """Logs each (job, problem) once while the job stays idle with that problem, the new
    ones of each problem in one INFO line."""

    def __init__(self, log: logging.Logger):
        self._log = log
        self._told: Set[Tuple[str, str]] = set()

    def tell(self, notes: Iterable[Tuple[str, str]], complete: bool = True) -> None:
        """``notes``: this reading's (job id, problem); ``complete``: the reading saw every
        job (then the jobs missing from it are gone or fixed, and forgotten)."""
        now = set(notes)
        new: Dict[str, List[str]] = {}
        for job, message in now - self._told:
            new.setdefault(message, []).append(job)
        for message in sorted(new):
            self._log.info("%s %s", jobs_named(new[message]), message)
        self._told = now if complete else self._told | now
