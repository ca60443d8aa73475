"""Docker-universe execute nodes in the real pool (tests/support/condor_pool.py), configured
from the rendered worker user-data.

Rootful podman inside the provisioned root stands in for the docker engine (docker's own engine
does not start in this sandbox): ``.ci/provision-docker.sh`` installs it, the image
``localhost/debian:trixie`` and ``/usr/local/bin/elastiq-docker``, the docker CLI for the condor
user (``sudo -n /usr/bin/podman``: root's podman, as the docker group reaches root's engine).
A docker startd runs in its own mount namespace with what podman needs
(``.ci/mount-container-root.sh``), nothing is mounted on the host.

The worker's docker configuration is taken from its rendered user-data: the ``DOCKER...``
lines of its HTCondor configuration, and the ``elastiq-docker-check`` script (here-document
``EOF_DOCKER_CHECK``), run before the startd as systemd's ExecStartPre runs it on a worker.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import List, Optional

from tests.support import condor_pool
from tests.support.condor_pool import ROOT, CondorPool, Startd, in_root

MOUNT_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "mount-container-root.sh"
MOUNTS = f"{shlex.quote(str(MOUNT_SCRIPT))} \"$1\""
MARKER = ".elastiq-docker-provisioned"
#: The docker CLI of the tests (the worker's DOCKER stands for docker's own CLI).
PODMAN_DOCKER = "/usr/local/bin/elastiq-docker"
IMAGE = "localhost/debian:trixie"
CHECK_TIMEOUT_S = 300


def unavailable(root: str = ROOT) -> Optional[str]:
    """Why no docker startd can run here, or None."""
    why = condor_pool.unavailable(root)
    if why is None and not os.path.exists(os.path.join(root, MARKER)):
        why = f"no podman in {root} (no {MARKER}): run .ci/provision-docker.sh as root"
    return why


def heredocs(script: str, word: str) -> List[str]:
    """The bodies of the here-documents of ``script`` ended by ``word``, in order."""
    return re.findall(rf"<<\s*'?{word}'?\n(.*?)^{word}$", script, re.S | re.M)


def docker_config(worker_user_data: str) -> List[str]:
    """The docker lines (``DOCKER... = ...``) of the worker's HTCondor configuration."""
    return re.findall(r"^DOCKER\w* *=.*$", worker_user_data, re.M)


def start_docker_startd(pool: CondorPool, name: str, worker_user_data: str,
                        docker: Optional[str] = PODMAN_DOCKER, check: bool = True,
                        wait: float = 120) -> Startd:
    """A startd with the worker's docker configuration (``docker``: DOCKER in its place), after
    the worker's docker check (``check``) wrote its verdict; returns once its slot is seen."""
    verdict = f"{pool.directory}/docker-verdict-{name}.conf"
    fragments = docker_config(worker_user_data) + ([f"DOCKER = {docker}"] if docker else [])
    startd = Startd(pool, name, 1, 1024, {}, fragments + [f"include ifexist : {verdict}"])
    startd.mounts = MOUNTS
    if check:
        (script,) = heredocs(worker_user_data, "EOF_DOCKER_CHECK")
        path = f"{startd.directory}/elastiq-docker-check"
        with open(pool.root + path, "w", encoding="utf-8") as handle:
            handle.write(script)
        os.chmod(pool.root + path, 0o755)
        env = {"CONDOR_CONFIG": startd.config, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        done = subprocess.run(in_root(pool.root, [path, verdict], env, mounts=MOUNTS),
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
        if done.returncode != 0:
            raise AssertionError(f"elastiq-docker-check exited {done.returncode}: {done.stderr}")
    pool.startds.append(startd)
    startd.start()
    pool.wait_for(lambda: startd.slots() or not startd.alive(), wait,
                  f"the slot of the docker startd {name}", logs=())
    if not startd.alive():
        raise AssertionError(f"docker startd {name} exited\n" + startd.tail(["MasterLog", "StartLog"]))
    return startd


def verdict(pool: CondorPool, name: str) -> str:
    """What the docker check of startd ``name`` wrote ('' when it did not run)."""
    try:
        with open(f"{pool.host_dir}/docker-verdict-{name}.conf", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""
