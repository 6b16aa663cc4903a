"""Team-history tests: each gets its own database on the session's PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cactus_desk.history.postgres.store import PostgresHistoryStore
from tests.history.contract.conftest import step_clock
from tests.pg_databases import PgDatabases


@pytest.fixture
def database(pg_databases: PgDatabases) -> Iterator[str]:
    """A fresh, migrated database's name; dropped after the test."""
    name = pg_databases.create()
    yield name
    pg_databases.drop(name)


@pytest.fixture
def open_pg(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> Iterator[Callable[..., PostgresHistoryStore]]:
    """Open stores on the test's database (each with its own pool); all closed after."""
    opened: list[PostgresHistoryStore] = []

    def open_one(**options: object) -> PostgresHistoryStore:
        options.setdefault("clock", step_clock())
        store = pg_databases.open(database, tmp_path / "team", **options)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def owner_sql(pg_databases: PgDatabases, database: str) -> Iterator[psycopg.Connection]:
    """A plain connection to the test's database as its owner (for what no store does)."""
    with psycopg.connect(
        pg_databases.url(database), password=pg_databases.cluster.password, autocommit=True
    ) as conn:
        yield conn
