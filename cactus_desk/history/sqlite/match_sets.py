"""A recipient's matches kept in a temporary table of the reading connection.

A walk of a sort's index tests each entry against the recipient's matches as a set, which
SQLite builds again for every statement: 45 ms for the 118,000 payouts of "petrov" at
5,000,000, on every page of every order. Kept in a table of the connection (its INTEGER
PRIMARY KEY is the set, no build), a query's next pages test against it at once. Each
table is tagged with the data version it was filled at and filled again once that moves
on. It is written in the caller's read transaction, so a rollback takes the table and its
tag back together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

#: Tables kept per connection: the history panel's recipient and one more.
SLOTS = 2
_TAGS = "temp.match_set_tags"


def kept_matches(conn: sqlite3.Connection, version: int, query: str, params: Sequence[Any]) -> str:
    """The temporary table (one ``id`` column) holding the ids ``query`` selects at data
    ``version``; filled now unless an earlier page of this connection filled it."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_TAGS} (slot INTEGER PRIMARY KEY, query TEXT NOT NULL, "
        "version INTEGER NOT NULL, used INTEGER NOT NULL)"
    )
    key = json.dumps([query, list(params)])
    tags = {
        row[0]: row[1:] for row in conn.execute(f"SELECT slot, query, version, used FROM {_TAGS}")
    }
    used = 1 + max((tag[2] for tag in tags.values()), default=0)
    slot = next((s for s, tag in tags.items() if tag[0] == key and tag[1] == version), None)
    table = f"temp.match_set_{slot}"
    if slot is not None:
        conn.execute(f"UPDATE {_TAGS} SET used = ? WHERE slot = ?", (used, slot))
        return table
    free = [s for s in range(SLOTS) if s not in tags]
    slot = free[0] if free else min(tags, key=lambda s: tags[s][2])
    table = f"temp.match_set_{slot}"
    # Untagged before it is emptied: if the filling fails, no tag names what is not there.
    conn.execute(f"DELETE FROM {_TAGS} WHERE slot = ?", (slot,))
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY)")
    conn.execute(f"DELETE FROM {table}")
    conn.execute(f"INSERT OR IGNORE INTO {table} (id) {query}", list(params))
    conn.execute(
        f"INSERT INTO {_TAGS} (slot, query, version, used) VALUES (?, ?, ?, ?)",
        (slot, key, version, used),
    )
    return table
