"""The Slurm units of a rendered ``ecm --batch slurm`` master and worker user-data, run for real
against Debian 13's Slurm 24.11 in the provisioned root (tests/support/slurm_cluster.py):

* the master's munge key (ecm's secret for this cluster) is the key munged runs with;
* the master's slurm.conf is the one slurmctld runs with, but for the keys this sandbox must
  set (:data:`SANDBOX_KEYS`: ports, paths, no cgroups, root as SlurmUser);
* the worker's slurmd command line (its systemd drop-in) joins as a configless dynamic node
  named after its instance id, with the features elastiq finds it by, and elastiq's slurm
  adapter, built from the master's elastiq.yaml, sees it as the worker of that instance;
* the master's example jobs run: the one-core job, and the container job alone on a worker
  (rootful podman standing in for docker, run as the user whom the provisioned root lets use
  it, as the docker group would on a worker);
* the worker's unclaimed watch drains and powers off (a stub ``systemctl``) a node that ran no
  job for long, and only such a node.

Skipped with the reason where the Slurm root is missing (failed instead when
ELASTIQ_REQUIRE_SLURM=1), or podman in it for the container job (failed instead when
ELASTIQ_REQUIRE_REAL_POOL=1, as the docker-universe tests).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from typing import Optional

import pytest

from ecm import render
from elastiq import config as elastiq_config
from elastiq.adapters.slurm.batch import SlurmBatch
from tests.support import docker_pool
from tests.support.condor_daemons import MOUNTS, TEST_USER, in_root, wait_for
from tests.support.net import free_port
from tests.support.slurm_cluster import SlurmCluster, require_slurm
from tests.support.tools import skip_or_fail
from tests.test_ecm_render import answers

pytestmark = pytest.mark.daemons
CLUSTER, INSTANCE = "physics-c1", "i-0123456789abcdef0"
KEY = "munge-key-of-this-test-" + "x" * 40
#: slurm.conf keys this sandbox sets instead of the rendered ones (the rest is rendered):
#: several daemons on one host (ports, paths with %n), root as every daemon's user, no
#: cgroups (the real cgroup plugins run on the workers, under systemd), short timeouts.
SANDBOX_KEYS = ("SlurmctldHost", "SlurmctldPort", "SlurmUser", "SlurmdUser", "AuthInfo",
                "StateSaveLocation", "SlurmdSpoolDir", "SlurmdPidFile", "SlurmctldPidFile",
                "SlurmctldLogFile", "SlurmdLogFile", "SlurmctldDebug", "SlurmdDebug",
                "ProctrackType", "TaskPlugin", "JobAcctGatherType", "MailProg",
                "SchedulerParameters", "SlurmdTimeout", "MessageTimeout", "MinJobAge")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _values(conf: str) -> dict:
    """``key -> line`` of a slurm.conf (NodeName/Nodeset/PartitionName lines by their text)."""
    out = {}
    for line in conf.splitlines():
        if line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            out[line if key in ("NodeName", "Nodeset", "PartitionName") else key] = line
    return out


def run_unit(cluster: SlurmCluster, unit: str, **env: str) -> str:
    done = subprocess.run(in_root(cluster.root, ["bash", "-euc", unit], {"PATH": PATH, **env}),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


class Rendered:
    def __init__(self):
        self.a = answers("debian13", batch="slurm", cluster_name=CLUSTER, signing_key=KEY,
                         max_vms=2)
        self.master = render.units(render.render_master(self.a))
        self.worker = render.units(render.render_worker(self.a))


@pytest.fixture(scope="module")
def cluster():
    require_slurm()
    r = Rendered()
    c = SlurmCluster(name="ecm", worker_cpus=2, worker_memory_mb=2048,
                     extra=["SchedulerParameters=bf_interval=1"])
    try:
        d = c.directory
        run_unit(c, r.master["munge-key"], MUNGE_KEY=KEY, MUNGE_ETC=f"{d}/munge-etc",
                 MUNGE_OWNER="root:root")
        c.key = f"{d}/munge-etc/munge.key"
        rig = _read(f"{c.host_dir}/slurm.conf")
        run_unit(c, r.master["master-slurm-config"], SLURM_ETC=d, SLURM_STATE=f"{d}/state",
                 MASTER_IP="127.0.0.1", SLURM_CLUSTER=render.slurm_cluster_name(r.a),
                 WORKER_CPUS="2", WORKER_MEMORY_MB="2048", MAX_VMS="2")
        c.rendered = _read(f"{c.host_dir}/slurm.conf")
        ours = _values(rig)
        merged = [ours[key] if key in SANDBOX_KEYS and key in ours else line
                  for key, line in _values(c.rendered).items()]
        merged += [line for key, line in ours.items()
                   if key in SANDBOX_KEYS and key not in _values(c.rendered)]
        with open(f"{c.host_dir}/slurm.conf", "w", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in merged))
        with open(f"{c.host_dir}/cgroup.conf", "w", encoding="utf-8") as handle:
            handle.write("CgroupPlugin=disabled\n")
        c.rendered_units = r
        c.start_daemons()
        yield c
    finally:
        c.stop()


def test_the_munge_key_is_ecms_secret_and_readable_by_munge_only(cluster):
    key = f"{cluster.host_dir}/munge-etc/munge.key"
    assert _read(key) == KEY
    assert oct(os.stat(key).st_mode & 0o777) == "0o400"
    assert oct(os.stat(os.path.dirname(key)).st_mode & 0o777) == "0o700"
    assert KEY not in "".join(cluster.rendered_units.master.values()), \
        "the key is a variable of the answers block, never written into a unit"


def test_slurmctld_runs_the_rendered_slurm_conf(cluster):
    """Every key the sandbox did not have to set is the rendered one, and slurmctld says so."""
    rendered = _values(cluster.rendered)
    running = _values(_read(f"{cluster.host_dir}/slurm.conf"))
    kept = [k for k in rendered if k not in SANDBOX_KEYS]
    assert {k: running[k] for k in kept} == {k: rendered[k] for k in kept}
    assert {"SlurmctldParameters", "ClusterName", "MaxNodeCount", "SelectTypeParameters",
            "DefMemPerCPU"} <= set(kept)
    shown = cluster.run(["scontrol", "show", "config"], check=True).stdout
    assert re.search(r"^SlurmctldParameters\s*=\s*enable_configless", shown, re.M)
    assert re.search(r"^MaxNodeCount\s*=\s*6$", shown, re.M)
    assert re.search(r"^ClusterName\s*=\s*physics_c1$", shown, re.M)


def test_a_job_too_large_for_a_worker_is_refused_one_that_fits_is_accepted(cluster):
    refused = cluster.run(["sbatch", f"--chdir={cluster.job_dir}", "-c", "3", "--wrap", "true"],
                          user=TEST_USER)
    assert refused.returncode != 0 and "node configuration is not available" in refused.stderr
    job = cluster.sbatch(["-c", "2", "--mem=2048", "--hold", "--wrap", "true"])
    cluster.run(["scancel", str(job)], check=True)


def _worker_args(cluster: SlurmCluster) -> list:
    """slurmd's arguments from the worker's systemd drop-in (its ExecStart after the program
    and --systemd), with this sandbox's port for the node."""
    d = cluster.directory
    run_unit(cluster, cluster.rendered_units.worker["worker-slurmd"], SYSTEMD_DIR=f"{d}/systemd",
             CLUSTER_NAME=CLUSTER, INSTANCE_ID=INSTANCE, NODE_NAME=INSTANCE,
             MASTER_ADDRESS="127.0.0.1", MASTER_PORT=str(cluster.port), WORKER_IP="127.0.0.1")
    dropin = _read(f"{cluster.host_dir}/systemd/slurmd.service.d/elastiq.conf")
    starts = re.findall(r"^ExecStart=(.*)$", dropin, re.M)
    assert starts[0] == "" and len(starts) == 2, dropin
    argv = shlex.split(starts[1])
    assert argv[:2] == ["/usr/sbin/slurmd", "--systemd"]
    args = argv[2:]
    conf = args.index("--conf") + 1
    args[conf] += " Port={port}"
    return args


