"""A cluster booted for real from ecm's output (issue 26, items 4 to 6).

``ecm --yes --os debian13`` runs as a process inside the test network, with ec2rc.sh-style
variables naming the EC2/S3 endpoint on the bridge (moto, forwarded from the host's 127.0.0.1),
``--apt-mirror`` (the local apt repository) and ``--index-url`` (a local wheel index of
elastiq's dependencies for Debian 13's Python); its wheel is staged in moto's S3.  The test
runs the master instance with the written user-data through the EC2 API; the test cloud boots
it as a qemu VM (tests/support/vm_cloud.py).  Checked from outside, through the test cloud's
vendor-data agent (tests/support/vm_agent.py, test-only, not in the product's user-data):

* the master: cloud-init finished without error, HTCondor's collector and schedd run, elastiq
  runs as the hardened elastiq.service, ``elastiqctl status`` works;
* the master's job user submits the example vanilla job (1 of its 10) and a job that keeps a
  worker busy (sleep); elastiq launches 2 workers (MAX_VMS=2) through the EC2 API with the
  worker user-data, the test cloud boots them, they install HTCondor and docker.io from the apt
  repository and join with the worker token.  Meanwhile ``systemctl restart elastiq`` and
  ``elastiqctl restart`` keep elastiq's state (both workers known, no third launch).  Each
  worker's docker loads the test's image tarball (tests/support/vm_docker_image.py: nothing is
  pulled), then the example docker job is submitted; both example jobs complete, the docker one
  on the worker's docker engine;
* scale down: the worker that ran them goes idle and elastiq drains it (HTCondor's
  ``condor_drain`` on the master: the worker, whose host name no DNS knows, takes the drain
  through the admin capability it gave the collector) and terminates it (IDLE_TIME=60); the
  busy one is left alone;
* the safety nets: with elastiq stopped, the busy job removed, the last worker is unclaimed:
  HTCondor's STARTD_NOCLAIM_SHUTDOWN ends the startd, the condor_master runs the poweroff hook,
  the VM powers off, and the cloud shows the instance terminated (elastiq launches workers with
  InstanceInitiatedShutdownBehavior=terminate).  Its master watch had run on its timer and
  recorded the master as reachable (it powers off only when the master is gone, which this test
  does not do).  elastiq started again finds 0 workers and launches none.

Takes 20-35 min (TCG; do not run it beside other heavy work).  Times and memory are printed
(pytest -s).  Skipped with the reason when VMs cannot boot here, failed when
ELASTIQ_REQUIRE_VMS=1 (CI).  ELASTIQ_VM_HOLD_DIR keeps the VMs up when it fails
(tests/support/vm_session.py).
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ecm import render
from tests.support import vm_cloud, vm_network, vm_services
from tests.support.ecm_wheel import own_wheel
from tests.support.instance_startds import ec2_alive
from tests.support.vm_agent import Agent
from tests.support.vm_cloud import vms_possible  # noqa: F401 (fixture)
from tests.support.vm_docker_image import image_tarball
from tests.support.vm_session import (AS_JOB_USER, Clock, elastiq_serves, hold, key_values,
                                      master_diagnostics, master_ready, submit, wait,
                                      workers_docker)

pytestmark = [pytest.mark.daemons, pytest.mark.timeout(3600)]
ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "vmc-1"
IMAGE_NAME = "debian-13-genericcloud-amd64-20251201"
APT_PORT, WHEEL_PORT, CLOUD_PORT, FILES_PORT, AGENT_PORT = 8081, 8082, 8083, 8084, 8099
ECM_CONF = ("FLAVOR_VMS=t3.small\nMAX_VMS=2\nMIN_VMS=0\nJOBS_PER_VM=1\nIDLE_TIME=60\n"
            "KEY_NAME=vm-key\n")
#: Workers unclaimed this long power off (ecm --worker-noclaim-shutdown); longer than
#: IDLE_TIME, so that elastiq, not the safety net, removes an idle worker while it runs.
NOCLAIM_S = 180
DOCKER_IMAGE = "debian:stable-slim"  # the master's example docker job's image
KEEP_BUSY = ("cat > keep-busy.sub <<'EOF'\nuniverse = vanilla\nexecutable = /bin/sleep\n"
             "arguments = 3000\ntransfer_executable = false\nlog = log/keep-busy.log\n"
             "request_cpus = 1\nrequest_memory = 128MB\nqueue 1\nEOF\n")

#: On a worker, started before it goes unclaimed: HTCondor's master log and the safety nets'
#: journal lines copied to the kernel's log, so to the serial console, which the test cloud
#: keeps once the VM is gone (polls every 5 s miss the second between the startd's exit and the
#: power-off).
CONSOLE_WATCH = r"""
systemd-run --unit=elastiq-test-console sh -c '{ tail -n 0 -F /var/log/condor/MasterLog &
  journalctl -f -n 0 -t elastiq-worker -o cat & wait; } |
  while IFS= read -r line; do echo "elastiq-test: $line" > /dev/kmsg; done'
