"""The nested login counts: a deep page of the login order starts at its counted bucket.

Each page far down the login order, with no filter or a state filter, is compared with the
same page read by a plain OFFSET query; the counts stay equal to a fresh recount through
inserts, outcomes, changed logins and deletions, and through the background build of an
upgraded history (whose pages are right before, during and after it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.sqlite import login_counts
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.login_counts import (
    LOGIN_BUILD_TABLE,
    LOGIN_COUNTS_TABLE,
    LOGIN_LEVELS,
    add_login_counts,
    login_counts_ready,
    rebuild_login_counts,
)
from cactus_desk.history.sqlite.migrations import MIGRATIONS, migrate
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from tests.payouts.conftest import StepClock, make_attempt

# Logins that share prefixes across every level's length, differ only in case, are shorter
# than a level, longer than the last level, not ASCII, or hold LIKE's wildcards; "bob" has
# many payouts (ties, broken by id), more than a build batch.
LOGINS = (
    "bob",
    "BOB",
    "bob",
    "bo",
    "b",
    "player4591560",
    "Player4591561",
    "player4591569x",
    "player45",
    "player459156",
    "player459157",
    "alexpetrov@mail.example",
    "alexpetrov@MAIL.example.org",
    "alexpetrov@m",
    "Ølaf",
    "ølaf",
    "zed_100%",
    "zed_1",
    "bob",
    "natalia.kovalenko46",
)
ROWS = 260
STATES = ("ACCEPTED", "REJECTED", "UNKNOWN")
FILTERS = [
    HistoryFilter(),
    HistoryFilter(states=frozenset({"REJECTED"})),
    HistoryFilter(states=frozenset({"ACCEPTED"})),
    HistoryFilter(states=frozenset({"REJECTED", "UNKNOWN"})),
    HistoryFilter(currency="USD"),
    HistoryFilter(states=frozenset({"REJECTED"}), currency="IDR"),
    HistoryFilter(profile_id="p1"),
    HistoryFilter(states=frozenset({"ACCEPTED", "UNKNOWN"}), profile_id="p0"),
]


def _fill(store: SqliteHistoryStore, rows: int, start: int = 0) -> None:
    for i in range(start, start + rows):
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"lg-{i}",
                site_login=LOGINS[(i * 7 + i // 10) % len(LOGINS)] if i % 4 else "bob",
                currency=("USD", "IDR")[i % 2],
                profile_id=f"p{i % 3}",
            )
        )
        if i % 5 == 0:
            store.record_outcome(record_id, Rejected("Refused", signature_verified=True))
        elif i % 7 == 0:
            store.record_outcome(record_id, Unknown("No answer.", UnknownKind.TIMEOUT))
        elif i % 11:
            store.record_outcome(record_id, Accepted(f"INV-{i}", 3, "Payout initialized"))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteHistoryStore]:
    path: Path = tmp_path_factory.mktemp("logins") / "history.sqlite3"
    store = SqliteHistoryStore(path, clock=StepClock())
    _fill(store, ROWS)
    yield store
    store.close()


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every page deeper than its first row starts from a count; the buckets found (their
    prefix length, prefix, neighbour and offset inside)."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 0)
    found: list[tuple[Any, ...]] = []
    original = store_module.login_bucket

    def spy(conn: sqlite3.Connection, kind: login_counts.LoginKind, *args: Any) -> Any:
        result = original(conn, kind, *args)
        found.append((kind.lengths[-1], *result))
        return result

    monkeypatch.setattr(store_module, "login_bucket", spy)
    return found


def _by_offset(
    store: SqliteHistoryStore, history_filter: HistoryFilter, descending: bool, offset: int
) -> list[int]:
    """The page as a plain OFFSET query over the whole order reads it."""
    direction = " DESC" if descending else ""
    clauses, params = [], list[Any]()
    if history_filter.states:
        clauses.append(f"state IN ({', '.join('?' * len(history_filter.states))})")
        params += sorted(history_filter.states)
    for column in ("currency", "profile_id"):
        if getattr(history_filter, column):
            clauses.append(f"{column} = ?")
            params.append(getattr(history_filter, column))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with store.read_connection() as conn:
        rows = conn.execute(
            f"SELECT id FROM payouts{where} ORDER BY site_login COLLATE NOCASE{direction}, "
            f"id{direction} LIMIT 5 OFFSET ?",
            [*params, offset],
        ).fetchall()
    return [row[0] for row in rows]


def _pages_match(store: SqliteHistoryStore, history_filter: HistoryFilter) -> int:
    """Compare every page of the login order both ways; how many rows the filter matches."""
    total = store.count(history_filter)
    for descending in (False, True):
        for offset in range(total):
            page = store.page(history_filter, SortKey.SITE_LOGIN, descending, offset, 5)
            expected = _by_offset(store, history_filter, descending, offset)
            assert [row.id for row in page] == expected, (history_filter, descending, offset)
    return total


@pytest.mark.parametrize("history_filter", FILTERS, ids=repr)
def test_every_deep_login_page_is_the_offset_querys_page(
    history: SqliteHistoryStore, history_filter: HistoryFilter, used: list[tuple[Any, ...]]
) -> None:
    total = _pages_match(history, history_filter)
    assert total > 20, "the filter should match many rows"
    assert used and all(found is not None for found in used)
    # What the OFFSET steps over is inside one last-level bucket, not the order before it.
    sizes: dict[tuple[int, str], int] = {}
    for row in history.page(history_filter, limit=ROWS):
        for length in (9, 12):
            # SQLite's lower() folds ASCII letters only, like the order's NOCASE.
            prefix = "".join(c.lower() if c.isascii() else c for c in row.site_login[:length])
            sizes[length, prefix] = sizes.get((length, prefix), 0) + 1
    assert all(inside < sizes[length, prefix] for length, prefix, _, inside in used)
    assert any(before is not None for _, _, before, _ in used), "buckets were skipped"


def _kept(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in conn.execute(
            f"SELECT lvl, dim, parent, v, state, n FROM {LOGIN_COUNTS_TABLE} WHERE n != 0 "
            "ORDER BY 1, 2, 3, 4, 5"
        )
    ]


def _assert_counts_are_a_recount(store: SqliteHistoryStore) -> None:
    with store.read_connection() as conn:
        kept = _kept(conn)
        conn.execute("SAVEPOINT recount")
        try:
            rebuild_login_counts(conn)
            fresh = _kept(conn)
        finally:
            conn.execute("ROLLBACK TO recount")
            conn.execute("RELEASE recount")
    assert kept == fresh
    levels = {kind.base + k for kind in login_counts.KINDS for k in range(1, len(kind.lengths) + 1)}
    assert {row[0] for row in fresh} == levels
    assert all(row[5] > 0 for row in fresh)
    for kind in login_counts.KINDS:  # every kind's last level counts every payout once
        last = kind.base + len(kind.lengths)
        assert sum(row[5] for row in fresh if row[0] == last) == sum(
            row[5] for row in fresh if row[0] == len(LOGIN_LEVELS)
        )


def test_the_counts_follow_every_write(tmp_path: Path) -> None:
    """Inserts, outcomes, a changed login or state, and deletions keep every level's counts
    equal to a fresh recount."""
    store = SqliteHistoryStore(tmp_path / "history.sqlite3", clock=StepClock())
    try:
        _fill(store, 80)
        _assert_counts_are_a_recount(store)
        with store.write_transaction() as conn:
            conn.execute("UPDATE payouts SET site_login = 'Zora.New' WHERE id % 6 = 0")
            conn.execute("UPDATE payouts SET site_login = upper(site_login) WHERE id % 6 = 1")
            conn.execute("UPDATE payouts SET state = 'REJECTED' WHERE id % 6 = 2")
            conn.execute("UPDATE payouts SET currency = 'EUR' WHERE id % 6 = 3")
            conn.execute("UPDATE payouts SET profile_id = 'p9' WHERE id % 6 = 4")
            deleted = conn.execute(
                "DELETE FROM payouts WHERE id % 9 = 0 AND id NOT IN (SELECT record_id FROM "
                "events WHERE record_id IS NOT NULL) AND id NOT IN (SELECT record_id FROM resends)"
            ).rowcount
            assert deleted > 5
        _assert_counts_are_a_recount(store)
        with store.read_connection() as conn:
            total = conn.execute(
                f"SELECT sum(n) FROM {LOGIN_COUNTS_TABLE} WHERE lvl = {len(LOGIN_LEVELS)}"
            ).fetchone()[0]
            assert total == conn.execute("SELECT count(*) FROM payouts").fetchone()[0]
    finally:
        store.close()


def _as_just_upgraded(path: Path) -> None:
    """Empty the counts and mark every payout uncounted, as the migration leaves a history."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"DELETE FROM {LOGIN_COUNTS_TABLE}")
        conn.execute(f"UPDATE {LOGIN_BUILD_TABLE} SET done = 0, last = NULL")
    conn.close()


