"""Sets of payout ids kept in temporary tables of the reading connection.

A walk of a sort's index tests each entry against the recipient's matches as a set, which
SQLite builds again for every statement: 45 ms for the 118,000 payouts of "petrov" at
5,000,000, on every page of every order. Kept in a table of the connection (its INTEGER
PRIMARY KEY is the set, no build), a query's next pages test against it at once. A query's
every match, once sorted (``store._kept_page``), is kept the same way for its other
orders. Each table is tagged with the data version it was filled at and filled again once
that moves on. It is written in the caller's read transaction, so a rollback takes the
table and its tag back together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

#: Tables kept per connection: the history panel's recipient, a query's every match
#: (``store._kept_page``) and one more.
SLOTS = 3
_TAGS = "temp.match_set_tags"


def kept_matches(conn: sqlite3.Connection, version: int, query: str, params: Sequence[Any]) -> str:
    """The temporary table (one ``id`` column) holding the ids ``query`` selects at data
    ``version``; filled now unless an earlier page of this connection filled it."""
    key = json.dumps([query, list(params)])
    return _kept(conn, version, key, lambda table: _fill(conn, table, query, params))


def kept_ids(
    conn: sqlite3.Connection, version: int, key: str, ids: Callable[[], Sequence[int]]
) -> str:
    """The temporary table (one ``id`` column) holding ``ids()``, kept under ``key`` at data
    ``version``; ``ids`` is called only to fill it."""
    query = "SELECT value FROM json_each(?)"
    return _kept(conn, version, key, lambda table: _fill(conn, table, query, [_json(ids())]))


def _json(ids: Sequence[int]) -> str:
    return json.dumps(list(ids))


def _fill(conn: sqlite3.Connection, table: str, query: str, params: Sequence[Any]) -> None:
    conn.execute(f"INSERT OR IGNORE INTO {table} (id) {query}", list(params))


def _kept(conn: sqlite3.Connection, version: int, key: str, fill: Callable[[str], None]) -> str:
    """The slot's table tagged ``key`` at ``version``, or the least recently used one,
    emptied, filled by ``fill`` and so tagged."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_TAGS} (slot INTEGER PRIMARY KEY, query TEXT NOT NULL, "
        "version INTEGER NOT NULL, used INTEGER NOT NULL)"
    )
    tags = {
        row[0]: row[1:] for row in conn.execute(f"SELECT slot, query, version, used FROM {_TAGS}")
    }
    used = 1 + max((tag[2] for tag in tags.values()), default=0)
    slot = next((s for s, tag in tags.items() if tag[0] == key and tag[1] == version), None)
    if slot is not None:
        conn.execute(f"UPDATE {_TAGS} SET used = ? WHERE slot = ?", (used, slot))
        return f"temp.match_set_{slot}"
    free = [s for s in range(SLOTS) if s not in tags]
    slot = free[0] if free else min(tags, key=lambda s: tags[s][2])
    table = f"temp.match_set_{slot}"
    # Untagged before it is emptied: if the filling fails, no tag names what is not there.
    conn.execute(f"DELETE FROM {_TAGS} WHERE slot = ?", (slot,))
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY)")
    conn.execute(f"DELETE FROM {table}")
    fill(table)
    conn.execute(
        f"INSERT INTO {_TAGS} (slot, query, version, used) VALUES (?, ?, ?, ?)",
        (slot, key, version, used),
    )
    return table
