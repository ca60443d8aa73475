"""The Machine ad a fresh worker VM will advertise: what the matcher judges idle jobs against.

Pure, like :mod:`.ads`: attributes in, attributes out (a dict the caller turns into a
ClassAd); the ads it reads are the bindings' objects, only their methods are called.

Two sources, the better one winning:

- **learned**: the startd ad of a real worker of our cluster (a partitionable or static slot),
  so every attribute stock submit Requirements reference (``CondorVersion``, ``OpSysAndVer``,
  ``HasFileTransfer``...) is what the workers really advertise.  It is rescaled to a whole,
  unclaimed VM of the worker VMs' shape (the ``Catalogue``'s, and ``vm.disk_mb``), made
  anonymous (no ``ElastiqInstanceId``, a neutral ``Name``/``Machine``: a job that wants one
  given worker does not launch a new one), and nothing of its claims or drain is kept.
  It is learned again when no worker of ours advertises its HTCondor version any more (a new
  image), never from a mix of versions back and forth.
- **synthetic**, before any worker exists: the configuration (shape, ``htcondor.opsys``,
  ``htcondor.arch``, ``htcondor.filesystem_domain``: else a domain no job asks for) plus
  what the local HTCondor tells (``local``: the master's
  ``CondorVersion`` and ``CondorPlatform``, from its schedd or, without one, the bindings'
  version; ``OpSys*`` from its configuration: master and workers boot the same image and install the same
  HTCondor series), and the abilities every current starter has.

Either way ``htcondor.has_docker`` decides ``HasDocker`` (a worker whose docker is broken
advertises none, but the next VM may work; the configuration says what the workers are meant
to have).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Optional, Tuple

from ...model import Catalogue
from .config import Settings

if TYPE_CHECKING:
    from ...config import Config

NAME = "elastiq-worker"
#: Attributes the local HTCondor configuration knows of this host (param name -> attribute).
LOCAL_PARAMS = {
    "OPSYS": "OpSys", "OPSYSANDVER": "OpSysAndVer", "OPSYSMAJORVER": "OpSysMajorVer",
    "OPSYSVER": "OpSysVer", "OPSYSNAME": "OpSysName", "OPSYSSHORTNAME": "OpSysShortName",
    "OPSYSLONGNAME": "OpSysLongName", "ARCH": "Arch",
}
_INTEGERS = {"OpSysMajorVer", "OpSysVer"}
#: What the starter of every supported HTCondor (23.0 and later) advertises.
ABILITIES = (
    "HasFileTransfer", "HasJobTransferPlugins", "HasPerFileEncryption", "HasReconnect",
    "HasJobDeferral", "HasTDP", "HasJICLocalConfig", "HasJICLocalStdin",
    "HasSelfCheckpointTransfers", "HasTransferInputRemaps", "HasIOProxy", "HasJobNetworking",
    "HasOsUser",
)
#: Slot attributes that describe its claims, dynamic slots or drain: not a fresh VM's.
_CLAIM_PREFIXES = ("child", "remote", "drain", "claim", "job")
_DROPPED = {"elastiqinstanceid", "dynamicslot", "myaddress", "startdipaddr", "addressv1",
            "enteredcurrentstate", "enteredcurrentactivity", "acceptedwhiledraining",
            "publicclaimid", "clientmachine", "globaljobid", "numdynamicslotstime"}
_DOCKER = ("HasDocker", "HasDockerURL", "DockerVersion", "DockerNetworks", "DockerOfflineReason")


def local_attrs(params: Mapping[str, Any], version: Optional[str]) -> Dict[str, Any]:
    """The local HTCondor's facts as Machine ad attributes (None and empty values left out)."""
    attrs: Dict[str, Any] = {}
    for param, attr in LOCAL_PARAMS.items():
        value = params.get(param)
        if value in (None, ""):
            continue
        try:
            attrs[attr] = int(value) if attr in _INTEGERS else str(value)
        except ValueError:
            continue
    if version:
        attrs["CondorVersion"] = version
    return attrs


def daemon_attrs(ad: Any) -> Dict[str, str]:
    """``CondorVersion`` and ``CondorPlatform`` of a daemon's ad (those it has)."""
    return {k: v for k in ("CondorVersion", "CondorPlatform")
            for v in (ad.get(k),) if isinstance(v, str) and v}


