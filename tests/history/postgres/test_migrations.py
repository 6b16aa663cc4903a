"""The team history's schema: migrations once, under a lock, and the indexes the panel needs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from cactus_desk.history.postgres.migrations import MIGRATIONS, SEARCH_INDEX, migrate
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryOpenError, SortKey
from tests.history.contract.helpers import accepted, attempt
from tests.pg_databases import PgDatabases


def _versions(pg_databases: PgDatabases, name: str) -> list[int]:
    with psycopg.connect(pg_databases.url(name), password=pg_databases.cluster.password) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


@pytest.fixture
def empty_database(pg_databases: PgDatabases) -> str:
    name = pg_databases.create(migrated=False)
    yield name  # type: ignore[misc]
    pg_databases.drop(name)


def test_migrating_twice_changes_nothing(
    pg_databases: PgDatabases, empty_database: str, tmp_path: Path
) -> None:
    first = pg_databases.open(empty_database, tmp_path)
    record_id = first.create_attempt(attempt())
    first.close()
    assert _versions(pg_databases, empty_database) == list(range(1, len(MIGRATIONS) + 1))

    second = pg_databases.open(empty_database, tmp_path)
    try:
        assert second.get(record_id).request_id == "po-0001"
        assert second.count() == 1
    finally:
        second.close()
    assert _versions(pg_databases, empty_database) == list(range(1, len(MIGRATIONS) + 1))


def test_desks_starting_at_once_migrate_exactly_once(
    pg_databases: PgDatabases, empty_database: str, tmp_path: Path
) -> None:
    desks = 4
    start = threading.Barrier(desks)
    opened: list[PostgresHistoryStore] = []
    failures: list[BaseException] = []

    def open_desk() -> None:
        start.wait()
        try:
            opened.append(pg_databases.open(empty_database, tmp_path))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_desk) for _ in range(desks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert failures == []
        assert len(opened) == desks
        assert _versions(pg_databases, empty_database) == list(range(1, len(MIGRATIONS) + 1))
        ids = {
            store.create_attempt(attempt(request_id=f"po-{n}")) for n, store in enumerate(opened)
        }
        assert len(ids) == desks and opened[0].count() == desks
    finally:
        for store in opened:
            store.close()


def test_a_failing_migration_leaves_the_database_as_it_was(
    pg_databases: PgDatabases, empty_database: str
) -> None:
    def broken(conn: psycopg.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x int)")
        raise RuntimeError("migration bug")

    url, password = pg_databases.url(empty_database), pg_databases.cluster.password
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        with pytest.raises(RuntimeError):
            migrate(conn, (*MIGRATIONS, broken))
        found = conn.execute("SELECT to_regclass('half_done'), to_regclass('payouts')").fetchone()
        assert found == (None, None)  # the good migrations were rolled back with it


def test_a_history_from_a_newer_version_is_refused(
    pg_databases: PgDatabases, database: str, owner_sql: psycopg.Connection, tmp_path: Path
) -> None:
    owner_sql.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)")
    with pytest.raises(HistoryOpenError, match="version 99"):
        pg_databases.open(database, tmp_path)


def _plan(conn: psycopg.Connection, sql: str, params: tuple[object, ...] = ()) -> str:
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_sort = off")
        rows = conn.execute(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        (
            "SELECT id FROM payouts ORDER BY created_at DESC, id DESC LIMIT 100",
            "payouts_by_created",
        ),
        (
            "SELECT id FROM payouts ORDER BY amount_minor, id LIMIT 100",
            "payouts_by_amount",
        ),
        (
            "SELECT id FROM payouts ORDER BY lower(invoice_id) NULLS FIRST, id LIMIT 100",
            "payouts_by_invoice",
        ),
        (
            "SELECT id FROM payouts ORDER BY gateway_status DESC NULLS LAST, id DESC LIMIT 100",
            "payouts_by_status",
        ),
        (
            "SELECT id FROM payouts WHERE state = 'UNKNOWN' ORDER BY created_at DESC, id DESC "
            "LIMIT 100",
            "payouts_state_time",
        ),
        (
            "SELECT id FROM payouts WHERE needs_review = 1 ORDER BY created_at DESC, id DESC "
            "LIMIT 100",
            "payouts_review_time",
        ),
        ("SELECT id FROM payouts WHERE request_id ILIKE '%%po-00%%'", SEARCH_INDEX),
    ],
)
def test_the_panels_queries_are_served_by_an_index(
    open_pg: Callable[..., PostgresHistoryStore],
    owner_sql: psycopg.Connection,
    sql: str,
    index: str,
) -> None:
    store = open_pg()
    assert store.text_index  # the test cluster has pg_trgm
    accepted(store)
    owner_sql.execute("ANALYZE payouts")
    assert index in _plan(owner_sql, sql)


def test_the_text_search_matches_substrings_case_blind_and_literal_wildcards(
    open_pg: Callable[..., PostgresHistoryStore],
) -> None:
    store = open_pg()
    accepted(store, "PO-ABC_1")
    accepted(store, "po-abcx1", invoice_id="500002")
    assert store.count(HistoryFilter(text="abc_1")) == 1  # _ is a character, not a wildcard
    assert store.count(HistoryFilter(text="abc")) == 2
    assert [
        row.request_id for row in store.page(HistoryFilter(text="Abc"), SortKey.REQUEST_ID)
    ] == [
        "po-abcx1",
        "PO-ABC_1",
    ]
