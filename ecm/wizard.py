"""ecm: write the master user-data of an elastiq cluster (``python ecm.py`` or ``ecm``).

Reads ecm.conf and the cloud credentials (``source ec2rc.sh``), lists the cloud's images, asks
for the operating system and the image, and writes ``master-<os>-<date>-<time>`` (mode 0600).
Every answer also has a flag; with ``--yes`` nothing is asked.

Exit codes: 0 written, 1 cloud failure or not written, 2 bad input (Ctrl-D at a question, a
file that cannot be read or written included), 130 interrupted.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import secrets
import shlex
import sys
from typing import List, Optional

from elastiq import __version__ as OWN_VERSION
from elastiq.config import TEN_YEARS_S

from . import conf as ecm_conf
from . import render, source
from .checks import UsageError, check_key_and_flavour, check_output
from .oses import OPERATING_SYSTEMS, matching_images
from .spinner import spinner

OTHER_IMAGE = "__other__"
MAX_LISTED_IMAGES = 15


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecm", description=__doc__.split("\n\n")[1],
        epilog="Non-interactive example: ecm --yes --os almalinux9 --image ami-0123abcd "
        f"--output master.userdata.  OS ids: {', '.join(OPERATING_SYSTEMS)}.")
    a = p.add_argument
    a("--conf", default="ecm.conf", metavar="FILE", help="cluster settings (default: ecm.conf)")
    a("--os", choices=sorted(OPERATING_SYSTEMS), help="operating system of master and workers")
    a("--image", metavar="ID", help="image id (e.g. ami-0123abcd) for master and workers")
    a("--cluster-name", metavar="NAME", help="cluster name (default: elastiq-<date>-<time>)")
    a("--output", "-o", metavar="FILE", help="output file (default: master-<os>-<date>-<time>)")
    a("--force", action="store_true", help="overwrite the output file if it exists")
    a("--yes", "-y", action="store_true", help="ask nothing: take every answer from the flags")
    a("--debug", action="store_true", help="show the traceback of an unexpected error")
    emb = p.add_mutually_exclusive_group()
    emb.add_argument("--embed-credentials", dest="embed", action="store_true", default=None,
                     help="put the cloud credentials in the master (needed on OpenStack)")
    emb.add_argument("--no-embed-credentials", dest="embed", action="store_false",
                     help="the master uses its instance role (AWS); the default with --yes")
    a("--ca-bundle", metavar="FILE", help="CA bundle to trust for a private cloud endpoint")
    a("--region", help="region name for boto3 (default: AWS_REGION or us-east-1)")
    a("--security-group", dest="security_groups", action="append", default=[], metavar="NAME",
      help="security group of the workers (repeatable)")
    a("--subnet-id", metavar="ID", help="subnet of the workers")
    a("--htcondor-series", default=render.DEFAULT_HTCONDOR_SERIES, metavar="SERIES",
      help="HTCondor release series, e.g. 25.0 (LTS, default) or 25.x (feature)")
    a("--htcondor-repo", default=render.DEFAULT_HTCONDOR_REPO, metavar="URL",
      help="HTCondor repository (a mirror of the official one)")
    a("--elastiq-source", metavar="SPEC",
      help=f"what the master installs (always elastiq {OWN_VERSION}): default, this ecm's own "
      f"wheel staged in the cloud's object store; or a wheel FILE to stage; "
      f"elastiq=={OWN_VERSION} from the index; git+https://...@<commit>")
    a("--index-url", metavar="URL", help="with elastiq==VERSION: the index that serves it "
      "(checked now, used by the master; default: pip's configuration)")
    a("--stage-bucket", metavar="NAME", help="bucket for the staged wheel (default: "
      "elastiq-stage-<hash of the access key>, created if missing)")
    a("--user-data-limit", type=_bounded(1024, 1 << 30), metavar="BYTES",
      help=f"largest master user-data the cloud accepts (default: {render.USER_DATA_LIMIT} on "
      f"AWS, {render.NOVA_USER_DATA_LIMIT} elsewhere, as OpenStack Nova); gzip beyond it")
    a("--worker-noclaim-shutdown", type=_bounded(0, TEN_YEARS_S), metavar="SECONDS",
      help="workers power off when unclaimed this long (default 4 x IDLE_TIME, >= 4 h; 0: never)")
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


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\necm: interrupted: nothing was written", file=sys.stderr)
        return 130
    except EOFError:  # Ctrl-D at a question
        print("\necm: no answer (end of input): nothing was written", file=sys.stderr)
        return 2
    except OSError as err:  # a file named on the command line cannot be written or read
        if err.filename is None:
            raise_if(args.debug)
            print(f"ecm: {err.strerror or err}", file=sys.stderr)
            return 1
        print(f"ecm: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 2
    except (ecm_conf.EcmConfError, UsageError) as err:
        print(f"ecm: {err}", file=sys.stderr)
        return 2
    except source.SourceError as err:
        print(f"ecm: --elastiq-source: {err}", file=sys.stderr)
        return 2
    except render.RenderError as err:
        print(f"ecm: cannot write the user-data: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # CloudError and the unexpected: one line, no traceback
        from .cloud import CloudError
        if isinstance(err, CloudError):
            print(f"ecm: {err}", file=sys.stderr)
            return 1
        raise_if(args.debug)
        print(f"ecm: unexpected error: {type(err).__name__}: {err} (run with --debug for "
              "details)", file=sys.stderr)
        return 1


def raise_if(debug: bool) -> None:
    """Re-raise the exception being handled when --debug asks for its traceback."""
    if debug:
        raise  # noqa: PLE0704 (called from an except block)


def run(args: argparse.Namespace) -> int:
    now = datetime.datetime.now()
    conf = ecm_conf.load(args.conf)
    interactive = not args.yes
    if interactive and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "standard input is not a terminal, so ecm cannot ask questions.  Run it "
            "non-interactively with every answer as a flag, e.g.:\n"
            f"  ecm --yes --os {next(iter(OPERATING_SYSTEMS))} --image ami-0123abcd "
            "[--cluster-name NAME] [--output FILE] [--embed-credentials]\n(ecm --help lists them)")
    if not interactive:
        missing = [flag for flag, value in (("--os", args.os), ("--image", args.image)) if not value]
        if missing:
            raise UsageError(f"--yes needs {' and '.join(missing)} (OS ids: "
                             f"{', '.join(OPERATING_SYSTEMS)})")
    if args.output:
        check_output(args.output, args.force)
    ca_pem = _read_ca_bundle(args.ca_bundle)
    source_kind = source.kind(args.elastiq_source)
    if args.cluster_name is not None and not render.CLUSTER_NAME.fullmatch(args.cluster_name):
        raise UsageError(f"--cluster-name: {render.CLUSTER_NAME_RULE}")

    from .cloud import Cloud, endpoint_from_environment
    endpoint = endpoint_from_environment(region=args.region, ca_bundle=args.ca_bundle)
    cloud = Cloud(endpoint)
    with spinner(f"Checking the credentials and the endpoint {endpoint.shown}"):
        cloud.check()
    with spinner("Getting the list of images"):
        images = cloud.list_images()

    prompts = _Prompts() if interactive else None
    os_id = args.os or prompts.operating_system()
    if args.image:
        found = cloud.find_image(args.image)
        if found is None:
            raise UsageError(f"--image {args.image}: no such available image in {endpoint.shown}")
        image_id, image_name = found.image_id, found.name
    else:
        image_id = prompts.image(os_id, images, cloud)
        names = {image.image_id: image.name for image in images}
        image_name = names.get(image_id) or getattr(cloud.find_image(image_id), "name", "")
    check_key_and_flavour(cloud, conf, endpoint.shown)
    if image_name and not OPERATING_SYSTEMS[os_id].matches(image_name):
        print(f"Note: the name of {image_id} ({image_name}) does not look like "
              f"{OPERATING_SYSTEMS[os_id].label}; the user-data is written for "
              f"{OPERATING_SYSTEMS[os_id].label}.", file=sys.stderr)
    default_name = "elastiq-" + now.strftime("%Y%m%d-%H%M")
    cluster_name = args.cluster_name or (prompts.cluster_name(default_name) if prompts
                                         else default_name)
    embed = args.embed
    if embed is None:
        embed = prompts.embed_credentials(default=not endpoint.is_aws) if prompts else False
    access_key = secret_key = None
    if embed:
        access_key, secret_key = cloud.static_credentials()
        print("WARNING: the cloud credentials are embedded in the master user-data.  Anyone who "
              "can read the instance's user-data in the cloud can read them; on the master they "
              "are in /etc/elastiq/elastiq.yaml (0600) and only root may reach the metadata "
              "service.  Prefer a dedicated, least-privilege EC2 credential.", file=sys.stderr)
    else:
        print("Note: no credentials embedded: the master's elastiq will use the VM's instance "
              "role (AWS IAM instance profile allowing ec2:RunInstances, DescribeInstances, "
              "TerminateInstances, CreateTags, DescribeImages).  On OpenStack use "
              "--embed-credentials.", file=sys.stderr)

    answers = render.Answers(
        os_id=os_id, image_id=image_id, cluster_name=cluster_name, flavour=conf.flavour,
        min_vms=conf.min_vms, max_vms=conf.max_vms, jobs_per_vm=conf.jobs_per_vm,
        idle_time_s=conf.idle_time_s, key_name=conf.key_name,
        signing_key=secrets.token_urlsafe(48), api_url=endpoint.url, region=endpoint.region,
        access_key=access_key, secret_key=secret_key, htcondor_series=args.htcondor_series,
        htcondor_repo=args.htcondor_repo,
        elastiq_source=args.elastiq_source if source_kind == "spec" else source.PLACEHOLDER,
        pip_index_url=args.index_url,
        ca_bundle_pem=ca_pem, security_groups=tuple(args.security_groups),
        subnet_id=args.subnet_id, worker_noclaim_shutdown_s=args.worker_noclaim_shutdown,
        master_lost_shutdown_s=args.master_lost_shutdown)
    limit = args.user_data_limit or (render.USER_DATA_LIMIT if endpoint.is_aws
                                     else render.NOVA_USER_DATA_LIMIT)
    render.master_user_data(answers, limit)  # refuses what cannot be rendered, before asking
    output = args.output or f"master-{os_id}-{now:%Y-%m-%d}-{now:%H.%M.%S}"
    check_output(output, args.force)
    if source_kind == "spec" and source.is_pin(args.elastiq_source):
        with spinner(f"Checking that {args.index_url or 'the index'} serves elastiq "
                     f"{OWN_VERSION}"):
            source.check_index(OWN_VERSION, args.index_url)
    print(f"Cluster {cluster_name}: {OPERATING_SYSTEMS[os_id].label}, image {image_id}, "
          f"{conf.min_vms}-{conf.max_vms} workers of {conf.flavour}, "
          f"{'credentials embedded' if embed else 'instance role'}.")
    if prompts and not prompts.confirm(f"Write {output}?"):
        print("Nothing was written.")
        return 1
    if source_kind != "spec":
        answers = dataclasses.replace(answers, elastiq_source=source.stage(
            cloud, args.elastiq_source, args.stage_bucket, cluster_name, spinner))
    user_data = render.master_user_data(answers, limit)
    check_output(output, args.force)
    write_private(output, user_data.data)
    print(final_message(output, answers, user_data, image_name))
    return 0


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically: a temporary file in the same
    directory renamed into place, removed if anything (Ctrl-C included) interrupts."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def final_message(output: str, a: render.Answers, user_data: render.UserData,
                  image_name: str) -> str:
    size = f"{len(user_data.data)} bytes" + (
        f", gzip-compressed from {user_data.text_size}" if user_data.compressed else "")
    key = f" --key-name {shlex.quote(a.key_name)}" if a.key_name else ""
    lines = [
        f"Wrote {output} ({size}, mode 0600).",
        "Boot the master of the cluster with it as user-data, on the same image, e.g.:",
        f"  openstack server create --image {shlex.quote(image_name or a.image_id)} "
        f"--flavor <master flavour>{key} "
        f"--security-group <master group> --user-data {output} {a.cluster_name}-master",
        f"  aws ec2 run-instances --image-id {a.image_id} --instance-type <type>{key} "
        f"--user-data fileb://{output}" + ("" if a.embeds_credentials
                                          else " --iam-instance-profile Name=<profile>"),
        "The master's security group must let the workers reach TCP port 9618.  The master "
        "then starts the workers by itself; log in to it and read ~/README.txt.",
    ]
    if user_data.compressed:
        lines.append("The file is gzip-compressed (cloud-init unpacks it): upload it as a "
                     "file, never paste it.")
    return "\n".join(lines)


def _read_ca_bundle(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--ca-bundle {path}: cannot read it ({getattr(err, 'strerror', err)})")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError(f"--ca-bundle {path}: no PEM certificate in it")
    return text


class _Prompts:
    """The questions, with questionary; each wrong answer is refused with its reason."""

    def __init__(self) -> None:
        import questionary
        self.q = questionary

    def operating_system(self) -> str:
        choices = [self.q.Choice(os_.label, value=os_id)
                   for os_id, os_ in OPERATING_SYSTEMS.items()]
        return self.q.select("Operating system of the master and the workers:",
                             choices=choices).unsafe_ask()

    def image(self, os_id: str, images, cloud) -> str:
        found = matching_images(os_id, [(i.image_id, i.name) for i in images])
        choices = [self.q.Choice(f"{name}  ({image_id})", value=image_id)
                   for image_id, name in found[:MAX_LISTED_IMAGES]]
        choices.append(self.q.Choice("Other image: type its id", value=OTHER_IMAGE))
        label = OPERATING_SYSTEMS[os_id].label
        if not found:
            print(f"No image in this cloud has a name that looks like {label}.")
        choice = self.q.select(f"Image for the {label} master and workers:",
                               choices=choices).unsafe_ask()
        if choice != OTHER_IMAGE:
            return choice

        def check(text: str):
            from .cloud import IMAGE_ID
            text = text.strip()
            if not IMAGE_ID.fullmatch(text):
                return "an image id looks like ami-0123abcd (ami- and 8 to 17 hex digits)"
            if cloud.find_image(text) is None:
                return f"{text}: no such available image in this cloud"
            return True

        return self.q.text("Image id:", validate=check,
                           validate_while_typing=False).unsafe_ask().strip()

    def cluster_name(self, default: str) -> str:
        def check(text: str):
            return True if render.CLUSTER_NAME.fullmatch(text) else render.CLUSTER_NAME_RULE
        return self.q.text("Cluster name:", default=default, validate=check,
                           validate_while_typing=False).unsafe_ask()

    def embed_credentials(self, default: bool) -> bool:
        return self.q.confirm("Embed the cloud credentials in the master (needed on OpenStack; "
                              "on AWS prefer an instance role)?", default=default).unsafe_ask()

    def confirm(self, message: str) -> bool:
        return self.q.confirm(message, default=True).unsafe_ask()


if __name__ == "__main__":
    sys.exit(main())
