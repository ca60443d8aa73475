"""End to end: the real `elastiq run` process against a moto EC2 server and a simulated pool,
SIGKILLed at many points of scale-up and scale-down, and restarted each time.

Checked throughout and at the end:
- the cloud never holds more alive instances of the cluster than ``max_vms`` (a watcher thread
  lists them every few milliseconds while the daemons run);
- no tagged instance is forgotten: after every restart, each instance alive before it is in
  the new daemon's state once it has ticked (adopted or known), or was terminated by it;
- no instance whose worker had a claimed slot is ever terminated;
- the daemon never dies by itself, and the last one stops on SIGTERM with exit 0.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from elastiq.runtime.state import StateStore
from tests.support.e2e_pool import claimed_ids, tagged_instances, worker_name

pytestmark = pytest.mark.local  # processes: see tests/conftest.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_VMS = 4
KILLS = 12
SEED = 20240611
WAIT_S = 60


class Watcher(threading.Thread):
    """Lists the cluster's instances over and over; remembers the most ever alive at once."""

    def __init__(self, client, cluster):
        super().__init__(daemon=True)
        self.client, self.cluster = client, cluster
        self.peak, self.samples = 0, 0
        self.done = threading.Event()

    def alive(self):
        return {i["InstanceId"]: i["State"]["Name"]
                for i in tagged_instances(self.client, self.cluster)
                if i["State"]["Name"] not in ("terminated", "shutting-down")}

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, len(self.alive()))
            self.samples += 1
            self.done.wait(0.01)


def terminated(client, cluster):
    return {i["InstanceId"]
            for i in tagged_instances(client, cluster, ("shutting-down", "terminated"))}


@pytest.fixture
def cloud(moto):
    """The session's moto EC2 server (tests/support/ec2_fixtures.py), emptied."""
    return moto


def write_files(tmp_path, server, control):
    client = server.client()
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    client.create_key_pair(KeyName="e2e")
    cfg = {
        "elastiq": {
            "cluster_name": "e2e", "state_dir": str(tmp_path / "state"),
            "log_file": str(tmp_path / "elastiq.log"), "log_level": "DEBUG",
            "check_queue_every_s": 0.2, "list_vms_every_s": 0.3,
            "recheck_after_action_s": 0.2, "waiting_jobs_time_s": 0.3, "idle_timeout_max_s": 1.0,
            "estimated_vm_deploy_time_s": 30, "n_jobs_per_vm": 1, "launch_backoff_s": 0.5,
            "launch_backoff_max_s": 2, "batch_plugin": "tests.support.e2e_pool:E2EPool",
        },
        "quota": {"min_vms": 0, "max_vms": MAX_VMS},
        "ec2": {"api_url": server.url, "region": "us-east-1", "image_id": image,
                "flavour": "t3.micro", "key_name": "e2e",
                "aws_access_key_id": "AKIAE2ETESTKEY000001",
                "aws_secret_access_key": "e2e-secret-key-not-real-0000000000000"},
        "vm": {"cpus": 1, "memory_mb": 2048},
    }
    (tmp_path / "pool").mkdir()
    set_control(tmp_path, control)
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def set_control(tmp_path, control):
    tmp = tmp_path / "pool" / "control.json.tmp"
    tmp.write_text(json.dumps(control))
    os.replace(tmp, tmp_path / "pool" / "control.json")


