"""The workload readers: SWF traces (gzip or plain) and the synthetic generator."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from elastiq.sim import workload as wl

HEADER = """\
; Version: 2.2
; Computer: Test cluster
; MaxProcs: 8
;
"""
#        id submit wait run alloc cpu  mem  req  reqtime reqmem st u g e q p pr th
ROWS = """\
    1     100     5   60   1    -1   2048   1   3600    -1    1 1 1 -1 1 1 -1 -1
    2     110     5   -1   1    -1     -1   1   3600    -1    5 1 1 -1 1 1 -1 -1
    3     120     5    0   1    -1     -1   1   3600    -1    0 1 1 -1 1 1 -1 -1
    4     130     5  300  -1    -1     -1   4   3600 409600    1 1 1 -1 1 1 -1 -1
    5     200     5   30   2    -1     -1  -1   3600    -1    1 1 1 -1 1 1 -1 -1
"""


def traces_dir():
    env = os.environ.get("ELASTIQ_TRACES")
    folder = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "traces"
    return folder if folder.is_dir() else None


@pytest.fixture(params=["plain", "gzip"])
def swf(tmp_path, request):
    text = HEADER + ROWS
    if request.param == "gzip":
        path = tmp_path / "t.swf.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = tmp_path / "t.swf"
        path.write_text(text)
    return str(path)


def test_swf_fields_header_and_quirks(swf):
    w = wl.read_swf(swf)
    assert w.name == "t"
    assert w.header["MaxProcs"] == "8" and w.header["Computer"] == "Test cluster"
    # job 2 (run time -1) skipped, job 3 (run time 0) kept as 1 s
    assert w.ids == ["1", "3", "4", "5"]
    assert w.skipped == {"unknown_runtime": 1, "zero_runtime_as_1s": 1, "unknown_submit": 0}
    assert w.submit == [0.0, 20.0, 30.0, 100.0]  # from the first replayed job
    assert w.origin_s == 100.0
    assert w.runtime == [60.0, 1.0, 300.0, 30.0]
    # allocated procs, else requested, else 1
    assert w.cpus == [1, 1, 4, 2]
    # used memory 2048 KB -> 2 MiB; requested 400 MiB/proc x 4; unknown -> 1024 MiB/proc
    assert w.memory_mb == [2, 1024, 1600, 2048]
    assert w.core_seconds() == 60 + 1 + 1200 + 60


def test_gzip_recognised_by_content_not_name(tmp_path):
    path = tmp_path / "trace.swf"  # gzip data, no .gz suffix
    path.write_bytes(gzip.compress((HEADER + ROWS).encode()))
    assert len(wl.read_swf(str(path))) == 4


def test_max_jobs_and_window(swf):
    assert wl.read_swf(swf, max_jobs=2).ids == ["1", "3"]
    w = wl.read_swf(swf, window=(115, 200))
    assert w.ids == ["3", "4"] and w.submit == [0.0, 10.0]
    assert wl.read_swf(swf, window=(None, 121)).ids == ["1", "3"]
    assert wl.read_swf(swf, window=(130, None), max_jobs=1).ids == ["4"]


def test_unsorted_trace_is_sorted(tmp_path):
    path = tmp_path / "u.swf"
    lines = ROWS.splitlines()
    path.write_text("\n".join([lines[4], lines[0]]) + "\n")
    w = wl.read_swf(str(path))
    assert w.ids == ["1", "5"] and w.submit == [0.0, 100.0] and w.cpus == [1, 2]


@pytest.mark.parametrize("content, message", [
    ("1 2 3\n", "t.swf:1: expected 18 SWF fields, got 3"),
    ("1 x 5 60 1 -1 1 1 1 -1 1 1 1 -1 1 1 -1 -1\n", r"t.swf:1: field 2 \(submit time\) is not a number"),
])
def test_bad_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "t.swf"
    path.write_text(content)
    with pytest.raises(wl.WorkloadError, match=message):
        wl.read_swf(str(path))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(wl.WorkloadError, match="nope.swf: cannot read"):
        wl.read_swf(str(tmp_path / "nope.swf"))
    broken = tmp_path / "broken.swf.gz"
    broken.write_bytes(gzip.compress((HEADER + ROWS).encode())[:40])
    with pytest.raises(wl.WorkloadError, match="broken.swf.gz: cannot read"):
        wl.read_swf(str(broken))


@pytest.mark.parametrize("text, expected", [
    ("10d:20d", (864000.0, 1728000.0)), (":6h", (None, 21600.0)), ("90m:", (5400.0, None)),
    ("100:250.5", (100.0, 250.5)),
])
def test_parse_window(text, expected):
    assert wl.parse_window(text) == expected


@pytest.mark.parametrize("text", ["10d", "5:2", "x:3", "1w:2w", "-1:5"])
def test_parse_window_rejects(text):
    with pytest.raises(ValueError):
        wl.parse_window(text)


def test_synthetic_is_deterministic_and_bursty():
    a, b, c = wl.synthetic(7), wl.synthetic(7), wl.synthetic(8)
    assert (a.submit, a.runtime, a.cpus) == (b.submit, b.runtime, b.cpus)
    assert a.submit != c.submit
    assert len(a) == 118 and a.submit[0] == 0.0 and a.submit == sorted(a.submit)
    gaps = [y - x for x, y in zip(a.submit, a.submit[1:])]
    assert max(gaps) > 7000  # the quiet stretch between the two bursts
    assert {1, 2, 4} == set(a.cpus)
    assert wl.truncate(a, 5).ids == a.ids[:5]


@pytest.mark.skipif(traces_dir() is None, reason="shared traces folder absent")
def test_real_trace_first_jobs():
    w = wl.read_swf(str(traces_dir() / "LPC-EGEE-2004-1.2-cln.swf.gz"), max_jobs=1000)
    assert len(w) == 1000 and w.header["MaxProcs"] == "140"
    assert set(w.cpus) == {1} and w.submit == sorted(w.submit) and w.submit[0] == 0.0
    assert min(w.runtime) >= 1
