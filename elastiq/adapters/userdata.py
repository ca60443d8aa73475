"""Worker user-data for the EC2 adapter: load it, substitute ``%name%`` placeholders, check it.

No SDK here.  The rendered user-data is a secret (it carries the pool's credentials): it is never
logged and never put in an error message; only placeholder names and sizes are.
"""
from __future__ import annotations

import base64
import binascii
import logging
import socket
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

from .ec2.config import Settings as EC2Section
from .base import ConfigError
from .userdata_values import UnsafeValue, fill, unfilled

log = logging.getLogger(__name__)

#: EC2 refuses user-data above 16 KiB, counted before base64 encoding.
MAX_USER_DATA_BYTES = 16 * 1024
#: Placeholders the original elastiq filled in by itself, from the master's own addresses.
AUTO_NAMES = ("ipv4", "ipv6", "fqdn")
GZIP_MAGIC = b"\x1f\x8b"

Detect = Callable[[Iterable[str]], Dict[str, str]]


def detect_addresses(
    names: Iterable[str],
    ipv4_probe: Tuple[str, int] = ("8.8.8.8", 53),
    ipv6_probe: Tuple[str, int] = ("2001:4860:4860::8888", 53),
    getfqdn: Callable[[], str] = socket.getfqdn,
) -> Dict[str, str]:
    """Detect this host's ``ipv4`` / ``ipv6`` / ``fqdn`` (only the ``names`` asked for).

    As the original elastiq: the address is the one of the interface that routes towards the
    probe address.  Connecting a UDP socket only makes the kernel pick the route; no packet is
    sent.  A name that cannot be detected is absent from the result.
    """
    wanted = set(names)
    found: Dict[str, str] = {}
    for name, family, probe in (("ipv4", socket.AF_INET, ipv4_probe),
                                ("ipv6", socket.AF_INET6, ipv6_probe)):
        if name not in wanted:
            continue
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect(probe)
                found[name] = sock.getsockname()[0]
        except OSError as err:
            log.warning("cannot detect this host's %s address: %s", name, err.strerror or err)
    if "fqdn" in wanted:
        fqdn = getfqdn()
        if fqdn:
            found["fqdn"] = fqdn
    return found


def load_user_data(
    ec2: EC2Section, given: Union[bytes, str, None], prefix: str = "ec2"
) -> Tuple[Optional[bytes], str]:
    """The raw worker user-data and the configuration key it came from.

    ``given`` (from the runtime) wins; then ``ec2.user_data_b64`` (base64, whitespace allowed);
    then ``ec2.user_data_file`` (read as it is).  ``(None, "")`` when there is none.  Any
    section with those two keys works: ``prefix`` is its name in messages (``openstack``).
    """
    if given is not None:
        return (given.encode("utf-8") if isinstance(given, str) else bytes(given)), "user_data"
    if ec2.user_data_b64:
        try:
            return base64.b64decode("".join(ec2.user_data_b64.split()), validate=True), \
                f"{prefix}.user_data_b64"
        except (binascii.Error, ValueError):
            raise ConfigError(f"{prefix}.user_data_b64 is not valid base64 (value hidden)",
                              key=f"{prefix}.user_data_b64") from None
    if ec2.user_data_file:
        try:
            with open(ec2.user_data_file, "rb") as handle:
                return handle.read(), f"{prefix}.user_data_file"
        except OSError as err:
            raise ConfigError(f"cannot read {prefix}.user_data_file {ec2.user_data_file}: "
                              f"{err.strerror}", key=f"{prefix}.user_data_file") from None
    return None, ""


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``%name%`` for every name in ``values``, quoted for where it stands
    (:func:`userdata_values.fill`: a ``'%name%'`` shell word stays one quoted word, elsewhere only
    inert values go in); other ``%...%`` text stays as it is (``date +%Y%m%d``).  Raises
    :class:`ConfigError` naming ``substitute.<name>`` for a value that would need quoting."""
    try:
        return fill(text, values)
    except UnsafeValue as err:
        raise ConfigError(str(err), key=f"substitute.{err.name}") from None


def _refuse_unfilled(text: str, values: Mapping[str, str], key: str) -> None:
    """ConfigError for a ``%name%`` still in the filled-in user-data: a worker booted with it
    could never join (no master address, no token)."""
    left = unfilled(text, values)
    if not left:
        return
    name, meant = left[0]
    source = key if key != "user_data" else "the worker user-data"
    listed = ", ".join(f"%{n}%" for n, _ in left)
    if meant is not None:
        raise ConfigError(f"{source} has {listed}: %{name}% is no placeholder elastiq fills in; "
                          f"did you mean %{meant}%?", key=source if key != "user_data" else None)
    how = (f"set substitute.{name}" + (" (it cannot be detected here)" if name in AUTO_NAMES
                                       else ""))
    raise ConfigError(f"{source} has {listed} with no value: {how}, or remove it from "
                      f"{source}; workers booted with it could never join",
                      key=f"substitute.{name}")


def prepare_user_data(
    ec2: EC2Section,
    given: Union[bytes, str, None] = None,
    configured: Optional[Mapping[str, str]] = None,
    runtime: Optional[Mapping[str, str]] = None,
    detect: Detect = detect_addresses,
    *, prefix: str = "ec2", cloud: str = "EC2", max_bytes: int = MAX_USER_DATA_BYTES,
) -> Optional[bytes]:
    """Load the worker user-data and fill in its placeholders; ``None`` when there is none.

    Values, by precedence: ``configured`` (the ``[substitute]`` section) over ``runtime`` (what
    the daemon passes) over ``detect`` (the master's ``ipv4`` / ``ipv6`` / ``fqdn``, detected
    only when the user-data uses them and nothing else gives them).  A placeholder left
    without a value (``%token%`` with no ``substitute.token``, an undetectable ``%ipv4%``) or
    misspelt (``%tokn%``) is a ConfigError naming it: workers booted with it could never join
    (see :func:`userdata_values.unfilled`).
    gzip-compressed or non-UTF-8 user-data is sent unchanged: placeholders must be filled in
    before compressing.  Raises :class:`ConfigError` naming the source key when the result is
    larger than ``max_bytes`` (EC2's 16 KiB limit; another cloud passes its own, its section's
    name as ``prefix`` and its name as ``cloud``).
    """
    raw, key = load_user_data(ec2, given, prefix)
    if raw is None:
        return None
    rendered = raw
    if not raw.startswith(GZIP_MAGIC):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            values: Dict[str, str] = {}
            explicit = {**dict(runtime or {}), **dict(configured or {})}
            wanted = [n for n in AUTO_NAMES if f"%{n}%" in text and n not in explicit]
            if wanted:
                values.update(detect(wanted))
            values.update(explicit)
            filled = substitute(text, values)
            _refuse_unfilled(filled, values, key)
            rendered = filled.encode("utf-8")
    if len(rendered) > max_bytes:
        source = key if key != "user_data" else f"{prefix}.user_data_b64/{prefix}.user_data_file"
        raise ConfigError(
            f"worker user-data is {len(rendered)} bytes, above {cloud}'s limit of "
            f"{max_bytes} bytes: shrink or gzip-compress {source}", key=source)
    return rendered
