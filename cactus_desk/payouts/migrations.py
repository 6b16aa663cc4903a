"""Ordered schema migrations for the history database.

Each migration is a function of a connection that runs inside its own ``BEGIN IMMEDIATE``
transaction together with the row that records its version in ``schema_version``, so a
migration that fails leaves the database exactly as it was. Append new migrations to
``MIGRATIONS``; never edit or reorder one that has shipped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

Migration = Callable[[sqlite3.Connection], None]


class SchemaTooNewError(RuntimeError):
    """The history file was written by a newer Cactus Desk than this one."""


def _v1_payouts(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE payouts (
            id INTEGER PRIMARY KEY,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            profile_id TEXT NOT NULL,
            profile_name TEXT NOT NULL,
            environment TEXT NOT NULL CHECK (environment IN ('live', 'sandbox')),
            merchant_id TEXT NOT NULL,
            site_id INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            invoice_id TEXT,
            site_login TEXT NOT NULL,
            method TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            state TEXT NOT NULL,
            gateway_status INTEGER,
            message TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            http_status INTEGER,
            request_json TEXT NOT NULL,
            response_json TEXT,
            unknown_kind TEXT
        )
        """
    )
    # The gateway looks invoices up by request_id per merchant and site.
    conn.execute(
        "CREATE UNIQUE INDEX payouts_request_unique ON payouts (merchant_id, site_id, request_id)"
    )
    # One index per sortable column, ending in id (the tie-breaker), so that a page of a
    # million rows sorted by any column is an index walk rather than a sort.
    for name, column in (
        ("created", "created_at"),
        ("profile", "profile_name COLLATE NOCASE"),
        ("request", "request_id COLLATE NOCASE"),
        ("invoice", "invoice_id COLLATE NOCASE"),
        ("login", "site_login COLLATE NOCASE"),
        ("method", "method COLLATE NOCASE"),
        ("amount", "amount_minor"),
        ("status", "gateway_status"),
    ):
        conn.execute(f"CREATE INDEX payouts_by_{name} ON payouts ({column}, id)")
    # The three exact-match filters, each also ordered by time (the default sort); the same
    # indexes serve sorting by state and currency.
    for name, column in (
        ("state", "state"),
        ("currency", "currency"),
        ("profile_id", "profile_id"),
    ):
        conn.execute(f"CREATE INDEX payouts_{name}_time ON payouts ({column}, created_at, id)")


MIGRATIONS: tuple[Migration, ...] = (_v1_payouts,)
"""Version N is ``MIGRATIONS[N - 1]``."""


def current_version(conn: sqlite3.Connection) -> int:
    """Return the schema version recorded in the database, 0 for an empty file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the pending migrations in order and return the resulting version.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each step manages its
    own transaction. Two processes opening the file at once are safe, because the version
    is re-read after the write lock is taken.
    """
    target = len(migrations)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            version = current_version(conn)
            if version > target:
                raise SchemaTooNewError(
                    f"The payout history uses schema version {version}, but this Cactus Desk "
                    f"only knows up to version {target}. Update Cactus Desk to open it."
                )
            if version == target:
                conn.execute("COMMIT")
                return version
            migrations[version](conn)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version + 1, time.time_ns() // 1_000_000),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
