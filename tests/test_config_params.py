"""The core's parameters built from a configuration (:func:`elastiq.config.params_of`): each
field is the configuration key of its name, none swapped or left at a default."""
from __future__ import annotations

from dataclasses import fields

from elastiq.config import load, params_of
from elastiq.model import Catalogue

#: a value for every key the core reads, none equal to its default nor to another one
SETS = ["elastiq.cluster_name=blue", "elastiq.estimated_vm_deploy_time_s=611",
        "quota.min_vms=2", "quota.max_vms=17", "quota.max_cores=64", "quota.max_memory_mb=99999",
        "elastiq.waiting_jobs_threshold=3", "elastiq.waiting_jobs_time_s=41",
        "elastiq.n_jobs_per_vm=5", "elastiq.launch_backoff_s=61",
        "elastiq.launch_backoff_max_s=1801", "elastiq.idle_timeout_max_s=3601",
        "elastiq.idle_timeout_boot_factor=7", "elastiq.idle_timeout_min_s=601",
        "elastiq.consolidate_below=0.25", "elastiq.consolidate_after_s=602",
        "vm.cpus=4", "vm.memory_mb=8000"]


def test_every_parameter_is_the_configuration_key_of_its_name():
    config = load(None, SETS)
    params = params_of(config)
    sections = {"limits": config.quota, "launching": config.elastiq, "releasing": config.elastiq}
    seen = set()
    for group, section in sections.items():
        for f in fields(getattr(params, group)):
            value = getattr(getattr(params, group), f.name)
            assert value == getattr(section, f.name), (group, f.name)
            seen.add(value)
    assert params.cluster_name == "blue" and params.estimated_vm_deploy_time_s == 611
    assert params.catalogue == Catalogue(4, 8000) == Catalogue.of(config.vm)
    assert len(seen) == len(SETS) - 4  # every value set above, each in one field
    assert params == params_of(load(None, SETS))  # frozen and comparable: built once, kept


def test_a_configuration_setting_nothing_gives_its_defaults():
    config = load(None, [])
    params = params_of(config)
    assert params.limits.max_vms == config.quota.max_vms
    assert params.launching.waiting_jobs_time_s is None  # the policy's own
    assert params.releasing.idle_timeout_max_s == config.elastiq.idle_timeout_max_s