def test_the_background_build_counts_an_upgraded_history_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, used: list[tuple[Any, ...]]
) -> None:
    """The build counts the payouts a few at a time in login order; writes between its
    batches are counted once; the upkeep finishes it; pages are right before the counts are
    complete (read without them) and after (read from them)."""
    path = tmp_path / "history.sqlite3"
    store = SqliteHistoryStore(path, clock=StepClock())
    _fill(store, 120)
    store.close()
    _as_just_upgraded(path)
    monkeypatch.setattr(store_module, "_LOGIN_BATCH", 7)
    store = SqliteHistoryStore(path, clock=StepClock())
    try:
        rejected = HistoryFilter(states=frozenset({"REJECTED"}))
        _pages_match(store, rejected)
        assert not used, "partial counts must not serve a page"
        # Batches (as the upkeep runs them) between writes through the store.
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            steps = 0
            while steps < 6:
                conn.execute("BEGIN IMMEDIATE")
                assert login_counts.build_login_counts(conn, 7)
                conn.execute("COMMIT")
                steps += 1
                _fill(store, 2, start=1000 + 2 * steps)  # logins before and after the cursor
                _assert_counted_up_to_the_cursor(conn)
        finally:
            conn.close()
        _pages_match(store, rejected)
        assert not used, "partial counts must not serve a page"
        passes = 0
        while store.run_maintenance(budget_ms=60_000).more or passes == 0:
            passes += 1
        with store.read_connection() as conn:
            assert login_counts_ready(conn)
        _assert_counts_are_a_recount(store)
        _pages_match(store, rejected)
        _pages_match(store, HistoryFilter())
        assert used
    finally:
        store.close()


