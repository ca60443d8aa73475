"""ecm's flavour family (ecm/family.py): the smaller sizes of FLAVOR_VMS, largest first."""
from __future__ import annotations

from ecm.family import described, family

#: EC2's c5 and m5 sizes as DescribeInstanceTypes gives them (cpus, MiB).
EC2 = {"c5.large": (2, 4096), "c5.xlarge": (4, 8192), "c5.2xlarge": (8, 16384),
       "c5.4xlarge": (16, 32768), "c5.metal": (96, 196608), "m5.xlarge": (4, 16384)}
#: OpenStack's classic flavours (m1.tiny has another memory per cpu).
NOVA = {"m1.tiny": (1, 512), "m1.small": (1, 2048), "m1.medium": (2, 4096),
        "m1.large": (4, 8192), "m1.xlarge": (8, 16384), "gpu.large": (4, 8192)}


def test_the_family_is_the_smaller_sizes_of_the_same_name_and_memory_per_cpu():
    assert family("c5.4xlarge", EC2) == ["c5.4xlarge", "c5.2xlarge", "c5.xlarge"]  # >= 1/4
    assert family("c5.2xlarge", EC2) == ["c5.2xlarge", "c5.xlarge", "c5.large"]
    assert family("m1.large", NOVA) == ["m1.large", "m1.medium", "m1.small"]  # not m1.tiny
    assert family("m1.xlarge", NOVA) == ["m1.xlarge", "m1.large", "m1.medium"]  # not gpu.large


def test_no_family_without_a_known_shape_or_a_smaller_size():
    assert family("c5.large", EC2) == []  # the smallest
    assert family("m5.xlarge", EC2) == []  # no other m5 size listed
    assert family("unknown", EC2) == []
    # a name without a dot: any flavour of the same memory per cpu
    assert family("big", {"big": (4, 8000), "half": (2, 4000), "odd": (2, 1000)}) == \
        ["big", "half"]


def test_the_question_shows_each_size():
    assert described(["c5.xlarge", "c5.large"], EC2) == \
        "c5.xlarge (4 cpus, 8 GiB), c5.large (2 cpus, 4 GiB)"
    assert described(["m1.small"], {"m1.small": (1, 1740)}) == "m1.small (1 cpu, 1740 MiB)"
