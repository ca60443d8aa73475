"""ecm's command line: every answer of the wizard has a flag.

Reads ecm.conf and the cloud credentials (``source ec2rc.sh``), lists the cloud's images, asks
for the operating system and the image, and writes ``master-<os>-<date>-<time>`` (mode 0600).
Every answer also has a flag; with ``--yes`` nothing is asked.
"""
from __future__ import annotations

import argparse
import textwrap

from elastiq import __version__ as OWN_VERSION
from elastiq.config import TEN_YEARS_S
from elastiq.cli.options import exit_codes_help, plain

from . import render
from .clouds import CLOUDS, DEFAULT_CLOUD
from .oses import OPERATING_SYSTEMS


def build_parser() -> argparse.ArgumentParser:
    example = textwrap.fill(
        "Non-interactive example: ecm --yes --os almalinux9 --image ami-0123abcd --output "
        f"master.userdata.  OS ids: {', '.join(OPERATING_SYSTEMS)}.", 79,
        break_on_hyphens=False)
    p = argparse.ArgumentParser(
        prog="ecm", description=plain(__doc__.split("\n\n")[1]),
        epilog=f"{example}\n\n{exit_codes_help()}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--version", action="version", version=f"ecm (elastiq) {OWN_VERSION}")
    a("--cloud", choices=sorted(CLOUDS),
      help=f"the cloud's API (default: {DEFAULT_CLOUD}; asked when OpenStack credentials "
           "(OS_CLOUD or OS_AUTH_URL) are in the environment)")
    a("--conf", default="ecm.conf", metavar="FILE", help="cluster settings (default: ecm.conf)")
    a("--os", choices=sorted(OPERATING_SYSTEMS), help="operating system of master and workers")
    a("--image", metavar="ID", help="image id (e.g. ami-0123abcd) for master and workers")
    a("--cluster-name", metavar="NAME", help="cluster name, unique on the cloud account (default: "
      "elastiq-<date>-<time>-<4 random hex digits>)")
    a("--output", "-o", metavar="FILE", help="output file (default: master-<os>-<date>-<time>)")
    a("--force", action="store_true", help="overwrite the output file if it exists")
    a("--yes", "-y", action="store_true", help="ask nothing: take every answer from the flags")
    a("--debug", action="store_true", help="show the traceback of an unexpected error")
    emb = p.add_mutually_exclusive_group()
    emb.add_argument("--embed-credentials", dest="embed", action="store_true", default=None,
                     help="put the cloud credentials in the master (needed on OpenStack)")
    emb.add_argument("--no-embed-credentials", dest="embed", action="store_false",
                     help="the master uses its instance role (AWS); the default with --yes")
    fam = p.add_mutually_exclusive_group()
    fam.add_argument("--flavour-family", dest="flavour_family", action="store_true", default=None,
                     help="list FLAVOR_VMS's smaller sizes after it (the cloud's family, same "
                     "memory per cpu, down to a quarter of its cpus): elastiq launches them "
                     "for small demand (asked when the cloud offers some)")
    fam.add_argument("--one-flavour", dest="flavour_family", action="store_false",
                     help="FLAVOR_VMS alone; the default with --yes")
    a("--ca-bundle", metavar="FILE", help="CA bundle to trust for a private cloud endpoint")
    a("--region", help="region name for boto3 (default: AWS_REGION or us-east-1)")
    a("--security-group", dest="security_groups", action="append", default=[], metavar="NAME",
      help="security group of the workers (repeatable)")
    a("--subnet-id", metavar="ID", help="subnet of the workers")
    a("--network", dest="networks", action="append", default=[], metavar="NAME",
      help="OpenStack: network of the workers, checked (repeatable; default: Nova's choice)")
    a("--batch", choices=render.BATCH_SYSTEMS, default=render.BATCH_SYSTEMS[0],
      help="batch system of the cluster: htcondor (default) or slurm (slurmctld on the "
      "master, workers join as dynamic nodes; --os " + "/".join(render.SLURM_OSES) + " only)")
    a("--shared-home", action="store_true",
      help="the master exports /home over NFS to the workers (default: not shared)")
    a("--htcondor-series", default=render.DEFAULT_HTCONDOR_SERIES, metavar="SERIES",
      help="HTCondor release series, e.g. 25.0 (LTS, default) or 25.x (feature); with "
      "--os debian13 only the master's Python bindings follow it (Debian's HTCondor 23.9 runs)")
    a("--htcondor-repo", default=render.DEFAULT_HTCONDOR_REPO, metavar="URL",
      help="HTCondor repository (a mirror of the official one; unused with --os debian13)")
    a("--elastiq-source", metavar="SPEC",
      help=f"what the master installs (always elastiq {OWN_VERSION}): default, this ecm's own "
      f"wheel staged in the cloud's object store; or a wheel FILE to stage; "
      f"elastiq=={OWN_VERSION} from the index; git+https://...@<commit>")
    a("--index-url", metavar="URL", help="Python package index of the master and the workers "
      "(their /etc/pip.conf; a plain-http host is trusted); with elastiq==VERSION it must serve "
      "it (checked now; default: pip's configuration)")
    a("--apt-mirror", metavar="URL", help="Debian/Ubuntu: the site's mirror of the OS archive "
      "(its release suite), used by master and workers instead of the image's apt sources")
    a("--stage-bucket", metavar="NAME", help="bucket for the staged wheel (default: "
      "elastiq-stage-<hash of the access key>, created if missing)")
    a("--user-data-limit", type=_bounded(1024, 1 << 30), metavar="BYTES",
      help=f"largest master user-data the cloud accepts (default: {render.USER_DATA_LIMIT} on "
      f"AWS, {render.NOVA_USER_DATA_LIMIT} elsewhere, as OpenStack Nova); gzip beyond it")
    a("--worker-noclaim-shutdown", type=_bounded(0, TEN_YEARS_S), metavar="SECONDS",
      help="workers power off when unclaimed this long (default 4 x IDLE_TIME, >= 4 h; 0: never)")
    a("--worker-join-limit", type=_bounded(60, TEN_YEARS_S), metavar="SECONDS",
      help="elastiq replaces a worker not in the pool this long after its launch (default 600; "
      "raise it where workers take longer to boot and install HTCondor)")
    a("--master-lost-shutdown", type=_bounded(0, TEN_YEARS_S), default=3600, metavar="SECONDS",
      help="workers power off when the master is unreachable this long (default 3600; 0: never)")
    return p


def _bounded(low: int, high: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
        return value
    return convert
