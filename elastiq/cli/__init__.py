"""`elastiq` command line: one registry of commands, one error envelope, clean exit codes.

Exit codes: :data:`elastiq.cli.options.EXIT_CODES`, one table for ``elastiq``,
``elastiqctl`` and ``ecm``.  No traceback reaches the user unless ``--debug`` is given.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from .. import __version__, config
from ..adapters.base import AdapterError, AuthError, ConfigError
# the commands' shared options and exit codes, also as ``cli.<name>`` for the commands here
from .options import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK,  # noqa: F401
                              EXIT_PERMISSION, EXIT_USAGE, add_config_arguments, config_path,
                              exit_codes_help, load_config, plain)

#: Command name -> module.  Each module has a docstring (its help), ``add_arguments(parser)``
#: and ``command(args) -> int``; it must import its heavy dependencies lazily.
COMMANDS = {
    "config": "elastiq.cli.config_cli",
    "run": "elastiq.cli.run",
    "status": "elastiq.cli.status",
    "simulate": "elastiq.cli.simulate",
}

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elastiq",
        description="Grow and shrink an HTCondor pool on an IaaS cloud (EC2, OpenStack).",
        epilog="Run 'elastiq COMMAND --help' for the options of one command.\n\n"
        + exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"elastiq {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = plain((module.__doc__ or "").strip())
        command_parser = sub.add_parser(
            name, help=doc.splitlines()[0] if doc else None, description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command_parser)
        command_parser.set_defaults(handler=module.command)
    return parser


def run_envelope(handler, args: argparse.Namespace, prog: str) -> int:
    """Call ``handler(args)`` and turn the domain errors into messages and exit codes."""
    try:
        return int(handler(args) or 0)
    except config.InvalidConfig as err:
        print(f"{prog}: configuration error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except AdapterError as err:
        print(f"{prog}: {err.kind} error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, (AuthError, ConfigError)) else EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # the envelope: never a traceback unless asked
        if getattr(args, "debug", False):
            raise
        logging.getLogger("elastiq").debug("unexpected error", exc_info=True)
        print(f"{prog}: unexpected error: {type(err).__name__}: {err} "
              "(run with --debug for details)", file=sys.stderr)
        return EXIT_FAILURE


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_envelope(args.handler, args, "elastiq")


if __name__ == "__main__":
    sys.exit(main())
