"""Network helpers of the test support."""
from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
