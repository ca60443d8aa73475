"""The answers of the wizard (:class:`Answers`) and what makes them safe to render
(:func:`validate`): no control characters or here-document terminators, sensible bounds, a
pinned elastiq source."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Optional, Tuple

from elastiq import __version__ as OWN_VERSION

from . import source
from .conf import MAXIMA
from .oses import OPERATING_SYSTEMS

DEFAULT_HTCONDOR_SERIES = "25.0"
DEFAULT_HTCONDOR_REPO = "https://htcss-downloads.chtc.wisc.edu/repo"
#: The master installs exactly this ecm's version (see :mod:`ecm.source` for the other shapes).
DEFAULT_ELASTIQ_SOURCE = f"elastiq=={OWN_VERSION}"
#: Upper bounds of the numbers (a typo like MAX_VMS=10^26 is refused, not rendered).
MAX_VMS_LIMIT = MAXIMA["MAX_VMS"]
JOBS_PER_VM_LIMIT = MAXIMA["JOBS_PER_VM"]
SECONDS_LIMIT = MAXIMA["IDLE_TIME"]
HEREDOC_WORDS = ("ELASTIQ_YAML", "ELASTIQ_CA_BUNDLE")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
CLUSTER_NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
SERIES = re.compile(r"[0-9]{1,3}\.(x|[0-9]{1,3})")
#: The batch systems ecm can set up; the first is the default.
BATCH_SYSTEMS = ("htcondor", "slurm")
#: The operating systems whose own archive has a Slurm with dynamic nodes and configless
#: workers as the Slurm templates use them (Debian 13: Slurm 24.11, the version the tests run).
SLURM_OSES = ("debian13",)


def os_ids_for(batch: str) -> Tuple[str, ...]:
    """The ids of the operating systems a cluster of ``batch`` can run on."""
    return SLURM_OSES if batch == "slurm" else tuple(OPERATING_SYSTEMS)


def os_problem(batch: str, os_id: str) -> Optional[str]:
    """Why a ``batch`` cluster cannot run on ``os_id``; None when it can."""
    if os_id in os_ids_for(batch):
        return None
    return (f"--batch {batch} runs on {', '.join(os_ids_for(batch))} only (its Slurm has the "
            f"dynamic nodes the workers join as), not on {os_id}")



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
    #: The cluster's own random secret: HTCondor's pool signing key, or Slurm's munge key.
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
    #: Python package index of the master and the workers (/etc/pip.conf; None: pip's default).
    pip_index_url: Optional[str] = None
    #: Debian/Ubuntu: the site's mirror of the OS archive, replacing the image's apt sources.
    apt_mirror: Optional[str] = None
    ca_bundle_pem: Optional[str] = None
    security_groups: Tuple[str, ...] = ()
    subnet_id: Optional[str] = None
    #: Worker powers off after this long without a claim (0: never); None: a default from IDLE_TIME.
    worker_noclaim_shutdown_s: Optional[int] = None
    #: Worker powers off when the master has been unreachable this long (0: never).
    master_lost_shutdown_s: int = 3600
    #: elastiq replaces a worker not in the pool this long after its launch; None: its default.
    worker_join_limit_s: Optional[int] = None
    #: The cloud the workers boot on: "ec2", or "openstack" (workers advertise the Nova UUID).
    cloud: str = "ec2"
    #: OpenStack: the workers' Neutron networks (names or ids; () lets Nova choose).
    networks: Tuple[str, ...] = ()
    #: OpenStack without embedded credentials: the clouds.yaml entry the master uses.
    os_cloud: Optional[str] = None
    #: Smaller sizes of ``flavour``'s family, largest first, that elastiq may launch too
    #: (:mod:`ecm.family`; () = ``flavour`` alone).
    smaller_flavours: Tuple[str, ...] = ()
    #: The batch system of the cluster (:data:`BATCH_SYSTEMS`).
    batch: str = "htcondor"
    #: The master exports /home over NFS and the workers mount it (HTCondor: same
    #: FILESYSTEM_DOMAIN on master and workers, so jobs need no file transfer).
    shared_home: bool = False

    @property
    def embeds_credentials(self) -> bool:
        return bool(self.access_key and self.secret_key)

    @property
    def flavours(self):
        """The cloud section's ``flavour``: one name, or the family's names largest first."""
        return [self.flavour, *self.smaller_flavours] if self.smaller_flavours else self.flavour

    @property
    def noclaim_shutdown_s(self) -> int:
        if self.worker_noclaim_shutdown_s is not None:
            return self.worker_noclaim_shutdown_s
        return max(4 * self.idle_time_s, 4 * 3600)



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
    if a.cloud not in ("ec2", "openstack"):
        raise RenderError("cloud", f"unknown cloud {a.cloud!r} (known: ec2, openstack)")
    if a.batch not in BATCH_SYSTEMS:
        raise RenderError("batch", f"unknown batch system {a.batch!r} (known: "
                          f"{', '.join(BATCH_SYSTEMS)})")
    problem = os_problem(a.batch, a.os_id)
    if problem:
        raise RenderError("batch", problem)
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
    if a.worker_join_limit_s is not None and not 60 <= a.worker_join_limit_s <= SECONDS_LIMIT:
        raise RenderError("worker_join_limit_s", f"must be between 60 and {SECONDS_LIMIT} "
                          f"(got {a.worker_join_limit_s})")
    unpinned = source.problem(a.elastiq_source, a.elastiq_version)
    if unpinned:
        raise RenderError("elastiq_source", unpinned)
    if a.pip_index_url is not None and not re.fullmatch(r"https?://[^\s'\"\\]+", a.pip_index_url):
        raise RenderError("pip_index_url", "expected an http(s) URL")
    if a.apt_mirror is not None:
        if OPERATING_SYSTEMS[a.os_id].family != "deb":
            raise RenderError("apt_mirror", f"{a.os_id} installs with dnf, not apt (its HTCondor "
                              "packages come from --htcondor-repo, a mirror of HTCondor's)")
        if not re.fullmatch(r"https?://[^\s'\"\\]+", a.apt_mirror):
            raise RenderError("apt_mirror", "expected an http(s) URL")
    if bool(a.access_key) != bool(a.secret_key):
        raise RenderError("access_key", "give both the access key and the secret key, or neither")
    if a.ca_bundle_pem is not None:
        pem = a.ca_bundle_pem
        if "-----BEGIN CERTIFICATE-----" not in pem or "\x00" in pem:
            raise RenderError("ca_bundle", "not a PEM file with at least one certificate")
        if any(line.strip() in HEREDOC_WORDS for line in pem.splitlines()):
            raise RenderError("ca_bundle", "contains a line that would end the here-document")
