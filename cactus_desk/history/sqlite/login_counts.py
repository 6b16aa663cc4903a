"""Nested counts of the recipient login order, so a jump deep into it reads a few rows.

``payouts_login_counts`` counts the payouts of each login prefix per state, at a few prefix
lengths: a row of a level is one prefix ``v`` of that length (lower-cased, as the order is
COLLATE NOCASE, which folds ASCII exactly as ``lower()`` does) under its ``parent``, the
prefix one level up. Finding the bucket that holds row N of the login order walks down the
levels, reading only one parent's children at each (a few hundred rows at most), instead of
every counted bucket of the whole order; the last level's buckets hold few payouts, so the
page is reached by a short OFFSET.

Three sets of levels (``KINDS``) serve three filters: by state alone (``dim`` is empty), and by
currency or by profile (``dim`` is the currency or the profile id), each with any states.

Triggers keep the counts of the payouts the build has reached (``payouts_login_build``); the
payouts a history held when it was upgraded are counted in the background upkeep a batch at a
time, in login order (``build_login_counts``), and until that is done the page path does not
use the table (``login_counts_ready``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

LOGIN_COUNTS_TABLE = "payouts_login_counts"
LOGIN_BUILD_TABLE = "payouts_login_build"
COUNTS_TABLE = "payouts_counts"  # every (state, currency, profile) there is (migration 4)


@dataclass(frozen=True)
class LoginKind:
    """One set of levels: ``lvl`` is ``base`` + 1, 2, ...; ``dim`` is ``column``'s value."""

    base: int
    column: str  # "" for the counts by state alone
    lengths: tuple[int, ...]  # the prefix lengths, shortest first


# Three characters more per level keep one parent's children to about a thousand values at
# most (digits). Twelve characters make the buckets by state small (a few hundred payouts in
# a history of millions); nine suffice under a currency or profile (a share of the payouts),
# and keep those counts (one row per prefix, state and currency or profile) a few times
# smaller.
BY_STATE = LoginKind(0, "", (3, 6, 9, 12))
BY_CURRENCY = LoginKind(10, "currency", (3, 6, 9))
BY_PROFILE = LoginKind(20, "profile_id", (3, 6, 9))
KINDS = (BY_STATE, BY_CURRENCY, BY_PROFILE)
LOGIN_LEVELS = BY_STATE.lengths
_REBUILD_BATCH = 50_000  # payouts per batch of a recount at once (bounded temporary space)


def _level_sql(row: str) -> list[tuple[int, str, str, str]]:
    """(level, dim, parent, value) SQL of ``row``'s bucket at each level of every kind."""
    levels = []
    for kind in KINDS:
        dim = f"{row}.{kind.column}" if kind.column else "''"
        parent = "''"
        for level, length in enumerate(kind.lengths, start=kind.base + 1):
            value = f"lower(substr({row}.site_login, 1, {length}))"
            levels.append((level, dim, parent, value))
            parent = value
    return levels


def _statements(row: str, step: str) -> str:
    """Add (``step`` "+1") or take away ``row``'s payout at every level."""
    statements = []
    for level, dim, parent, value in _level_sql(row):
        if step == "+1":
            statements.append(
                f"INSERT INTO {LOGIN_COUNTS_TABLE} (lvl, dim, parent, v, state, n) "
                f"VALUES ({level}, {dim}, {parent}, {value}, {row}.state, 1) "
                "ON CONFLICT DO UPDATE SET n = n + 1;"
            )
        else:
            statements.append(
                f"UPDATE {LOGIN_COUNTS_TABLE} SET n = n - 1 WHERE lvl = {level} "
                f"AND dim = {dim} AND parent = {parent} AND v = {value} "
                f"AND state = {row}.state;"
            )
    return " ".join(statements)


