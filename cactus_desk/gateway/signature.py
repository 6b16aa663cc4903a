"""The gateway's SHA-1 signature scheme, exactly as its published code computes it.

``sha1("k1:v1;k2:v2;...;kn:vn;" + salt)`` over every top-level field except
``signature``: keys sorted by code point on their original spelling and written in
lower case, top-level values that are empty or blank skipped, nested objects written as
``k:v;k:v`` with sorted (not lower-cased, not skipped) keys, lists sorted as strings,
and every scalar rendered with Python's ``str()`` (so ``True``, ``None``, ``1000.0``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

SIGNATURE_KEY = "signature"
SEPARATOR = ";"
SEPARATOR_MESSAGE = (
    "Remove the ';': the gateway's signature uses it to separate fields, so it cannot be sent."
)


class SeparatorError(ValueError):
    """A value to be signed contains ``;``, which would let it pass for other fields."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            f"{field} contains ';', which the gateway's signature cannot tell apart from its "
            "field separator; remove it."
        )


def check_separators(payload: Mapping[str, Any]) -> None:
    """Raise ``SeparatorError`` naming the first field whose key or value contains ``;``.

    The signing string joins ``key:value;`` pairs, so ``a;amount:1`` in one value would
    read as another field. Call before signing anything the console sends.
    """
    if _clean(payload):
        return  # the usual case; the walk below only names the field
    stack: list[tuple[str, Any]] = [(str(key), value) for key, value in payload.items()]
    while stack:
        name, value = stack.pop()
        if SEPARATOR in name:
            raise SeparatorError(name)
        if isinstance(value, Mapping):
            stack.extend((f"{name}.{key}", item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((name, item) for item in value)
        elif name != SIGNATURE_KEY and SEPARATOR in str(value):
            raise SeparatorError(name)


def _clean(payload: Mapping[str, Any]) -> bool:
    """True when ``check_separators`` would find nothing: no key holds ``;``, and no value
    rendered as text does, the top-level ``signature`` (and its list items) aside."""
    for key, value in payload.items():
        name = str(key)
        if SEPARATOR in name:
            return False
        kind = type(value)
        if kind is str:  # the usual values first, without a call
            if SEPARATOR in value and name != SIGNATURE_KEY:
                return False
        elif kind is not int and not _clean_value(value, exempt=name == SIGNATURE_KEY):
            return False
    return True


def _clean_value(value: Any, *, exempt: bool) -> bool:
    if type(value) is str:
        return exempt or SEPARATOR not in value
    if isinstance(value, Mapping):
        for key, item in value.items():
            if SEPARATOR in str(key):
                return False
            if type(item) is str:  # additional fields: text, without a call each
                if SEPARATOR in item:
                    return False
            elif not _clean_value(item, exempt=False):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(_clean_value(item, exempt=exempt) for item in value)
    return exempt or SEPARATOR not in str(value)


def _render(value: Any) -> str:
    if isinstance(value, Mapping):
        return ";".join(f"{key}:{value[key]}" for key in sorted(value))
    if isinstance(value, list | tuple):
        return ";".join(sorted(str(item) for item in value))
    return str(value)


def signing_string(payload: Mapping[str, Any]) -> str:
    """Return the string that is hashed, without the salt (useful for diagnostics)."""
    parts: list[str] = []
    for key in sorted(payload):
        if key == SIGNATURE_KEY:
            continue
        rendered = _render(payload[key])
        if rendered.strip() == "":
            continue
        parts.append(f"{key.lower()}:{rendered};")
    return "".join(parts)


def sign(payload: Mapping[str, Any], salt: str) -> str:
    """Return the lowercase hex SHA-1 signature of ``payload`` with ``salt``."""
    return hashlib.sha1((signing_string(payload) + salt).encode("utf-8")).hexdigest()


def verify(payload: Mapping[str, Any], salt: str) -> bool:
    """True when ``payload["signature"]`` is the signature of the rest of it (constant time)."""
    received = payload.get(SIGNATURE_KEY)
    # compare_digest refuses non-ASCII text; no such string is a hex signature anyway.
    if not isinstance(received, str) or not received or not received.isascii():
        return False
    return hmac.compare_digest(sign(payload, salt), received.strip().lower())
