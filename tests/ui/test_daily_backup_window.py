"""The window's daily backup: on a worker, and abandoned without a trace when the window quits
while it runs (the quit does not wait for it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from cactus_desk.history import open_history
from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite.backup import list_backups
from cactus_desk.ui import main_window
from tests.safety.helpers import attempt, card_request
from tests.ui.test_safety_ui import open_window


def _seed(data_home: Path, count: int = 30) -> None:
    """A history with payouts and no backup: the daily one is due."""
    with open_history(data_home) as store:
        for n in range(count):
            store.create_attempt(attempt("https://gw.example.com", card_request(f"po-{n}")))


def test_the_window_takes_the_daily_backup_on_a_worker(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(data_home)
    threads: list[threading.Thread] = []
    real = backup.make_backup

    def spy(history: Path, reason: str, **options: object) -> Path:
        threads.append(threading.current_thread())
        return real(history, reason, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(backup, "make_backup", spy)
    window = open_window(qtbot, data_home)
    try:
        qtbot.waitUntil(lambda: len(list_backups(data_home)) == 1, timeout=20_000)
    finally:
        window.shutdown()
    assert threads and threading.main_thread() not in threads
    assert list_backups(data_home)[0].name.endswith("-daily.sqlite3.gz")


def test_quitting_during_the_daily_backup_abandons_it_without_a_partial_file(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(data_home)
    in_backup = threading.Event()
    real = backup._check_stop

    def held(should_stop: backup.StopCheck | None) -> None:
        # The first step of the backup lasts until it is told to stop (a long copy), or 30 s.
        if not in_backup.is_set():
            in_backup.set()
            deadline = time.monotonic() + 30
            while not (should_stop is not None and should_stop()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        real(should_stop)

    monkeypatch.setattr(backup, "_check_stop", held)
    window = open_window(qtbot, data_home)
    qtbot.waitUntil(in_backup.is_set, timeout=20_000)
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 5  # the quit did not wait for the backup
    assert sorted((data_home / "backups").iterdir()) == []  # nothing partial left behind
    with open_history(data_home) as store:
        assert store.count() == 30


def test_a_window_left_open_takes_its_daily_backup_again_when_one_is_due(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(data_home)
    monkeypatch.setattr(main_window, "DAILY_CHECK_INTERVAL_MS", 50)
    window = open_window(qtbot, data_home)
    try:
        qtbot.waitUntil(lambda: len(list_backups(data_home)) == 1, timeout=20_000)
        # A day passes (days are short here): the check on the timer takes the next ones; the
        # start-up check ran only once.
        monkeypatch.setattr(backup, "DAY_MS", 1)
        qtbot.waitUntil(lambda: len(list_backups(data_home)) >= 3, timeout=20_000)
    finally:
        window.shutdown()