def add_login_counts(conn: sqlite3.Connection) -> None:
    """The migration: the table, its build cursor (nothing counted yet) and its triggers."""
    conn.execute(
        f"CREATE TABLE {LOGIN_COUNTS_TABLE} (lvl INTEGER NOT NULL, dim TEXT NOT NULL, "
        "parent TEXT NOT NULL, v TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (lvl, dim, parent, v, state)) WITHOUT ROWID"
    )
    # The build counts the payouts in login order: those with a login up to ``last``
    # (COLLATE NOCASE) are counted, and all of them once ``done``.
    conn.execute(f"CREATE TABLE {LOGIN_BUILD_TABLE} (done INTEGER NOT NULL, last TEXT)")
    conn.execute(
        f"INSERT INTO {LOGIN_BUILD_TABLE} (done, last) "
        "SELECT NOT EXISTS (SELECT 1 FROM payouts), NULL"
    )
    counted = {
        row: f"((SELECT done FROM {LOGIN_BUILD_TABLE}) "
        f"OR {row}.site_login COLLATE NOCASE <= (SELECT last FROM {LOGIN_BUILD_TABLE}))"
        for row in ("old", "new")
    }
    add, remove = _statements("new", "+1"), _statements("old", "-1")
    table = LOGIN_COUNTS_TABLE
    conn.execute(
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON payouts WHEN {counted['new']} "
        f"BEGIN {add} END"
    )
    conn.execute(
        f"CREATE TRIGGER {table}_delete AFTER DELETE ON payouts WHEN {counted['old']} "
        f"BEGIN {remove} END"
    )
    watched = ("site_login", "state", "currency", "profile_id")
    changed = "(" + " OR ".join(f"old.{column} IS NOT new.{column}" for column in watched) + ")"
    # Two triggers, so a login moved across the build's cursor is taken away only where it
    # was counted and added only where it will be (the build counts it otherwise).
    conn.execute(
        f"CREATE TRIGGER {table}_update_old AFTER UPDATE OF {', '.join(watched)} ON payouts "
        f"WHEN {changed} AND {counted['old']} BEGIN {remove} END"
    )
    conn.execute(
        f"CREATE TRIGGER {table}_update_new AFTER UPDATE OF {', '.join(watched)} ON payouts "
        f"WHEN {changed} AND {counted['new']} BEGIN {add} END"
    )


def _add_counts(conn: sqlite3.Connection, rows_sql: str, params: list[Any]) -> None:
    """Add the payouts ``rows_sql`` selects (site_login, state, currency, profile_id)."""
    arms = []
    for level, dim, parent, value in _level_sql("p"):
        arms.append(
            f"SELECT {level} AS lvl, {dim} AS dim, {parent} AS parent, {value} AS v, "
            "p.state AS state, count(*) AS n FROM batch AS p GROUP BY 2, 3, 4, 5"
        )
    # The payouts are read once; the counts are added in the table's key order.
    conn.execute(
        f"WITH batch AS MATERIALIZED ({rows_sql}) "
        f"INSERT INTO {LOGIN_COUNTS_TABLE} (lvl, dim, parent, v, state, n) "
        f"SELECT lvl, dim, parent, v, state, n FROM ({' UNION ALL '.join(arms)}) WHERE true "
        "ORDER BY 1, 2, 3, 4, 5 ON CONFLICT DO UPDATE SET n = n + excluded.n",
        params,
    )


def login_counts_ready(conn: sqlite3.Connection) -> bool:
    """Whether the counts hold every payout (their background build is done)."""
    row = conn.execute(f"SELECT done FROM {LOGIN_BUILD_TABLE}").fetchone()
    return bool(row and row[0])


