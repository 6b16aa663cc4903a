"""Gateway profiles: the non-secret settings of each merchant site.

A solo desk keeps them in ``profiles.json`` (``ProfileStore``); a team keeps them in its
PostgreSQL store (``cactus_desk.history.postgres.profiles``). Both are a ``ProfileRepository``.
The salt is in neither: it stays in each machine's OS keyring.
"""

from __future__ import annotations

import json
import os
import threading
import unicodedata
import uuid
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.urls import check_base_url
from cactus_desk.money import MAX_DECIMALS, Currency, currencies, with_decimals
from cactus_desk.paths import write_private_file

PROFILES_FILE = "profiles.json"
FILE_VERSION = 1
# The gateway types site_id as an integer without a range; a signed 32-bit one is the safe
# reading, so a larger number is refused here rather than overflowing somewhere downstream.
MAX_SITE_ID = 2**31 - 1
MAX_CA_BUNDLE_BYTES = 8 * 1024 * 1024
# Control, format (bidi overrides, zero-width), surrogate and line/paragraph separators: they
# make a name look like another one, or reorder what is shown around it.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _no_control_chars(value: str, what: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def _no_hidden_chars(value: str, what: str) -> str:
    for ch in value:
        if unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            raise ValueError(
                f"{what} must not contain invisible formatting characters (such as bidi or "
                f"zero-width marks): found U+{ord(ch):04X}"
            )
    return value


def check_ca_bundle(path: Path) -> None:
    """Raise ValueError unless ``path`` is a file of PEM certificates TLS can load."""
    import ssl

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if path.stat().st_size > MAX_CA_BUNDLE_BYTES:
        raise ValueError(f"{path} is too large for a CA bundle")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, UnicodeError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise ValueError(f"{path} is not a file of PEM certificates ({reason})") from None
    if context.cert_store_stats().get("x509", 0) == 0:
        raise ValueError(f"{path} holds no certificate")


class Profile(BaseModel):
    """One merchant site on one gateway. The salt is not here: it lives in the keyring."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str
    base_url: str
    merchant_id: str
    site_id: int = Field(gt=0, le=MAX_SITE_ID)
    environment: Literal["live", "sandbox"] = "live"
    extensions: list[str] = Field(default_factory=list)
    ca_bundle: str | None = None
    read_timeout: float = Field(default=180.0, ge=5.0, le=600.0)
    # Decimals per currency where this site differs from currencies.json (minor units).
    decimals: dict[str, int] = Field(default_factory=dict)
    # Currency -> decimals a person confirmed on a first LIVE payout (undocumented currencies).
    units_confirmed: dict[str, int] = Field(default_factory=dict)
    # The stored settings this copy was read from: an update naming an older version is
    # refused (ProfileConflictError) rather than overwriting another person's change.
    version: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        value = _no_control_chars(value.strip(), "The profile name")
        value = _no_hidden_chars(value, "The profile name")
        if not value:
            raise ValueError("The profile name is empty")
        if len(value) > 64:
            raise ValueError("The profile name is longer than 64 characters")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("merchant_id")
    @classmethod
    def _check_merchant_id(cls, value: str) -> str:
        value = _no_control_chars(value.strip(), "The merchant ID")
        if not value:
            raise ValueError("The merchant ID is empty")
        if ";" in value:  # the gateway's signature separator: it could forge other fields
            raise ValueError("The merchant ID must not contain ';'")
        return value

    @field_validator("extensions")
    @classmethod
    def _check_extensions(cls, value: list[str]) -> list[str]:
        allowed = extension_methods()
        cleaned: list[str] = []
        for item in value:
            method = item.strip()
            if method not in allowed:
                choices = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{method!r} is not an extension method (choose from: {choices})")
            if method not in cleaned:
                cleaned.append(method)
        return cleaned

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _no_control_chars(value.strip(), "The CA bundle path")

    @field_validator("decimals", "units_confirmed", mode="before")
    @classmethod
    def _check_decimals(cls, value: Any) -> dict[str, int]:
        if not isinstance(value, dict):
            raise ValueError("must map currency codes to a number of decimals, e.g. IDR=0")
        known = currencies()
        cleaned: dict[str, int] = {}
        for code, places in value.items():
            key = str(code).strip().upper()
            if key not in known:
                raise ValueError(f"{code!r} is not a currency (choose from: {', '.join(known)})")
            if isinstance(places, bool) or not isinstance(places, int):
                raise ValueError(f"{key}: the decimals must be a whole number 0-{MAX_DECIMALS}")
            if not 0 <= places <= MAX_DECIMALS:
                raise ValueError(f"{key}: the decimals must be 0-{MAX_DECIMALS}, not {places}")
            cleaned[key] = places
        return cleaned

    def currency(self, code: str) -> Currency:
        """``code`` with this profile's decimals (its override, else currencies.json)."""
        return with_decimals(code, self.decimals)

    def needs_units_confirmation(self, code: str) -> bool:
        """True before the first LIVE payout in a currency whose convention is undocumented.

        Changing the profile's decimals for ``code`` asks again: the confirmation is of a number.
        """
        cur = self.currency(code)
        return (
            self.is_live
            and not cur.documented
            and self.units_confirmed.get(cur.code) != (cur.exponent)
        )

    @property
    def is_live(self) -> bool:
        """True for a live (real money) environment."""
        return self.environment == "live"


