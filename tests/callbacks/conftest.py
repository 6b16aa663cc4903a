"""A history store on the test's data dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore


@pytest.fixture
def store_factory(data_home: Path) -> Iterator[Callable[[], HistoryStore]]:
    """Open stores (separate connection pools, like separate processes) on one file."""
    opened: list[HistoryStore] = []
    data_home.mkdir(parents=True, exist_ok=True)

    def factory() -> HistoryStore:
        store = SqliteHistoryStore(data_home / "history.sqlite3")
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], HistoryStore]) -> HistoryStore:
    """A fresh history store."""
    return store_factory()