def build_login_counts(conn: sqlite3.Connection, batch: int) -> bool:
    """Count the next ``batch`` or so payouts in login order (in the caller's transaction);
    True while more are left.

    A batch ends with a whole login (all its payouts, however many), and is read from the
    (state, currency, profile, login) index alone: the payouts it counts are next to each
    other in the counts' key order, so a batch writes few pages.
    """
    row = conn.execute(f"SELECT done, last FROM {LOGIN_BUILD_TABLE}").fetchone()
    if row is None or row[0]:
        return False
    last = row[1]
    after, after_params = (
        ("site_login COLLATE NOCASE >= ''", [])
        if last is None
        else ("site_login COLLATE NOCASE > ?", [last])
    )
    end = conn.execute(
        f"SELECT site_login FROM payouts INDEXED BY payouts_by_login WHERE {after} "
        "ORDER BY site_login COLLATE NOCASE LIMIT 1 OFFSET ?",
        [*after_params, max(0, batch - 1)],
    ).fetchone()
    rows_sql = (
        f"SELECT p.site_login, p.state, p.currency, p.profile_id FROM {COUNTS_TABLE} AS c "
        "CROSS JOIN payouts AS p INDEXED BY payouts_scp_login ON p.state = c.state "
        "AND p.currency = c.currency AND p.profile_id = c.profile_id "
        f"WHERE p.{after}"
    )
    if end is None:  # the last batch: every payout after the cursor
        _add_counts(conn, rows_sql, after_params)
        conn.execute(f"UPDATE {LOGIN_BUILD_TABLE} SET done = 1, last = NULL")
        return False
    rows_sql += " AND p.site_login COLLATE NOCASE <= ?"
    _add_counts(conn, rows_sql, [*after_params, end[0]])
    conn.execute(f"UPDATE {LOGIN_BUILD_TABLE} SET last = ?", (end[0],))
    return True


def rebuild_login_counts(conn: sqlite3.Connection) -> None:
    """Recount every payout at once (after a bulk load that dropped the triggers)."""
    exists = "SELECT 1 FROM sqlite_master WHERE name = ?"
    if not conn.execute(exists, (LOGIN_COUNTS_TABLE,)).fetchone():
        return
    conn.execute(f"DELETE FROM {LOGIN_COUNTS_TABLE}")
    conn.execute(f"UPDATE {LOGIN_BUILD_TABLE} SET done = 0, last = NULL")
    while build_login_counts(conn, _REBUILD_BATCH):
        pass


def login_kind(currency: str | None, profile_id: str | None) -> tuple[LoginKind, str] | None:
    """The counts that serve a filter by ``currency`` or ``profile_id`` (or neither) and any
    states, and their ``dim``; None for both at once (no counts hold that pair)."""
    if currency and profile_id:
        return None
    if currency:
        return BY_CURRENCY, currency
    if profile_id:
        return BY_PROFILE, profile_id
    return BY_STATE, ""


def login_bucket(
    conn: sqlite3.Connection,
    kind: LoginKind,
    dim: str,
    states: Collection[str],
    descending: bool,
    offset: int,
) -> tuple[str, str | None, int] | None:
    """The last-level bucket of ``kind`` holding row ``offset`` of the login order under
    ``dim`` and ``states`` (every state when empty): its prefix, the nearest bucket before it
    in the page's direction (None when it is the first), and the row's offset inside it.
    None when the offset is past the counted rows.

    Ascending, the rows from the bucket on are those with ``site_login >= prefix``;
    descending, those below the bucket met before it (every login < ``before``), as every
    bucket's logins sort between its neighbours' (see ``SortBuckets`` in the migrations).
    """
    direction = "DESC" if descending else "ASC"
    state_sql = ""
    if states:
        state_sql = f" AND state IN ({', '.join('?' * len(states))})"
    sql = (
        f"SELECT v, sum(n) FROM {LOGIN_COUNTS_TABLE} WHERE lvl = ? AND dim = ? AND parent = ?"
        f"{state_sql} GROUP BY v HAVING sum(n) > 0 ORDER BY v {direction}"
    )
    seen, parent, before = 0, "", None
    for level in range(kind.base + 1, kind.base + len(kind.lengths) + 1):
        for value, n in conn.execute(sql, [level, dim, parent, *sorted(states)]):
            if seen + n <= offset:
                seen += n
                before = value
                continue
            parent = value
            break
        else:
            return None
    return parent, before, offset - seen
