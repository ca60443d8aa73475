"""The IP fallback, neutral of any batch system: every case of what a worker advertises."""
from __future__ import annotations

import pytest

from elastiq.worker_map import Placement, place

KNOWN = {"10.0.0.5": "i-5", "10.0.0.6": "i-6"}


def _place(cluster_said, instance_said, contact=("10.0.0.9",), addresses=("10.0.0.9", "10.0.0.5")):
    asked = []

    def all_addresses():
        asked.append(True)
        return list(addresses)

    return place("w1", cluster_said, instance_said, list(contact), all_addresses, "ours", KNOWN), asked


@pytest.mark.parametrize("cluster_said, instance_said, addresses, expected, fallback", [
    # advertises our cluster and its instance: no fallback, its contact address
    ("ours", "i-1", ("10.0.0.9", "10.0.0.5"), Placement(True, "i-1", "10.0.0.9"), False),
    # our cluster, no instance id: the IP fallback finds it, the matching address is kept
    ("ours", None, ("10.0.0.9", "10.0.0.5"), Placement(True, "i-5", "10.0.0.5"), True),
    # our cluster, no instance id, no IP we know: ours, but mapped to no instance
    ("ours", None, ("10.0.0.9",), Placement(True, None, "10.0.0.9"), True),
    # no cluster, an IP of ours: ours by address
    (None, None, ("10.0.0.6",), Placement(True, "i-6", "10.0.0.6"), True),
    # no cluster but an instance id and an IP of ours: what it advertises wins
    (None, "i-1", ("10.0.0.6",), Placement(True, "i-1", "10.0.0.6"), True),
    # no cluster and no IP of ours: left alone, and said why
    (None, None, ("10.0.0.9",), Placement(False, note="w1: advertises no cluster and no IP of "
                                          "ours (10.0.0.9)"), True),
    (None, None, (), Placement(False, note="w1: advertises no cluster and no IP of ours (-)"),
     True),
    # another cluster: never ours, whatever its addresses
    ("theirs", "i-5", ("10.0.0.5",), Placement(False, note="w1: belongs to cluster 'theirs', "
                                               "left alone"), False),
])
def test_place(cluster_said, instance_said, addresses, expected, fallback):
    placed, asked = _place(cluster_said, instance_said, addresses=addresses)
    assert placed == expected
    assert bool(asked) is fallback  # the addresses are parsed only for the fallback


def test_no_contact_address():
    assert place("w", "ours", "i-1", [], lambda: [], "ours", {}) == Placement(True, "i-1", None)