def spawn(path, tmp_path, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT, E2E_POOL_DIR=str(tmp_path / "pool"))
    return subprocess.Popen([sys.executable, "-m", "elastiq", "run", "--config", path, *extra],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def live_status(path, tmp_path):
    """`elastiq status --live --json`: the saved state next to the cloud's listing."""
    done = subprocess.run([sys.executable, "-m", "elastiq", "status", "--config", path, "--live",
                           "--json"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 3, done.stderr  # no daemon runs
    return json.loads(done.stdout)


@contextlib.contextmanager
def daemon(path, tmp_path, *extra):
    """`elastiq run` in the background; killed on the way out if the test left it running."""
    proc = spawn(path, tmp_path, *extra)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def stop_when_empty(proc, watcher, store=None):
    """Let the daemon terminate every VM (min_vms is 0) and, with ``store``, see them gone in
    its listing (its saved state then owns none: the records of VMs it terminated are dropped
    at the listing after), then SIGTERM it; its stderr."""
    deadline = time.monotonic() + WAIT_S
    while watcher.alive() or (store is not None and store.read().records):
        assert proc.poll() is None, f"the daemon died: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, "the idle workers were never terminated"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=WAIT_S)[1].decode()


def wait_first_tick(proc, store, since):
    """Until the new daemon has saved a state after ``since`` (it reconciled and ticked)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        assert proc.poll() is None, f"the daemon died: {proc.stderr.read().decode()}"
        state = store.read()
        if state is not None and state.saved_at > since:
            return state
        assert time.monotonic() < deadline, "the daemon did not tick"
        time.sleep(0.01)


def claims_of_run(tmp_path):
    """The instances the pool reported claimed since the last call (and start afresh)."""
    claims = set(claimed_ids(str(tmp_path / "pool")))
    log = tmp_path / "pool" / "claims.log"
    if log.exists():
        log.unlink()
    return claims


#: Where to kill: right after the daemon logs one of these decisions (the kill then lands
#: before, during or just after the cloud or pool call), or right after its n-th state save
#: (n seeded).  Each run picks the point its phase will reach from the world as it is: a
#: launch needs room under max_vms, a cancelled drain a draining worker, a drain an accepting
#: worker, a termination any worker; every kill must land on its point (no fallback, no sleep).
UP_POINTS = ("launch ", "cancel drain", "save")
DOWN_POINTS = ("drain ", "terminate ", "save")


def reachable(phase, want, tmp_path, alive_ips):
    """The point of this run: ``want`` if the phase reaches it from the world as it is (the
    cloud's alive instances, the pool's draining workers), else the next one that it does."""
    path = tmp_path / "pool" / "drains.json"
    drains = set(json.loads(path.read_text())) if path.exists() else set()
    names = {worker_name(ip) for ip in alive_ips}
    can = {"launch ": len(names) < MAX_VMS, "cancel drain": bool(names & drains),
           "drain ": bool(names - drains), "terminate ": bool(names), "save": True}
    points = UP_POINTS if phase == "up" else DOWN_POINTS
    start = points.index(want)
    return next(p for p in points[start:] + points[:start] if can[p])


def wait_for_line(proc, log_path, offset, text, timeout):
    """Until the log written after ``offset`` has a line with ``text``; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the daemon died: {proc.stderr.read().decode()}"
        if os.path.exists(log_path):
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                handle.seek(offset)
                if any(f"INFO    elastiq.runtime.actuator: {text}" in line for line in handle):
                    return True
        time.sleep(0.005)
    return False


def wait_until(proc, condition):
    """Until ``condition()`` holds, while the daemon lives."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert proc.poll() is None, f"the daemon died: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def wait_for_saves(proc, store, count, timeout):
    """Until the daemon has saved its state ``count`` more times; False on timeout."""
    deadline = time.monotonic() + timeout
    last = store.read().saved_at
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the daemon died: {proc.stderr.read().decode()}"
        state = store.read()
        if state.saved_at != last:
            last, count = state.saved_at, count - 1
            if not count:
                return True
        time.sleep(0.002)
    return False


def test_sigkill_at_many_points_loses_nothing_and_respects_the_limits(tmp_path, cloud):
    rng = random.Random(SEED)
    control = {"idle_jobs": 6, "join_after_s": 0.4, "claim_one_in": 2}
    path = write_files(tmp_path, cloud, control)
    client = cloud.client()
    store = StateStore(str(tmp_path / "state"))
    log_path = tmp_path / "elastiq.log"
    watcher = Watcher(client, "e2e")
    watcher.start()
    kills = []
    claimed_ever = set()
    try:
        for run in range(KILLS + 1):
            # jobs waiting with some workers busy, then no jobs at all, and so on; the load
            # only changes while no daemon runs, so each run sees one phase
            phase = "up" if run % 2 == 0 and run < KILLS else "down"
            control.update(idle_jobs=6 if phase == "up" else 0, claim_one_in=2 if phase == "up" else 0)
            set_control(tmp_path, control)
            before, gone_before = watcher.alive(), terminated(client, "e2e")
            offset = log_path.stat().st_size if log_path.exists() else 0
            started = time.time()
            ips = [i.get("PrivateIpAddress") or i["InstanceId"]
                   for i in tagged_instances(client, "e2e", ("pending", "running"))]
            point = reachable(phase, (UP_POINTS if phase == "up" else DOWN_POINTS)[(run // 2) % 3],
                              tmp_path, ips)
            with daemon(path, tmp_path) as proc:
                state = wait_first_tick(proc, store, started)
                gone_now = terminated(client, "e2e")
                forgotten = [i for i in before if i not in state.records and i not in gone_now]
                assert forgotten == [], f"run {run}: tagged instances not in the state: {forgotten}"
                if run < KILLS:
                    if point == "save":
                        reached = wait_for_saves(proc, store, rng.randint(1, 4), 10.0)
                    else:
                        reached = wait_for_line(proc, log_path, offset, point, 10.0)
                    assert reached, f"run {run} ({phase}) never reached its kill point {point!r}"
                    proc.send_signal(signal.SIGKILL)
                    kills.append((phase, point))
                    proc.wait(WAIT_S)
                else:  # the last one: let it shrink the cluster, then stop it the polite way
                    err = stop_when_empty(proc, watcher, store)
            claimed = claims_of_run(tmp_path)
            claimed_ever |= claimed
            killed_by_run = terminated(client, "e2e") - gone_before
            assert not claimed & killed_by_run, f"run {run} terminated busy workers"
        assert proc.returncode == 0, err
    finally:
        watcher.done.set()
        watcher.join()

    assert watcher.peak <= MAX_VMS and watcher.samples > 100
    assert watcher.peak == MAX_VMS  # the limit was reached, and held
    assert store.read().records == {}
    # every run but the last was killed at its point, in both directions; busy workers existed
    assert [phase for phase, _ in kills] == ["up", "down"] * (KILLS // 2), kills
    # which decision points a phase can reach depends on where the previous kill landed (a
    # run whose workers all drain already cannot be killed at a drain): at least the launch
    # and the termination, the two that change the cloud, are always among them
    assert {point for _, point in kills} >= {"launch ", "terminate "}, kills
    print(f"\nkill -9: {len(kills)} kills {kills}; orphans 0, peak {watcher.peak}/{MAX_VMS} in "
          f"{watcher.samples} samples, busy workers terminated 0 ({len(claimed_ever)} were busy), "
          f"{len(terminated(client, 'e2e'))} terminated")
    assert len(terminated(client, "e2e")) > MAX_VMS and claimed_ever
    log = log_path.read_text()
    assert "AKIAE2ETESTKEY000001" not in log and "e2e-secret-key-not-real" not in log


def test_sigterm_during_an_action_finishes_it_saves_and_exits_0(tmp_path, cloud):
    control = {"idle_jobs": 0, "join_after_s": 0, "claim_one_in": 0, "drain_gate": True}
    path = write_files(tmp_path, cloud, control)
    client = cloud.client()
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "owner").write_text("e2e0wner\n")  # this daemon's owner id
    client.run_instances(ImageId=image, MinCount=2, MaxCount=2, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "elastiq:cluster", "Value": "e2e"},
                                             {"Key": "elastiq:owner", "Value": "e2e0wner"}]}])
    ours = sorted(Watcher(client, "e2e").alive())
    before = live_status(path, tmp_path)
    assert (before["state"], before["untracked"]) == (False, ours)  # orphans, until adopted
    log_path = tmp_path / "elastiq.log"
    with daemon(path, tmp_path) as proc:
        pool = tmp_path / "pool"
        wait_until(proc, lambda: (pool / "drain.entered").exists())  # in the first of two drains
        proc.send_signal(signal.SIGTERM)
        wait_until(proc, lambda: "SIGTERM received" in log_path.read_text())
        assert not (pool / "drains.json").exists()  # the drain is still under way
        (pool / "drain.open").touch()
        _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err.decode()
    log = log_path.read_text()
    assert "adopted 2 tagged instance(s) not in the saved state" in log
    assert "SIGTERM received: finishing the current action, then stopping" in log
    assert "shutting down: 1 planned action(s) abandoned" in log
    assert len(json.loads((tmp_path / "pool" / "drains.json").read_text())) == 1  # finished
    assert sorted(StateStore(str(tmp_path / "state")).read().records) == ours
    after = live_status(path, tmp_path)
    assert after["untracked"] == [] and sorted(i["instance_id"] for i in after["live"]) == ours

    control["drain_gate"] = False  # a new daemon carries on where this one stopped
    set_control(tmp_path, control)
    with daemon(path, tmp_path) as proc:
        err = stop_when_empty(proc, Watcher(client, "e2e"))
    assert proc.returncode == 0, err


def test_dry_run_logs_the_launch_and_launches_nothing(tmp_path, cloud):
    path = write_files(tmp_path, cloud, {"idle_jobs": 3, "join_after_s": 0, "claim_one_in": 0})
    proc = spawn(path, tmp_path, "--dry-run", "--once", "--set", "elastiq.waiting_jobs_time_s=0",
                 "--set", "vm.cpus=", "--set", "vm.memory_mb=")  # the shape comes from the cloud
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err.decode()
    log = (tmp_path / "elastiq.log").read_text()
    assert "worker VM shape of flavour t3.micro: 2 cpu(s), 1024 MiB" in log
    assert "dry run, would launch 3: 3 jobs waiting 0 s >= 0 s, 0/4 VMs" in log
    assert Watcher(cloud.client(), "e2e").alive() == {}
    assert cloud.calls("RunInstances") == 0
