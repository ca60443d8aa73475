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
    parsed = []  # (prefix, number or None), each id once
    for jid in set(ids):
        found = _NUMBERED.match(jid)
        parsed.append((found.group(1), int(found.group(2))) if found else (jid, None))
    if len(parsed) == 1:
        prefix, number = parsed[0]
        return f"job {prefix}{'' if number is None else number}"
    order: Dict[str, Tuple] = {}  # prefix -> its sort key, made once per prefix
    for prefix, _ in parsed:
        if prefix not in order:
            order[prefix] = _natural(prefix)
    parsed.sort(key=lambda item: (order[item[0]], -1 if item[1] is None else item[1]))
    runs: List[List] = []  # [prefix, first, last]; first and last None for an id as it is
    for prefix, number in parsed:
        last = runs[-1] if runs else None
        if number is not None and last and last[0] == prefix and last[2] == number - 1:
            last[2] = number
        else:
            runs.append([prefix, number, number])
    shown = [p if n is None else f"{p}{n}" if n == m else f"{p}{n}-{m}"
             for p, n, m in runs[:MAX_RUNS]]
    more = " ..." if len(runs) > MAX_RUNS else ""
    return f"{len(parsed)} jobs {' '.join(shown)}{more}"


def _natural(text: str) -> Tuple:
    """Numbers in a text by their value (``s#2.`` before ``s#12.``): text and numbers
    alternate in the parts, so two keys compare part by part alike."""
    return tuple(int(part) if n % 2 else part for n, part in enumerate(_DIGITS.split(text)))


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
