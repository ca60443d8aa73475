"""The ``htcondor`` section: HTCondor's words for what a worker VM is.

``opsys``/``arch`` go into the synthetic worker Machine ad (see :mod:`.template`)
until a worker of ours has been seen; ``has_docker`` decides its ``HasDocker``;
``filesystem_domain`` is the workers' ``FILESYSTEM_DOMAIN`` when they share the submitters'
files (ecm's ``--shared-home`` sets it to the cluster name): jobs that transfer no files
(``should_transfer_files = NO``) match the synthetic ad, and launch the first worker, only
when it is the schedd's; None: the workers' domain is not known before one is seen.  They were
``vm.opsys``, ``vm.arch`` and ``vm.has_docker``: those keys are still read, with a note.
Imports no SDK (see the contract in :mod:`elastiq.adapters`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

NAME = "htcondor"


@dataclass(frozen=True)
class Settings:
    opsys: str = "LINUX"
    arch: str = "X86_64"
    has_docker: bool = True
    filesystem_domain: Optional[str] = None


SECRET_KEYS = frozenset()
#: Keys of other sections this one took over: old ``section.key`` -> key here.
MOVED_KEYS = {"vm.opsys": "opsys", "vm.arch": "arch", "vm.has_docker": "has_docker"}


def validate(settings: Settings) -> Iterable[Tuple[str, str]]:
    for key in ("opsys", "arch"):
        value = getattr(settings, key)
        if not value.strip() or not value.replace("_", "").isalnum():
            yield key, f"expected a word such as {getattr(Settings, key)} (got {value!r})"
    domain = settings.filesystem_domain
    if domain is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", domain):
        yield "filesystem_domain", f"expected a domain name such as physics.example.org (got {domain!r})"


def summary(settings: Settings) -> str:
    return f"{settings.opsys}/{settings.arch} workers{'' if settings.has_docker else ' without docker'}"


def secret_texts(settings: Settings) -> Iterable[str]:
    return ()


def flavour(settings: Settings) -> Optional[str]:
    return None
