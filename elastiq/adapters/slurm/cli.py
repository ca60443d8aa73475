"""The Slurm client commands (``squeue``, ``scontrol``), run as subprocesses: the one place
where the slurm adapter touches the world, and where their failures become domain errors.

The controller unreachable, a command that times out or an answer that is not JSON ->
:class:`TransientError`; the command not found -> :class:`ConfigError` naming
``slurm.bin_dir``; a change refused to elastiq's user (draining and deleting nodes need
root, the ``SlurmUser`` or, with slurmdbd, an account of ``AdminLevel=Operator``) ->
:class:`AuthError`; any other refusal -> :class:`FatalError` with Slurm's own message.
"""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Callable, Dict, Optional, Sequence

from ..base import AuthError, ConfigError, FatalError, TransientError

#: Slurm's words for "the controller could not be asked" (``slurm_strerror`` texts).
UNREACHABLE = ("Unable to contact slurm controller", "Socket timed out", "Connection refused",
               "Zero Bytes were transmitted", "Communication connection failure",
               "Slurm backup controller in standby mode")
#: Slurm's words for "this user may not do that" (24.11 says "Invalid user id" to a user who
#: is neither root, the SlurmUser nor an operator, for ``scontrol update`` and ``delete``).
REFUSED = ("Invalid user id", "Access/permission denied")


class SlurmCommands:
    """Runs ``argv[0]`` from ``bin_dir`` (None: found on PATH) with a timeout."""

    def __init__(self, bin_dir: Optional[str] = None, timeout_s: float = 30,
                 runner: Callable[..., subprocess.CompletedProcess] = subprocess.run):
        self._bin_dir, self._timeout, self._runner = bin_dir, timeout_s, runner

    def run(self, argv: Sequence[str], tolerate: Sequence[str] = ()) -> Optional[str]:
        """The command's standard output; None when it failed with one of the messages in
        ``tolerate`` (e.g. "Invalid node name specified": the node is gone already)."""
        program = os.path.join(self._bin_dir, argv[0]) if self._bin_dir else argv[0]
        what = " ".join(argv[:3])
        try:
            done = self._runner([program, *argv[1:]], capture_output=True, text=True,
                                timeout=self._timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ConfigError(f"{program} not found: install the Slurm clients or set "
                              "slurm.bin_dir", key="slurm.bin_dir") from None
        except subprocess.TimeoutExpired:
            raise TransientError(f"{what}: no answer in {self._timeout:g} s") from None
        except OSError as err:
            raise FatalError(f"{what}: {err}") from None
        if done.returncode == 0:
            return done.stdout
        message = " ".join(done.stderr.split())[:500] or f"exit status {done.returncode}"
        if any(t in message for t in tolerate):
            return None
        if any(r in message for r in REFUSED):
            raise AuthError(f"{what}: {message} (run elastiq as root or the SlurmUser, or "
                            "make its user a Slurm operator)")
        if any(u in message for u in UNREACHABLE):
            raise TransientError(f"{what}: {message}")
        raise FatalError(f"{what}: {message}")

    def json(self, argv: Sequence[str]) -> Dict[str, Any]:
        """The command's ``--json`` answer; the errors it reports in it are transient."""
        out = self.run([*argv, "--json"]) or ""
        try:
            data = json.loads(out)
        except ValueError:
            raise TransientError(f"{' '.join(argv)} --json: not JSON ({out[:80]!r})") from None
        if not isinstance(data, dict):
            raise TransientError(f"{' '.join(argv)} --json: not a JSON object")
        errors = [e.get("description") or e.get("error") for e in data.get("errors") or ()
                  if isinstance(e, dict)]
        if errors:
            raise TransientError(f"{' '.join(argv)} --json: {'; '.join(map(str, errors))}")
        return data