def _assert_counted_up_to_the_cursor(conn: sqlite3.Connection) -> None:
    """The counts hold exactly the payouts with a login up to the build's cursor."""
    cursor = conn.execute(f"SELECT last FROM {LOGIN_BUILD_TABLE}").fetchone()[0]
    counted = conn.execute(
        f"SELECT coalesce(sum(n), 0) FROM {LOGIN_COUNTS_TABLE} WHERE lvl = {len(LOGIN_LEVELS)}"
    ).fetchone()[0]
    below = conn.execute(
        "SELECT count(*) FROM payouts WHERE site_login COLLATE NOCASE <= ?", (cursor,)
    ).fetchone()[0]
    assert counted == below, cursor


def test_a_batch_ends_with_a_whole_login(tmp_path: Path) -> None:
    """A login with more payouts than a batch (``bob``, any case) is counted in one batch,
    all of it, so the build's cursor never splits a login."""
    store = SqliteHistoryStore(tmp_path / "history.sqlite3", clock=StepClock())
    _fill(store, 60)
    store.close()
    _as_just_upgraded(store.path)
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        bobs = conn.execute(
            "SELECT count(*) FROM payouts WHERE site_login = 'bob' COLLATE NOCASE"
        ).fetchone()[0]
        assert bobs > 15
        cursors = []
        while login_counts.build_login_counts(conn, 3):
            _assert_counted_up_to_the_cursor(conn)
            cursors.append(conn.execute(f"SELECT last FROM {LOGIN_BUILD_TABLE}").fetchone()[0])
        assert any(cursor.lower() == "bob" for cursor in cursors)
        assert login_counts_ready(conn)
        assert (
            conn.execute(
                f"SELECT sum(n) FROM {LOGIN_COUNTS_TABLE} WHERE lvl = 1 AND v = 'bob'"
            ).fetchone()[0]
            == bobs
        )
        assert (
            conn.execute(
                f"SELECT sum(n) FROM {LOGIN_COUNTS_TABLE} WHERE lvl = {len(LOGIN_LEVELS)}"
            ).fetchone()[0]
            == conn.execute("SELECT count(*) FROM payouts").fetchone()[0]
        )
    finally:
        conn.close()


