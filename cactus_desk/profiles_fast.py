"""The saved profiles read for the window's start, without pydantic.

The window must be usable before pydantic loads (it costs about as much as the rest of the
start). ``read_profiles_fast`` reads ``profiles.json`` with a strict, hand-written version of
``profiles.Profile``'s checks and returns ``ProfileSnapshot`` values equal, field by field,
to the ``Profile`` objects ``ProfileStore.all()`` would return. It accepts less than
``Profile`` does: anything unusual (a value of another type that pydantic would convert, a
key it does not know, a damaged file) gives None, and the caller reads the file with
``ProfileStore`` instead, so what is refused is refused with the store's own messages.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.urls import check_base_url
from cactus_desk.money import MAX_DECIMALS, Currency, currencies, with_decimals

# Kept equal to cactus_desk.profiles (a test compares both readings of the same files).
PROFILES_FILE = "profiles.json"
FILE_VERSION = 1
MAX_SITE_ID = 2**31 - 1
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_KEYS = frozenset(
    {
        "id",
        "name",
        "base_url",
        "merchant_id",
        "site_id",
        "environment",
        "extensions",
        "ca_bundle",
        "read_timeout",
        "decimals",
        "units_confirmed",
        "version",
    }
)


class _Unusual(ValueError):
    """Not for the fast reading: let ``ProfileStore`` read (and judge) the file."""


@dataclass(frozen=True)
class ProfileSnapshot:
    """A saved profile as ``Profile`` holds it, for the start: the same fields and reads."""

    id: str
    name: str
    base_url: str
    merchant_id: str
    site_id: int
    environment: str = "live"
    extensions: list[str] = field(default_factory=list)
    ca_bundle: str | None = None
    read_timeout: float = 180.0
    decimals: dict[str, int] = field(default_factory=dict)
    units_confirmed: dict[str, int] = field(default_factory=dict)
    version: int = 0

    def currency(self, code: str) -> Currency:
        """``code`` with this profile's decimals (its override, else currencies.json)."""
        return with_decimals(code, self.decimals)

    def needs_units_confirmation(self, code: str) -> bool:
        """As ``Profile.needs_units_confirmation``."""
        cur = self.currency(code)
        return (
            self.is_live
            and not cur.documented
            and self.units_confirmed.get(cur.code) != cur.exponent
        )

    @property
    def is_live(self) -> bool:
        """True for a live (real money) environment."""
        return self.environment == "live"


def read_profiles_fast(data_dir: Path) -> list[ProfileSnapshot] | None:
    """The saved profiles sorted by name, or None when ``ProfileStore`` must read the file."""
    path = Path(data_dir) / PROFILES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError):
        return None
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or set(document) - {"version", "profiles"}:
            raise _Unusual
        if document.get("version", FILE_VERSION) != FILE_VERSION:
            raise _Unusual
        entries = document.get("profiles")
        if not isinstance(entries, list):
            raise _Unusual
        profiles = [_snapshot(entry) for entry in entries]
    except (ValueError, TypeError, RecursionError):
        return None
    return sorted(profiles, key=lambda p: p.name.casefold())


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Unusual
    return value


def _visible(value: str, *, hidden: bool) -> str:
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc" or (hidden and category in _HIDDEN_CATEGORIES):
            raise _Unusual
    return value


def _places(value: Any) -> dict[str, int]:
    if type(value) is not dict:
        raise _Unusual
    known = currencies()
    cleaned: dict[str, int] = {}
    for code, places in value.items():
        key = _text(code).strip().upper()
        if key not in known or type(places) is not int or not 0 <= places <= MAX_DECIMALS:
            raise _Unusual
        cleaned[key] = places
    return cleaned


def _extensions(value: Any) -> list[str]:
    if type(value) is not list:
        raise _Unusual
    allowed = {m.wire for m in load_catalog().methods if not m.documented}
    cleaned: list[str] = []
    for item in value:
        method = _text(item).strip()
        if method not in allowed:
            raise _Unusual
        if method not in cleaned:
            cleaned.append(method)
    return cleaned


def _snapshot(entry: Any) -> ProfileSnapshot:
    """One entry checked as ``Profile`` checks it, normalised the same way."""
    if type(entry) is not dict or set(entry) - _KEYS or "id" not in entry:
        raise _Unusual
    profile_id = _text(entry["id"])
    if not _ID.fullmatch(profile_id):
        raise _Unusual
    name = _visible(_text(entry.get("name")).strip(), hidden=True)
    if not name or len(name) > 64:
        raise _Unusual
    merchant_id = _visible(_text(entry.get("merchant_id")).strip(), hidden=False)
    if not merchant_id or ";" in merchant_id:
        raise _Unusual
    site_id = entry.get("site_id")
    if type(site_id) is not int or not 0 < site_id <= MAX_SITE_ID:
        raise _Unusual
    environment = entry.get("environment", "live")
    if environment not in ("live", "sandbox") or type(environment) is not str:
        raise _Unusual
    ca_bundle = entry.get("ca_bundle")
    if ca_bundle is not None:
        ca_bundle = _visible(_text(ca_bundle).strip(), hidden=False) or None
    timeout = entry.get("read_timeout", 180.0)
    if type(timeout) not in (int, float) or not math.isfinite(timeout):
        raise _Unusual
    if not 5.0 <= timeout <= 600.0:
        raise _Unusual
    version = entry.get("version", 0)
    if type(version) is not int or version < 0:
        raise _Unusual
    return ProfileSnapshot(
        id=profile_id,
        name=name,
        base_url=check_base_url(_text(entry.get("base_url"))),
        merchant_id=merchant_id,
        site_id=site_id,
        environment=environment,
        extensions=_extensions(entry.get("extensions", [])),
        ca_bundle=ca_bundle,
        read_timeout=float(timeout),
        decimals=_places(entry.get("decimals", {})),
        units_confirmed=_places(entry.get("units_confirmed", {})),
        version=version,
    )
