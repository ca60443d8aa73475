"""What every command shares, ``elastiq``'s and ``elastiqctl``'s: ``--config``/``--set``, how
the configuration file is found, and the exit codes (ecm's too)."""
from __future__ import annotations

import argparse
import os
import re
import textwrap
from typing import Optional

from .. import config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: ``status`` (and ``elastiqctl status``): the daemon does not run; ``run``, ``status``,
#: ``elastiqctl``: the state or log location is not ours to read or write.
EXIT_NOT_RUNNING, EXIT_PERMISSION = 3, 4
#: The one exit-code table of ``elastiq``, ``elastiqctl`` and ``ecm`` (their --help and the
#: README show it as it is here).
EXIT_CODES = (
    (EXIT_OK, "success; status: the daemon runs"),
    (EXIT_FAILURE, "failure at run time: the cloud or the pool cannot be reached or failed "
                   "(quota, capacity, its own error), the daemon is already running or did not start or stop in time, a state "
                   "file is unreadable; ecm: nothing written (No at the last question, or this "
                   "elastiq's wheel could not be built)"),
    (EXIT_USAGE, "bad configuration, input or usage, named (file, key, flag): missing or "
                 "refused credentials included"),
    (EXIT_NOT_RUNNING, "status: the daemon does not run"),
    (EXIT_PERMISSION, "permission denied on the state, pid or log location"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


_ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def plain(text: str) -> str:
    """A docstring as ``--help`` shows it: without reStructuredText markup (roles such as
    :func:`x` become x, ``literal`` becomes literal, a trailing ``::`` becomes ``:``)."""
    text = _ROLE.sub(lambda m: m.group(1).lstrip("."), text)
    text = re.sub(r"``([^`]+)``|`([^`]+)`", lambda m: m.group(1) or m.group(2), text)
    return re.sub(r"::$", ":", text, flags=re.M)


def exit_codes_help() -> str:
    """The table for an ``--help`` epilog (RawDescriptionHelpFormatter keeps its lines)."""
    return "exit codes:\n" + "\n".join(
        textwrap.fill(text, 79, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES)


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