def test_the_migration_leaves_the_build_to_the_upkeep(tmp_path: Path) -> None:
    """Upgrading a history with payouts only creates the table (the upkeep counts them); an
    empty history's counts are complete at once."""
    for rows, ready in ((0, True), (30, False)):
        path = tmp_path / f"history-{rows}.sqlite3"
        store = SqliteHistoryStore(path, clock=StepClock())
        _fill(store, rows)
        store.close()
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            for table in (LOGIN_COUNTS_TABLE, LOGIN_BUILD_TABLE):
                conn.execute(f"DROP TABLE {table}")
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
                (f"{LOGIN_COUNTS_TABLE}%",),
            ).fetchall():
                conn.execute(f'DROP TRIGGER "{name}"')
            # Replay only this migration: the later ones' objects stay as they are.
            version = MIGRATIONS.index(add_login_counts) + 1
            conn.execute("DELETE FROM schema_version WHERE version >= ?", (version,))
            assert migrate(conn, MIGRATIONS[:version]) == version
            assert login_counts_ready(conn) is ready
            assert conn.execute(f"SELECT count(*) FROM {LOGIN_COUNTS_TABLE}").fetchone()[0] == 0
        finally:
            conn.close()


def test_a_deep_login_page_reads_one_parent_per_level_and_index_ranges(
    history: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXPLAIN QUERY PLAN of a middle page: the counts by their key (level, currency or
    profile, parent), the page by the login index's ranges; nothing scans a table or sorts."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 0)
    statements: list[str] = []
    for history_filter in (
        HistoryFilter(),
        HistoryFilter(states=frozenset({"REJECTED"})),
        HistoryFilter(states=frozenset({"REJECTED"}), currency="USD"),
        HistoryFilter(profile_id="p2"),
    ):
        for descending in (False, True):
            total = history.count(history_filter)
            with history.read_connection() as conn:
                conn.set_trace_callback(statements.append)
                try:
                    store_module._page(
                        conn,
                        history_filter,
                        SortKey.SITE_LOGIN,
                        descending,
                        total // 2 - 1,
                        5,
                        search=False,
                    )
                finally:
                    conn.set_trace_callback(None)
    with sqlite3.connect(f"file:{history.path}?mode=ro", uri=True) as conn:
        plans = {
            sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in statements
            if sql.lstrip().upper().startswith("SELECT")
        }
    counts = [plan for sql, plan in plans.items() if LOGIN_COUNTS_TABLE in sql]
    assert len(counts) >= 2 * len(LOGIN_LEVELS)
    for dim in ("'USD'", "'p2'", "dim = ''"):
        assert any(LOGIN_COUNTS_TABLE in sql and dim in sql for sql in plans), dim
    for plan in counts:
        assert any(
            f"SEARCH {LOGIN_COUNTS_TABLE} USING PRIMARY KEY (lvl=? AND dim=? AND parent=?)" in line
            for line in plan
        ), plan
    pages = [plan for sql, plan in plans.items() if "site_login COLLATE NOCASE" in sql]
    assert any(any("payouts_by_login (site_login" in line for line in plan) for plan in pages)
    assert any(any("payouts_scp_login (state=?" in line for line in plan) for plan in pages)
    for plan in plans.values():
        assert "SCAN payouts" not in plan, plan
        assert not any("TEMP B-TREE FOR ORDER BY" in line for line in plan), plan
