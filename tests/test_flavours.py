"""Several flavours: the configuration (entries, checks naming flavour[i]), the catalogue, and
the simulator's mixed sizes and price-weighted VM-hours."""
from __future__ import annotations

import pytest

from elastiq import config, flavours
from elastiq.adapters.base import ConfigError
from elastiq.runtime.factory import read_catalogue, resolve_flavours
from elastiq.model import Flavour
from elastiq.sim import engine, workload

THREE = "vm4:4:8192,vm2:2:4096,vm1:1:2048"


def test_a_single_name_stays_a_string_and_a_list_is_read_from_yaml_or_commas(tmp_path):
    assert config.load(None, ["ec2.flavour=m1.large"]).cloud.flavour == "m1.large"
    assert config.load(None, [f"ec2.flavour={THREE}"]).cloud.flavour == THREE
    path = tmp_path / "e.yaml"
    path.write_text("ec2:\n  flavour: [c5.xlarge, 'c5.large:2:4096']\n")
    cfg = config.load(str(path))
    assert cfg.cloud.flavour == ("c5.xlarge", "c5.large:2:4096")
    assert flavours.texts(cfg.cloud.flavour) == ("c5.xlarge", "c5.large:2:4096")
    assert flavours.texts(THREE) == ("vm4:4:8192", "vm2:2:4096", "vm1:1:2048")
    assert flavours.first_name(THREE) == "vm4" and flavours.first_name(None) is None
    assert "of c5.xlarge, c5.large:2:4096" in config.summary(cfg)
    assert config.to_dict(cfg)["ec2"]["flavour"] == ["c5.xlarge", "c5.large:2:4096"]


@pytest.mark.parametrize("value, key, problem", [
    ("a,b:2,c", "ec2.flavour[1]", "expected NAME, NAME:CPUS:MEMORY_MB"),
    ("a,b:two:4096", "ec2.flavour[1]", "cpus 'two' is not a number"),
    ("a,b,c:0:4096", "ec2.flavour[2]", "cpus must be > 0"),
    ("a,b,a", "ec2.flavour[2]", "'a' is listed twice"),
    ("a:4:8192:1,b:2:4096", "ec2.flavour[1]", "give a price to every flavour or to none"),
    ("a:4", "ec2.flavour", "expected NAME"),
    ("a:2:4096,b:4:4096", "ec2.flavour[1]", "b is larger than the first flavour a"),
])
def test_bad_entries_name_their_key(value, key, problem):
    with pytest.raises(config.InvalidConfig) as err:
        config.load(None, [f"ec2.flavour={value}"])
    assert key in str(err.value) and problem in str(err.value)


def test_openstack_entries_are_checked_the_same_way():
    with pytest.raises(config.InvalidConfig) as err:
        config.load(None, ["elastiq.cloud_plugin=openstack", "openstack.flavour=m1,m2:x:1"])
    assert "openstack.flavour[1]" in str(err.value)


def test_the_catalogue_prices_by_cpus_relative_to_the_first():
    catalogue, wrong = flavours.resolve("ec2", THREE, None, None, {})
    assert wrong == []
    assert catalogue == (Flavour("vm4", 4, 8192, 1.0), Flavour("vm2", 2, 4096, 0.5),
                         Flavour("vm1", 1, 2048, 0.25))
    priced, _ = flavours.resolve("ec2", "a:4:8192:0.2,b:1:2048:0.1", None, None, {})
    assert [f.price for f in priced] == [1.0, 0.5]
    assert flavours.resolve("ec2", "vm4:4:8192", None, None, {}) == ((), [])  # one: as always


def test_shapes_come_from_the_entry_then_the_cloud_and_vm_is_the_first():
    catalogue, _ = flavours.resolve("ec2", "big,mid,small:1:2048", 8, None,
                                    {"big": (4, 16384), "mid": (2, 8192)})
    assert [(f.cpus, f.memory_mb) for f in catalogue] == [(8, 16384), (2, 8192), (1, 2048)]
    assert catalogue[1].price == 2 / 8
    unknown, _ = flavours.resolve("ec2", "big:4:8192,mid", None, None, {})
    assert unknown[1] == Flavour("mid", None, None) and not unknown[1].known


def test_a_flavour_larger_than_the_first_is_refused_naming_it():
    cfg = config.load(None, ["ec2.flavour=small:1:2048,big", "vm.cpus=1"])
    with pytest.raises(ConfigError) as err:  # big's shape told by the cloud: 4 cpus
        resolve_flavours(cfg, _Cloud(), flavours.texts(cfg.cloud.flavour))
    assert err.value.key == "ec2.flavour[1]" and "list the largest first" in str(err.value)
    cfg = config.load(None, ["ec2.flavour=small,big:4:8192", "vm.cpus=1", "vm.memory_mb=2048"])
    with pytest.raises(config.InvalidConfig) as err:
        engine.Simulation(workload.synthetic(seed=0), cfg)
    assert "ec2.flavour[1]" in str(err.value)