def test_the_worker_joins_configless_as_its_instance_and_elastiq_sees_it(cluster, tmp_path):
    args = _worker_args(cluster)
    assert args[:3] == ["-Z", "-N", INSTANCE]
    assert args[3:5] == ["--conf-server", f"127.0.0.1:{cluster.port}"]
    # configless: the node has no slurm.conf; munge's default socket is the cluster's
    mounts = (MOUNTS + ' && mount -t tmpfs tmpfs "$1/run" && mkdir -p "$1/run/munge" && '
              f'ln -s {cluster.directory}/munge/munge.socket "$1/run/munge/munge.socket.2"')
    node = cluster.start_node(INSTANCE, argv=args, mounts=mounts, wait=30)
    (seen,) = [n for n in cluster.json(["scontrol", "show", "node", "--json"])["nodes"]
               if n["name"] == INSTANCE]
    assert set(seen["features"]) == {"elastiq", f"elastiq-cluster-{CLUSTER}",
                                     f"elastiq-instance-{INSTANCE}"}
    # elastiq's configuration as the master writes it, with the sandbox's clients
    yaml_text = render.elastiq_yaml(cluster.rendered_units.a)
    path = tmp_path / "elastiq.yaml"
    path.write_text(yaml_text + f"substitute:\n  ipv4: 10.1.2.3\n  munge_key: {KEY}\n"
                    f"slurm:\n  bin_dir: {cluster.bin_dir}\n")
    cfg = elastiq_config.load(str(path))
    assert cfg.elastiq.batch_plugin == "slurm" and cfg.substitute["munge_key"] == KEY
    batch = SlurmBatch(cfg)
    workers = batch.workers_of([INSTANCE])
    assert workers[INSTANCE].name == INSTANCE and not workers[INSTANCE].draining
    job = cluster.sbatch(["--wrap", "echo ran on $SLURMD_NODENAME"])
    wait_for(lambda: cluster.jobs()[job]["job_state"] == ["COMPLETED"], 60, "the job done",
             explain=cluster.explain)
    assert _read(f"{cluster.host_dir}/jobs/slurm-{job}.out") == f"ran on {INSTANCE}\n"
    cluster.stop_node(node)  # its VM terminated: elastiq's actuator has Slurm forget it
    batch.forget([INSTANCE])
    assert INSTANCE not in cluster.node_names()


