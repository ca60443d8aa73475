"""Logging for the daemon: a rotating file (or stderr for journald) and secret redaction.

The runtime never formats a secret into a message; the :class:`RedactFilter` on every handler
is defence in depth against a library or an adapter error that does (botocore debug output,
an SDK exception echoing a request).  It masks the configured credentials and user-data, the
token-like words inside the user-data (pool passwords, IDTOKENs), AWS access key ids, JWTs and
``secret=...``-style assignments.
"""
from __future__ import annotations

import base64
import binascii
import logging
import logging.handlers
import os
import re
import sys
from typing import Iterable, List, Optional

from ..config import Config
from ..adapters import openstack_config  # HOOK (issue 14) until the adapter registry lands

MASK = "***"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"  # journald adds the time
#: Libraries whose DEBUG/INFO output is noise (or, for botocore, request dumps).
QUIET = ("botocore", "boto3", "urllib3", "s3transfer")
#: apscheduler warns when a check is skipped because a long tick still runs: that skip is the
#: intended coalescing, so only its errors are shown.
QUIETER = ("apscheduler",)
MIN_SECRET_LEN = 6

_PATTERNS = (
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"), MASK),
    (re.compile(r"(?i)\b((?:aws_)?secret(?:_access)?_key|password|passwd|token|signature"
                r"|user_?data(?:_b64)?)(\s*[=:]\s*)(['\"]?)[^\s'\",;]+"), r"\1\2\3" + MASK),
)
_TOKEN_WORD = re.compile(r"[A-Za-z0-9+/=_.\-]{20,}")


def _user_data_texts(cfg: Config) -> List[str]:
    texts = []
    if cfg.ec2.user_data_b64:
        texts.append(cfg.ec2.user_data_b64)
        try:
            texts.append(base64.b64decode(cfg.ec2.user_data_b64, validate=False)
                         .decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            pass
    if cfg.ec2.user_data_file:
        try:
            with open(cfg.ec2.user_data_file, encoding="utf-8", errors="replace") as handle:
                texts.append(handle.read())
        except OSError:
            pass
    return texts


def secrets_of(cfg: Config) -> List[str]:
    """Every string from ``cfg`` that must never be logged, longest first."""
    found = {cfg.ec2.aws_access_key_id or "", cfg.ec2.aws_secret_access_key or ""}
    found.update(openstack_config.secret_texts(cfg.openstack))  # HOOK (issue 14): registry
    for text in _user_data_texts(cfg):
        found.add(text.strip())
        found.update(_TOKEN_WORD.findall(text))
    return sorted((s for s in found if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len,
                              reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


class RedactFilter(logging.Filter):
    """Rewrites each record's message (and traceback) through a :class:`Redactor`."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw template only
            message = str(record.msg)
        record.msg, record.args = self.redactor(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


def setup(cfg: Config, log_file: Optional[str], level: Optional[str] = None,
          stream=None) -> logging.Handler:
    """Send all logging to ``log_file`` (rotating) or, when it is None, to ``stream`` (stderr).

    Replaces the handlers of the root logger; returns the handler installed.
    """
    if log_file:
        directory = os.path.dirname(log_file)
        if directory:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8")
        os.chmod(log_file, 0o640)
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
    handler.addFilter(RedactFilter(Redactor(secrets_of(cfg))))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("elastiq").setLevel((level or cfg.elastiq.log_level).upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in QUIETER:
        logging.getLogger(name).setLevel(logging.ERROR)
    return handler
