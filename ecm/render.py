"""Answers in, user-data out: PURE (no cloud, no prompts, no clock, no randomness).

:func:`render_worker` gives the worker user-data (``slave_files/<os>.sh.j2``; a Slurm
cluster's: ``ecm/templates/worker-slurm.sh.j2``) and
:func:`render_master` the master user-data (``ecm/templates/master.sh.j2``), which embeds
``/etc/elastiq/elastiq.yaml`` (:func:`elastiq_yaml`) holding the worker user-data base64-encoded.
:func:`master_user_data` gives the bytes to write: the script itself, or its gzip when it is
larger than the cloud accepts.

Quoting: the Jinja2 environment has StrictUndefined (a missing value is an error, never an empty
string) and every value reaching the shell goes through the ``shquote`` filter (:func:`shlex.quote`);
files with values (elastiq.yaml, the CA bundle) are written by quoted here-documents, so nothing in
an answer is ever expanded or executed.  :func:`validate` refuses control characters and here-doc
terminators in answers before anything is rendered.

Placeholders: elastiq fills ``%ipv4%`` (the master's address) and ``%token%`` (the worker's
IDTOKEN; Slurm: ``%munge_key%``, the cluster's munge key) into the worker user-data at launch,
from the ``substitute`` section the master writes into elastiq.yaml at boot.  That substitution works on text, so the worker user-data is never
gzip-compressed: it must fit as it is (:class:`UserDataTooLarge` otherwise).
"""
from __future__ import annotations

import base64
import functools
import gzip
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import jinja2
import yaml

# the answers and their checks, also as ``render.<name>`` for the callers of render
from .answers import (BATCH_SYSTEMS, CLUSTER_NAME, CLUSTER_NAME_RULE,  # noqa: F401
                      DEFAULT_HTCONDOR_REPO, DEFAULT_HTCONDOR_SERIES, HEREDOC_WORDS,
                      SLURM_OSES, Answers, RenderError, UserDataTooLarge, os_ids_for,
                      os_problem, validate)
from .oses import OPERATING_SYSTEMS

#: Raw user-data limit of EC2 (16 KiB): workers (launched through the EC2 API) always fit it.
USER_DATA_LIMIT = 16384
#: OpenStack Nova accepts 65535 bytes of base64, i.e. this many raw bytes: the master's limit
#: when it is booted on OpenStack (Horizon or the openstack CLI).
NOVA_USER_DATA_LIMIT = 49149
#: Worst-case growth of the worker user-data when elastiq substitutes %ipv4% and %token%.
SUBSTITUTION_ALLOWANCE = 1024
CA_BUNDLE_PATH = "/etc/elastiq/ca-bundle.pem"
STATE_DIR = "/var/lib/elastiq"

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Worker templates: ``slave_files/`` of a source checkout, or the same files installed as
#: the data package ``ecm/slave_files`` (pyproject.toml maps one onto the other).
_SOURCE_SLAVE_FILES = Path(__file__).resolve().parent.parent / "slave_files"
_PACKAGED_SLAVE_FILES = Path(__file__).resolve().parent / "slave_files"


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    """One environment for the process: jinja2 compiles each template once and caches it there
    (a fresh environment per render compiled the master and the worker template again each time)."""
    worker_dir = _SOURCE_SLAVE_FILES if _SOURCE_SLAVE_FILES.is_dir() else _PACKAGED_SLAVE_FILES
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(worker_dir), str(TEMPLATES)]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shquote"] = lambda value: shlex.quote(str(value))
    return env


def worker_template_name(os_id: str, batch: str = "htcondor") -> str:
    return f"{os_id}.sh.j2" if batch == "htcondor" else f"worker-{batch}.sh.j2"


def render_worker(a: Answers) -> str:
    """The worker user-data, still holding the ``%ipv4%`` and ``%token%`` (Slurm:
    ``%munge_key%``) placeholders."""
    validate(a)
    template = _environment().get_template(worker_template_name(a.os_id, a.batch))
    return template.render(a=a, os=OPERATING_SYSTEMS[a.os_id])


def worker_user_data_b64(a: Answers, limit: int = USER_DATA_LIMIT) -> str:
    """Base64 of the worker user-data, as ``ec2.user_data_b64`` wants it."""
    text = render_worker(a).encode("utf-8")
    if len(text) + SUBSTITUTION_ALLOWANCE > limit:
        raise UserDataTooLarge(
            "worker user-data", f"{len(text)} bytes (+{SUBSTITUTION_ALLOWANCE} for the token) "
            f"exceeds the {limit}-byte EC2 limit; it cannot be compressed because "
            "elastiq substitutes %ipv4% and %token% in its text: shorten the worker template")
    return base64.b64encode(text).decode("ascii")


def elastiq_config(a: Answers) -> dict:
    """The content of ``/etc/elastiq/elastiq.yaml`` as written by the wizard (the master appends
    the ``substitute`` section at boot, once it knows its address and has minted the token)."""
    validate(a)
    section = ec2_section(a) if a.cloud == "ec2" else openstack_section(a)
    elastiq = {
        "cluster_name": a.cluster_name,
        "n_jobs_per_vm": a.jobs_per_vm,
        "idle_timeout_max_s": a.idle_time_s,
        "batch_plugin": a.batch,
        "cloud_plugin": a.cloud,
        "state_dir": STATE_DIR,
    }
    if a.worker_join_limit_s is not None:
        elastiq["estimated_vm_deploy_time_s"] = a.worker_join_limit_s
    return {
        "elastiq": elastiq,
        "quota": {"min_vms": a.min_vms, "max_vms": a.max_vms},
        a.cloud: {key: value for key, value in section.items() if value is not None},
        **batch_section(a),
    }


