"""A history store and receivers under uvicorn on loopback, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.receiver.app import CallbackApp
from cactus_desk.receiver.serve import BackgroundReceiver
from tests.callbacks.helpers import MERCHANT, SALT, SITE


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    data_home.mkdir(parents=True, exist_ok=True)
    with SqliteHistoryStore(data_home / "history.sqlite3") as history:
        yield history


@pytest.fixture
def start_receiver(store: HistoryStore) -> Iterator[Callable[..., BackgroundReceiver]]:
    """Start a receiver: app options as keywords, the connection guard's in ``guard``."""
    started: list[BackgroundReceiver] = []

    def start(guard: dict[str, Any] | None = None, **options: Any) -> BackgroundReceiver:
        app = CallbackApp(store, SALT, merchant_id=MERCHANT, site_id=SITE, **options)
        receiver = BackgroundReceiver(app, **(guard or {})).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(start_receiver: Callable[..., BackgroundReceiver]) -> BackgroundReceiver:
    return start_receiver()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client
