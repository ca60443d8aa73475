"""What every command shares, ``elastiq``'s and ``elastiqctl``'s: ``--config``/``--set``, how
the configuration file is found, and the exit codes.

Here, below the command-line modules (``elastiq.cli``), so that the commands living in the
runtime (``run``, ``status``) use them without importing the command line that lists them.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional

from .. import config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: ``status`` (and ``elastiqctl status``): the daemon does not run; ``run``, ``status``,
#: ``elastiqctl``: the state or log location is not ours to read or write.
EXIT_NOT_RUNNING, EXIT_PERMISSION = 3, 4


def add_config_arguments(parser: argparse.ArgumentParser, default: Optional[str]) -> None:
    """--config and --set.  The file is --config, else $ELASTIQ_CONFIG, else ``default``
    (None: the built-in defaults); see :func:`config_path`."""
    shown = default or "built-in defaults"
    parser.add_argument(
        "--config", "-c", metavar="FILE",
        help=f"configuration file, YAML or legacy INI (default: $ELASTIQ_CONFIG, else {shown})",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set quota.max_vms=40 (repeatable)",
    )
    parser.set_defaults(config_default=default)


def config_path(args: argparse.Namespace) -> Optional[str]:
    return (getattr(args, "config", None) or os.environ.get("ELASTIQ_CONFIG")
            or getattr(args, "config_default", None))


def load_config(args: argparse.Namespace) -> config.Config:
    return config.load(config_path(args), getattr(args, "overrides", ()))
