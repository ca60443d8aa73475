"""The state store: lossless codec, atomic writes, 0600, corrupt files moved aside."""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elastiq.core.memory_codec import dump_records, load_memory
from elastiq.model import InstanceRecord, Lifecycle, Memory
from elastiq.runtime.state import (Decision, Observation, State, StateStore, UnknownLaunch,
                                   VMView, decode, encode)

times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
opt_times = st.none() | times
names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=12)
records = st.builds(InstanceRecord, st.sampled_from(Lifecycle), times, times, opt_times,
                    st.none() | names, opt_times, opt_times, opt_times,
                    st.sampled_from([None, "idle", "consolidation"]))
memories = st.builds(Memory, opt_times, times, st.integers(0, 50))
observations = st.none() | st.builds(
    Observation, times, st.none() | st.integers(0, 10**6), st.none() | st.integers(0, 10**6),
    st.lists(st.builds(VMView, names, st.none() | names, st.none() | names, st.none() | names,
                       st.integers(0, 64)), max_size=4).map(tuple),
    st.lists(names, max_size=3).map(tuple))
states = st.builds(
    State, memories,
    st.lists(st.builds(Decision, times, names, st.text(max_size=40)), max_size=5).map(tuple),
    st.lists(times, max_size=5).map(tuple), st.lists(names, max_size=3).map(tuple),
    observations, names, times,
    st.lists(st.builds(UnknownLaunch, names, st.integers(1, 50), st.none() | names, times),
             max_size=2).map(tuple),
    records=st.dictionaries(names, records, max_size=6))


@settings(max_examples=150, deadline=None)
@given(states)
def test_codec_round_trips_through_json(state):
    assert decode(json.loads(json.dumps(encode(state)))) == state


def sample_state() -> State:
    memory = Memory(waiting_since=100.0, backoff_until=160.0, failures=2)
    return State(memory, (Decision(95.0, "launch", "launch 1: 3 jobs waiting"),), (30.0,),
                 ("i-2",), None, "test", 100.0, records={
                     "i-1": InstanceRecord(Lifecycle.JOINED, 50.0, 10.0, 40.0, "10-0-0-4", 99.0),
                     "i-2": InstanceRecord(Lifecycle.REQUESTED, 95.0, 95.0)})


def test_saved_file_is_0600_in_a_0700_directory_and_loads_back(tmp_path):
    store = StateStore(str(tmp_path / "new" / "dir"))
    store.save(sample_state())
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    assert store.load() == sample_state()
    assert os.listdir(store.directory) == ["state.json"]  # no temporary file left


