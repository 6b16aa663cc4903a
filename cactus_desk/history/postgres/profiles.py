"""The team's profiles in PostgreSQL: every desk sees one list; each desk keeps its own salt.

A ``ProfileRepository`` over the ``profiles`` table. The database stamps who changed a
profile and when (``session_user``, ``now()``) and appends each change to
``profile_changes``; an update names the version it was read from and is refused
(``ProfileConflictError``) when another desk saved a newer one meanwhile, so one person's
change to money settings never silently overwrites another's. Each call takes its own short
connection: profiles are read rarely, and a desk sees another desk's change on its next read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import ValidationError

from cactus_desk.history.postgres.connect import (
    NO_PASSWORD_FILE,
    parse_store_url,
    unreachable_message,
)
from cactus_desk.history.postgres.migrations import SchemaTooNewError, migrate
from cactus_desk.profiles import (
    DuplicateProfileError,
    Profile,
    ProfileConflictError,
    ProfileNotFoundError,
    ProfileStoreError,
    conflict_message,
    describe_validation_error,
    find_by_name,
)

CONNECT_TIMEOUT_S = 10
#: The profile fields kept in their own columns; the rest go to ``settings`` (JSON).
_COLUMNS = ("id", "name", "base_url", "merchant_id", "site_id", "environment")
_SELECT = (
    "SELECT id, name, base_url, merchant_id, site_id, environment, settings, version FROM profiles"
)


@dataclass(frozen=True)
class ProfileChange:
    """One recorded change of a profile: what, to which version, by whom and when."""

    profile_id: str
    action: str  # add, update, remove
    version: int
    changed_by: str
    changed_at: datetime


def _row_values(profile: Profile) -> dict[str, Any]:
    data = profile.model_dump(mode="json")
    data.pop("version", None)
    settings = {key: value for key, value in data.items() if key not in _COLUMNS}
    values = {key: data[key] for key in _COLUMNS}
    values["name_key"] = profile.name.casefold()
    values["settings"] = json.dumps(settings, sort_keys=True)
    return values


class PostgresProfileStore:
    """Profiles in the team store at ``url`` (a libpq URL without a password).

    ``password`` comes from the keyring (or a systemd credential), or is None to let libpq
    take ``PGPASSWORD`` or a client certificate; libpq's password file is never read.
    """

    def __init__(
        self, url: str, *, password: str | None = None, connect_timeout: int = CONNECT_TIMEOUT_S
    ) -> None:
        try:
            target = parse_store_url(url)
        except ValueError as exc:
            raise ProfileStoreError(str(exc)) from None
        self.label = target.label
        self._url = target.url
        self._password = password
        self._migrated = False
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": connect_timeout,
            "application_name": "cactus-desk",
            "passfile": NO_PASSWORD_FILE,
        }
        if password:
            self._kwargs["password"] = password

    # -- connections ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with psycopg.connect(self._url, row_factory=dict_row, **self._kwargs) as conn:
                if not self._migrated:
                    migrate(conn)  # the table may be newer than the desk's history
                    self._migrated = True
                yield conn
        except SchemaTooNewError as exc:
            raise ProfileStoreError(str(exc)) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ProfileStoreError(
                f"Your database login may not do this with the team's profiles at "
                f"{self.label} ({detail}); ask a Cactus Desk admin of your team."
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            message = unreachable_message(self.label, exc, self._password)
            raise ProfileStoreError(message) from None
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ProfileStoreError(
                f"The team profiles at {self.label} could not be used: {detail}"
            ) from None

    def _profile(self, row: Mapping[str, Any]) -> Profile:
        settings = row["settings"] if isinstance(row["settings"], dict) else {}
        data = {**settings, **{key: row[key] for key in _COLUMNS}, "version": row["version"]}
        try:
            return Profile.model_validate(data)
        except ValidationError as exc:
            raise ProfileStoreError(
                f"The team profile {row['name']!r} at {self.label} is not valid "
                f"({describe_validation_error(exc)}); an admin must correct it."
            ) from None

    # -- reading --------------------------------------------------------------------------

    def all(self) -> list[Profile]:
        """All profiles, sorted by name (ignoring case)."""
        with self._connection() as conn:
            rows = conn.execute(_SELECT).fetchall()
        return sorted((self._profile(row) for row in rows), key=lambda p: p.name.casefold())

    def get(self, name: str) -> Profile:
        """The profile called ``name`` (case is ignored when no exact match exists)."""
        return find_by_name(self.all(), name)

    def get_by_id(self, profile_id: str) -> Profile:
        """The profile whose stable id is ``profile_id``."""
        with self._connection() as conn:
            row = conn.execute(f"{_SELECT} WHERE id = %s", (profile_id,)).fetchone()
        if row is None:
            raise ProfileNotFoundError(f"There is no profile with id {profile_id!r}")
        return self._profile(row)

    def changes(self, profile_id: str) -> list[ProfileChange]:
        """The recorded changes of ``profile_id``, oldest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT profile_id, action, version, changed_by, changed_at "
                "FROM profile_changes WHERE profile_id = %s ORDER BY id",
                (profile_id,),
            ).fetchall()
        return [ProfileChange(**row) for row in rows]

    # -- writing --------------------------------------------------------------------------

    def add(self, profile: Profile) -> Profile:
        """Save a new profile (version 1) and return it as stored.

        Raises DuplicateProfileError when the name (ignoring case) or the id is taken.
        """
        values = _row_values(profile)
        names = ", ".join(values)
        marks = ", ".join(f"%({key})s" for key in values)
        with self._connection() as conn:
            try:
                row = conn.execute(
                    f"INSERT INTO profiles ({names}) VALUES ({marks}) "
                    "ON CONFLICT DO NOTHING RETURNING version",
                    values,
                ).fetchone()
            except psycopg.errors.UniqueViolation:
                row = None
            if row is None:
                raise self._duplicate(conn, profile)
        return profile.model_copy(update={"version": int(row["version"])})

    def update(self, profile: Profile) -> Profile:
        """Replace the stored profile with the same id (a rename keeps its salt); return it.

        Only when the stored version is ``profile.version``: otherwise another desk changed it
        since it was read, and ``ProfileConflictError`` says who and when.
        """
        values = _row_values(profile)
        values["expected"] = profile.version
        changes = ", ".join(f"{key} = %({key})s" for key in values if key not in ("id", "expected"))
        with self._connection() as conn:
            try:
                row = conn.execute(
                    f"UPDATE profiles SET {changes} "
                    "WHERE id = %(id)s AND version = %(expected)s RETURNING version",
                    values,
                ).fetchone()
            except psycopg.errors.UniqueViolation:
                raise self._duplicate(conn, profile) from None
            if row is None:
                current = conn.execute(
                    "SELECT name, updated_by, updated_at FROM profiles WHERE id = %s",
                    (profile.id,),
                ).fetchone()
                if current is None:
                    raise ProfileNotFoundError(f"There is no profile with id {profile.id!r}")
                when = current["updated_at"].strftime("%Y-%m-%d %H:%M:%S %Z").strip()
                raise ProfileConflictError(
                    conflict_message(current["name"], current["updated_by"], when)
                )
        return profile.model_copy(update={"version": int(row["version"])})

    def remove(self, name: str) -> Profile:
        """Delete the profile called ``name`` and return it (so its salt can be deleted too)."""
        victim = self.get(name)
        with self._connection() as conn:
            row = conn.execute(
                "DELETE FROM profiles WHERE id = %s RETURNING id", (victim.id,)
            ).fetchone()
        if row is None:
            raise ProfileNotFoundError(f"There is no profile named {name!r}")
        return victim

    @staticmethod
    def _duplicate(conn: psycopg.Connection[dict[str, Any]], profile: Profile) -> Exception:
        found = conn.execute(
            "SELECT name FROM profiles WHERE name_key = %s AND id <> %s",
            (profile.name.casefold(), profile.id),
        ).fetchone()
        if found is not None:
            return DuplicateProfileError(f"A profile named {found['name']!r} already exists")
        return DuplicateProfileError(f"A profile with id {profile.id!r} already exists")
