"""Values filled into the worker user-data (``%name%`` placeholders): what is valid, and how a
value is quoted where it lands.  No SDK and no configuration import (``config.py`` uses
:func:`value_problem` for ``elastiq config check``).

Quoting at substitution time (:func:`fill`):

* ``'%name%'``, a placeholder that is a whole single-quoted shell word (what ecm's templates
  write), stays single-quoted with every ``'`` of the value written ``'\\''``: whatever the
  value holds, it stays one literal word (and a value without quotes reads as before);
* anywhere else the context is unknown (double quotes, YAML, a URL), so the value is inserted
  only if every character is inert in a shell word, a YAML scalar and a URL
  (:data:`INERT`); otherwise :class:`UnsafeValue` names the placeholder (never the value).
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Iterable, List, Mapping, Optional, Tuple

#: Characters that need no quoting in a shell word, a plain YAML scalar or a URL.
INERT = re.compile(r"[A-Za-z0-9._:/@+=,-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")
#: A placeholder: a lower-case name of 3 or more characters between two %.  Shorter ones would
#: be ``date +%Y%m%d`` or ``printf '%s%s'``, which are left alone.
PLACEHOLDER = re.compile(r"%([a-z][a-z0-9_]{2,})%")
#: Names elastiq knows how to fill in (the master's addresses) or that ecm's templates use.
KNOWN_NAMES = ("ipv4", "ipv6", "fqdn", "token", "munge_key")
#: An IDTOKEN (a JWT: base64url header.payload.signature).
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: A munge key as ecm makes it (Slurm clusters): base64url text, 32 to 1024 bytes, the
#: lengths munged accepts.
_MUNGE_KEY = re.compile(r"[A-Za-z0-9_-]{32,1024}")


class UnsafeValue(ValueError):
    def __init__(self, name: str, problem: str):
        self.name = name
        super().__init__(f"substitute.{name}: {problem}")


def _is_ip(value: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(value).version == version
    except ValueError:
        return False


def value_problem(name: str, value: str) -> Optional[str]:
    """Why ``value`` cannot be valid for the placeholder ``%name%`` (None: it can).  Secrets
    (the token) are never quoted back."""
    if _CONTROL.search(value):
        return "control characters (newlines, tabs...) are not allowed"
    if name == "ipv4" and not _is_ip(value, 4):
        return f"expected an IPv4 address (got {value!r})"
    if name == "ipv6" and not _is_ip(value, 6):
        return f"expected an IPv6 address (got {value!r})"
    if name == "fqdn" and not _HOSTNAME.fullmatch(value):
        return f"expected a host name (got {value!r})"
    if name == "token" and not _TOKEN.fullmatch(value):
        return "expected an IDTOKEN (header.payload.signature in base64url; value hidden)"
    if name == "munge_key" and not _MUNGE_KEY.fullmatch(value):
        return "expected 32 to 1024 base64url characters (value hidden)"
    return None


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace ``%name%`` for every name in ``values``, quoted for where it stands (see the
    module docstring); other ``%...%`` text stays as it is (``date +%Y%m%d``)."""
    if not values:
        return text
    names = "|".join(re.escape(n) for n in sorted(values, key=len, reverse=True))
    pattern = re.compile(f"'%({names})%'|%({names})%")

    def one(match: re.Match) -> str:
        if match.group(1) is not None:
            return "'" + values[match.group(1)].replace("'", "'\\''") + "'"
        name = match.group(2)
        if not INERT.fullmatch(values[name]):
            raise UnsafeValue(name, "the value holds characters that need quoting, and %"
                              f"{name}% is not a whole single-quoted word ('%{name}%') in the "
                              "user-data (value hidden)")
        return values[name]

    return pattern.sub(one, text)


def unfilled(text: str, names: Iterable[str] = ()) -> List[Tuple[str, Optional[str]]]:
    """The placeholders ``text`` still holds after filling in, each with the name it was
    probably meant to be (a known or configured ``names``, for a misspelling such as %tokn%)
    or None (a name that was given no value)."""
    candidates = sorted(set(KNOWN_NAMES) | set(names))
    found = []
    for name in dict.fromkeys(PLACEHOLDER.findall(text)):
        close = [] if name in candidates else difflib.get_close_matches(name, candidates, 1, 0.6)
        found.append((name, close[0] if close else None))
    return found
