"""Helpers for the history store and submit flow tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import NewAttempt

BASE_ATTEMPT = NewAttempt(
    profile_id="p-main",
    profile_name="Main shop",
    environment="sandbox",
    merchant_id="m_demo",
    site_id=7,
    request_id="po-0001",
    site_login="alice",
    method="card",
    currency="RUB",
    amount_minor=150000,
    request_fields={"card_number": "411111******1111", "card_holder": "Ivan Petrov"},
)


def make_attempt(**changes: Any) -> NewAttempt:
    """The base attempt with some fields changed."""
    return replace(BASE_ATTEMPT, **changes)


class StepClock:
    """A clock that advances one second per reading, so creation order is sort order."""

    def __init__(self, start_ms: int = 1_714_558_953_123) -> None:
        self._ticks = itertools.count(start_ms, 1000)

    def __call__(self) -> int:
        return next(self._ticks)


@pytest.fixture
def store_factory(data_home: Path) -> Iterator[Callable[[], HistoryStore]]:
    """Open stores on the test's data dir; every one is closed after the test."""
    opened: list[HistoryStore] = []

    def factory() -> HistoryStore:
        store = SqliteHistoryStore(data_home / "history.sqlite3", clock=StepClock())
        opened.append(store)
        return store

    data_home.mkdir(parents=True, exist_ok=True)
    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], HistoryStore]) -> HistoryStore:
    """A fresh history store in the test's data dir."""
    return store_factory()
