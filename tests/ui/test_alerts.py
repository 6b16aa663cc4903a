"""Alerts in the real window: a declined callback from the sandbox raises a notification,
an old payout still not final is flagged as aging in the History."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.ui import alerts
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.callbacks.helpers import ATTEMPT
from tests.ui.conftest import READ_TIMEOUT, PayoutDriver

WAIT_MS = 10_000


@pytest.fixture
def live_window(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MainWindow]:
    """The window on the sandbox, whose payouts are finalised by callbacks after 1 s."""
    monkeypatch.setattr(alerts, "POLL_MS", 200)
    window = build_main_window(
        [
            "--sandbox",
            "--data-dir",
            str(data_home),
            "--read-timeout",
            READ_TIMEOUT,
            "--finalize-after",
            "1.0",
        ]
    )
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    live = window.live_statuses
    assert live is not None
    qtbot.waitUntil(live.is_running, timeout=WAIT_MS)
    yield window
    window.shutdown()


def test_a_declined_callback_raises_a_notification(live_window: MainWindow, qtbot: QtBot) -> None:
    driver = PayoutDriver(live_window, qtbot)
    paid = driver.send(amount="1500.50")
    declined = driver.send(amount="500.13")  # the sandbox declines amounts ending in 13
    notifier = live_window.notifier
    qtbot.waitUntil(
        lambda: any(a.title == "Payout declined" for a in notifier.shown), timeout=WAIT_MS
    )
    [alert] = [a for a in notifier.shown if a.title == "Payout declined"]
    assert declined in alert.message
    assert not any(paid in a.message for a in notifier.shown)  # a Success raises nothing
    assert notifier.label.text().startswith("Payout declined")


def test_an_old_payout_not_final_is_flagged_as_aging(window: MainWindow, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    store = window.history
    store.create_attempt(replace(ATTEMPT, request_id="po-fresh"))
    old = SqliteHistoryStore(store.location, clock=lambda: store.now() - 2 * 86_400_000)
    try:
        old.create_attempt(replace(ATTEMPT, request_id="po-old"))
    finally:
        old.close()
    window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = window.history_panel
    panel.refresh()
    assert panel.wait_until_idle()

    def flag(request_id: str, role: Qt.ItemDataRole) -> object:
        row = panel.model.row_of_request(request_id)
        assert row is not None
        return panel.model.index(row, Column.STATE).data(role)

    qtbot.waitUntil(lambda: panel.model.row_of_request("po-old") is not None, timeout=WAIT_MS)
    assert isinstance(flag("po-old", Qt.ItemDataRole.DecorationRole), QIcon)
    assert "Aging" in str(flag("po-old", Qt.ItemDataRole.ToolTipRole))
    assert flag("po-fresh", Qt.ItemDataRole.DecorationRole) is None
    assert flag("po-old", Qt.ItemDataRole.DisplayRole) == "Submitting"  # the state, unchanged
