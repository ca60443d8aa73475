"""Answers in, user-data out: PURE (no cloud, no prompts, no clock, no randomness).

:func:`render_worker` gives the worker user-data (``slave_files/<os>.sh.j2``) and
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
IDTOKEN) into the worker user-data at launch, from the ``substitute`` section the master writes
into elastiq.yaml at boot.  That substitution works on text, so the worker user-data is never
gzip-compressed: it must fit as it is (:class:`UserDataTooLarge` otherwise).
"""
from __future__ import annotations

import base64
import functools
import gzip
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import jinja2
import yaml

from elastiq import __version__ as OWN_VERSION

from . import source
from .conf import MAXIMA
from .oses import OPERATING_SYSTEMS

#: Raw user-data limit of EC2 (16 KiB): workers (launched through the EC2 API) always fit it.
USER_DATA_LIMIT = 16384
#: OpenStack Nova accepts 65535 bytes of base64, i.e. this many raw bytes: the master's limit
#: when it is booted on OpenStack (Horizon or the openstack CLI).
NOVA_USER_DATA_LIMIT = 49149
#: Worst-case growth of the worker user-data when elastiq substitutes %ipv4% and %token%.
SUBSTITUTION_ALLOWANCE = 1024
DEFAULT_HTCONDOR_SERIES = "25.0"
DEFAULT_HTCONDOR_REPO = "https://htcss-downloads.chtc.wisc.edu/repo"
#: The master installs exactly this ecm's version (see :mod:`ecm.source` for the other shapes).
DEFAULT_ELASTIQ_SOURCE = f"elastiq=={OWN_VERSION}"
#: Upper bounds of the numbers (a typo like MAX_VMS=10^26 is refused, not rendered).
MAX_VMS_LIMIT = MAXIMA["MAX_VMS"]
JOBS_PER_VM_LIMIT = MAXIMA["JOBS_PER_VM"]
SECONDS_LIMIT = MAXIMA["IDLE_TIME"]
CA_BUNDLE_PATH = "/etc/elastiq/ca-bundle.pem"
STATE_DIR = "/var/lib/elastiq"

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Worker templates: ``slave_files/`` of a source checkout, or the same files installed as
#: the data package ``ecm/slave_files`` (pyproject.toml maps one onto the other).
_SOURCE_SLAVE_FILES = Path(__file__).resolve().parent.parent / "slave_files"
_PACKAGED_SLAVE_FILES = Path(__file__).resolve().parent / "slave_files"
_HEREDOC_WORDS = ("ELASTIQ_YAML", "ELASTIQ_CA_BUNDLE")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
CLUSTER_NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
SERIES = re.compile(r"[0-9]{1,3}\.(x|[0-9]{1,3})")


class RenderError(ValueError):
    """An answer that cannot be rendered safely; ``field`` names it (never its value if secret)."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


class UserDataTooLarge(RenderError):
    pass


@dataclass(frozen=True)
class Answers:
    """Everything the templates need.  ``access_key``/``secret_key`` set: credentials are embedded
    in the master's elastiq.yaml; None: the master relies on an instance role."""

    os_id: str
    image_id: str
    cluster_name: str
    flavour: str
    min_vms: int
    max_vms: int
    jobs_per_vm: int
    idle_time_s: int
    key_name: Optional[str]
    signing_key: str
    api_url: Optional[str] = None
    region: Optional[str] = None
    access_key: Optional[str] = None
    secret_key: Optional[str] = None
    htcondor_series: str = DEFAULT_HTCONDOR_SERIES
    htcondor_repo: str = DEFAULT_HTCONDOR_REPO
    elastiq_source: str = DEFAULT_ELASTIQ_SOURCE
    #: The version the master must end up with (its install step checks it).
    elastiq_version: str = OWN_VERSION
    #: Index the master's pip uses (None: pip's default there).
    pip_index_url: Optional[str] = None
    ca_bundle_pem: Optional[str] = None
    security_groups: Tuple[str, ...] = ()
    subnet_id: Optional[str] = None
    #: Worker powers off after this long without a claim (0: never); None: a default from IDLE_TIME.
    worker_noclaim_shutdown_s: Optional[int] = None
    #: Worker powers off when the master has been unreachable this long (0: never).
    master_lost_shutdown_s: int = 3600
    #: The cloud the workers boot on: "ec2", or "openstack" (workers advertise the Nova UUID).
    cloud: str = "ec2"

    @property
    def embeds_credentials(self) -> bool:
        return bool(self.access_key and self.secret_key)

    @property
    def noclaim_shutdown_s(self) -> int:
        if self.worker_noclaim_shutdown_s is not None:
            return self.worker_noclaim_shutdown_s
        return max(4 * self.idle_time_s, 4 * 3600)


_SECRET_FIELDS = {"signing_key", "access_key", "secret_key"}


