"""ecm: write the master user-data of an elastiq cluster (``python ecm.py`` or ``ecm``).

What it does, and the flag of every answer: :mod:`ecm.args`; the questions: :mod:`ecm.questions`.

Exit codes: :data:`elastiq.cli.options.EXIT_CODES` (``ecm --help`` shows them).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import secrets
import sys
from typing import List, Optional

from elastiq import __version__ as OWN_VERSION
from elastiq.adapters.base import AdapterError, AuthError, ConfigError
from elastiq.cli.options import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK,
                                     EXIT_USAGE)

from . import clouds, family, render, source
from . import conf as ecm_conf
from .args import build_parser
from .checks import (UsageError, check_key_and_flavour, check_networks, check_output,
                     read_ca_bundle)
from .oses import OPERATING_SYSTEMS
from .output import final_message, staged_message, write_private
from .questions import Questions
from .spinner import spinner
from .wheel import WheelError


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\necm: interrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EOFError:  # Ctrl-D at a question
        print("\necm: no answer (end of input): nothing was written", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # a file named on the command line cannot be written or read
        if err.filename is None:
            raise_if(args.debug)
            print(f"ecm: {err.strerror or err}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"ecm: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    except (ecm_conf.EcmConfError, UsageError, clouds.MissingExtra) as err:
        print(f"ecm: {err}", file=sys.stderr)
        return EXIT_USAGE
    except source.SourceError as err:
        print(f"ecm: --elastiq-source: {err}", file=sys.stderr)
        return EXIT_USAGE
    except render.RenderError as err:
        print(f"ecm: cannot write the user-data: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, AuthError) as err:  # credentials or settings to fix, in ecm's words
        print(f"ecm: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (AdapterError, WheelError) as err:  # the cloud failed, or the build here
        print(f"ecm: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # the unexpected: one line, no traceback
        raise_if(args.debug)
        print(f"ecm: unexpected error: {type(err).__name__}: {err} (run with --debug for "
              "details)", file=sys.stderr)
        return EXIT_FAILURE


def raise_if(debug: bool) -> None:
    """Re-raise the exception being handled when --debug asks for its traceback."""
    if debug:
        raise  # noqa: PLE0704 (called from an except block)


def choose_cloud(prompts: Optional[Questions], environ) -> str:
    """``--cloud`` not given: asked when the environment shows OpenStack credentials (the
    default answer: the only cloud whose credentials are there, else EC2); else EC2."""
    found = clouds.credentials_in(environ)
    if prompts is None or "openstack" not in found:
        return clouds.DEFAULT_CLOUD
    return prompts.cloud("openstack" if found == ("openstack",) else clouds.DEFAULT_CLOUD)


def _image_example(cloud: Optional[str]) -> str:
    """An --image value as this cloud names images (a Glance id on OpenStack)."""
    if cloud == "openstack":
        return "0c5f0e5a-6bfd-4a36-9b3f-5c9e2d1b7a42 --cloud openstack"
    return "ami-0123abcd"


def run(args: argparse.Namespace) -> int:
    now = datetime.datetime.now()
    conf = ecm_conf.load(args.conf)
    interactive = not args.yes
    if interactive and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "standard input is not a terminal, so ecm cannot ask questions.  Run it "
            "non-interactively with every answer as a flag, e.g.:\n"
            f"  ecm --yes --os {render.os_ids_for(args.batch)[0]} "
            f"--image {_image_example(args.cloud)} "
            "[--cluster-name NAME] [--output FILE] [--embed-credentials]\n(ecm --help lists them)")
    if not interactive:
        missing = [flag for flag, value in (("--os", args.os), ("--image", args.image)) if not value]
        if missing:
            raise UsageError(f"--yes needs {' and '.join(missing)} (OS ids: "
                             f"{', '.join(render.os_ids_for(args.batch))})")
    problem = args.os and render.os_problem(args.batch, args.os)
    if problem:
        raise UsageError(f"--os {args.os}: {problem}")
    if args.output:
        check_output(args.output, args.force)
    ca_pem = read_ca_bundle(args.ca_bundle)
    source_kind = source.kind(args.elastiq_source)
    if args.cluster_name is not None and not render.CLUSTER_NAME.fullmatch(args.cluster_name):
        raise UsageError(f"--cluster-name: {render.CLUSTER_NAME_RULE}")

    prompts = Questions() if interactive else None
    if args.cloud is None:
        args.cloud = choose_cloud(prompts, os.environ)
    cloud = clouds.connect(args.cloud, args.region, args.ca_bundle)
    endpoint = cloud.endpoint
    if source_kind != "spec" and cloud.staging_problem():  # checked before any question
        raise UsageError(cloud.staging_problem())
    with spinner(f"Checking the credentials and the endpoint {endpoint.shown}"):
        cloud.check()
    with spinner("Getting the list of images"):
        images = cloud.list_images()
    check_key_and_flavour(cloud, conf, endpoint.shown)
    smaller_flavours = choose_flavours(cloud, conf, prompts, args.flavour_family)
    check_networks(cloud, args.networks, endpoint.shown)
    if source_kind == "spec" and source.is_pin(args.elastiq_source):
        with spinner(f"Checking that {args.index_url or 'the index'} serves elastiq "
                     f"{OWN_VERSION}"):
            source.check_index(OWN_VERSION, args.index_url)

    os_id = args.os or prompts.operating_system(args.batch)
    if args.image:
        found = cloud.find_image(args.image)
        if found is None:
            raise UsageError(f"--image {args.image}: no such available image in {endpoint.shown}")
        image_id, image_name = found.image_id, found.name
    else:
        image_id = prompts.image(os_id, images, cloud)
        names = {image.image_id: image.name for image in images}
        image_name = names.get(image_id) or getattr(cloud.find_image(image_id), "name", "")
    if image_name and not OPERATING_SYSTEMS[os_id].matches(image_name):
        print(f"Note: the name of {image_id} ({image_name}) does not look like "
              f"{OPERATING_SYSTEMS[os_id].label}; the user-data is written for "
              f"{OPERATING_SYSTEMS[os_id].label}.", file=sys.stderr)
    default_name = default_cluster_name(now)
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
              "service.  Prefer a dedicated, least-privilege credential.", file=sys.stderr)
    elif args.cloud == "openstack":
        print(f"Note: no credentials embedded: the master's elastiq uses the clouds.yaml entry "
              f"{getattr(cloud, 'entry', None) or '(none: set OS_CLOUD)'}; put that clouds.yaml "
              "in /etc/openstack/ on the master.", file=sys.stderr)
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
        pip_index_url=args.index_url, apt_mirror=args.apt_mirror,
        ca_bundle_pem=ca_pem, security_groups=tuple(args.security_groups),
        subnet_id=args.subnet_id, worker_noclaim_shutdown_s=args.worker_noclaim_shutdown,
        master_lost_shutdown_s=args.master_lost_shutdown,
        worker_join_limit_s=args.worker_join_limit, cloud=args.cloud,
        networks=tuple(args.networks), os_cloud=getattr(cloud, "entry", None),
        smaller_flavours=smaller_flavours, batch=args.batch, shared_home=args.shared_home)
    limit = args.user_data_limit or (render.USER_DATA_LIMIT if endpoint.is_aws
                                     else render.NOVA_USER_DATA_LIMIT)
    render.master_user_data(answers, limit)  # refuses what cannot be rendered, before asking
    output = args.output or f"master-{os_id}-{now:%Y-%m-%d}-{now:%H.%M.%S}"
    check_output(output, args.force)
    flavours = ', '.join(answers.flavours) if smaller_flavours else conf.flavour
    print(f"Cluster {cluster_name}: {OPERATING_SYSTEMS[os_id].label_for(args.batch)}, "
          f"image {image_id}, {conf.min_vms}-{conf.max_vms} workers of {flavours}, "
          f"{'credentials embedded' if embed else 'instance role'}.")
    if prompts and not prompts.confirm(f"Write {output}?"):
        print("Nothing was written.")
        return EXIT_FAILURE
    staged = None
    if source_kind != "spec":
        staged = source.stage(cloud, args.elastiq_source, args.stage_bucket, cluster_name,
                              spinner, now.timestamp())
        print(staged_message(staged, endpoint))
        answers = dataclasses.replace(answers, elastiq_source=staged.spec)
    user_data = render.master_user_data(answers, limit)
    check_output(output, args.force)
    write_private(output, user_data.data)
    print(final_message(output, answers, user_data, image_name, staged))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())


#: Without an answer (``--yes``), the workers are of FLAVOR_VMS alone: it is what ecm.conf
#: names, and in replays the family lowers the cost only by letting jobs wait longer (issue
#: 27: -1.2 to -9.5 % core-hours, p95 wait +2 to +40 s).
FAMILY_BY_DEFAULT = False


def choose_flavours(cloud, conf, prompts: Optional[Questions], wanted: Optional[bool]) -> tuple:
    """The smaller sizes of FLAVOR_VMS's family to list after it (:mod:`ecm.family`), with
    the user's consent: ``wanted`` (``--flavour-family`` / ``--one-flavour``), else asked,
    else :data:`FAMILY_BY_DEFAULT`.  () when the cloud offers none or cannot list them, or
    when JOBS_PER_VM sizes the launches (elastiq then launches the first flavour only)."""
    if wanted is False:
        return ()
    if conf.jobs_per_vm:
        if wanted:
            print(f"Note: {conf.path} sets JOBS_PER_VM={conf.jobs_per_vm}: elastiq sizes launches "
                  "by job count and launches FLAVOR_VMS only; --flavour-family ignored.",
                  file=sys.stderr)
        return ()
    try:
        shapes = cloud.flavour_shapes(conf.flavour) or {}
    except AdapterError as err:
        print(f"Note: cannot list the sizes of {conf.flavour} ({err}): its workers are of "
              f"{conf.flavour} alone.", file=sys.stderr)
        return ()
    names = family.family(conf.flavour, shapes)
    if not names:
        return ()
    if wanted is None and prompts is not None:
        wanted = prompts.flavour_family(conf.flavour, family.described(names[1:], shapes),
                                        FAMILY_BY_DEFAULT)
    elif wanted is None:
        print(f"Note: the cloud offers smaller sizes of {conf.flavour} "
              f"({', '.join(names[1:])}): --flavour-family lets elastiq launch them too.",
              file=sys.stderr)
    return tuple(names[1:]) if (FAMILY_BY_DEFAULT if wanted is None else wanted) else ()


def default_cluster_name(now) -> str:
    """``elastiq-<date>-<time>-<4 random hex digits>``: two runs in the same minute must not
    name (and tag, and stage a wheel for) the same cluster."""
    return f"elastiq-{now.strftime('%Y%m%d-%H%M')}-{secrets.token_hex(2)}"
