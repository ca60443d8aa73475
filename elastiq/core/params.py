"""The parameters the core decides with: exactly the settings it reads, nothing else.

The runtime builds them once from the configuration (:func:`elastiq.config.params_of`) and
passes them to :func:`.records.step` and every policy's ``plan``; the core never sees (nor
imports) the configuration itself.  Each field keeps the name of the configuration key it
comes from (``elastiq.*`` unless said otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..model import Catalogue


@dataclass(frozen=True)
class Limits:
    """The ``quota`` section: alive VMs kept between ``min_vms`` and ``max_vms``, and their
    cores and MiB under ``max_cores``/``max_memory_mb`` (None: no limit), see :mod:`.quota`."""

    min_vms: int
    max_vms: int
    max_cores: Optional[int]
    max_memory_mb: Optional[int]


@dataclass(frozen=True)
class Launching:
    """When and how many VMs to launch (:mod:`.scaleup`, :mod:`.demand`), and the back-off
    after failed launches."""

    waiting_jobs_threshold: int
    waiting_jobs_time_s: Optional[float]  # None: the policy's own
    n_jobs_per_vm: int  # 0: launches sized by packing jobs onto the VM shape
    launch_backoff_s: float
    launch_backoff_max_s: float


@dataclass(frozen=True)
class Releasing:
    """When idle or under-used workers are drained (:mod:`.wanted`, :mod:`.consolidate`)."""

    idle_timeout_max_s: float
    idle_timeout_boot_factor: float
    idle_timeout_min_s: float
    consolidate_below: float  # 0: no consolidation
    consolidate_after_s: float


@dataclass(frozen=True)
class Params:
    """Everything the core reads of the configuration.  ``cluster_name``: the tag of our
    instances; ``estimated_vm_deploy_time_s``: how long a VM may take to be listed and join;
    ``catalogue``: the worker VMs as configured (the ``vm`` section, one flavour), used when
    the runtime passes no catalogue of cloud facts."""

    cluster_name: str
    estimated_vm_deploy_time_s: float
    limits: Limits
    launching: Launching
    releasing: Releasing
    catalogue: Catalogue