def test_the_container_example_runs_alone_on_a_worker_and_its_output_comes_back(cluster):
    skip_or_fail(docker_pool.unavailable(cluster.root), "ELASTIQ_REQUIRE_REAL_POOL",
                 "podman in the root (the docker pool's)")
    home = f"{cluster.directory}/home"
    os.makedirs(f"{cluster.root}{home}/jobs/output", exist_ok=True)
    run_unit(cluster, cluster.rendered_units.master["container-job"], JOB_HOME=home)
    for sub in ("", "/jobs", "/jobs/output"):
        os.chown(f"{cluster.root}{home}{sub}", *_ids(cluster, "condor"))
    cluster.start_node("w-container", cpus=2, memory_mb=2048, cluster=CLUSTER,
                       instance_id="i-container", wait=30, mounts=docker_pool.MOUNTS)
    other = cluster.sbatch(["-c", "1", "--wrap", "sleep 5"])
    # condor is the root's user allowed root's podman (sudo), as docker's group on a worker
    done = cluster.run(["sbatch", "--parsable", f"--chdir={home}/jobs",
                        f"--export=ALL,CONTAINER_CLI={docker_pool.PODMAN_DOCKER},"
                        f"IMAGE={docker_pool.IMAGE}", "container.sbatch",
                        "sh", "-c", "cat /etc/os-release; id -u; pwd; ls /work"], user="condor")
    assert done.returncode == 0, done.stderr
    job = int(done.stdout.strip())
    wait_for(lambda: cluster.jobs()[job]["job_state"][0] in ("COMPLETED", "FAILED"), 240,
             "the container job done", explain=cluster.explain)
    info = cluster.jobs()[job]
    out = _read(f"{cluster.root}{home}/jobs/output/container.{job}.out")
    assert info["job_state"] == ["COMPLETED"], out
    assert "trixie" in out and "container.sbatch" in out
    lines = out.splitlines()
    uid = lines.index(str(_ids(cluster, "condor")[0]))
    assert lines[uid + 1:] == ["/work", "container.sbatch", "output"], out
    # --exclusive: it ran alone; the one-core job waited for it or ran before it
    wait_for(lambda: cluster.jobs()[other]["job_state"] == ["COMPLETED"], 60, "the other job")
    first, second = sorted([cluster.jobs()[job], cluster.jobs()[other]],
                           key=lambda j: j["start_time"]["number"])
    assert first["end_time"]["number"] <= second["start_time"]["number"], \
        [(j["job_id"], j["job_state"], j["nodes"], j["start_time"], j["end_time"])
         for j in (first, second)]


