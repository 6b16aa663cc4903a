"""Check a gateway base URL before anything is sent to it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class InvalidURLError(ValueError):
    """The base URL is not a usable http(s) address."""


class InsecureURLError(InvalidURLError):
    """The base URL uses plain HTTP to a host that is not this machine."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """Return ``url`` normalised (no trailing slash), or raise with a plain message.

    HTTPS is required, except to a loopback host (the embedded sandbox), because the
    payout body carries recipient details and is signed with the site salt.
    """
    text = (url or "").strip()
    if not text:
        raise InvalidURLError("Enter the gateway address, for example https://cactusgino.com")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURLError(
            f"The gateway address must start with https:// (got {text!r})"
            if scheme
            else f"The gateway address needs https:// in front (got {text!r})"
        )
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError:
        raise InvalidURLError(f"The gateway address has an invalid port: {text!r}") from None
    if not host:
        raise InvalidURLError(f"The gateway address has no host name: {text!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidURLError("The gateway address must not contain a user name or password")
    if parts.query or parts.fragment:
        raise InvalidURLError("The gateway address must not contain '?' or '#' parts")
    if scheme == "http" and not is_loopback_host(host):
        raise InsecureURLError(
            f"Plain http:// is only allowed to this computer (localhost); use https:// for {host}"
        )
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, parts.netloc.lower(), path, "", ""))
