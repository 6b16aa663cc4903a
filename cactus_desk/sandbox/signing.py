"""The sandbox gateway's own signature code, written from the gateway's signature page.

Deliberately separate from the console's signing code: the sandbox stands in for the other
side of the wire, so a mistake shared by both would sign and verify "correctly" and never show.
It follows the published server code: every field except ``signature``, keys in ``sorted()``
order written in lower case, ``key:value;`` pairs with the site salt appended after the last
``;``, SHA-1 in lowercase hex. Values are rendered with ``str()``; a nested object becomes
``k:v;k:v`` (inner keys sorted, nothing skipped) and a list its sorted items joined by ``;``;
a top-level value whose rendering is empty or blank is left out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

SIGNATURE_FIELD = "signature"


def _value_text(value: Any) -> str:
    if isinstance(value, dict):
        return ";".join(f"{inner}:{value[inner]}" for inner in sorted(value))
    if isinstance(value, list):
        return ";".join(sorted(str(item) for item in value))
    return str(value)


def string_to_sign(fields: Mapping[str, Any]) -> str:
    """The ``key:value;`` string the digest covers, before the salt is appended."""
    text = ""
    for name in sorted(fields):
        if name == SIGNATURE_FIELD:
            continue
        rendered = _value_text(fields[name])
        if rendered.strip():
            text += name.lower() + ":" + rendered + ";"
    return text


def signature_of(fields: Mapping[str, Any], salt: str) -> str:
    """The gateway's signature of ``fields`` (its ``signature`` entry, if any, is ignored)."""
    return hashlib.sha1((string_to_sign(fields) + salt).encode("utf-8")).hexdigest()


def signature_matches(fields: Mapping[str, Any], salt: str) -> bool:
    """True when ``fields["signature"]`` is exactly the signature of the other fields.

    Compared in constant time, as lowercase hex with nothing around it, as the gateway signs.
    """
    given = fields.get(SIGNATURE_FIELD)
    if not isinstance(given, str) or not given:
        return False
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters.
    expected = signature_of(fields, salt).encode("ascii")
    return hmac.compare_digest(expected, given.encode("utf-8", "replace"))
