"""Configuration files of the private OpenStack test cloud (see openstack_cloud.py).

Every service authenticates as the bootstrap admin, talks to the private MariaDB over its
unix socket and to RabbitMQ on loopback; nothing here is read from /etc except the packages'
paste files, which are copied next to the configuration.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PASSWORD = "elastiq-test-admin"
REGION = "RegionOne"
COMPUTE_HOST = "elastiq-fake-compute"


@dataclass
class Ports:
    keystone: int
    glance: int
    placement: int
    nova: int
    network: int
    rabbit: int
    rabbit_dist: int
    epmd: int


def url(port: int, path: str = "") -> str:
    return f"http://127.0.0.1:{port}{path}"


def db_url(root: Path, name: str) -> str:
    return f"mysql+pymysql://root@localhost/{name}?unix_socket={root / 'mysql' / 'mysqld.sock'}"


def _auth(ports: Ports) -> str:
    """The keystoneauth options of a section: the admin user of the bootstrap."""
    return "\n".join([
        "auth_type = password",
        f"auth_url = {url(ports.keystone, '/v3')}",
        "username = admin",
        f"password = {PASSWORD}",
        "project_name = admin",
        "user_domain_name = Default",
        "project_domain_name = Default",
        f"region_name = {REGION}",
    ])


def _authtoken(ports: Ports) -> str:
    return f"[keystone_authtoken]\nwww_authenticate_uri = {url(ports.keystone, '/v3')}\n" + _auth(ports)


def keystone(root: Path) -> str:
    return f"""[DEFAULT]
log_file = {root / 'log' / 'keystone.log'}
[database]
connection = {db_url(root, 'keystone')}
[token]
provider = fernet
[fernet_tokens]
key_repository = {root / 'keystone' / 'fernet-keys'}
[credential]
key_repository = {root / 'keystone' / 'credential-keys'}
"""


def glance(root: Path, ports: Ports) -> str:
    return f"""[DEFAULT]
log_file = {root / 'log' / 'glance-api.log'}
enabled_backends = fs:file
[database]
connection = {db_url(root, 'glance')}
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {root / 'glance' / 'images'}
[os_glance_staging_store]
filesystem_store_datadir = {root / 'glance' / 'staging'}
[os_glance_tasks_store]
filesystem_store_datadir = {root / 'glance' / 'tasks'}
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = {root / 'glance' / 'lock'}
{_authtoken(ports)}
"""


def placement(root: Path, ports: Ports) -> str:
    return f"""[DEFAULT]
log_file = {root / 'log' / 'placement-api.log'}
[api]
auth_strategy = keystone
[placement_database]
connection = {db_url(root, 'placement')}
{_authtoken(ports)}
"""


def nova(root: Path, ports: Ports, *, compute: bool) -> str:
    """nova.conf; the compute's has no database connection (nova-compute refuses DB access)."""
    databases = "" if compute else f"""[api_database]
connection = {db_url(root, 'nova_api')}
[database]
connection = {db_url(root, 'nova')}
"""
    return f"""[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:{ports.rabbit}/
state_path = {root / 'nova'}
instances_path = {root / 'nova' / 'instances'}
my_ip = 127.0.0.1
host = {COMPUTE_HOST}
compute_driver = fake.FakeDriver
{databases}[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {root / 'etc' / 'nova' / 'api-paste.ini'}
[quota]
instances = -1
cores = -1
ram = -1
[scheduler]
discover_hosts_in_cells_interval = -1
workers = 1
[conductor]
workers = 1
[oslo_concurrency]
lock_path = {root / 'nova' / 'lock'}
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0
[placement]
{_auth(ports)}
endpoint_override = {url(ports.placement)}
[glance]
{_auth(ports)}
endpoint_override = {url(ports.glance)}
[neutron]
{_auth(ports)}
endpoint_override = {url(ports.network)}
[cinder]
os_region_name = {REGION}
[service_user]
send_service_user_token = false
{_authtoken(ports)}
"""


def neutron(root: Path, ports: Ports) -> str:
    """ML2 without agents or mechanism drivers: networks, ports and security groups in the DB
    only. router and port_forwarding are loaded for their models (ports list them)."""
    return f"""[DEFAULT]
core_plugin = ml2
service_plugins = router,port_forwarding
auth_strategy = keystone
transport_url = rabbit://guest:guest@127.0.0.1:{ports.rabbit}/
bind_host = 127.0.0.1
bind_port = {ports.network}
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
state_path = {root / 'neutron'}
log_file = {root / 'log' / 'neutron-server.log'}
[database]
connection = {db_url(root, 'neutron')}
[oslo_concurrency]
lock_path = {root / 'neutron' / 'lock'}
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
{_authtoken(ports)}
"""


def clouds(ports: Ports, name: str = "elastiq-test") -> dict:
    """A clouds.yaml document (as a dict) for the admin of the test cloud."""
    return {"clouds": {name: {
        "auth": {"auth_url": url(ports.keystone, "/v3"), "username": "admin", "password": PASSWORD,
                 "project_name": "admin", "user_domain_name": "Default",
                 "project_domain_name": "Default"},
        "region_name": REGION, "identity_api_version": 3, "interface": "public",
    }}}
