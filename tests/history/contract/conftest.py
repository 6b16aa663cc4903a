"""The contract suite's backends: every test here runs once per history implementation.

A backend is a name in ``BACKENDS`` and a factory that prepares one fresh, empty history for
a test and returns its opener: each call opens a store on that same history with the given
clock (the tests use one that advances one second per reading, so creation order is sort
order). Adding a backend is one entry here; the tests themselves never name one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore

if TYPE_CHECKING:
    # mypy proves the adapters implement the whole port.
    _CHECK: type[HistoryStore] = SqliteHistoryStore
    _CHECK_PG: type[HistoryStore] = PostgresHistoryStore

Opener = Callable[[Callable[[], int]], HistoryStore]

START_MS = 1_714_558_953_123


def step_clock(start_ms: int = START_MS) -> Callable[[], int]:
    """A clock that advances one second per reading."""
    ticks = itertools.count(start_ms, 1000)
    return lambda: next(ticks)


def _sqlite(request: pytest.FixtureRequest, folder: Path) -> Opener:
    folder.mkdir(parents=True, exist_ok=True)
    return lambda clock: SqliteHistoryStore(folder / "history.sqlite3", clock=clock)


def _postgres(request: pytest.FixtureRequest, folder: Path) -> Opener:
    databases = request.getfixturevalue("pg_databases")
    name = databases.create()
    # Runs after open_store's teardown has closed the test's stores.
    request.addfinalizer(lambda: databases.drop(name))
    return lambda clock: databases.open(name, folder, clock=clock)


#: name -> factory(request, folder) preparing a fresh history; returns its opener.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Opener]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., HistoryStore]]:
    """Open stores of the parametrised backend (one history per test); all closed after."""
    opened: list[HistoryStore] = []
    folder = tmp_path / f"history-{request.param}"
    opener = BACKENDS[request.param](request, folder)

    def open_one(clock: Callable[[], int] | None = None) -> HistoryStore:
        store = opener(clock or step_clock())
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., HistoryStore]) -> HistoryStore:
    """A fresh, empty store of the parametrised backend."""
    return open_store()
