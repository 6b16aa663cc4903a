"""A recipient's matches kept in a temporary table of the reading connection: filled once
per query and data version, filled again when either changes, the least recently used of
``SLOTS`` tables reused, and taken back with its tag by a rollback."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from cactus_desk.history.sqlite.match_sets import SLOTS, kept_ids, kept_matches

QUERY = "SELECT n FROM numbers WHERE n % ? = 0"


@pytest.fixture
def fills() -> list[str]:
    """The fillings of a kept table the connection ran."""
    return []


@pytest.fixture
def conn(fills: list[str]) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO numbers VALUES (?)", [(n,) for n in range(1, 31)])
    conn.set_trace_callback(lambda sql: fills.append(sql) if sql.startswith("INSERT OR") else None)
    yield conn
    conn.close()


def _ids(conn: sqlite3.Connection, table: str) -> list[int]:
    return [row[0] for row in conn.execute(f"SELECT id FROM {table} ORDER BY id")]


def test_a_query_is_filled_once_per_data_version(
    conn: sqlite3.Connection, fills: list[str]
) -> None:
    table = kept_matches(conn, 7, QUERY, [10])
    assert _ids(conn, table) == [10, 20, 30]
    conn.execute("DELETE FROM numbers WHERE n = 20")
    assert kept_matches(conn, 7, QUERY, [10]) == table
    assert _ids(conn, table) == [10, 20, 30]  # unchanged version: the kept ids
    assert len(fills) == 1
    assert _ids(conn, kept_matches(conn, 8, QUERY, [10])) == [10, 30]
    assert len(fills) == 2


def test_the_least_recently_used_table_is_filled_again(
    conn: sqlite3.Connection, fills: list[str]
) -> None:
    tables = [kept_matches(conn, 1, QUERY, [step]) for step in range(2, 2 + SLOTS)]
    assert len(set(tables)) == SLOTS
    kept_matches(conn, 1, QUERY, [2])  # used last: the other one goes
    newest = kept_matches(conn, 1, QUERY, [7])
    assert newest == tables[1]
    assert _ids(conn, newest) == [7, 14, 21, 28]
    assert _ids(conn, kept_matches(conn, 1, QUERY, [2])) == list(range(2, 31, 2))
    assert len(fills) == SLOTS + 1


def test_a_rollback_takes_the_table_back_with_its_tag(
    conn: sqlite3.Connection, fills: list[str]
) -> None:
    conn.execute("BEGIN")
    kept_matches(conn, 1, QUERY, [5])
    conn.execute("ROLLBACK")
    assert _ids(conn, kept_matches(conn, 1, QUERY, [5])) == [5, 10, 15, 20, 25, 30]
    assert len(fills) == 2


def test_ids_are_kept_under_their_key_and_read_only_to_fill(conn: sqlite3.Connection) -> None:
    calls: list[int] = []

    def ids() -> list[int]:
        calls.append(1)
        return [9, 3, 3, 5]

    table = kept_ids(conn, 4, "every match of q", ids)
    assert _ids(conn, table) == [3, 5, 9]
    assert kept_ids(conn, 4, "every match of q", ids) == table and len(calls) == 1
    assert _ids(conn, kept_ids(conn, 5, "every match of q", lambda: [1])) == [1]
