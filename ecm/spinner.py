"""A spinner on stderr while the wizard waits for the cloud (a plain line when not a terminal)."""
from __future__ import annotations

import itertools
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, TextIO


@contextmanager
def spinner(message: str, stream: TextIO = sys.stderr) -> Iterator[None]:
    if not stream.isatty():
        print(f"{message}...", file=stream, flush=True)
        yield
        return
    done = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            stream.write(f"\r{message}: please wait {frame}")
            stream.flush()
            if done.wait(0.1):
                break
        stream.write("\r" + " " * (len(message) + 16) + "\r")
        stream.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
