"""The recipient index of an upgraded history is built in the background upkeep, a batch at
a time: until it is complete a recipient search reads the payouts themselves (never a partial
index), writes during the build keep the index whole, and afterwards the index serves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.migrations import RECIPIENT_BUILD_TABLE, RECIPIENT_SEARCH_TABLE
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter
from tests.payouts.conftest import make_attempt

ROWS = 25
TABLE = RECIPIENT_SEARCH_TABLE


def _write(store: SqliteHistoryStore, rows: int, prefix: str) -> list[int]:
    return [
        store.create_attempt(
            make_attempt(
                request_id=f"{prefix}-{n}",
                request_fields={
                    "card_number": f"411111******{n:04d}",
                    "card_holder": "Ivan Petrov",
                },
            )
        )
        for n in range(rows)
    ]


def _as_just_upgraded(path: Path) -> None:
    """Empty the recipient index and mark every payout as still to build, as the migration
    leaves a history it upgraded."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('delete-all')")
        conn.execute(
            f"UPDATE {RECIPIENT_BUILD_TABLE} SET next_id = 1, "
            "until_id = (SELECT max(id) FROM payouts)"
        )
    conn.close()


def _indexed(path: Path) -> int:
    """How many payouts the recipient index finds for "Petrov" (every one is Ivan Petrov)."""
    conn = sqlite3.connect(path)
    try:
        sql = f"SELECT count(*) FROM {TABLE} WHERE {TABLE} MATCH '\"Petrov\"'"
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_searches_read_the_payouts_until_the_background_build_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "history.sqlite3"
    store = SqliteHistoryStore(path)
    _write(store, ROWS, "old")
    store.close()
    _as_just_upgraded(path)
    monkeypatch.setattr(store_module, "_RECIPIENT_BATCH", 4)
    store = SqliteHistoryStore(path)
    try:
        _write(store, 3, "new")  # during the build: the triggers index these
        assert _indexed(path) == 3
        petrov = HistoryFilter(recipient="Petrov")
        assert store.count(petrov) == ROWS + 3  # the index is partial: the payouts are read
        assert [r.request_id for r in store.page(HistoryFilter(recipient="0007"))] == ["old-7"]
        passes = 0
        while store.run_maintenance(budget_ms=60_000).more or passes == 0:
            passes += 1
        assert _indexed(path) == ROWS + 3
        assert store.count(petrov) == ROWS + 3
        assert [r.request_id for r in store.page(HistoryFilter(recipient="0007"))] == ["old-7"]
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:  # raises when the index and the payouts disagree
        conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('integrity-check')")
    finally:
        conn.close()


def test_a_new_history_needs_no_build(tmp_path: Path) -> None:
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        _write(store, 2, "po")
        assert _indexed(store.path) == 2
        assert store.count(HistoryFilter(recipient="Petrov")) == 2
    finally:
        store.close()
