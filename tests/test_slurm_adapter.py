"""The slurm adapter on JSON captured from the real Slurm 24.11 daemons
(tests/fixtures/slurm/, made by its capture.py), and its command runner on real processes.
The adapter against the daemons themselves: tests/test_slurm_live.py."""
from __future__ import annotations

import json
import os
import stat

import pytest

from elastiq import config
from elastiq.adapters.base import AuthError, ConfigError, FatalError, TransientError
from elastiq.adapters.slurm.batch import SlurmBatch
from elastiq.adapters.slurm.cli import SlurmCommands
from elastiq.adapters.slurm.jobs import array_tasks, constraint_met, jobs_per_node, read_queue
from elastiq.adapters.slurm.nodes import gone, read_nodes

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "slurm")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)


PENDING, RUNNING, NODES = fixture("pending.json"), fixture("running.json"), fixture("nodes.json")
SUBMITTED = PENDING["jobs"][0]["submit_time"]["number"]


def by_id(jobs):
    return {j.id: j for j in jobs}


def test_pending_jobs_shapes_and_which_fit():
    idle, running, running_on, notes = read_queue(PENDING, (2, 2048), SUBMITTED + 10, ["main"])
    jobs = by_id(idle)
    fits = {i for i, j in jobs.items() if j.fits_worker}
    assert fits == {"1", "2", "3", "4", "5#0", "5#1", "7", "11_0", "11_1", "11_2"}
    assert (jobs["1"].cpus, jobs["1"].memory_mb) == (1, 256)
    assert (jobs["2"].cpus, jobs["2"].memory_mb) == (2, 2048)  # --exclusive: a whole worker
    assert (jobs["3"].cpus, jobs["3"].memory_mb) == (1, 1500)  # --mem
    assert (jobs["4"].cpus, jobs["4"].memory_mb) == (2, 600)  # -c2 --mem-per-cpu=300
    assert (jobs["5#0"].cpus, jobs["5#0"].memory_mb) == (2, 512)  # -N2 -c2: one Job per node
    assert jobs["1"].queued_since == SUBMITTED
    assert (jobs["11_2"].cpus, jobs["11_2"].memory_mb) == (1, 256)  # --array=0-3,8%3: 3 at once
    assert (running, running_on) == (0, frozenset())
    why = dict(notes)
    assert why["6"] == "is held"
    assert why["8"] == "is in partition other, not ours"
    assert why["9"] == "may not start yet (begin time)"
    assert why["10"].startswith("waits for its dependency afterok:6")


def test_every_partition_when_none_is_named_and_jobs_larger_than_a_worker():
    idle, _, _, notes = read_queue(PENDING, (1, 1024), SUBMITTED + 10)
    fits = {j.id for j in idle if j.fits_worker}
    assert fits == {"1", "2", "7", "8", "11_0", "11_1", "11_2"}  # 3: 1500 MiB, 4 and 5: 2 cpus
    assert "more than a worker has" in dict(notes)["3"]


def test_running_jobs_and_reasons_after_workers_joined():
    idle, running, running_on, notes = read_queue(RUNNING, (2, 2048), SUBMITTED + 10, ["main"])
    assert running == 4 and running_on == {"w1", "w2", "foreign"}
    assert {j.id for j in idle if j.fits_worker} == {"5#0", "5#1", "7", "11_0", "11_1", "11_2"}
    assert jobs_per_node(RUNNING) == {"w1": 2, "w2": 1, "foreign": 1}


def test_an_unknown_pending_reason_never_causes_a_launch():
    job = dict(RUNNING["jobs"][4], state_reason="AssocGrpCpuLimit")
    idle, _, _, notes = read_queue({"jobs": [job]}, (2, 2048), SUBMITTED + 10)
    assert not any(j.fits_worker for j in idle)
    assert "AssocGrpCpuLimit" in notes[0][1]


@pytest.mark.parametrize("tasks, limit, count", [
    ("", 0, 1), ("0-3,8%3", 3, 3), ("0-3,8", 0, 5), ("1-9:2", 0, 5), ("7", 0, 1)])
def test_array_tasks_that_may_run_at_once(tasks, limit, count):
    job = {"array_task_string": tasks, "array_max_tasks": {"set": True, "number": limit}}
    assert array_tasks(job) == count


@pytest.mark.parametrize("constraint, met", [
    ("", True), ("elastiq", True), ("gpu", False), ("elastiq&ssd", True), ("elastiq,gpu", False),
    ("gpu|ssd", True), ("[gpu|elastiq*2]", True)])
def test_constraints(constraint, met):
    assert constraint_met(constraint, frozenset({"elastiq", "ssd"})) is met


def test_our_nodes_with_their_instance_ids():
    workers, dead, malformed = read_nodes(NODES, "c1", jobs_per_node(RUNNING))
    assert (dead, malformed) == ([], 0)
    assert {w.name: w.instance_id for w in workers} == {
        "w1": "i-0aaa000000000001", "w2": "i-0aaa000000000002"}  # foreign: no cluster
    w1 = {w.name: w for w in workers}["w1"]
    assert (w1.cpus, w1.memory_mb, w1.free_cpus, w1.running_jobs) == (2, 2048, 0, 2)
    assert w1.busy and not w1.draining and w1.idle_since is None
    assert read_nodes(NODES, "another", {})[0] == []


