"""A real OpenStack Zed on 127.0.0.1 for tests: start, bootstrap, stop by pid.

Keystone, Glance, Placement and nova-api run under uwsgi (--http-socket, Connection: close);
nova-conductor, nova-scheduler and nova-compute (fake.FakeDriver, from python3-nova's
nova.cmd.compute.main: the nova-compute package pulls libvirt) and neutron-server (ML2, no
agents) as processes; RabbitMQ (with
its own epmd) and MariaDB are private instances. Each runs under setsid from Debian's
/usr/bin/python3 and packages, with its data under one temporary directory, and is stopped
by its process group (its pid). Installed by .ci/provision-openstack.sh.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support import openstack_config as cfg
from tests.support.net import free_port

MARKER = Path("/var/lib/elastiq-ci/openstack-zed-neutron.provisioned")
PY = "/usr/bin/python3"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
FLAVOR = "elastiq.tiny"
IMAGE = "elastiq-test-image"


def unavailable_reason() -> str | None:
    """Why the test cloud cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root: the OpenStack test cloud runs system services"
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        release = ""
    if "ID=debian" not in release or 'VERSION_ID="12"' not in release:
        return "not Debian 12: the OpenStack test cloud uses bookworm's Zed packages"
    if not MARKER.exists():
        return f"OpenStack not provisioned ({MARKER} missing): run .ci/provision-openstack.sh"
    return None


