"""The EC2 client's timestamp parser reads what botocore's own parser reads, to the second and
the zone, only faster for the ISO 8601 form EC2 answers with (the client built by
``make_client`` parses with it: tests/test_ec2_adapter.py reads launch times through it)."""
from __future__ import annotations

import pytest
from botocore.utils import parse_timestamp

from elastiq.adapters.ec2.client import timestamp


@pytest.mark.parametrize("text", [
    "2026-12-05T16:35:07.000Z", "2026-12-05T16:35:07Z", "2026-12-05T16:35:07.123456Z",
    "2026-12-05T16:35:07+02:00", "2026-12-05T16:35:07.5-05:30", "2026-12-05T16:35:07",
    "1796488013", "Sat, 05 Dec 2026 16:35:07 GMT",
])
def test_timestamps_read_as_botocore_reads_them(text):
    ours, theirs = timestamp(text), parse_timestamp(text)
    assert ours.timestamp() == theirs.timestamp()
    assert ours.utcoffset() == theirs.utcoffset()