def _ids(cluster: SlurmCluster, user: str):
    with open(f"{cluster.root}/etc/passwd", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
    raise AssertionError(f"no {user} in the root")


class UnclaimedWatch:
    """The worker's unclaimed watch (its unit run into the sandbox's paths) for node ``name``,
    run as its timer runs it, with ``systemctl`` a stub that records its arguments."""

    def __init__(self, cluster: SlurmCluster, name: str, noclaim_s: int = 600):
        self.cluster, self.noclaim_s = cluster, noclaim_s
        d = f"{cluster.directory}/unclaimed-{name}"
        for made in ("sbin", "systemd", "stub"):  # as on a worker, but for the stub
            os.makedirs(f"{cluster.root}{d}/{made}")
        run_unit(cluster, cluster.rendered_units.worker["worker-unclaimed-watch"], NODE_NAME=name,
                 NOCLAIM_SHUTDOWN_S=str(noclaim_s), WATCH_STATE_DIR=f"{d}/state",
                 ELASTIQ_ETC=f"{d}/etc", SBIN=f"{d}/sbin", SYSTEMD_DIR=f"{d}/systemd")
        self.directory, self.host = d, cluster.root + d
        with open(f"{self.host}/stub/systemctl", "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\necho "$*" >> {d}/systemctl-calls\n')
        os.chmod(f"{self.host}/stub/systemctl", 0o755)

    def run(self, conf: Optional[str] = None) -> None:
        env = dict(self.cluster.env(), PATH=f"{self.directory}/stub:{PATH}")
        if conf:
            env["SLURM_CONF"] = conf
        run_unit(self.cluster, f"{self.directory}/sbin/elastiq-unclaimed-watch", **env)

    @property
    def since(self) -> Optional[int]:
        try:
            return int(_read(f"{self.host}/state/unclaimed-since"))
        except FileNotFoundError:
            return None

    def unclaimed_long_ago(self) -> None:
        with open(f"{self.host}/state/unclaimed-since", "w", encoding="utf-8") as handle:
            handle.write(f"{int(time.time()) - self.noclaim_s - 1}\n")

    @property
    def calls(self) -> list:
        try:
            return _read(f"{self.host}/systemctl-calls").splitlines()
        except FileNotFoundError:
            return []


def _node(cluster: SlurmCluster, name: str) -> dict:
    (node,) = [n for n in cluster.json(["scontrol", "show", "node", "--json"])["nodes"]
               if n["name"] == name]
    return node


def test_a_worker_that_ran_no_job_for_long_drains_itself_and_powers_off(cluster):
    """The safety net of a worker elastiq does not release: no job for NOCLAIM_SHUTDOWN_S, it
    drains itself (no job can start while it goes) and powers off; a job keeps it up."""
    name = "w-unclaimed"
    cluster.start_node(name, cpus=2, memory_mb=2048, cluster=CLUSTER, instance_id="i-unclaimed",
                       wait=30)
    watch = UnclaimedWatch(cluster, name)
    job = cluster.sbatch(["-w", name, "--wrap", "sleep 300"])
    wait_for(lambda: cluster.jobs()[job]["job_state"] == ["RUNNING"], 60, "the job running",
             explain=cluster.explain)
    watch.unclaimed_long_ago()
    watch.run()
    assert watch.since is None and watch.calls == []  # a job runs: it stays, its clock reset
    assert "DRAIN" not in _node(cluster, name)["state"]
    cluster.run(["scancel", str(job)], check=True)

    def idle_seen():
        watch.run()
        return watch.since
    first = wait_for(idle_seen, 60, "the watch seeing the node idle", explain=cluster.explain)
    assert abs(first - time.time()) < 60 and watch.calls == []
    watch.run()
    assert watch.since == first and watch.calls == []  # idle, not yet for long
    watch.unclaimed_long_ago()
    watch.run()
    node = _node(cluster, name)
    assert "DRAIN" in node["state"] and "elastiq-worker: no job for 600 s" in node["reason"], node
    assert watch.calls == ["poweroff"]


def test_the_unclaimed_watch_powers_off_a_node_the_controller_does_not_know(cluster):
    """A worker whose slurmd never joined (or that Slurm forgot): nothing can run there."""
    watch = UnclaimedWatch(cluster, "w-never-joined")
    watch.run()
    assert watch.since is not None and watch.calls == []
    watch.unclaimed_long_ago()
    watch.run()
    assert watch.calls == ["poweroff"]


def test_the_unclaimed_watch_waits_when_scontrol_cannot_tell(cluster):
    """scontrol failing otherwise than with "Node ... not found" (here: missing) is no answer."""
    watch = UnclaimedWatch(cluster, "w-no-client")
    with open(f"{watch.host}/stub/scontrol", "w", encoding="utf-8") as handle:
        handle.write('#!/bin/sh\necho "scontrol: command not found; Node w-no-client not '
                     'found" >&2\nexit 127\n')
    os.chmod(f"{watch.host}/stub/scontrol", 0o755)
    watch.unclaimed_long_ago()
    before = watch.since
    watch.run()
    assert watch.since == before and watch.calls == []


def test_the_unclaimed_watch_waits_while_the_controller_does_not_answer(cluster):
    """Not knowing whether a job was just given to the node, it does nothing (the master watch
    powers off a worker whose master is gone for long)."""
    watch = UnclaimedWatch(cluster, "w-no-controller")
    conf = _read(f"{cluster.host_dir}/slurm.conf")
    silent = f"{cluster.directory}/unclaimed-w-no-controller/slurm.conf"
    with open(cluster.root + silent, "w", encoding="utf-8") as handle:
        handle.write(re.sub(r"^SlurmctldPort=.*$", f"SlurmctldPort={free_port()}", conf,
                            flags=re.M))
    watch.unclaimed_long_ago()
    before = watch.since
    watch.run(conf=silent)
    assert watch.since == before and watch.calls == []