def wait_until(what: str, check, timeout: float, proc=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.3)


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class OpenStackCloud:
    """One private cloud under root (a temporary directory); start() then stop()."""

    def __init__(self, root: Path):
        self.root = root
        self.ports = cfg.Ports(*(free_port() for _ in range(8)))
        self.procs: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}

    # -- processes -------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.root / "log" / f"{name}.out", "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env={**ENV, **(env or {})}, cwd=self.root,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        (self.root / "pids").mkdir(exist_ok=True)
        (self.root / "pids" / name).write_text(f"{proc.pid}\n")
        return proc

    def run(self, name: str, argv: list[str], timeout: float = 300):
        """A one-shot command; its output goes to log/<name>.out, failure raises with its tail."""
        out = self.root / "log" / f"{name}.out"
        with open(out, "ab") as log:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=ENV, cwd=self.root, timeout=timeout).returncode
        if rc:
            tail = out.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv[:3])} exited with {rc}: {tail}")

    def stop(self):
        """SIGTERM every process group we started (newest first), SIGKILL what remains."""
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group may outlive its leader (uwsgi workers, erlang children)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    # -- start-up --------------------------------------------------------------------------
    def _step(self, name: str, started: float):
        self.timings[name] = round(time.monotonic() - started, 1)

    def start(self) -> dict:
        """Start and bootstrap everything; return the clouds.yaml document of its admin."""
        t0 = time.monotonic()
        for sub in ("log", "etc/nova", "etc/glance", "etc/placement", "etc/keystone", "mysql",
                    "etc/neutron", "rabbit", "keystone", "glance", "nova/instances", "neutron"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._write_configs()
        self._start_rabbit()
        self._start_mariadb()
        self._step("rabbitmq+mariadb", t0)
        self._sync_databases()
        self._step("db sync", t0)
        self._start_keystone()
        self._step("keystone", t0)
        self._start_apis()
        self._step("apis", t0)
        self._start_nova_services()
        self._step("nova services", t0)
        return cfg.clouds(self.ports)

    def _write_configs(self):
        etc = self.root / "etc"
        (etc / "keystone" / "keystone.conf").write_text(cfg.keystone(self.root))
        (etc / "glance" / "glance-api.conf").write_text(cfg.glance(self.root, self.ports))
        shutil.copy("/etc/glance/glance-api-paste.ini", etc / "glance")
        (etc / "placement" / "placement.conf").write_text(cfg.placement(self.root, self.ports))
        (etc / "nova" / "nova.conf").write_text(cfg.nova(self.root, self.ports, compute=False))
        (etc / "nova" / "compute.conf").write_text(cfg.nova(self.root, self.ports, compute=True))
        shutil.copy("/etc/nova/api-paste.ini", etc / "nova")
        (etc / "neutron" / "neutron.conf").write_text(cfg.neutron(self.root, self.ports))

    def _start_rabbit(self):
        base = self.root / "rabbit"
        (base / "enabled_plugins").write_text("[].\n")
        (base / "env.conf").write_text("")
        p = self.ports
        self.spawn("epmd", ["/usr/bin/epmd", "-address", "127.0.0.1", "-port", str(p.epmd)])
        env = {"HOME": str(base), "ERL_EPMD_PORT": str(p.epmd), "ERL_EPMD_ADDRESS": "127.0.0.1",
               "RABBITMQ_NODENAME": "elastiq@localhost", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
               "RABBITMQ_NODE_PORT": str(p.rabbit), "RABBITMQ_DIST_PORT": str(p.rabbit_dist),
               "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
               "RABBITMQ_CONF_ENV_FILE": str(base / "env.conf"),
               "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
               "RABBITMQ_PID_FILE": str(base / "rabbit.pid")}
        self.spawn("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env)

    def _start_mariadb(self):
        data, sock = self.root / "mysql" / "data", self.root / "mysql" / "mysqld.sock"
        self.run("mariadb-install-db", [
            "/usr/bin/mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
            "--auth-root-authentication-method=normal", "--skip-test-db"])
        proc = self.spawn("mariadb", [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}",
            "--skip-networking", "--user=root", f"--pid-file={self.root / 'mysql' / 'pid'}",
            "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0",
            "--max-connections=500", f"--log-error={self.root / 'log' / 'mariadb.err'}"])
        sql = ";".join(f"CREATE DATABASE {db}" for db in
                       ("keystone", "glance", "placement", "nova_api", "nova", "nova_cell0",
                        "neutron"))
        wait_until("mariadb", lambda: subprocess.run(
            ["/usr/bin/mariadb", f"--socket={sock}", "-uroot", "-e", sql],
            capture_output=True, env=ENV).returncode == 0, 60, proc)
        wait_until("rabbitmq", lambda: port_open(self.ports.rabbit), 90, self.procs["rabbitmq"])

    def _sync_databases(self):
        """Schema of every service; the four run side by side (nova's steps in order)."""
        etc, db = self.root / "etc", lambda name: cfg.db_url(self.root, name)
        nova = ["/usr/bin/nova-manage", "--config-file", str(etc / "nova" / "nova.conf")]
        script = " && ".join([
            " ".join(nova + ["api_db", "sync"]),
            " ".join(nova + ["cell_v2", "map_cell0", f"--database_connection '{db('nova_cell0')}'"]),
            " ".join(nova + ["cell_v2", "create_cell", "--name", "cell1"]),
            " ".join(nova + ["db", "sync"])])
        jobs = {
            "keystone-db": ["/usr/bin/keystone-manage", "--config-file",
                            str(etc / "keystone" / "keystone.conf"), "db_sync"],
            "glance-db": ["/usr/bin/glance-manage", "--config-file",
                          str(etc / "glance" / "glance-api.conf"), "db_sync"],
            "placement-db": ["/usr/bin/placement-manage", "--config-file",
                             str(etc / "placement" / "placement.conf"), "db", "sync"],
            "neutron-db": ["/usr/bin/neutron-db-manage", "--config-file",
                           str(etc / "neutron" / "neutron.conf"), "upgrade", "heads"],
            "nova-db": ["/bin/sh", "-c", script]}
        running = {name: self.spawn(name, argv) for name, argv in jobs.items()}
        for name, proc in running.items():
            if proc.wait(timeout=600):
                tail = (self.root / "log" / f"{name}.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}: {tail}")
            del self.procs[name]

    def _uwsgi(self, name: str, port: int, wsgi: str, env: dict, processes: int = 1):
        argv = ["/usr/bin/uwsgi", "--plugins", "python3", "--http-socket", f"127.0.0.1:{port}",
                "--wsgi-file", wsgi, "--master", "--die-on-term", "--lazy-apps",
                "--enable-threads", "--processes", str(processes), "--threads", "1",
                "--buffer-size", "65535", "--add-header", "Connection: close",
                "--logto", str(self.root / "log" / f"{name}.uwsgi.log")]
        return self.spawn(name, argv, env)

    def _start_keystone(self):
        conf = str(self.root / "etc" / "keystone" / "keystone.conf")
        keystone = ["/usr/bin/keystone-manage", "--config-file", conf]
        for what in ("fernet_setup", "credential_setup"):
            self.run(f"keystone-{what}", keystone + [what, "--keystone-user", "root",
                                                       "--keystone-group", "root"])
        self.run("keystone-bootstrap", keystone + [
            "bootstrap", "--bootstrap-password", cfg.PASSWORD,
            "--bootstrap-admin-url", cfg.url(self.ports.keystone, "/v3"),
            "--bootstrap-public-url", cfg.url(self.ports.keystone, "/v3"),
            "--bootstrap-internal-url", cfg.url(self.ports.keystone, "/v3"),
            "--bootstrap-region-id", cfg.REGION])
        proc = self._uwsgi("keystone", self.ports.keystone, "/usr/bin/keystone-wsgi-public",
                           {"OS_KEYSTONE_CONFIG_DIR": str(self.root / "etc" / "keystone"),
                            "OS_KEYSTONE_CONFIG_FILES": "keystone.conf"}, processes=2)
        wait_until("keystone", lambda: self._http_ok(self.ports.keystone, "/v3"), 60, proc)

    @staticmethod
    def _http_ok(port: int, path: str) -> bool:
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(cfg.url(port, path), timeout=5) as answer:
                return answer.status < 500
        except urllib.error.HTTPError as error:  # e.g. glance's 300 version list
            return error.code < 500

    def _start_apis(self):
        etc = self.root / "etc"
        self.spawn("neutron-server", ["/usr/bin/neutron-server", "--config-file",
                                      str(etc / "neutron" / "neutron.conf")])
        self._uwsgi("glance-api", self.ports.glance, "/usr/bin/glance-wsgi-api",
                    {"OS_GLANCE_CONFIG_DIR": str(etc / "glance")})
        self._uwsgi("placement-api", self.ports.placement, "/usr/bin/placement-api",
                    {"OS_PLACEMENT_CONFIG_DIR": str(etc / "placement")})
        self._uwsgi("nova-api", self.ports.nova, "/usr/bin/nova-api-wsgi",
                    {"OS_NOVA_CONFIG_DIR": str(etc / "nova")}, processes=2)
        self._register_catalog()
        for name, port in (("glance-api", self.ports.glance), ("placement-api", self.ports.placement),
                           ("nova-api", self.ports.nova), ("neutron-server", self.ports.network)):
            wait_until(name, lambda: self._http_ok(port, "/"), 120, self.procs[name])
        self._warm_up_neutron()

    def _warm_up_neutron(self):
        """List networks once: Zed's neutron answers 500 to the first port list of a process
        (Port.port_forwardings is a backref that exists only once the ORM mappers are
        configured, which the first query does); a network list configures them."""
        import openstack
        conn = openstack.connect(**cfg.clouds(self.ports)["clouds"]["elastiq-test"])
        try:
            assert list(conn.network.networks()) == []
            assert list(conn.network.ports()) == []
        finally:
            conn.close()

    def _register_catalog(self):
        import openstack
        conn = openstack.connect(**cfg.clouds(self.ports)["clouds"]["elastiq-test"])
        p = self.ports
        for name, kind, endpoint in (("glance", "image", cfg.url(p.glance)),
                                     ("placement", "placement", cfg.url(p.placement)),
                                     ("nova", "compute", cfg.url(p.nova, "/v2.1")),
                                     ("neutron", "network", cfg.url(p.network))):
            service = conn.identity.create_service(name=name, type=kind)
            for interface in ("public", "internal"):
                conn.identity.create_endpoint(service_id=service.id, interface=interface,
                                              url=endpoint, region_id=cfg.REGION)
        conn.close()

    def _start_nova_services(self):
        etc = self.root / "etc" / "nova"
        conf = ["--config-file", str(etc / "nova.conf")]
        self.spawn("nova-conductor", ["/usr/bin/nova-conductor", *conf])
        self.spawn("nova-scheduler", ["/usr/bin/nova-scheduler", *conf])
        self.spawn("nova-compute", [PY, "-c", "import sys; from nova.cmd.compute import main; "
                                    "sys.argv[0] = 'nova-compute'; main()",
                                    "--config-file", str(etc / "compute.conf")])
        discover = self.root / "log" / "discover_hosts.out"

        def discovered() -> bool:  # output to a file: a closed pipe aborts it before mapping
            self.run("discover_hosts", ["/usr/bin/nova-manage", *conf, "cell_v2",
                                        "discover_hosts", "--verbose"], timeout=120)
            return cfg.COMPUTE_HOST in discover.read_text()
        wait_until("nova-compute host mapping", discovered, 180, self.procs["nova-compute"])

    # -- contents --------------------------------------------------------------------------
    def seed(self, conn):
        """The flavour and the (tiny, fake) image the tests boot."""
        conn.compute.create_flavor(name=FLAVOR, ram=64, vcpus=1, disk=1)
        # allow_duplicates: a new cloud has no image to find first (the SDK's look-up would use
        # find_image's deprecated ignore_missing=True)
        image = conn.image.create_image(name=IMAGE, disk_format="raw", container_format="bare",
                                        data=b"\0" * 1024, visibility="public",
                                        allow_duplicates=True)
        conn.image.wait_for_status(image, "active", wait=60)