"""
#: On a worker: its clock and the master watch's record (key=value), the master's log's end.
WORKER_SAFETY_NETS = r"""
echo now=$(date +%s)
echo seen=$(cat /var/lib/elastiq-worker/master-last-seen 2>/dev/null)
tail -n 3 /var/log/condor/MasterLog
"""


def run_ecm(net, cloud_url: str, image: str, apt_url: str, index_url: str, folder: Path):
    """ecm as a user runs it (ec2rc.sh's variables), inside the test network."""
    (folder / "ecm.conf").write_text(ECM_CONF)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(folder), "LANG": "C.UTF-8",
           "EC2_URL": cloud_url, "S3_URL": cloud_url, "EC2_ACCESS_KEY": "testing",
           "EC2_SECRET_KEY": "testing-secret", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    argv = [sys.executable, str(ROOT / "ecm.py"), "--yes", "--os", "debian13", "--image", image,
            "--cluster-name", CLUSTER, "--embed-credentials", "--apt-mirror", apt_url,
            "--index-url", index_url, "--user-data-limit", str(vm_cloud.USER_DATA_LIMIT),
            "--elastiq-source", str(own_wheel().path),
            "--worker-noclaim-shutdown", str(NOCLAIM_S), "--worker-join-limit", "1800",
            "-o", "master.userdata"]
    done = subprocess.run(net.command(argv), cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return (folder / "master.userdata").read_bytes()


def test_ecm_cluster_boots_runs_the_example_jobs_on_workers_and_scales_back_to_zero(
        vms_possible, moto, tmp_path):
    clock = Clock()
    client = moto.client()
    image = client.register_image(Name=IMAGE_NAME, RootDeviceName="/dev/xvda",
                                  Architecture="x86_64", VirtualizationType="hvm")["ImageId"]
    client.create_key_pair(KeyName="vm-key")
    index = vm_services.wheel_index(vm_services.own_requirements()
                                    + [f"htcondor=={render.DEFAULT_HTCONDOR_SERIES}.*"])
    served = tmp_path / "served"
    served.mkdir()
    image_tarball(served / "image.tar", DOCKER_IMAGE)
    clock.mark("wheel index (cached under /var/lib/elastiq-ci) and docker image tarball ready")
    with vm_network.TestNetwork() as net:
        agent = Agent(net.gateway, AGENT_PORT)
        moto_port = int(moto.url.rsplit(":", 1)[1])
        with vm_services.NamespaceServer(net, APT_PORT, vm_services.directory_handler(
                vm_cloud.APT_REPO)) as apt, \
                vm_services.NamespaceServer(net, WHEEL_PORT, vm_services.directory_handler(
                    index.parent)) as wheels, \
                vm_services.NamespaceServer(net, FILES_PORT, vm_services.directory_handler(
                    served)) as files, \
                vm_services.Forwarder(net, CLOUD_PORT, moto_port) as endpoint, \
                vm_services.NamespaceServer(net, AGENT_PORT, agent.handler()), \
                vm_services.NamespaceServer(net, 80, vm_services.metadata_handler(
                    lambda address: cloud.instance_at(address)),
                    address=vm_network.METADATA_ADDRESS):
            clock.mark("servers up in the namespace")
            user_data = run_ecm(net, endpoint.url, image, apt.url, wheels.url + "/simple",
                                tmp_path)
            clock.mark("ecm wrote the master user-data")
            master = client.run_instances(
                ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small",
                KeyName="vm-key", UserData=user_data, TagSpecifications=[{
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": f"{CLUSTER}-master"}]}],
            )["Instances"][0]["InstanceId"]
            workers = ec2_alive(client, CLUSTER)

            def alive():
                states = workers()
                state = client.describe_instances(InstanceIds=[master])[
                    "Reservations"][0]["Instances"][0]["State"]["Name"]
                if state not in ("terminated", "shutting-down"):
                    states[master] = state == "running"
                return states

            with vm_cloud.VmCloud(net, alive, client, tmp_path / "vms", max_vms=3,
                                  memory_mb=768, vendor_data=agent.vendor_data) as cloud:
                def explain():
                    cloud.check()
                    consoles = "\n".join(f"--- console of {i}\n{vm.console_tail(40)}"
                                         for i, vm in cloud.vms.items())
                    return f"{consoles}\n--- master\n{master_diagnostics(agent, master)}"

                run = Run(agent, master, client, cloud, clock, explain)
                try:
                    wait(lambda: cloud.check() or master in cloud.booted, 60,
                         "master VM started", explain, 1)
                    clock.mark("master qemu started", cloud.booted[master])
                    clock.mark("master agent up", agent.wait_hello(master, 600, explain))
                    master_ready(agent, master, clock, explain)
                    elastiq_serves(agent, master, clock)
                    run.workers_run_the_example_jobs(f"{files.url}/image.tar")
                    run.elastiq_scales_down()
                    run.unclaimed_worker_powers_off()
                except BaseException:
                    hold(agent, cloud)
                    raise
                finally:  # printed (pytest -s, or a failure) and kept with the test's files
                    report = (f"times since the test started:\n{clock.report()}\n"
                              f"peak RSS of qemu (MB): {cloud.peak_rss_mb}\n")
                    (tmp_path / "times.txt").write_text(report)
                    print(report)


class Run:
    """The steps on the booted cluster, in order; what they learn (the workers) kept."""

    def __init__(self, agent, master, client, cloud, clock, explain):
        self.agent, self.master, self.client = agent, master, client
        self.cloud, self.clock, self.explain = cloud, clock, explain
        self.workers: list = []

    def on_master(self, script: str, timeout: float = 120):
        return self.agent.run(self.master, script, timeout)

    def alive(self) -> set:
        return set(ec2_alive(self.client, CLUSTER)())

    def workers_run_the_example_jobs(self, image_url: str):
        vanilla = submit(self.agent, self.master, "sed 's/^queue 10$/queue 1/' test.sub > "
                         "test-1.sub\nrunuser -u \"$JOB_USER\" -- condor_submit test-1.sub")
        self.keeper = submit(self.agent, self.master, KEEP_BUSY + "runuser -u \"$JOB_USER\" "
                             "-- condor_submit keep-busy.sub")
        self.clock.mark("vanilla job and busy job submitted")
        self.workers = sorted(wait(lambda: len(self.alive()) == 2 and self.alive(), 900,
                                   "2 workers launched by elastiq", self.explain, 5))
        self.clock.mark("elastiq launched 2 workers (RunInstances)")
        with ThreadPoolExecutor(len(self.workers)) as pool:
            loading = [pool.submit(self.docker_image_loaded, w, image_url)
                       for w in self.workers]
            self.restarts_keep_the_state()
            for done in loading:
                done.result()
        docker = submit(self.agent, self.master, "sed 's/^queue 10$/queue 1/' test-docker.sub "
                        "> test-docker-1.sub\nrunuser -u \"$JOB_USER\" -- condor_submit "
                        "test-docker-1.sub")
        self.clock.mark("docker job submitted (its image loaded on both workers)")
        joined = "condor_status -af ElastiqInstanceId"
        wait(lambda: set(self.workers) <= set(self.on_master(joined, 60)[1].split()), 1800,
             "both workers in the pool", self.explain, 10)
        self.clock.mark("both workers joined the pool (with their instance ids)")
        def docker_advertised():
            slots = self.on_master("condor_status -af ElastiqInstanceId HasDocker "
                                   "ElastiqDockerProblem", 60)[1]
            problems = [line for line in slots.splitlines() if "undefined" not in line.split()[2:]]
            assert not problems, f"a worker's docker check failed:\n{slots}"
            return {line.split()[0] for line in slots.splitlines() if " true " in line} \
                == set(self.workers)

        # a startd advertises HasDocker once `docker info` has answered it (its own test
        # container is off: DOCKER_PERFORM_TEST), which on a busy host may come an update after
        # the slot first shows up
        wait(docker_advertised, 600, "HasDocker advertised by both workers",
             lambda: f"{self.explain()}\n"
                     f"{workers_docker(self.agent, self.workers, self.cloud.stopped)}", 10)
        for worker in self.workers:
            log = self.agent.run(worker, "grep -n 'Up [0-9.]* seconds\\|joining' "
                                 "/var/log/cloud-init-output.log", 60)[1]
            print(f"worker {worker} cloud-init output (extract):\n{log}", flush=True)
        for cluster, what in ((vanilla, "vanilla"), (docker, "docker")):
            self.job_done(cluster, what)
        rc, out = self.on_master(f"{AS_JOB_USER}cat output/test.{vanilla}.0.out "
                                 f"output/test-docker.{docker}.0.out", 60)
        assert rc == 0 and "Done." in out and 'PRETTY_NAME="Debian GNU/Linux 13' in out, out

    def docker_image_loaded(self, worker: str, image_url: str):
        """The worker's docker (docker.io, installed by its user-data) loads the test's image
        tarball as soon as it runs (the test's stand-in for a registry: nothing is pulled)."""
        started = wait(lambda: self.cloud.check() or self.cloud.booted.get(worker), 120,
                       f"VM of {worker} started", self.explain, 1)
        self.clock.mark(f"worker {worker} qemu started", started)
        self.clock.mark(f"worker {worker} agent up",
                        self.agent.wait_hello(worker, 600, self.explain))
        wait(lambda: self.agent.run(worker, "systemctl is-active docker", 60)[0] == 0, 1800,
             f"docker active on {worker}", self.explain, 10)
        self.clock.mark(f"worker {worker} docker active")
        rc, out = self.agent.run(worker, f"curl -fsS -o /run/image.tar {image_url} && "
                                 "docker load -i /run/image.tar && rm /run/image.tar", 600)
        assert rc == 0 and f"Loaded image: {DOCKER_IMAGE}" in out, out
        self.clock.mark(f"worker {worker} docker image loaded")

    def restarts_keep_the_state(self):
        """systemctl restart elastiq and elastiqctl restart: elastiq comes back knowing the
        workers it launched (its state), and launches no more."""
        for restart in ("systemctl restart elastiq", "elastiqctl restart"):
            rc, out = self.on_master(f"{restart} && sleep 20 && systemctl is-active elastiq "
                                     "&& elastiqctl status", 240)
            assert rc == 0 and all(w in out for w in self.workers), f"{restart}:\n{out}"
        assert self.alive() <= set(self.workers)
        self.clock.mark("elastiq restarted twice, state kept")

    def job_done(self, cluster: str, what: str):
        def done():
            out = self.on_master(f"condor_history {cluster} -af ExitCode JobStatus", 60)[1]
            if out.split()[1:2] == ["4"]:
                return out.split()
            held = self.on_master(f"condor_q {cluster} -af JobStatus HoldReason", 60)[1]
            assert not held.startswith("5 "), f"{what} job held: {held}"
            return None

        exit_code = wait(done, 1800, f"{what} job done", self.explain, 10)[0]
        self.clock.mark(f"{what} job done")
        assert exit_code == "0", f"{what} job exit code {exit_code}"

    def keeper_host(self) -> str:
        out = self.on_master(f"condor_q {self.keeper} -af RemoteHost", 60)[1]
        hosts = [w for w in self.workers if w in out]
        assert len(hosts) == 1, f"the busy job runs on {out!r}, not one of {self.workers}"
        return hosts[0]

    def elastiq_scales_down(self):
        """The idle worker is drained and terminated by elastiq; the busy one is kept."""
        busy = self.keeper_host()
        idle = next(w for w in self.workers if w != busy)
        wait(lambda: self.cloud.check() or idle in self.cloud.stopped, 900,
             f"idle worker {idle} terminated", self.explain, 5)
        self.clock.mark("elastiq terminated the idle worker (its VM stopped)")
        journal = self.on_master("journalctl -u elastiq --no-pager -o cat | grep -i "
                                 "'drain\\|terminat'", 60)[1]
        print(f"elastiq's drains and terminations:\n{journal}", flush=True)
        assert f"({idle})" in journal and f"terminate {idle}" in journal, journal
        assert self.alive() == {busy} and busy not in self.cloud.powered_off
        self.last = busy

    def unclaimed_worker_powers_off(self):
        """elastiq stopped, the busy job removed: the worker powers itself off, unclaimed."""
        worker = self.last
        rc, out = self.agent.run(worker, CONSOLE_WATCH, 60)
        assert rc == 0, out
        rc, out = self.on_master(f"systemctl stop elastiq; systemctl is-active elastiq\n"
                                 f"{AS_JOB_USER}runuser -u \"$JOB_USER\" -- condor_rm "
                                 f"{self.keeper}", 120)
        assert "inactive" in out and "marked for removal" in out, out
        self.clock.mark("elastiq stopped, busy job removed")
        polls = []

        def powered_off():
            if worker in self.cloud.powered_off:
                return True
            try:
                polls.append(self.agent.run(worker, WORKER_SAFETY_NETS, 20)[1])
            except AssertionError:  # powering off
                pass
            return False

        wait(powered_off, NOCLAIM_S + 900, f"{worker} powered off", self.explain, 5)
        self.clock.mark("unclaimed worker powered itself off (back to 0 workers)",
                        self.cloud.powered_off[worker])
        console = self.cloud.console_tail(worker, 400)  # the shutdown itself is ~90 lines
        copied = [line for line in console.splitlines() if "elastiq-test: " in line]
        print(f"{worker}'s last poll:\n{polls[-1:]}\nconsole, copied lines:\n" + "\n".join(
            copied) + "\nconsole, end:\n" + "\n".join(console.splitlines()[-5:]), flush=True)
        watched = [key_values(poll) for poll in polls]
        # HTCondor ended by itself (the startd unclaimed for long) and ran the poweroff hook
        seen = console + "".join(polls)
        assert "EXITING BY EXECING /usr/local/sbin/elastiq-worker-poweroff" in seen and \
            "HTCondor exited after being unclaimed for long: powering off" in console, copied
        assert "reboot: Power down" in console, console
        assert any(w.get("seen") and int(w["now"]) - int(w["seen"]) < 330 for w in watched), \
            f"the master watch did not record the master every 5 min: {polls[-3:]}"
        state = self.client.describe_instances(InstanceIds=[worker])["Reservations"][0][
            "Instances"][0]["State"]["Name"]
        assert state == "terminated" and not self.alive(), state
        rc, out = self.on_master("systemctl start elastiq && sleep 30 && elastiqctl status", 180)
        assert rc == 0 and worker not in out and not self.alive(), out
        print(f"elastiqctl status, started again:\n{out}", flush=True)
