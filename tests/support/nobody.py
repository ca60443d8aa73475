"""Run a command's ``main(argv)`` as user nobody, in a forked child (the test must be root).

The child can import only what nobody may read: the interpreter may live under /root, so the
modules a command imports lazily must be imported before (argparse's messages need locale).
"""
from __future__ import annotations

import locale  # noqa: F401 (for the child, see above)
import os
import sys
import tempfile
from typing import Callable, List, Tuple

NOBODY = 65534


def as_nobody(main: Callable[[List[str]], int], argv: List[str]) -> Tuple[int, str]:
    """(exit code, stderr) of ``main(argv)`` in a child that dropped to user nobody."""
    with tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # child
            code = 99
            try:
                sys.stderr = open(err.fileno(), "w", closefd=False)
                sys.stdout = open(os.devnull, "w")
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                code = main(argv)
                sys.stderr.flush()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        err.seek(0)
        return os.waitstatus_to_exitcode(status), err.read().decode()