def batch_section(a: Answers) -> dict:
    """The batch plugin's section, where it differs from the plugin's defaults: with a
    shared /home, HTCondor workers advertise the master's FILESYSTEM_DOMAIN (the cluster
    name), which elastiq must know before it has seen a worker."""
    if a.batch == "htcondor" and a.shared_home:
        return {"htcondor": {"filesystem_domain": a.cluster_name}}
    return {}


def ec2_section(a: Answers) -> dict:
    """The ``ec2`` section (embedded keys, or none: the instance role)."""
    ec2 = {
        "api_url": a.api_url,
        "region": a.region,
        "image_id": a.image_id,
        "flavour": a.flavours,
        "key_name": a.key_name,
        "security_groups": list(a.security_groups) or None,
        "subnet_id": a.subnet_id,
        "ca_bundle": CA_BUNDLE_PATH if a.ca_bundle_pem else None,
        "user_data_b64": worker_user_data_b64(a),
    }
    if a.embeds_credentials:
        ec2["aws_access_key_id"] = a.access_key
        ec2["aws_secret_access_key"] = a.secret_key
    return ec2


def openstack_section(a: Answers) -> dict:
    """The ``openstack`` section: the embedded application credential (``access_key`` is its
    id), else the clouds.yaml entry ``os_cloud`` the administrator provides on the master."""
    embeds = a.embeds_credentials
    return {
        "cloud": None if embeds else a.os_cloud,
        "auth_url": a.api_url if embeds else None,
        "region": a.region,
        "application_credential_id": a.access_key if embeds else None,
        "application_credential_secret": a.secret_key if embeds else None,
        "image": a.image_id,
        "flavour": a.flavours,
        "key_name": a.key_name,
        "security_groups": list(a.security_groups) or None,
        "networks": list(a.networks) or None,
        "ca_bundle": CA_BUNDLE_PATH if a.ca_bundle_pem else None,
        "user_data_b64": worker_user_data_b64(a),
    }


def slurm_cluster_name(a: Answers) -> str:
    """Slurm's ClusterName: the cluster name in lower case, ``.`` and ``-`` as ``_``."""
    return re.sub(r"[^a-z0-9_]", "_", a.cluster_name.lower())


def pip_spec(a: Answers) -> str:
    """What the master's pip installs: ``elastiq_source`` with the cloud's extra (``openstack``:
    openstacksdk), in each pinned shape of :mod:`ecm.source`."""
    spec = a.elastiq_source.strip()
    if a.cloud == "ec2":
        return spec
    extra = f"elastiq[{a.cloud}]"
    if spec.startswith("git+"):
        return f"{extra} @ {spec.split('#', 1)[0]}"
    return re.sub(r"^elastiq(?=\s*(==|@))", extra, spec)


def elastiq_yaml(a: Answers) -> str:
    text = yaml.safe_dump(elastiq_config(a), sort_keys=False, width=1 << 30)
    if any(line.strip() in HEREDOC_WORDS for line in text.splitlines()):
        raise RenderError("elastiq.yaml", "a value would end the here-document")
    return text


def render_master(a: Answers) -> str:
    validate(a)
    template = _environment().get_template("master.sh.j2")
    return template.render(a=a, os=OPERATING_SYSTEMS[a.os_id], elastiq_yaml=elastiq_yaml(a),
                           elastiq_source=pip_spec(a), slurm_cluster=slurm_cluster_name(a),
                           ca_bundle_path=CA_BUNDLE_PATH, state_dir=STATE_DIR)


_UNIT = re.compile(r"^# >>> elastiq unit (\S+)\n(.*?)^# <<< elastiq unit \1\n", re.S | re.M)


def units(script: str) -> Dict[str, str]:
    """The named steps of a rendered script (``lib.unit`` in the templates: HTCondor
    configuration, tokens, the installation of elastiq...), so that one can be run on its own
    with the variables the script sets before it."""
    return {m.group(1): m.group(2) for m in _UNIT.finditer(script)}


@dataclass(frozen=True)
class UserData:
    data: bytes
    compressed: bool
    text_size: int


def fit(text: str, what: str, limit: int = USER_DATA_LIMIT) -> UserData:
    """``text`` as it is when it fits ``limit``, else gzip-compressed (cloud-init unpacks it)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return UserData(raw, False, len(raw))
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    if len(packed) <= limit:
        return UserData(packed, True, len(raw))
    raise UserDataTooLarge(what, f"{len(raw)} bytes, {len(packed)} gzip-compressed: still more "
                           f"than the {limit}-byte limit of EC2 user-data (a large --ca-bundle?)")


def master_user_data(a: Answers, limit: int = USER_DATA_LIMIT) -> UserData:
    """The master user-data for a cloud accepting ``limit`` raw bytes (plain text when it fits,
    which is what a web console's upload or paste needs)."""
    return fit(render_master(a), "master user-data", limit)


def available_worker_templates() -> List[str]:
    env = _environment()
    return sorted(n[:-len(".sh.j2")] for n in env.list_templates() if n.endswith(".sh.j2")
                  and n[:-len(".sh.j2")] in OPERATING_SYSTEMS)
