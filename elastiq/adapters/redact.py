"""Keeping secrets out of what adapters say: the cloud's error texts are shown only after
:func:`redact`, with the values :func:`secret_values` gathers for one adapter (every cloud
adapter uses both)."""
from __future__ import annotations

import re
from typing import Iterable, Optional, Tuple

_KEY_LIKE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b|[A-Za-z0-9+/=_-]{40,}")
MAX_MESSAGE = 300


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secret values, nothing that looks like a key or a token
    (AWS key ids, runs of 40+ base64 characters), cut to a readable length."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _KEY_LIKE.sub("***", text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def secret_values(keys: Iterable[Optional[str]], runtime: Iterable[str],
                  user_data: Optional[bytes]) -> Tuple[str, ...]:
    """What :func:`redact` must hide for one adapter: the keys, the values substituted into
    the user-data (they may be tokens) and every line of the worker user-data (8+ characters)."""
    lines = (user_data or b"").decode("utf-8", "ignore").splitlines()
    values = [*runtime, *(line.strip() for line in lines)]
    return tuple(k for k in keys if k) + tuple(v for v in values if len(v) >= 8)