def extension_methods() -> frozenset[str]:
    """Wire names of the catalog's methods that a profile may switch on (undocumented ones)."""
    return frozenset(m.wire for m in load_catalog().methods if not m.documented)


def describe_validation_error(error: ValidationError) -> str:
    """Turn pydantic's report into one readable line per field, e.g. "site_id: must be > 0"."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "profile"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{field}: {message}")
    return "; ".join(lines)


class ProfileStoreError(RuntimeError):
    """The profile file cannot be read or written."""


class DuplicateProfileError(ValueError):
    """Another profile already has this name (names are compared ignoring case) or id."""


class ProfileNotFoundError(KeyError):
    """No profile has this name or id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "No such profile"


class ProfileConflictError(ProfileStoreError):
    """The profile was changed since this copy was read; nothing was saved."""


def conflict_message(name: str, by: str | None = None, at: str | None = None) -> str:
    """The sentence for an update refused because the stored profile is newer."""
    who = f" by {by}" if by else ""
    when = f" at {at}" if at else ""
    return (
        f"The profile {name!r} was changed{who}{when} after you opened it, so your change was "
        "not saved (money settings are never overwritten blindly). Open it again and make "
        "your change on the current settings."
    )


class ProfileRepository(Protocol):
    """Where profiles are kept: a local file, or a team store shared by many desks.

    ``add`` and ``update`` return the profile as stored (with its new ``version``);
    ``update`` raises ``ProfileConflictError`` when ``profile.version`` is not the stored one,
    ``DuplicateProfileError`` for a taken name, ``ProfileNotFoundError`` for an unknown id.
    Any failure to read or write is ``ProfileStoreError``.
    """

    def all(self) -> list[Profile]:
        """All profiles, sorted by name (ignoring case)."""
        ...

    def get(self, name: str) -> Profile:
        """The profile called ``name`` (case is ignored when no exact match exists)."""
        ...

    def get_by_id(self, profile_id: str) -> Profile:
        """The profile whose stable id is ``profile_id``."""
        ...

    def add(self, profile: Profile) -> Profile:
        """Save a new profile."""
        ...

    def update(self, profile: Profile) -> Profile:
        """Replace the stored profile with the same id, if ``profile.version`` is current."""
        ...

    def remove(self, name: str) -> Profile:
        """Delete the profile called ``name`` and return it."""
        ...


def find_by_name(profiles: list[Profile], name: str) -> Profile:
    """The profile called ``name`` in ``profiles``: an exact match first, then ignoring case."""
    wanted = name.strip()
    for profile in profiles:
        if profile.name == wanted:
            return profile
    for profile in profiles:
        if profile.name.casefold() == wanted.casefold():
            return profile
    raise ProfileNotFoundError(f"There is no profile named {name!r}")


