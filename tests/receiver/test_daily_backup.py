"""The receiver's daily backup: taken on its upkeep thread while callbacks keep being recorded,
and abandoned without a trace when the receiver stops."""

from __future__ import annotations

import functools
import gzip
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cactus_desk.history import take_daily_backup
from cactus_desk.history.maintenance import MaintenanceThread
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite.backup import list_backups
from cactus_desk.receiver.serve import BackgroundReceiver
from tests.callbacks.helpers import accepted_record, callback

OK = {"result": "ok"}


def _statuses(packed: Path, tmp_path: Path) -> dict[str, int]:
    plain = tmp_path / "unpacked.sqlite3"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    conn = sqlite3.connect(plain)
    try:
        rows = conn.execute("SELECT request_id, gateway_status FROM payouts").fetchall()
    finally:
        conn.close()
    return {request_id: status for request_id, status in rows}


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_upkeep_thread_takes_the_daily_backup_while_callbacks_are_recorded(
    receiver: BackgroundReceiver,
    store: HistoryStore,
    http: httpx.Client,
    data_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [accepted_record(store, f"po-{n:04d}", invoice_id=f"5{n:05d}") for n in range(40)]
    monkeypatch.setattr(backup, "_COPY_PAGES", 2)  # a copy in many steps
    answers: list[int] = []

    def post_while_copying(should_stop: Callable[[], bool]) -> bool:
        # Called between the copy's steps, its snapshot held: the gateway's callbacks go in.
        if not answers:
            for n in range(0, 40, 4):
                body = callback(4, request_id=f"po-{n:04d}", invoice_id=500000 + n)
                answers.append(http.post(receiver.url, json=body, timeout=5).status_code)
        return should_stop()

    def daily(should_stop: Callable[[], bool]) -> object:
        return take_daily_backup(data_home, functools.partial(post_while_copying, should_stop))

    upkeep = MaintenanceThread(store, daily_backup=daily, first_backup_check_s=0.01)
    with upkeep:
        _wait_for(lambda: upkeep.backups_taken == 1)
    assert answers == [200] * 10
    for n, record_id in enumerate(ids):
        assert store.get(record_id).gateway_status == (4 if n % 4 == 0 else 3)
    (made,) = list_backups(data_home)
    assert made.name.endswith("-daily.sqlite3.gz")
    # The backup is the snapshot its copy started from.
    assert set(_statuses(made, tmp_path).values()) == {3}
    assert not [p for p in (data_home / "backups").iterdir() if p.name.startswith(".")]


def test_stopping_the_receiver_abandons_a_backup_in_progress(
    store: HistoryStore, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted_record(store)
    monkeypatch.setattr(backup, "_COPY_PAGES", 1)
    in_copy = threading.Event()

    def hold_until_stopped(should_stop: Callable[[], bool]) -> bool:
        in_copy.set()
        _wait_for(should_stop, 10)  # the backup is in progress until the receiver stops
        return True

    def daily(should_stop: Callable[[], bool]) -> object:
        return take_daily_backup(data_home, functools.partial(hold_until_stopped, should_stop))

    upkeep = MaintenanceThread(store, daily_backup=daily, first_backup_check_s=0.01).start()
    assert in_copy.wait(10)
    started = time.monotonic()
    upkeep.stop()
    assert time.monotonic() - started < 5
    assert upkeep.backups_taken == 0
    assert list((data_home / "backups").iterdir()) == []
