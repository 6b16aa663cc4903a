"""The contract suite's backends: every test here runs once per history implementation.

A backend is a name in ``BACKENDS`` and a factory that opens a fresh, empty store with a
clock that advances one second per reading (so creation order is sort order). Adding a backend
is one entry here; the tests themselves never name one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore

if TYPE_CHECKING:
    # mypy proves the adapter implements the whole port.
    _CHECK: type[HistoryStore] = SqliteHistoryStore

START_MS = 1_714_558_953_123


def step_clock(start_ms: int = START_MS) -> Callable[[], int]:
    """A clock that advances one second per reading."""
    ticks = itertools.count(start_ms, 1000)
    return lambda: next(ticks)


def _sqlite(folder: Path, clock: Callable[[], int]) -> HistoryStore:
    folder.mkdir(parents=True, exist_ok=True)
    return SqliteHistoryStore(folder / "history.sqlite3", clock=clock)


#: name -> factory(folder, clock) opening a fresh store.
BACKENDS: dict[str, Callable[[Path, Callable[[], int]], HistoryStore]] = {
    "sqlite": _sqlite,
}


@pytest.fixture(params=sorted(BACKENDS))
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., HistoryStore]]:
    """Open stores of the parametrised backend (one history per test); all closed after."""
    opened: list[HistoryStore] = []
    factory = BACKENDS[request.param]
    folder = tmp_path / f"history-{request.param}"

    def open_one(clock: Callable[[], int] | None = None) -> HistoryStore:
        store = factory(folder, clock or step_clock())
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., HistoryStore]) -> HistoryStore:
    """A fresh, empty store of the parametrised backend."""
    return open_store()
