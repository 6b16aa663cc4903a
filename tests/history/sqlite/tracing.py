"""Recording the SQL a SQLite history store runs, for the query-plan tests."""

from __future__ import annotations

import sqlite3

import pytest

from cactus_desk.history.sqlite.store import SqliteHistoryStore


def trace_into(patch: pytest.MonkeyPatch, statements: list[str]) -> None:
    """Every store connection opened while ``patch`` holds records its statements."""
    original = SqliteHistoryStore._connect

    def connect(self: SqliteHistoryStore) -> sqlite3.Connection:
        conn = original(self)
        conn.set_trace_callback(statements.append)
        return conn

    patch.setattr(SqliteHistoryStore, "_connect", connect)
