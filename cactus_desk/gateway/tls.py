"""Verifying TLS contexts, built once per CA bundle and shared by every gateway client.

Building one parses the whole bundle (certifi's, or a profile's own): about 17 ms of CPU.
A client is made per balance refresh and per profile, so each used to pay it again.
A context only verifies; sharing it between threads and connections is what OpenSSL expects.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import httpx

_lock = threading.Lock()
# None: certifi's bundle; else (path, size, modified): an edited bundle is read again.
_contexts: dict[tuple[str, int, int] | None, ssl.SSLContext] = {}
_MAX_BUNDLES = 8


def tls_context(ca_bundle: str | Path | None = None) -> ssl.SSLContext:
    """A context verifying against ``ca_bundle`` (a PEM file), or the default bundle when None
    (certifi's, or the one ``SSL_CERT_FILE`` names).

    Raises ``ValueError`` with a clear message when the file is missing or not a bundle.
    """
    key: tuple[str, int, int] | None = None
    bundle: Path | None = None
    if ca_bundle:
        bundle = Path(ca_bundle).expanduser()
        try:
            stat = bundle.stat()
        except OSError:
            raise ValueError(f"The CA bundle file does not exist: {bundle}") from None
        if not bundle.is_file():
            raise ValueError(f"The CA bundle file does not exist: {bundle}")
        key = (str(bundle.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        known = _contexts.get(key)
    if known is not None:
        return known
    context = _build(bundle)
    with _lock:
        if len(_contexts) >= _MAX_BUNDLES:
            _contexts.clear()
        return _contexts.setdefault(key, context)


def _build(bundle: Path | None) -> ssl.SSLContext:
    if bundle is None:
        return httpx.create_ssl_context()
    try:
        return ssl.create_default_context(cafile=str(bundle))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"The CA bundle {bundle} could not be loaded: {exc}") from None
