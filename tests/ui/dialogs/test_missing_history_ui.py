"""The window on a data folder whose history went missing offers the restore (issue 11, item 10)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel
from pytestqt.qtbot import QtBot

from cactus_desk import app
from cactus_desk.history import open_history
from cactus_desk.history.sqlite.backup import list_backups, make_backup, set_aside
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.types import MissingHistoryError
from cactus_desk.ui.dialogs.recovery import CorruptHistoryDialog
from cactus_desk.ui.main_window import MainWindow
from tests.safety.helpers import attempt, card_request


def seed_history(data_home: Path) -> Path:
    """A history with one payout and a backup of it; returns its path."""
    with open_history(data_home) as store:
        record_id = store.create_attempt(attempt("https://gw.example.com", card_request("po-old")))
        store.record_not_sent(record_id, "No site salt is stored for this profile.")
    path = data_home / HISTORY_FILE
    make_backup(path, "daily")
    return path


def open_window(qtbot: QtBot, data_home: Path) -> MainWindow:
    window = app.build_main_window(["--data-dir", str(data_home)])
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def missing_dialog(window: MainWindow) -> CorruptHistoryDialog:
    dialog = window.findChild(QDialog, "corruptHistoryDialog")
    assert isinstance(dialog, CorruptHistoryDialog) and dialog.isVisible()
    assert isinstance(dialog.error, MissingHistoryError)
    return dialog


def test_a_removed_history_brings_up_the_restore_and_not_an_empty_history(
    qtbot: QtBot, data_home: Path
) -> None:
    path = seed_history(data_home)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

    window = open_window(qtbot, data_home)
    try:
        dialog = missing_dialog(window)
        assert "missing" in dialog.windowTitle()
        text = dialog.findChild(QLabel, "corruptHistoryText").text()
        assert "had a history before" in text and "history.id" in text
        assert not path.exists()  # no empty history was put in its place
        assert not window.tabs.isEnabled()
        assert not dialog.empty_button.isEnabled()  # starting empty needs its own tick

        qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
        assert [r.request_id for r in window.history.iter_records()] == ["po-old"]
        assert "restored from the backup" in window.recovery_banner.text()
        assert window.tabs.isEnabled()
    finally:
        window.shutdown()


def test_a_history_set_aside_by_another_process_can_be_started_empty_on_purpose(
    qtbot: QtBot, data_home: Path
) -> None:
    # e.g. the receiver found the damage first and kept the file aside
    kept = set_aside(seed_history(data_home))

    window = open_window(qtbot, data_home)
    try:
        dialog = missing_dialog(window)
        assert dialog.error.kept_path == kept
        dialog.empty_check.setChecked(True)
        qtbot.mouseClick(dialog.empty_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
        assert window.history.count() == 0
        assert "new, empty history" in window.recovery_banner.text()
        assert kept.exists() and len(list_backups(data_home)) == 1  # both untouched
    finally:
        window.shutdown()