class ProfileStore:
    """Profiles in ``<data_dir>/profiles.json`` (mode 0600, replaced atomically on each save)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / PROFILES_FILE
        self._lock = threading.RLock()
        # The file's identity (inode, size, times) and what was read from it: the window asks
        # for the profiles after every payout, and reading and checking the file again each
        # time held the GUI thread for milliseconds while workers competed for the interpreter.
        self._read: tuple[tuple[int, ...], list[Profile]] | None = None

    def all(self) -> list[Profile]:
        """All profiles, sorted by name."""
        with self._lock:
            return sorted(self._load(), key=lambda p: p.name.casefold())

    def get(self, name: str) -> Profile:
        """The profile called ``name`` (case is ignored when no exact match exists)."""
        with self._lock:
            profiles = self._load()
        return find_by_name(profiles, name)

    def get_by_id(self, profile_id: str) -> Profile:
        """The profile whose stable id is ``profile_id``."""
        with self._lock:
            for profile in self._load():
                if profile.id == profile_id:
                    return profile
        raise ProfileNotFoundError(f"There is no profile with id {profile_id!r}")

    def add(self, profile: Profile) -> Profile:
        """Save a new profile and return it as stored (unchanged: its version is its own).

        Raises DuplicateProfileError when the name or id is taken.
        """
        with self._lock:
            profiles = self._load()
            self._check_unique(profiles, profile)
            profiles.append(profile)
            self._save(profiles)
        return profile

    def update(self, profile: Profile) -> Profile:
        """Replace the stored profile with the same id (a rename keeps its salt); return it.

        Raises ProfileConflictError when the file holds a newer version than ``profile`` was
        read from (another window or command changed it meanwhile).
        """
        with self._lock:
            profiles = self._load()
            index = next((i for i, p in enumerate(profiles) if p.id == profile.id), None)
            if index is None:
                raise ProfileNotFoundError(f"There is no profile with id {profile.id!r}")
            current = profiles[index]
            if current.version != profile.version:
                raise ProfileConflictError(conflict_message(current.name))
            stored = profile.model_copy(update={"version": current.version + 1})
            others = profiles[:index] + profiles[index + 1 :]
            self._check_unique(others, stored)
            profiles[index] = stored
            self._save(profiles)
        return stored

    def remove(self, name: str) -> Profile:
        """Delete the profile called ``name`` and return it (so its salt can be deleted too)."""
        with self._lock:
            victim = self.get(name)
            self._save([p for p in self._load() if p.id != victim.id])
        return victim

    @staticmethod
    def _check_unique(profiles: list[Profile], candidate: Profile) -> None:
        for existing in profiles:
            if existing.name.casefold() == candidate.name.casefold():
                raise DuplicateProfileError(f"A profile named {existing.name!r} already exists")
            if existing.id == candidate.id:
                raise DuplicateProfileError(f"A profile with id {candidate.id!r} already exists")

    def _damaged(self, detail: str) -> ProfileStoreError:
        return ProfileStoreError(
            f"The profile file {self.path} is damaged ({detail}). It was left untouched: "
            "repair it or move it aside, then try again."
        )

    def _load(self) -> list[Profile]:
        """The stored profiles, read again only when the file changed; copies, so a caller's
        change never reaches another caller."""
        try:
            seen = os.stat(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ProfileStoreError(f"Cannot read the profile file {self.path}: {exc}") from None
        identity = (seen.st_ino, seen.st_dev, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)
        if self._read is None or self._read[0] != identity:
            self._read = (identity, self._read_file())
        return [profile.model_copy(deep=True) for profile in self._read[1]]

    def _read_file(self) -> list[Profile]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileStoreError(f"Cannot read the profile file {self.path}: {exc}") from None
        try:
            document: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._damaged(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(document, dict) or not isinstance(document.get("profiles"), list):
            raise self._damaged("no list of profiles")
        profiles: list[Profile] = []
        for position, entry in enumerate(document["profiles"], start=1):
            try:
                profiles.append(Profile.model_validate(entry))
            except ValidationError as exc:
                raise self._damaged(
                    f"profile #{position}: {describe_validation_error(exc)}"
                ) from None
        return profiles

    def _save(self, profiles: list[Profile]) -> None:
        document = {
            "version": FILE_VERSION,
            "profiles": [p.model_dump(mode="json") for p in profiles],
        }
        payload = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        try:
            write_private_file(self.data_dir, self.path, payload)
        except OSError as exc:
            raise ProfileStoreError(f"Cannot save the profiles to {self.path}: {exc}") from None