def _shape(config: Config, catalogue: Optional[Catalogue]) -> Dict[str, Any]:
    """A whole, unclaimed VM of the worker VMs' shape (``catalogue``; None: the ``vm``
    section's): one partitionable slot holding it all."""
    catalogue = catalogue or Catalogue.of(config.vm)
    cpus, memory, disk = catalogue.cpus, catalogue.memory_mb, config.vm.disk_mb * 1024
    return {
        "MyType": "Machine", "TargetType": "Job", "Name": f"slot1@{NAME}", "Machine": NAME,
        "SlotType": "Partitionable", "PartitionableSlot": True, "SlotID": 1, "SlotTypeID": 1,
        "State": "Unclaimed", "Activity": "Idle", "NumDynamicSlots": 0, "TotalSlots": 1,
        "Cpus": cpus, "TotalCpus": cpus, "TotalSlotCpus": cpus, "DetectedCpus": cpus,
        "Memory": memory, "TotalMemory": memory, "TotalSlotMemory": memory,
        "DetectedMemory": memory, "Disk": disk, "TotalDisk": disk, "TotalSlotDisk": disk,
        "ElastiqCluster": config.elastiq.cluster_name,
    }


def settings(config: Config) -> Settings:
    """The ``htcondor`` section (its defaults when the configured batch plugin is another one,
    such as a test's subclass of the adapter)."""
    return config.batch if isinstance(config.batch, Settings) else Settings()


def _docker(attrs: Dict[str, Any], config: Config) -> Dict[str, Any]:
    if settings(config).has_docker:
        attrs.setdefault("DockerVersion", "Docker version unknown (not yet seen on a worker)")
        attrs.update(HasDocker=True, HasDockerURL=True, HasContainer=True)
    else:
        for attr in _DOCKER:
            attrs.pop(attr, None)
        attrs["HasDocker"] = False
    return attrs


def synthetic(config: Config, local: Mapping[str, Any],
              catalogue: Optional[Catalogue] = None) -> Dict[str, Any]:
    """The template before any worker of ours was seen."""
    vm = settings(config)
    attrs: Dict[str, Any] = dict.fromkeys(ABILITIES, True)
    attrs.update(Start=True, GPUs=0, TotalGPUs=0, UidDomain=NAME,
                 FileSystemDomain=vm.filesystem_domain or NAME,
                 HasFileTransferPluginMethods="data,dav,davs,file,ftp,http,https,s3,gs")
    if local.get("OpSys", vm.opsys) == vm.opsys:  # the master's OS is the workers'
        attrs.update(local)
    else:
        attrs.update((k, v) for k, v in local.items() if not k.startswith("OpSys"))
    attrs.update(OpSys=vm.opsys, Arch=vm.arch)
    attrs.update(_shape(config, catalogue))
    return _docker(attrs, config)


def learned(ad: Any, config: Config, catalogue: Optional[Catalogue] = None) -> Dict[str, Any]:
    """The template from a real worker's slot ad ``ad`` (see the module docstring)."""
    attrs: Dict[str, Any] = {}
    for name, value in ad.items():
        low = name.lower()
        if not (low.startswith(_CLAIM_PREFIXES) or low in _DROPPED):
            attrs[name] = value
    attrs.update(_shape(config, catalogue))
    return _docker(attrs, config)


def version_of(ad: Any) -> Optional[str]:
    return daemon_attrs(ad).get("CondorVersion")


def pick_source(slots: Iterable[Any], cluster: str,
                current: Optional[str]) -> Optional[Tuple[str, str]]:
    """``(slot name, CondorVersion)`` of a worker slot to learn the template from, or None
    when the template learned from version ``current`` still describes a worker of ours.
    Only partitionable or static slots of our cluster that name their version count; one
    that does not drain is preferred."""
    candidates = []
    for ad in slots:
        version, name = version_of(ad), ad.get("Name")
        if (ad.get("ElastiqCluster") != cluster or ad.get("DynamicSlot") is True
                or ad.get("SlotType") == "Dynamic" or not version or not isinstance(name, str)):
            continue
        if version == current:
            return None
        candidates.append((ad.get("Draining") is True, name, version))
    return min(candidates)[1:] if candidates else None
