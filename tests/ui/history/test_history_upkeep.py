"""The window keeps its history healthy in the background: the upkeep pass every second on a
worker, and the complete integrity check after the bounded one at start."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import MaintenanceReport
from cactus_desk.ui import main_window, workers
from cactus_desk.ui.dialogs.recovery import CorruptHistoryDialog
from tests.ui.test_safety_ui import open_window, seed_history


def test_the_window_runs_the_history_upkeep_on_a_worker(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_history(data_home)
    monkeypatch.setattr(main_window, "UPKEEP_INTERVAL_MS", 20)
    window = open_window(qtbot, data_home)
    try:
        store = window.history
        real = store.run_maintenance
        threads: list[threading.Thread] = []

        def counted(budget_ms: int = 40) -> MaintenanceReport:
            threads.append(threading.current_thread())
            return real(budget_ms)

        store.run_maintenance = counted  # type: ignore[method-assign]
        qtbot.waitUntil(lambda: len(threads) >= 3, timeout=10_000)
        assert threading.main_thread() not in threads  # never on the GUI thread
    finally:
        window.shutdown()


def test_the_window_reads_the_history_ahead_on_a_worker_once_it_opens(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_history(data_home)
    threads: list[threading.Thread] = []
    real = SqliteHistoryStore.warm_up

    def warm_up(self: SqliteHistoryStore) -> None:
        threads.append(threading.current_thread())
        real(self)

    monkeypatch.setattr(SqliteHistoryStore, "warm_up", warm_up)
    monkeypatch.setattr(main_window, "WARM_UP_DELAY_MS", 20)
    window = open_window(qtbot, data_home)
    try:
        qtbot.waitUntil(lambda: len(threads) == 1, timeout=10_000)
        assert threads[0] is not threading.main_thread()
    finally:
        window.shutdown()


def test_the_complete_check_runs_later_and_takes_a_damaged_history_down(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = seed_history(data_home)
    conn = sqlite3.connect(path)
    root = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'payouts_by_invoice'"
    ).fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as damaged:  # an index page the start-up reads never touch
        damaged.seek((root - 1) * page)
        damaged.write(b"\xff" * page)
    # As on a history of millions: the bounded start-up check runs out of time, finding nothing.
    monkeypatch.setattr(
        backup, "bounded_problem", lambda conn, *, full, budget_ms=None: (None, False)
    )
    monkeypatch.setattr(main_window, "COMPLETE_CHECK_DELAY_MS", 50)

    window = open_window(qtbot, data_home)
    try:
        qtbot.waitUntil(
            lambda: window.findChild(QDialog, "corruptHistoryDialog") is not None, timeout=20_000
        )
        dialog = window.findChild(QDialog, "corruptHistoryDialog")
        assert isinstance(dialog, CorruptHistoryDialog)
        assert "malformed" in dialog.error.problem or "corrupt" in dialog.error.problem.lower()
        assert not (data_home / HISTORY_FILE).exists()  # set aside, never overwritten
    finally:
        window.shutdown()


def test_sends_and_reads_never_queue_behind_the_slow_checks(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a big history the start-up check with its daily backup and the complete check each
    hold a worker for minutes; the window's other work (a send, the totals) still runs."""
    seed_history(data_home)
    release = threading.Event()
    checking: list[bool] = []
    nice: list[int] = []

    def slow_check(self: SqliteHistoryStore, *, complete: bool = False) -> str | None:
        checking.append(complete)
        nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        release.wait(60)
        return None

    monkeypatch.setattr(SqliteHistoryStore, "check_integrity", slow_check)
    monkeypatch.setattr(main_window, "COMPLETE_CHECK_DELAY_MS", 50)
    window = open_window(qtbot, data_home)
    try:
        qtbot.waitUntil(lambda: sorted(checking) == [False, True], timeout=20_000)
        # Seconds of CPU on a big history: below the GUI thread (Linux nices each thread).
        gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        lowered = min(19, gui + workers.READER_NICE) if sys.platform == "linux" else gui
        assert nice == [lowered, lowered]
        done: list[int] = []
        for _ in range(4):  # as many as a send, its balance, the totals and a status look
            window._controller._runner.run(lambda: 42, done.append)
        qtbot.waitUntil(lambda: len(done) == 4, timeout=5_000)
    finally:
        release.set()
        window.shutdown()