class _Cloud:
    """A cloud adapter that knows two instance types (stands in only for the factory's call)."""

    def __init__(self):
        self.asked = []

    def describe_flavours(self, names):
        self.asked.append(tuple(names))
        return {n: s for n, s in {"big": (4, 8192), "mid": (2, 4096)}.items() if n in names}


def test_the_runtime_fills_the_catalogue_in_one_call_and_leaves_unknown_shapes_out(caplog):
    cloud = _Cloud()
    settings = config.load(None, ["ec2.flavour=big,mid,tiny"])
    catalogue = read_catalogue(settings, cloud)
    assert cloud.asked == [("big", "mid", "tiny")]
    assert (catalogue.cpus, catalogue.memory_mb) == (4, 8192)
    assert [f.known for f in catalogue.flavours] == [True, True, False]
    assert (settings.vm.cpus, settings.vm.memory_mb) == (None, None)  # the user's, unchanged
    assert "flavour tiny: shape unknown" in caplog.text and "never launched" in caplog.text
    single = read_catalogue(config.load(None, ["ec2.flavour=big", "vm.cpus=4",
                                               "vm.memory_mb=8192"]), cloud)
    # one flavour, its shape configured: asked only whether the cloud knows it
    assert single.flavours == () and (single.cpus, single.memory_mb) == (4, 8192)
    assert cloud.asked[1:] == [("big",)]


def _replay(*extra, policy="default"):
    knobs = ["vm.cpus=4", "vm.memory_mb=8192", "quota.max_vms=10", *extra]
    sim = engine.Simulation(workload.synthetic(seed=3), config.load(None, knobs),
                            engine.SimOptions(policy=policy, timeline=False))
    return sim, sim.run()


def test_one_flavour_in_a_list_decides_exactly_as_a_plain_name():
    plain, plain_result = _replay("ec2.flavour=vm4")
    listed, listed_result = _replay("ec2.flavour=vm4:4:8192")
    assert listed.catalogue.flavours == ()
    assert plain.world.actions == listed.world.actions
    assert plain_result["vm_hours_unit"] == "VM-hours"
    assert {k: v for k, v in plain_result.items() if k != "wall_s"} == \
        {k: v for k, v in listed_result.items() if k != "wall_s"}


def test_mixed_sizes_are_simulated_and_costed_in_the_first_flavours_price():
    sim, result = _replay(f"ec2.flavour={THREE}")
    sizes = result["by_size"]
    assert len(set(sizes) - {"vm4"}) >= 1  # smaller VMs were launched
    for name, row in sizes.items():
        shape = {"vm4": 4, "vm2": 2, "vm1": 1}[name]
        assert row["cpus"] == shape and row["price"] == shape / 4
    for vm in sim.cloud.vms.values():
        assert vm.flavour in ("vm4", "vm2", "vm1")
    joined = {w.instance_id: w.cpus for w in sim.pool.workers.values()}
    for instance_id, cpus in joined.items():
        assert cpus == {"vm4": 4, "vm2": 2, "vm1": 1}[sim.cloud.vms[instance_id].flavour]
    weighted = sum(r["vm_hours"] * r["price"] for r in sizes.values())
    assert result["vm_hours"] == pytest.approx(weighted, abs=0.01)
    assert result["vm_hours"] < sum(r["vm_hours"] for r in sizes.values())
    assert result["vm_hours_unit"] == "price-weighted VM-hours of the first flavour (vm4)"
    assert result["jobs_killed"] == 0 and result["max_vms_violations"] == 0
    assert result["vms_peak"] <= 10
    for row in sizes.values():
        assert row["busy_vm_hours"] + row["booting_vm_hours"] + row["idle_vm_hours"] == \
            pytest.approx(row["vm_hours"], abs=0.002)
        assert row["core_use"] is None or 0 < row["core_use"] <= 1


def test_the_legacy_policy_launches_the_first_flavour_only():
    sim, result = _replay(f"ec2.flavour={THREE}", policy="legacy")
    assert {vm.flavour for vm in sim.cloud.vms.values()} == {None}
    assert set(result["by_size"]) == {"vm4"}


def test_openstack_launches_only_its_own_entries_and_names_them(tmp_path):
    """Without a Nova (not started this round): the adapter refuses a flavour that is not one
    of its entries before any call; the real-cloud path is tests/test_openstack_adapter.py's."""
    pytest.importorskip("openstack")
    from elastiq.adapters.openstack.cloud import OpenStackCloud

    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  here:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n")
    cfg = config.load(None, ["elastiq.cloud_plugin=openstack", "openstack.cloud=here",
                             f"openstack.clouds_yaml={clouds}", "openstack.image=alma9",
                             "openstack.flavour=m1.large,m1.small"])
    assert cfg.cloud.flavour == "m1.large,m1.small"
    cloud = OpenStackCloud(cfg)
    with pytest.raises(ConfigError) as err:
        cloud.launch(1, flavour="m1.huge")
    assert err.value.key == "openstack.flavour" and "not one of" in str(err.value)