def test_a_too_open_state_file_is_tightened(tmp_path, caplog):
    store = StateStore(str(tmp_path))
    store.save(sample_state())
    os.chmod(store.path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert store.load() == sample_state()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert "had mode 0644; tightening to 0600" in caplog.text


@pytest.mark.parametrize("content, why", [
    (b'{"format": 1, "memory": {"instan', "Unterminated string"),
    (b"\x00\x00\x00", "Expecting value"),
    (b'{"format": 1, "memory": {"instances": {"i-1": {"lifecycle": "zombie"}}}}',
     "memory.instances.i-1.lifecycle: unknown 'zombie'"),
    (b'{"format": 1, "memory": {"instances": {"i-1": {"lifecycle": "joined", "since": "x"}}}}',
     "memory.instances.i-1.since: expected a number"),
    (b'{"format": 2, "memory": {}, "records": {"i-1": {"lifecycle": "joined", "since": "x"}}}',
     "records.i-1.since: expected a number"),
    (b'{"format": 2, "memory": {}}', "records: missing"),
    (b'{"format": 7, "memory": {"instances": {}}}', "format: expected 2, got 7"),
    (b"[]", "top level: expected an object"),
])
def test_a_corrupt_state_file_is_moved_aside_with_a_warning(tmp_path, caplog, content, why):
    store = StateStore(str(tmp_path))
    with open(store.path, "wb") as handle:
        handle.write(content)
    with caplog.at_level(logging.WARNING):
        assert store.load() is None
    aside = [n for n in os.listdir(tmp_path) if n.startswith("state.json.corrupt-")]
    assert len(aside) == 1 and not os.path.exists(store.path)
    with open(tmp_path / aside[0], "rb") as handle:
        assert handle.read() == content  # kept for a post-mortem
    assert why in caplog.text and "tagged instances will be adopted" in caplog.text


def test_status_reads_without_moving_anything(tmp_path):
    store = StateStore(str(tmp_path))
    with open(store.path, "w") as handle:
        handle.write("{")
    with pytest.raises(ValueError):
        store.read()
    assert os.listdir(tmp_path) == ["state.json"]
    assert StateStore(str(tmp_path / "none")).read() is None


WRITER = textwrap.dedent("""
    import os, signal, sys
    from elastiq.model import InstanceRecord, Lifecycle, Memory
    from elastiq.runtime.state import State, StateStore
    store, kill_at, n, calls, renamed = StateStore(sys.argv[1]), int(sys.argv[2]), 0, 0, 0
    real = {name: getattr(os, name) for name in ("open", "fchmod", "write", "fsync", "close",
                                                 "replace")}

    def counted(name):
        def call(*args):
            global calls, renamed
            calls += 1
            if n > 3 and calls == kill_at:  # SIGKILLed right before this call of save n
                print(n, name, "yes" if renamed == n else "no", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            if name == "replace":
                renamed = n
            if name == "write":  # short writes: a kill may land between two parts of the file
                args = (args[0], args[1][:4096])
            return real[name](*args)
        return call

    for name in real:
        setattr(os, name, counted(name))
    while True:
        n += 1
        ids = {f"i-{k}": InstanceRecord(Lifecycle.BOOTING, n, n, None, "w" * 500) for k in range(n % 40)}
        store.save(State(Memory(), saved_at=float(n), records=ids))
        if n == 3:
            calls = 0
""")


def test_a_process_killed_while_saving_leaves_a_whole_state(tmp_path):
    """The writer kills itself right before one of the system calls of a save (the test picks
    which, seeded); the state is then the previous save, or this one once it was renamed."""
    rng = random.Random(8)
    landed = set()
    for kill_at in sorted(rng.sample(range(1, 120), 14)):
        proc = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), str(kill_at)],
                              capture_output=True, text=True, cwd=os.getcwd(), timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        n, call, renamed = proc.stdout.split()
        landed.add(call)
        state = StateStore(str(tmp_path)).load()  # never None: the old file or the new, whole
        assert state is not None
        assert len(state.records) == int(state.saved_at) % 40
        assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]  # cleaned by load
        # the previous save until the rename, this one after it
        assert state.saved_at == int(n) - (renamed == "no"), (n, call, renamed, state.saved_at)
    assert landed >= {"open", "write", "fsync", "close", "replace"}, landed


FORMAT_1 = os.path.join(os.path.dirname(__file__), "fixtures", "state", "format1-default.json")


def test_a_state_file_of_format_1_written_by_the_previous_elastiq_loads(tmp_path):
    """tests/fixtures/state/format1-default.json was saved by elastiq at 46d4eb8 (the records
    inside the default policy's memory) running its daemon road on a synthetic world: one VM
    drained for consolidation, one terminating, seven joined.  It loads whole, and the next
    save is of format 2 with the same records and memory."""
    with open(FORMAT_1) as handle:
        raw = json.load(handle)
    assert raw["format"] == 1 and "records" not in raw
    (tmp_path / "state.json").write_text(json.dumps(raw))
    store = StateStore(str(tmp_path))
    state = store.load()
    assert dump_records(state.records) == raw["memory"]["instances"]  # every field of every record
    assert state.records["i-sim000001"].drain == "consolidation"
    assert state.memory == load_memory({k: v for k, v in raw["memory"].items() if k != "instances"})
    assert (state.cluster, state.saved_at, len(state.join_times)) == ("physics", raw["saved_at"], 10)
    store.save(state)
    again = json.loads((tmp_path / "state.json").read_text())
    assert again["format"] == 2 and "instances" not in again["memory"]
    assert again["records"] == raw["memory"]["instances"] and store.load() == state