def validate(a: Answers) -> None:
    """Raise :class:`RenderError` for an answer that is not safe or not sensible to render."""
    for f in fields(Answers):
        value = getattr(a, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, str) and f.name != "ca_bundle_pem" and _CONTROL.search(item):
                raise RenderError(f.name, "control characters (newlines, tabs...) are not allowed")
    if a.os_id not in OPERATING_SYSTEMS:
        raise RenderError("os_id", f"unknown operating system {a.os_id!r} "
                          f"(known: {', '.join(OPERATING_SYSTEMS)})")
    if not CLUSTER_NAME.fullmatch(a.cluster_name):
        raise RenderError("cluster_name", f"{CLUSTER_NAME_RULE} (got {a.cluster_name!r})")
    if not SERIES.fullmatch(a.htcondor_series):
        raise RenderError("htcondor_series", f"expected a series like 25.0 or 25.x "
                          f"(got {a.htcondor_series!r})")
    if not re.fullmatch(r"https?://[^\s'\"\\]+", a.htcondor_repo):
        raise RenderError("htcondor_repo", "expected an http(s) URL")
    for name in ("image_id", "flavour"):
        if not getattr(a, name).strip():
            raise RenderError(name, "must not be empty")
    if len(a.signing_key) < 32:
        raise RenderError("signing_key", "must be at least 32 characters")
    if not 0 <= a.min_vms <= a.max_vms or a.max_vms < 1:
        raise RenderError("max_vms", f"need 0 <= min_vms <= max_vms and max_vms >= 1 "
                          f"(got {a.min_vms}, {a.max_vms})")
    if a.max_vms > MAX_VMS_LIMIT:
        raise RenderError("max_vms", f"at most {MAX_VMS_LIMIT} (got {a.max_vms})")
    for name, top in (("jobs_per_vm", JOBS_PER_VM_LIMIT), ("idle_time_s", SECONDS_LIMIT),
                      ("master_lost_shutdown_s", SECONDS_LIMIT),
                      ("noclaim_shutdown_s", SECONDS_LIMIT)):
        top = 4 * top if name == "noclaim_shutdown_s" else top
        if not 0 <= getattr(a, name) <= top:
            raise RenderError(name, f"must be between 0 and {top} (got {getattr(a, name)})")
    unpinned = source.problem(a.elastiq_source, a.elastiq_version)
    if unpinned:
        raise RenderError("elastiq_source", unpinned)
    if a.pip_index_url is not None and not re.fullmatch(r"https?://[^\s'\"\\]+", a.pip_index_url):
        raise RenderError("pip_index_url", "expected an http(s) URL")
    if bool(a.access_key) != bool(a.secret_key):
        raise RenderError("access_key", "give both the access key and the secret key, or neither")
    if a.ca_bundle_pem is not None:
        pem = a.ca_bundle_pem
        if "-----BEGIN CERTIFICATE-----" not in pem or "\x00" in pem:
            raise RenderError("ca_bundle", "not a PEM file with at least one certificate")
        if any(line.strip() in _HEREDOC_WORDS for line in pem.splitlines()):
            raise RenderError("ca_bundle", "contains a line that would end the here-document")


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


def worker_template_name(os_id: str) -> str:
    return f"{os_id}.sh.j2"


def render_worker(a: Answers) -> str:
    """The worker user-data, still holding the ``%ipv4%`` and ``%token%`` placeholders."""
    validate(a)
    template = _environment().get_template(worker_template_name(a.os_id))
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
    ec2 = {
        "api_url": a.api_url,
        "region": a.region,
        "image_id": a.image_id,
        "flavour": a.flavour,
        "key_name": a.key_name,
        "security_groups": list(a.security_groups) or None,
        "subnet_id": a.subnet_id,
        "ca_bundle": CA_BUNDLE_PATH if a.ca_bundle_pem else None,
        "user_data_b64": worker_user_data_b64(a),
    }
    if a.embeds_credentials:
        ec2["aws_access_key_id"] = a.access_key
        ec2["aws_secret_access_key"] = a.secret_key
    return {
        "elastiq": {
            "cluster_name": a.cluster_name,
            "n_jobs_per_vm": a.jobs_per_vm,
            "idle_for_time_s": a.idle_time_s,
            "batch_plugin": "htcondor",
            "cloud_plugin": "ec2",
            "state_dir": STATE_DIR,
        },
        "quota": {"min_vms": a.min_vms, "max_vms": a.max_vms},
        "ec2": {key: value for key, value in ec2.items() if value is not None},
    }


def elastiq_yaml(a: Answers) -> str:
    text = yaml.safe_dump(elastiq_config(a), sort_keys=False, width=1 << 30)
    if any(line.strip() in _HEREDOC_WORDS for line in text.splitlines()):
        raise RenderError("elastiq.yaml", "a value would end the here-document")
    return text


def render_master(a: Answers) -> str:
    validate(a)
    template = _environment().get_template("master.sh.j2")
    return template.render(a=a, os=OPERATING_SYSTEMS[a.os_id], elastiq_yaml=elastiq_yaml(a),
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
