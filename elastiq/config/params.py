"""The core's parameters (:class:`elastiq.core.params.Params`) out of a loaded configuration:
built once by the runtime, so the core reads its settings without importing this package."""
from __future__ import annotations

from ..core.params import Launching, Limits, Params, Releasing
from ..model import Catalogue
from .sections import Config


def params_of(config: Config) -> Params:
    """The settings of ``config`` the core decides with."""
    e, q = config.elastiq, config.quota
    return Params(
        cluster_name=e.cluster_name,
        estimated_vm_deploy_time_s=e.estimated_vm_deploy_time_s,
        limits=Limits(q.min_vms, q.max_vms, q.max_cores, q.max_memory_mb),
        launching=Launching(e.waiting_jobs_threshold, e.waiting_jobs_time_s, e.n_jobs_per_vm,
                            e.launch_backoff_s, e.launch_backoff_max_s),
        releasing=Releasing(e.idle_timeout_max_s, e.idle_timeout_boot_factor,
                            e.idle_timeout_min_s, e.consolidate_below, e.consolidate_after_s),
        catalogue=Catalogue.of(config.vm))
