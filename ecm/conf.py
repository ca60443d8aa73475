"""Parse ``ecm.conf``, the KEY=VALUE file of the original ecm.

Format: one ``KEY=VALUE`` per line; blank lines and lines starting with ``#`` are ignored; an
optional leading ``export`` and one pair of surrounding quotes around the value are accepted, so
a file that is also a shell snippet still works.  Keys (all required)::

    FLAVOR_VMS   flavour (instance type) of the worker VMs     -> ec2.flavour
    MAX_VMS      most worker VMs at once (>= 1)                -> quota.max_vms
    MIN_VMS      worker VMs always kept (0..MAX_VMS)           -> quota.min_vms
    JOBS_PER_VM  jobs per worker VM (0: pack by cpu/memory)    -> elastiq.n_jobs_per_vm
    IDLE_TIME    seconds a worker may sit idle before removal  -> elastiq.idle_timeout_max_s
    KEY_NAME     ssh key pair injected in the VMs (may be empty: no key)  -> ec2.key_name

Every problem raises :class:`EcmConfError` naming the file, the line (when there is one) and the
key.  Values are never interpreted by a shell.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

KEYS = ("FLAVOR_VMS", "MAX_VMS", "MIN_VMS", "JOBS_PER_VM", "IDLE_TIME", "KEY_NAME")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Upper bounds (a typo like MAX_VMS=10^26 is refused): ecm.render checks the same ones.
MAXIMA = {"MAX_VMS": 10000, "MIN_VMS": 10000, "JOBS_PER_VM": 1024, "IDLE_TIME": 30 * 86400}


class EcmConfError(Exception):
    def __init__(self, path: str, line: Optional[int], key: Optional[str], problem: str):
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = path + (f", line {line}" if line else "") + (f", {key}" if key else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class EcmConf:
    flavour: str
    max_vms: int
    min_vms: int
    jobs_per_vm: int
    idle_time_s: int
    key_name: Optional[str]
    path: str = "ecm.conf"


def parse(text: str, path: str = "ecm.conf") -> EcmConf:
    """Parse the text of an ``ecm.conf``; raise :class:`EcmConfError` on the first problem."""
    raw: Dict[str, Tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep:
            raise EcmConfError(path, number, None, f"expected KEY=VALUE (got {_shown(stripped)})")
        if key not in KEYS:
            raise EcmConfError(path, number, key or "(empty key)",
                               f"unknown key (known: {', '.join(KEYS)})")
        if key in raw:
            raise EcmConfError(path, number, key, f"set twice (first on line {raw[key][0]})")
        raw[key] = (number, _unquote(value.strip(), path, number, key))
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise EcmConfError(path, None, missing[0], f"missing (required keys: {', '.join(KEYS)})")

    def integer(key: str, minimum: int) -> int:
        number, value = raw[key]
        if not re.fullmatch(r"[0-9]+", value):
            raise EcmConfError(path, number, key, f"expected a whole number >= {minimum} "
                               f"(got {_shown(value)})")
        if len(value) > 12 or int(value) > MAXIMA[key]:
            raise EcmConfError(path, number, key, f"must be <= {MAXIMA[key]} (got {_shown(value)})")
        if int(value) < minimum:
            raise EcmConfError(path, number, key, f"must be >= {minimum} (got {value})")
        return int(value)

    flavour_line, flavour = raw["FLAVOR_VMS"]
    if not flavour:
        raise EcmConfError(path, flavour_line, "FLAVOR_VMS", "must not be empty (e.g. m1.large)")
    conf = EcmConf(
        flavour=flavour,
        max_vms=integer("MAX_VMS", 1),
        min_vms=integer("MIN_VMS", 0),
        jobs_per_vm=integer("JOBS_PER_VM", 0),
        idle_time_s=integer("IDLE_TIME", 0),
        key_name=raw["KEY_NAME"][1] or None,
        path=path,
    )
    if conf.min_vms > conf.max_vms:
        raise EcmConfError(path, raw["MIN_VMS"][0], "MIN_VMS",
                           f"MIN_VMS ({conf.min_vms}) is greater than MAX_VMS ({conf.max_vms})")
    return conf


def load(path: str) -> EcmConf:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise EcmConfError(path, None, None, "no such file (copy etc/ecm.conf.example and edit "
                           "it, or pass --conf FILE)") from None
    except OSError as err:
        raise EcmConfError(path, None, None, f"cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise EcmConfError(path, None, None, "not a UTF-8 text file") from None
    return parse(text, path)


def _unquote(value: str, path: str, number: int, key: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    elif value[:1] in ("'", '"'):
        raise EcmConfError(path, number, key, "unbalanced quote")
    if _CONTROL.search(value):
        raise EcmConfError(path, number, key, "control characters are not allowed")
    return value


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")
