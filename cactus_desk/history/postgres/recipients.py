"""The team's saved recipients in the PostgreSQL store (a ``RecipientRepository``).

Every desk of the team sees the same recipients; a card keeps only its masked number and
last four digits, as on a solo desk (``recipients.model``). ``saved_by`` is the database's
``session_user``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cactus_desk.history.postgres.connect import (
    NO_PASSWORD_FILE,
    parse_store_url,
    unreachable_message,
)
from cactus_desk.history.postgres.migrations import SchemaTooNewError, migrate
from cactus_desk.recipients.model import RecipientError, SavedRecipient
from cactus_desk.recipients.store import RecipientStoreError

CONNECT_TIMEOUT_S = 10


class PostgresRecipientStore:
    """Saved recipients in the team store at ``url`` (a libpq URL without a password)."""

    def __init__(
        self, url: str, *, password: str | None = None, connect_timeout: int = CONNECT_TIMEOUT_S
    ) -> None:
        try:
            target = parse_store_url(url)
        except ValueError as exc:
            raise RecipientStoreError(str(exc)) from None
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

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with psycopg.connect(self._url, row_factory=dict_row, **self._kwargs) as conn:
                if not self._migrated:
                    migrate(conn)
                    self._migrated = True
                yield conn
        except SchemaTooNewError as exc:
            raise RecipientStoreError(str(exc)) from None
        except psycopg.errors.InsufficientPrivilege:
            raise RecipientStoreError(
                f"Your database login may not change the team's saved recipients at "
                f"{self.label}; ask a Cactus Desk admin of your team."
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise RecipientStoreError(
                unreachable_message(self.label, exc, self._password)
            ) from None
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise RecipientStoreError(
                f"The team's saved recipients at {self.label} could not be used: {detail}"
            ) from None

    def all(self) -> list[SavedRecipient]:
        """Every saved recipient, by label."""
        with self._connection() as conn:
            rows = conn.execute("SELECT * FROM saved_recipients ORDER BY label_key").fetchall()
        found = []
        for row in rows:
            try:
                fields = json.loads(row["fields"])
                found.append(SavedRecipient.from_json({**row, "fields": fields}))
            except (ValueError, RecipientError) as exc:
                raise RecipientStoreError(
                    f"The saved recipient {row['label']!r} at {self.label} is damaged ({exc})."
                ) from None
        return found

    def save(self, recipient: SavedRecipient) -> SavedRecipient:
        """Add ``recipient``, replacing one with the same label (case does not count)."""
        values = {
            "label": recipient.label,
            "label_key": recipient.key,
            "method": recipient.method,
            "currency": recipient.currency,
            "site_login": recipient.site_login,
            "fields": json.dumps(recipient.fields, ensure_ascii=False, sort_keys=True),
            "card_last4": recipient.card_last4,
            "saved_at": time.time_ns() // 1_000_000,
        }
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO saved_recipients (label, label_key, method, currency, site_login, "
                "fields, card_last4, saved_at) VALUES (%(label)s, %(label_key)s, %(method)s, "
                "%(currency)s, %(site_login)s, %(fields)s, %(card_last4)s, %(saved_at)s) "
                "ON CONFLICT (label_key) DO UPDATE SET label = EXCLUDED.label, "
                "method = EXCLUDED.method, currency = EXCLUDED.currency, "
                "site_login = EXCLUDED.site_login, fields = EXCLUDED.fields, "
                "card_last4 = EXCLUDED.card_last4, saved_by = session_user, "
                "saved_at = EXCLUDED.saved_at",
                values,
            )
        return recipient

    def remove(self, label: str) -> bool:
        """Remove the recipient labelled ``label``; False when there was none."""
        with self._connection() as conn:
            cursor = conn.execute(
                "DELETE FROM saved_recipients WHERE label_key = %s", (label.strip().casefold(),)
            )
            return cursor.rowcount > 0