def node(name="w1", **changes):
    entry = next(n for n in NODES["nodes"] if n["name"] == name)
    return dict(entry, **changes)


def test_idle_drained_and_gone_nodes():
    idle = node(state=["IDLE", "DRAIN", "DYNAMIC_NORM"], alloc_cpus=0, alloc_memory=0,
                reason="elastiq: idle for 60 s")
    workers, dead, _ = read_nodes({"nodes": [idle]}, "c1", {})
    assert dead == [] and workers[0].draining and not workers[0].busy
    assert workers[0].idle_since == idle["last_busy"]["number"] and workers[0].free_cpus == 2
    lost = dict(idle, state=["IDLE", "DRAIN", "NOT_RESPONDING", "DYNAMIC_NORM"])
    assert gone(lost) and read_nodes({"nodes": [lost]}, "c1", {})[:2] == ([], ["w1"])
    assert not gone(dict(lost, reason="admin: broken disk"))  # not drained by us
    assert not gone(dict(lost, state=["MIXED", "DRAIN", "NOT_RESPONDING"], alloc_cpus=1))
    assert not gone(dict(lost, state=["IDLE", "NOT_RESPONDING"]))  # not drained


def test_a_node_entry_without_a_name_makes_the_pool_partial():
    assert read_nodes({"nodes": [{"state": ["IDLE"]}, node()]}, "c1", {})[2] == 1


# ----------------------------------------------------------------------- real processes


def script(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_commands_translate_failures(tmp_path):
    script(tmp_path, "down", 'echo "squeue: error: Unable to contact slurm controller '
           '(connect failure)" >&2; exit 1\n')
    script(tmp_path, "refuses", 'echo "scontrol: error: Invalid node name specified" >&2; exit 1\n')
    script(tmp_path, "denied", 'echo "slurm_update error: Invalid user id" >&2; exit 1\n')
    script(tmp_path, "garbled", "echo '{not json'\n")
    script(tmp_path, "errors", 'echo \'{"errors": [{"description": "boom"}]}\'\n')
    script(tmp_path, "slow", "sleep 5\n")
    commands = SlurmCommands(str(tmp_path), timeout_s=0.5)
    with pytest.raises(TransientError, match="Unable to contact"):
        commands.run(["down"])
    with pytest.raises(FatalError, match="Invalid node name"):
        commands.run(["refuses"])
    assert commands.run(["refuses"], tolerate=("Invalid node name",)) is None
    with pytest.raises(AuthError, match="Invalid user id .*root or the SlurmUser"):
        commands.run(["denied"])
    with pytest.raises(TransientError, match="not JSON"):
        commands.json(["garbled"])
    with pytest.raises(TransientError, match="boom"):
        commands.json(["errors"])
    with pytest.raises(TransientError, match="no answer in 0.5 s"):
        commands.run(["slow"])
    with pytest.raises(ConfigError) as missing:
        commands.run(["absent"])
    assert missing.value.key == "slurm.bin_dir"


def recorded_cli(tmp_path, nodes):
    """squeue and scontrol answering with captured JSON; scontrol's other calls recorded."""
    (tmp_path / "running.json").write_text(json.dumps(RUNNING))
    (tmp_path / "nodes.json").write_text(json.dumps(nodes))
    script(tmp_path, "squeue", f'cat {tmp_path}/running.json\n')
    script(tmp_path, "scontrol", f'echo "$@" >> {tmp_path}/calls\n'
           f'[ "$1" = show ] && cat {tmp_path}/nodes.json\n'
           '[ "$3" = state=resume ] && '
           '{ echo "slurm_update error: Invalid node state specified" >&2; exit 1; }\n'
           'exit 0\n')
    cfg = config.from_dict({"elastiq": {"cluster_name": "c1", "batch_plugin": "slurm"},
                            "slurm": {"bin_dir": str(tmp_path), "partitions": ["main"]},
                            "vm": {"cpus": 2, "memory_mb": 2048}})
    return SlurmBatch(cfg, clock=lambda: SUBMITTED + 10)


def calls(tmp_path):
    return (tmp_path / "calls").read_text().splitlines()


def test_the_batch_port_through_the_commands(tmp_path):
    lost = node("w2", state=["IDLE", "DRAIN", "NOT_RESPONDING"], alloc_cpus=0,
                reason="elastiq: idle for 60 s")
    batch = recorded_cli(tmp_path, {"nodes": [node("w1"), lost, node("foreign")]})
    queue = batch.queue()
    assert queue.running == 4
    fits = {j.id for j in queue.idle if j.fits_worker}
    assert fits == {"5#0", "5#1", "7", "11_0", "11_1", "11_2"}
    pool = batch.pool()
    assert [w.name for w in pool.workers] == ["w1"] and not pool.partial
    assert calls(tmp_path)[-1] == "delete nodename=w2"
    assert set(batch.workers_of(["i-0aaa000000000001", "i-other"])) == {"i-0aaa000000000001"}
    assert batch.workers_of([]) == {}
    batch.drain("w1", "idle for 600 s")
    assert calls(tmp_path)[-1] == "update nodename=w1 state=drain reason=elastiq: idle for 600 s"
    batch.cancel_drain("w1")  # refused as not drained: idempotent
    assert calls(tmp_path)[-1] == "update nodename=w1 state=resume"
