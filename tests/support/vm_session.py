"""What a test does with the booted machines of its test cloud (issue 26): timing marks, waiting
with an explanation, the master's state and diagnostics through the test-only agent
(tests/support/vm_agent.py), and a debugging aid that keeps the machines up."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

#: What the master looks like from outside, one key=value a line.
MASTER_STATE = r"""
echo "cloudinit=$(cloud-init status 2>/dev/null | sed -n 's/^status: //p')"
echo "condor=$(systemctl is-active condor)"
echo "schedd=$(timeout 20 condor_status -schedd -af Name 2>/dev/null | head -n 1)"
echo "elastiq=$(systemctl is-active elastiq)"
"""
#: What a VM is busy with.
BUSY = "ps -eo pid,etimes,time,args --sort=-time | grep -v ' \\[' | head -n 8 | cut -c1-160"
#: What a worker's HTCondor logged of docker, and the verdict of its elastiq-docker-check.
WORKER_DOCKER = ("grep -ih docker /var/log/condor/*Log* 2>/dev/null | tail -n 15; "
                 "cat /etc/condor/config.d/99-elastiq-docker-check.conf")
#: Runs the rest of a script as the master's job user (uid 1000, as ecm's example jobs) in ~/jobs.
AS_JOB_USER = ("JOB_USER=$(getent passwd 1000 | cut -d: -f1)\n"
               "cd \"$(getent passwd \"$JOB_USER\" | cut -d: -f6)/jobs\"\n")


class Clock:
    """Times since the test started, by what happened (the first time of each)."""

    def __init__(self):
        self.start, self.marks = time.time(), {}

    def mark(self, what: str, at: float = None) -> float:
        return self.marks.setdefault(what, (at or time.time()) - self.start)

    def report(self) -> str:
        return "\n".join(f"  {t:7.1f} s  {what}" for what, t in self.marks.items())


def wait(check, timeout: float, what: str, explain, every: float = 5):
    """``check()``'s first true value, polled every ``every`` s; AssertionError with
    ``explain()`` after ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"no {what} within {timeout:.0f} s\n{explain()}")


def key_values(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def submit(agent, master: str, script: str) -> str:
    """``script`` (ending in condor_submit, run as the job user in ~/jobs): the cluster id."""
    rc, out = agent.run(master, AS_JOB_USER + script, 180)
    found = re.search(r"submitted to cluster (\d+)", out)
    assert rc == 0 and found, out
    return found.group(1)


def master_diagnostics(agent, master: str) -> str:
    """elastiq's journal, HTCondor's queue and pool on the master (when its agent answers)."""
    if master not in agent.hello:
        return "(the master's agent never started)"
    try:
        return agent.run(master, "journalctl -u elastiq -n 60 --no-pager; elastiqctl status; "
                         "timeout 30 condor_q -all; timeout 30 condor_status -any", 300)[1]
    except AssertionError as err:
        return f"(no diagnostics: {err})"


def workers_docker(agent, workers, stopped) -> str:
    """What each worker (its VM still running) logged of docker (WORKER_DOCKER)."""
    parts = []
    for worker in workers:
        try:
            out = "(its VM stopped)" if worker in stopped else \
                agent.run(worker, WORKER_DOCKER, 30)[1]
        except AssertionError as err:
            out = f"(no answer: {err})"
        parts.append(f"--- docker on {worker}\n{out}")
    return "\n".join(parts)


def master_ready(agent, master: str, clock: Clock, explain) -> None:
    """cloud-init finished the master's user-data with HTCondor and elastiq up."""
    seen, polls = [], []

    def ready():
        state = key_values(agent.run(master, MASTER_STATE, 300)[1])
        polls.append(state)
        if state != (seen or [None])[-1] or len(polls) % 8 == 0:
            seen.append(state)
            print(f"{time.time() - clock.start:7.1f} s  master: {state}\n"
                  f"{agent.run(master, BUSY, 120)[1]}", flush=True)
        if state.get("condor") == "active" and state.get("schedd"):
            clock.mark("master HTCondor up (collector lists the schedd)")
        if state.get("elastiq") == "active":
            clock.mark("master elastiq.service active")
        finished = state.get("cloudinit") not in ("running", "not started", "", None)
        if finished:
            errors = agent.run(master, "cloud-init status --long", 60)[1]
            if state.get("cloudinit") != "done" and "scripts_user" in errors:
                log = agent.run(master, "tail -n 60 /var/log/cloud-init-output.log", 60)[1]
                raise AssertionError(f"the master's user-data failed:\n{errors}\n{log}")
        return finished and state.get("elastiq") == "active"

    wait(ready, 1800, "master ready (cloud-init done, elastiq active)", explain, 15)
    clock.mark("master cloud-init done")
    rc, out = agent.run(master, "systemctl show -p User -p NoNewPrivileges -p ProtectSystem "
                        "elastiq.service", 60)
    assert rc == 0 and "User=elastiq" in out and "ProtectSystem=strict" in out, out


def elastiq_serves(agent, master: str, clock: Clock) -> None:
    """``elastiqctl status`` exits 0 (the daemon holds its pid file)."""
    outcome = {}

    def serves():
        outcome["status"] = agent.run(master, "elastiqctl status", 180)
        return outcome["status"][0] == 0

    wait(serves, 600, "elastiqctl status exit 0 on the master", lambda: (
        f"elastiqctl status: {outcome.get('status')}\n"
        f"{master_diagnostics(agent, master)}"), 15)
    clock.mark("master elastiqctl status exit 0")
    print(f"elastiqctl status on the master:\n{outcome['status'][1]}", flush=True)


def hold(agent, cloud) -> None:
    """Debugging aid: with ELASTIQ_VM_HOLD_DIR set, the VMs stay up when the test fails; a
    file ``<instance id>.<n>.sh`` put there runs on that VM (its output in ``<instance
    id>.<n>.out``) until a file ``release`` appears."""
    folder = os.environ.get("ELASTIQ_VM_HOLD_DIR")
    if not folder:
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vms").write_text("".join(f"{i} {a}\n" for i, a in cloud.addresses.items()))
    while not (folder / "release").exists():
        for script in sorted(folder.glob("*.sh")):
            instance_id = script.name.split(".", 1)[0]
            try:
                rc, out = agent.run(instance_id, script.read_text(), 900)
            except AssertionError as err:
                rc, out = -1, str(err)
            script.rename(script.with_suffix(".done"))
            script.with_suffix(".out").write_text(f"rc={rc}\n{out}")
        time.sleep(2)
