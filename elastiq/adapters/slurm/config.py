"""The ``slurm`` section: where the Slurm clients are and what a worker node of ours serves.

Workers join as dynamic nodes (``slurmd -Z``) with the features ``elastiq``,
``elastiq-cluster-<cluster_name>`` and ``elastiq-instance-<instance id>`` (see
:mod:`.nodes`); ``features`` are the other features they register with, against which
pending jobs' ``--constraint`` is judged.  Imports no SDK (see the contract in
:mod:`elastiq.adapters`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

NAME = "slurm"


@dataclass(frozen=True)
class Settings:
    partitions: Tuple[str, ...] = ()  # the partitions our workers serve; (): every partition
    features: Tuple[str, ...] = ()  # features our workers have besides elastiq's own
    bin_dir: Optional[str] = None  # where squeue and scontrol are (None: on PATH)
    command_timeout_s: float = 30


SECRET_KEYS = frozenset()


def validate(settings: Settings) -> Iterable[Tuple[str, str]]:
    if settings.bin_dir is not None and not os.path.isdir(settings.bin_dir):
        yield "bin_dir", f"{settings.bin_dir} is not a directory"
    if not 0 < settings.command_timeout_s <= 3600:
        yield "command_timeout_s", f"must be in (0, 3600] (got {settings.command_timeout_s:g})"
    for key in ("partitions", "features"):
        for value in getattr(settings, key):
            if not value or any(c in value for c in " ,&|[]*"):
                yield key, f"{value!r} is not a Slurm {key[:-1]} name"


def summary(settings: Settings) -> str:
    where = ", ".join(settings.partitions) or "every partition"
    return f"Slurm workers of {where}"


def secret_texts(settings: Settings) -> Iterable[str]:
    return ()


def flavour(settings: Settings) -> Optional[str]:
    return None
