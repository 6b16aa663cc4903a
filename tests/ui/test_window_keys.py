"""Keys and dialogs of the real window: Ctrl+Q while a payout is in flight, Ctrl+F, and
where save dialogs open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QPushButton
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.history import open_history
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault
from cactus_desk.ui.main_window import HISTORY_TAB, PAYOUT_TAB, MainWindow
from tests.ui.conftest import PayoutDriver
from tests.ui.test_safety_ui import CARD_EXAMPLE, open_resend_dialog

WAIT_MS = 10_000


@pytest.fixture
def patient(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    """The sandbox window with a long read timeout: a held answer keeps a send in flight."""
    built = build_main_window(["--sandbox", "--data-dir", str(data_home), "--read-timeout", "60"])
    assert isinstance(built, MainWindow)
    qtbot.addWidget(built)
    built.show()
    qtbot.waitExposed(built)
    yield built
    built.shutdown()


def _ctrl(window: MainWindow, key: Qt.Key) -> None:
    """Press Ctrl+``key`` through the window, as the keyboard does."""
    QTest.keyClick(window.windowHandle(), key, Qt.KeyboardModifier.ControlModifier)


def test_ctrl_q_with_a_payout_in_flight_asks_first(
    patient: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    window = patient
    sandbox = window.sandbox
    assert sandbox is not None
    driver = PayoutDriver(window, qtbot)
    sandbox.set_fault(Fault.NO_ANSWER, times=1)  # the answer is held until the sandbox stops
    driver.fill("card", "RUB")
    driver.confirm(driver.open_confirm())
    qtbot.waitUntil(window.send_controller.is_sending, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: sandbox.requests_received == 1, timeout=WAIT_MS)  # it reached it
    driver.activate(driver.form.site_login_edit)

    _ctrl(window, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: window.quit_question is not None, timeout=WAIT_MS)
    box = window.quit_question
    assert box is not None and box.isVisible() and window.isVisible()
    assert "being sent" in box.text()
    qtbot.mouseClick(box.findChild(QPushButton, "keepWorkingButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.quit_question is None, timeout=WAIT_MS)
    assert window.isVisible() and window.send_controller.is_sending()

    driver.activate(driver.form.site_login_edit)
    _ctrl(window, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: window.quit_question is not None, timeout=WAIT_MS)
    box = window.quit_question
    assert box is not None
    qtbot.mouseClick(
        box.findChild(QPushButton, "closeWhenRecordedButton"), Qt.MouseButton.LeftButton
    )
    assert window.isVisible()  # it waits for the answer
    sandbox.stop()  # the held connection is dropped: the send ends, its outcome is recorded
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    with open_history(data_home) as store:
        [record] = store.iter_records()
    assert record.state is State.UNKNOWN  # recorded, not left SUBMITTING


def test_ctrl_q_with_nothing_in_flight_quits_at_once(window: MainWindow, qtbot: QtBot) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    _ctrl(window, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    assert window.quit_question is None


def test_ctrl_f_focuses_the_history_search_from_the_payout_form(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window = driver.window
    window.tabs.setCurrentIndex(PAYOUT_TAB)
    driver.activate(driver.form.site_login_edit)
    _ctrl(window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == HISTORY_TAB, timeout=WAIT_MS)
    search = window.history_panel.findChild(QLineEdit, "historyFilterEdit")
    qtbot.waitUntil(lambda: QApplication.focusWidget() is search, timeout=WAIT_MS)
    QTest.keyClicks(search, "po-")
    assert search.text() == "po-"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder with a Documents folder (no user-dirs file names another one)."""
    folder = tmp_path / "home"
    (folder / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


def _export_dialog(qtbot: QtBot, window: MainWindow) -> QFileDialog:
    window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = window.history_panel
    button = panel.findChild(QPushButton, "historyExportButton")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialogs = [d for d in panel.findChildren(QFileDialog, "historyExportDialog") if d.isVisible()]
    assert len(dialogs) == 1
    return dialogs[0]


def test_the_export_dialog_opens_in_documents_then_where_the_last_export_went(
    home: Path, window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = _export_dialog(qtbot, window)
    assert Path(dialog.directory().absolutePath()) == home / "Documents"
    elsewhere = tmp_path / "exports"
    elsewhere.mkdir()
    with qtbot.waitSignal(window.history_panel.exportFinished, timeout=WAIT_MS):
        dialog.selectFile(str(elsewhere / "payouts.csv"))
        dialog.accept()
    assert (elsewhere / "payouts.csv").exists()

    again = _export_dialog(qtbot, window)
    assert Path(again.directory().absolutePath()) == elsewhere
    again.reject()


def test_closing_while_a_resend_is_in_flight_asks_first(
    patient: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    window = patient
    sandbox = window.sandbox
    assert sandbox is not None
    driver = PayoutDriver(window, qtbot)
    sandbox.set_fault(Fault.RESET, times=1)  # the first answer is lost: UNKNOWN
    request_id = driver.send("card", "RUB")
    assert driver.record(request_id).state is State.UNKNOWN

    dialog = open_resend_dialog(window, qtbot, request_id)
    sandbox.set_fault(Fault.NO_ANSWER, times=1)  # the resend's answer is held
    dialog.field_edit("card_number").setText(CARD_EXAMPLE)
    dialog.confirm_edit.setText(request_id)
    qtbot.mouseClick(dialog.send_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.is_busy, timeout=WAIT_MS)

    window.close()  # the title bar's close button: Ctrl+Q does not reach past the dialog
    box = window.quit_question
    assert box is not None and window.isVisible()
    assert "being sent again" in box.text()
    qtbot.mouseClick(
        box.findChild(QPushButton, "closeWhenRecordedButton"), Qt.MouseButton.LeftButton
    )
    assert window.isVisible()
    sandbox.stop()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    with open_history(data_home) as store:
        [record] = store.iter_records()
    assert record.state is State.UNKNOWN and record.send_attempts == 2
