"""The HTCondor units of the rendered master and worker user-data, run on their own with bash
into a temporary directory: the configuration parses with HTCondor's own parser (the PyPI
bindings, in a child process) into the roles, security and attributes elastiq relies on, the
docker-universe part included; the worker's poweroff hook and master watch power off (a stub
``systemctl``) when they should and not before (the clock is a stub ``date``)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ecm import render
from tests.test_ecm_render import TOKEN, answers


def run_unit(script: str, name: str, env: dict, path: str = "/usr/bin:/bin") -> None:
    subprocess.run(["bash", "-euc", render.units(script)[name]], check=True,
                   env={"PATH": path, **env})


def params(config_dir: Path, names) -> dict:
    """``names`` as HTCondor's configuration parser sees the files of ``config_dir``."""
    main = config_dir.parent / "condor_config"
    main.write_text(f"LOCAL_CONFIG_DIR = {config_dir}\n")
    code = ("import json, sys, htcondor2\n"
            "print(json.dumps({k: htcondor2.param.get(k) for k in sys.argv[1:]}))")
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                         check=True, env={"CONDOR_CONFIG": str(main), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def test_worker_condor_unit_parses_with_docker_and_the_elastiq_attributes(tmp_path):
    (tmp_path / "config.d").mkdir()
    run_unit(render.render_worker(answers("ubuntu2404")), "worker-condor", {
        "MASTER_ADDRESS": "10.1.2.3", "CLUSTER_NAME": "physics-2024", "INSTANCE_ID": "i-0abc",
        "NOCLAIM_SHUTDOWN_S": "600", "WORKER_TOKEN": TOKEN, "CONDOR_ETC": str(tmp_path),
        "SBIN": "/usr/local/sbin"})
    got = params(tmp_path / "config.d", [
        "DAEMON_LIST", "CONDOR_HOST", "TRUST_DOMAIN", "STARTD_ATTRS", "ElastiqInstanceId",
        "ElastiqCluster", "SEC_DEFAULT_AUTHENTICATION_METHODS", "STARTD_NOCLAIM_SHUTDOWN",
        "MASTER.DAEMON_SHUTDOWN", "DEFAULT_MASTER_SHUTDOWN_SCRIPT", "DOCKER",
        "DOCKER_IMAGE_CACHE_SIZE", "DOCKER_PERFORM_TEST"])
    assert got["DAEMON_LIST"].split() == ["MASTER", "STARTD"]
    assert (got["CONDOR_HOST"], got["TRUST_DOMAIN"]) == ("10.1.2.3", "physics-2024")
    assert {"ElastiqInstanceId", "ElastiqCluster"} <= set(got["STARTD_ATTRS"].split())
    assert (got["ElastiqInstanceId"], got["ElastiqCluster"]) == ('"i-0abc"', '"physics-2024"')
    assert "CLAIMTOBE" not in got["SEC_DEFAULT_AUTHENTICATION_METHODS"]
    assert str(got["STARTD_NOCLAIM_SHUTDOWN"]) == "600"
    assert got["MASTER.DAEMON_SHUTDOWN"].endswith("> 600)")
    assert got["DEFAULT_MASTER_SHUTDOWN_SCRIPT"] == "/usr/local/sbin/elastiq-worker-poweroff"
    assert (got["DOCKER"], str(got["DOCKER_IMAGE_CACHE_SIZE"])) == ("/usr/bin/docker", "8")
    assert str(got["DOCKER_PERFORM_TEST"]).lower() == "false"  # elastiq-docker-check tests


def test_master_condor_unit_parses_into_central_manager_and_submit(tmp_path):
    (tmp_path / "config.d").mkdir()
    run_unit(render.render_master(answers("rocky9")), "master-condor-config", {
        "MASTER_IP": "10.1.2.3", "CLUSTER_NAME": "physics-2024", "CONDOR_ETC": str(tmp_path)})
    got = params(tmp_path / "config.d", ["DAEMON_LIST", "TRUST_DOMAIN", "UID_DOMAIN",
                                         "ALLOW_ADVERTISE_STARTD", "ALLOW_ADMINISTRATOR",
                                         "SEC_DEFAULT_AUTHENTICATION_METHODS"])
    assert {"COLLECTOR", "NEGOTIATOR", "SCHEDD"} <= set(got["DAEMON_LIST"].split())
    assert got["TRUST_DOMAIN"] == got["UID_DOMAIN"] == "physics-2024"
    assert "condor@physics-2024" in got["ALLOW_ADVERTISE_STARTD"]
    assert "elastiq@physics-2024" in got["ALLOW_ADMINISTRATOR"]
    assert "CLAIMTOBE" not in got["SEC_DEFAULT_AUTHENTICATION_METHODS"]


def stubs(directory: Path, now: int, condor_state: str = "active") -> Path:
    """``systemctl`` (records poweroff), ``logger`` and ``date`` (prints ``now``) stubs."""
    directory.mkdir(exist_ok=True)
    calls = directory / "calls"
    for name, body in (
            ("systemctl", f'echo "systemctl $*" >> {calls}\n'
                          f'[ "$1" = show ] && echo {condor_state}\nexit 0'),
            ("logger", f'echo "logger $*" >> {calls}'),
            ("date", f"echo {now}")):
        (directory / name).write_text(f"#!/bin/sh\n{body}\n")
        (directory / name).chmod(0o755)
    return calls


@pytest.mark.parametrize("state, powers_off", [("active", True), ("deactivating", False)])
def test_poweroff_hook_powers_off_only_when_htcondor_exits_by_itself(tmp_path, state, powers_off):
    run_unit(render.render_worker(answers("debian12")), "worker-poweroff",
             {"SBIN": str(tmp_path)})
    calls = stubs(tmp_path / "stub", 0, state)
    subprocess.run([str(tmp_path / "elastiq-worker-poweroff")], check=True,
                   env={"PATH": f"{tmp_path / 'stub'}:/usr/bin:/bin"})
    assert ("systemctl poweroff" in calls.read_text()) is powers_off


def test_master_watch_powers_off_after_its_limit_and_not_before(tmp_path):
    etc, state, systemd = tmp_path / "etc", tmp_path / "state", tmp_path / "systemd"
    systemd.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_unit(render.render_worker(answers("debian12", master_lost_shutdown_s=600)),
             "worker-master-watch", {
                 "MASTER_ADDRESS": "127.0.0.1", "MASTER_LOST_SHUTDOWN_S": "600",
                 "ELASTIQ_ETC": str(etc), "WATCH_STATE_DIR": str(state), "SBIN": str(tmp_path),
                 "SYSTEMD_DIR": str(systemd)})
    with open(etc / "worker.env", "a") as env_file:
        env_file.write(f"MASTER_PORT={port}\n")
    assert f"ExecStart={tmp_path}/elastiq-master-watch" in \
        (systemd / "elastiq-master-watch.service").read_text()

    def watch(now: int) -> str:
        calls = stubs(tmp_path / f"stub{now}", now)
        subprocess.run([str(tmp_path / "elastiq-master-watch")], check=True,
                       env={"PATH": f"{tmp_path / f'stub{now}'}:/usr/bin:/bin"})
        return calls.read_text() if calls.exists() else ""

    with socket.socket() as master:  # the master's collector port answers
        master.bind(("127.0.0.1", port))
        master.listen()
        assert watch(1000) == ""
    assert watch(1300) == ""           # unreachable since 1000: 300 s < 600 s
    assert watch(1599) == ""
    assert "systemctl poweroff" in watch(1600)
