"""Check, show or migrate a configuration file.

  elastiq config check [FILE]      validate as `elastiq run` does; one-line summary (exit 0) or
                                   the file, key and problem (exit 2); FILE or --config FILE;
                                   --online: also ask the cloud and the pool (online_check)
  elastiq config show [FILE]       print the effective configuration, secrets masked
  elastiq config migrate OLD.conf  print the YAML equivalent of a legacy INI elastiq.conf
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import config
from .options import add_config_arguments, config_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")
    sub.required = True
    for name, text in (("check", "validate a configuration file as 'elastiq run' does"),
                       ("show", "print the effective configuration (secrets masked)")):
        action = sub.add_parser(name, help=text, description=text)
        action.add_argument("file", nargs="?", metavar="FILE",
                            help="configuration file (the same as --config FILE)")
        add_config_arguments(action, config.DEFAULT_PATH)
        if name == "check":
            action.add_argument(
                "--online", action="store_true",
                help="also ask the cloud about the image, flavours, key pair, security groups "
                "and network, and read the queue and the pool, as 'elastiq run' will "
                "(nothing is launched or changed); exit 1 when either cannot be reached")
    migrate = sub.add_parser(
        "migrate", help="convert a legacy INI elastiq.conf to YAML",
        description="Convert a legacy INI elastiq.conf to YAML.  Printed to stdout with secrets "
        "masked; with --output the complete file is written with mode 0600.")
    migrate.add_argument("file", metavar="OLD.conf")
    migrate.add_argument("--output", "-o", metavar="NEW.yaml",
                         help="write the complete YAML (secrets included) to this file, mode 0600")
    migrate.add_argument("--force", action="store_true",
                         help="overwrite the --output file if it exists")


def command(args: argparse.Namespace) -> int:
    if args.config_command == "migrate":
        return _migrate(args)
    if args.file and args.config and os.path.abspath(args.file) != os.path.abspath(args.config):
        raise config.InvalidConfig(args.file, None, f"and --config {args.config}: two "
                                   "configuration files given; give one")
    path = args.file or config_path(args)
    cfg = config.load(path, args.overrides)
    if args.config_command == "check":
        from ..runtime.factory import prepare  # the check `elastiq run` makes before it starts
        _, batch, cloud = prepare(cfg)
        for note in cfg.notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        if args.online:
            from . import online_check
            return online_check.run(cfg, path, batch, cloud)
        print(f"OK {path}: {config.summary(cfg)}")
    else:
        sys.stdout.write(config.to_yaml(cfg, include_secrets=False))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    cfg = config.load_legacy(args.file)
    if args.output:
        if os.path.lexists(args.output) and not args.force:
            raise config.InvalidConfig(args.output, None, "exists: choose another --output, or "
                                       "--force to overwrite it")
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as err:
            raise config.InvalidConfig(args.output, None,
                                       f"cannot write: {err.strerror or err}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"# migrated from {args.file}\n")
            handle.write(config.to_yaml(cfg, include_secrets=True, only_changed=True))
        os.chmod(args.output, 0o600)
        print(f"wrote {args.output} (mode 0600); check it with: elastiq config check {args.output}")
    else:
        sys.stdout.write(f"# migrated from {args.file}; secrets masked (use --output to keep them)\n")
        sys.stdout.write(config.to_yaml(cfg, include_secrets=False, only_changed=True))
    return 0
