"""Histories for the batch tests: the local SQLite file, and a team history on the suite's
throwaway PostgreSQL cluster (a database of its own per test, migrated on first open)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from tests.pg_cluster import SUPERUSER

_NUMBERS = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], HistoryStore]]:
    """Open stores on one fresh history of the parametrised backend; all closed after."""
    opened: list[HistoryStore] = []
    if request.param == "sqlite":
        folder = tmp_path / "history"
        folder.mkdir()

        def opener() -> HistoryStore:
            return SqliteHistoryStore(folder / "history.sqlite3")

        drop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = f"batch_{next(_NUMBERS)}"

        def admin(statement: str) -> None:
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute(statement)

        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin(f"CREATE DATABASE {name}")
        url = f"postgresql://{SUPERUSER}@127.0.0.1:{cluster.port}/{name}"

        def opener() -> HistoryStore:
            return PostgresHistoryStore(url, password=cluster.password, local_dir=tmp_path / "team")

        def drop() -> None:
            admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def open_one() -> HistoryStore:
        store = opener()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()
    drop()
