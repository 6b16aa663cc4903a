"""The window side of payout safety: one window per data folder, interrupted payouts, a damaged
history, the duplicate warning, "send again with the same request ID", and the exception hook."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QMenu, QPushButton
from pytestqt.qtbot import QtBot

from cactus_desk import app
from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import UnknownKind
from cactus_desk.history import open_history
from cactus_desk.history.sqlite.backup import list_backups, make_backup
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.logs import stop_logging
from cactus_desk.payouts.recovery import NOT_SENT_REASON, resend_history
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import submit_payout
from cactus_desk.sandbox import Fault
from cactus_desk.ui.dialogs.recovery import CorruptHistoryDialog
from cactus_desk.ui.exception_hook import install_exception_hook
from cactus_desk.ui.history.resend_dialog import ResendDialog
from cactus_desk.ui.main_window import HISTORY_TAB, AlreadyRunningError, MainWindow
from tests.safety.helpers import as_payout, attempt, black_hole, card_request
from tests.ui.conftest import READ_TIMEOUT, PayoutDriver

CARD_EXAMPLE = load_catalog().method("card").field("card_number").example


def open_window(qtbot: QtBot, data_home: Path, *extra: str) -> MainWindow:
    window = app.build_main_window(["--data-dir", str(data_home), *extra])
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def sandbox_window(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    window = open_window(qtbot, data_home, "--sandbox", "--read-timeout", READ_TIMEOUT)
    yield window
    window.shutdown()


def seed_history(data_home: Path) -> Path:
    """A history with one payout that ended (not sent) and a backup of it; returns its path."""
    with open_history(data_home) as store:
        record_id = store.create_attempt(attempt("https://gw.example.com", card_request("po-old")))
        store.record_not_sent(record_id, "No site salt is stored for this profile.")
    path = data_home / HISTORY_FILE
    make_backup(path, "daily")
    return path


def open_resend_dialog(window: MainWindow, qtbot: QtBot, request_id: str) -> ResendDialog:
    """Select ``request_id`` in the history and press the details pane's resend button."""
    window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = window.history_panel
    assert panel.select_request(request_id)
    button = panel.findChild(QPushButton, "resendButton")
    assert button is not None
    qtbot.waitUntil(button.isVisible)  # the panel is shown by the tab switch's layout pass
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = window.findChild(QDialog, "resendDialog")
    assert isinstance(dialog, ResendDialog)
    qtbot.waitExposed(dialog)
    return dialog


# -- one window per data folder ---------------------------------------------------------


def test_a_second_window_on_the_same_data_folder_is_refused(
    sandbox_window: MainWindow, qtbot: QtBot, data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AlreadyRunningError, match="already running on the data folder"):
        app.build_main_window(["--data-dir", str(data_home)])
    try:
        assert app.run(["--data-dir", str(data_home)]) == app.EXIT_FAILURE
    finally:
        stop_logging()
    err = capsys.readouterr().err
    assert "Cactus Desk is already running on the data folder" in err
    assert "Switch to that window, or close it" in err
    # The first window is unharmed, and once it is closed the folder is free again.
    assert sandbox_window.history.count() == 0
    sandbox_window.shutdown()
    again = open_window(qtbot, data_home)
    again.shutdown()


# -- interrupted payouts ----------------------------------------------------------------


def test_interrupted_payouts_are_settled_and_announced_at_start(
    qtbot: QtBot, data_home: Path
) -> None:
    with open_history(data_home) as store:
        sent = store.create_attempt(attempt("https://gw.example.com", card_request("po-sent")))
        store.mark_sending(sent)  # it left, then the process died
        store.create_attempt(attempt("https://gw.example.com", card_request("po-held")))

    window = open_window(qtbot, data_home)
    try:
        banner = window.recovery_banner
        assert banner.text().startswith(
            "2 payouts were interrupted when Cactus Desk last stopped: 1 not sent, 1 UNKNOWN."
        )
        assert "do not send them again before checking with Cactus" in banner.text()
        states = {r.request_id: r for r in window.history.iter_records()}
        assert states["po-sent"].state is State.UNKNOWN
        assert states["po-held"].state is State.NOT_SENT
        assert states["po-held"].message == NOT_SENT_REASON

        qtbot.mouseClick(banner.show_button, Qt.MouseButton.LeftButton)
        assert window.tabs.currentIndex() == HISTORY_TAB
        current = window.history_panel.view.currentIndex()
        assert window.history_panel.model.record_id(current.row()) == states["po-held"].id
    finally:
        window.shutdown()

    second = open_window(qtbot, data_home)  # a second start has nothing more to settle
    try:
        assert second.recovery_banner.text() == ""
    finally:
        second.shutdown()


# -- a damaged history ------------------------------------------------------------------


def test_a_damaged_history_offers_the_backup_and_works_after_the_restore(
    qtbot: QtBot, data_home: Path
) -> None:
    path = seed_history(data_home)
    with open(path, "r+b") as damaged:
        damaged.write(b"this is not a database at all, just bytes")

    window = open_window(qtbot, data_home, "--sandbox", "--read-timeout", READ_TIMEOUT)
    try:
        dialog = window.findChild(QDialog, "corruptHistoryDialog")
        assert isinstance(dialog, CorruptHistoryDialog) and dialog.isVisible()
        kept = dialog.error.kept_path
        explanation = dialog.findChild(QLabel, "corruptHistoryText").text()
        assert str(kept) in explanation and "Nothing was deleted" in explanation
        assert kept.read_bytes().startswith(b"this is not a database")  # kept, unchanged
        assert not path.exists()  # and not silently replaced by an empty history
        assert not window.tabs.isEnabled()
        with pytest.raises(RuntimeError, match="not open"):
            _ = window.history
        # Starting empty needs its own explicit tick.
        assert not dialog.empty_button.isEnabled()

        qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
        assert [r.request_id for r in window.history.iter_records()] == ["po-old"]
        assert "restored from the backup" in window.recovery_banner.text()
        assert window.tabs.isEnabled()

        driver = PayoutDriver(window, qtbot)
        request_id = driver.send("card", "RUB")
        assert driver.record(request_id).state is State.ACCEPTED
        assert {r.request_id for r in window.history.iter_records()} == {"po-old", request_id}
    finally:
        window.shutdown()


def test_damage_found_by_the_background_check_takes_the_history_down(
    qtbot: QtBot, data_home: Path
) -> None:
    path = seed_history(data_home)
    conn = sqlite3.connect(path)
    root = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'payouts_by_invoice'"
    ).fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as damaged:  # an index page: opening works, the check does not
        damaged.seek((root - 1) * page)
        damaged.write(b"\xff" * page)

    window = open_window(qtbot, data_home)
    try:
        qtbot.waitUntil(
            lambda: window.findChild(QDialog, "corruptHistoryDialog") is not None, timeout=10_000
        )
        dialog = window.findChild(QDialog, "corruptHistoryDialog")
        assert isinstance(dialog, CorruptHistoryDialog)
        assert "malformed" in dialog.error.problem
        assert dialog.error.kept_path.exists() and not path.exists()
        dialog.empty_check.setChecked(True)
        qtbot.mouseClick(dialog.empty_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
        assert window.history.count() == 0
        assert "new, empty history" in window.recovery_banner.text()
        assert len(list_backups(data_home)) == 1  # the backup is still there, untouched
    finally:
        window.shutdown()


# -- duplicates -------------------------------------------------------------------------


def test_a_repeat_of_a_recent_payout_needs_the_override_ticked(
    sandbox_window: MainWindow, qtbot: QtBot
) -> None:
    driver = PayoutDriver(sandbox_window, qtbot)
    first = driver.send("card", "RUB", amount="700.00")

    driver.fill("card", "RUB", amount="700.00")
    dialog = driver.open_confirm()
    override = dialog.override_check
    assert override is not None and override.objectName() == "duplicateOverrideCheck"
    assert override.text() == "Send anyway: this is not a duplicate"
    listing = dialog.findChild(QLabel, "duplicateList").text()
    assert first in listing and "Accepted" in listing
    assert not dialog.send_button().isEnabled()
    dialog.accept()  # Enter or a script: still nothing without the tick
    assert dialog.isVisible()
    assert sandbox_window.history.count() == 1

    qtbot.mouseClick(override, Qt.MouseButton.LeftButton)
    assert dialog.send_button().isEnabled()
    driver.confirm(dialog)
    driver.wait_done()
    assert sandbox_window.history.count() == 2


# -- send again with the same request ID ------------------------------------------------


def test_resending_an_unknown_card_payout_reuses_its_request_id_and_never_pays_twice(
    sandbox_window: MainWindow, qtbot: QtBot
) -> None:
    sandbox = sandbox_window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.NO_ANSWER)
    driver = PayoutDriver(sandbox_window, qtbot)
    request_id = driver.send("card", "RUB")
    assert driver.record(request_id).state is State.UNKNOWN
    sandbox.clear_fault()

    dialog = open_resend_dialog(sandbox_window, qtbot, request_id)
    risk = dialog.findChild(QLabel, "resendRisk").text()
    assert request_id in risk
    assert "does not document how its gateway treats a request ID" in risk
    send = dialog.send_button()
    assert not send.isEnabled()
    card = dialog.field_edit("card_number")
    card.setText("5555 5555 5555 4444")
    dialog.confirm_edit.setText(request_id)
    assert not send.isEnabled()
    assert any("does not match" in problem for problem in dialog.problems())
    card.setText(CARD_EXAMPLE)
    assert send.isEnabled()
    with qtbot.waitSignal(dialog.finished, timeout=10_000):
        qtbot.mouseClick(send, Qt.MouseButton.LeftButton)

    record = driver.record(request_id)
    # The gateway had it all along: the same request ID is refused, not paid a second time,
    # and the refusal settles nothing.
    assert record.state is State.UNKNOWN
    assert record.unknown_kind == UnknownKind.RESEND_REFUSED
    assert record.send_attempts == 2
    assert len(sandbox.invoices) == 1
    audit = resend_history(sandbox_window.history, record.id)
    assert [row["previous_state"] for row in audit] == ["UNKNOWN"]
    assert "refused this resend" in driver.form.banner.text()
    assert "does not document" in driver.form.banner.text()
    assert card.text() == ""  # the full number does not outlive the send


def test_resending_a_payout_that_never_arrived_is_accepted_with_the_same_request_id(
    sandbox_window: MainWindow, qtbot: QtBot
) -> None:
    sandbox, profile = sandbox_window.sandbox, sandbox_window.sandbox_profile
    assert sandbox is not None and profile is not None
    request = PayoutRequest(
        merchant_id=profile.merchant_id,
        site_login="alice",
        site_id=profile.site_id,
        request_id="po-lost-on-the-way",
        amount=42_000,
        currency="RUB",
        method="card",
        additional_fields={"card_number": CARD_EXAMPLE, "card_holder": "John Wick"},
    )
    # A server hung up on it: the outcome is unknown, and nothing reached the gateway.
    with black_hole() as url, CactusClient(url, connect_timeout=1) as dead:
        first = submit_payout(
            sandbox_window.history, dead, lambda: "x", as_payout(profile, request)
        )
    assert first.state is State.UNKNOWN

    sandbox_window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = sandbox_window.history_panel
    panel.refresh()
    assert panel.select_request(request.request_id)
    view = panel.view
    view.customContextMenuRequested.emit(view.visualRect(view.currentIndex()).center())
    menu = panel.findChild(QMenu, "historyContextMenu")
    assert menu is not None
    action = menu.findChild(QAction, "resendAction")
    assert action is not None and action.isEnabled()
    action.trigger()
    menu.close()
    dialog = sandbox_window.findChild(QDialog, "resendDialog")
    assert isinstance(dialog, ResendDialog)

    dialog.field_edit("card_number").setText(CARD_EXAMPLE)
    qtbot.keyClicks(dialog.confirm_edit, request.request_id)
    with qtbot.waitSignal(dialog.finished, timeout=10_000):
        qtbot.mouseClick(dialog.send_button(), Qt.MouseButton.LeftButton)

    record = sandbox_window.history.get(first.record_id)
    assert record.state is State.ACCEPTED
    assert record.request_id == request.request_id
    assert [i["request_id"] for i in sandbox.invoices] == [request.request_id]
    assert sandbox_window.form.banner.text().startswith("Payout accepted")


def test_only_an_unknown_payout_offers_to_be_sent_again(
    sandbox_window: MainWindow, qtbot: QtBot
) -> None:
    driver = PayoutDriver(sandbox_window, qtbot)
    request_id = driver.send("card", "RUB")
    sandbox_window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = sandbox_window.history_panel
    assert panel.select_request(request_id)
    button = panel.findChild(QPushButton, "resendButton")
    assert button is not None and not button.isVisible()
    assert sandbox_window.open_resend(driver.record(request_id).id) is None
    assert "only a payout whose outcome is unknown" in sandbox_window.statusBar().currentMessage()


# -- the exception hook -----------------------------------------------------------------


@pytest.mark.qt_no_exception_capture
def test_an_unexpected_error_is_logged_explained_and_the_window_carries_on(
    sandbox_window: MainWindow,
    qtbot: QtBot,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = sandbox_window.sandbox
    assert sandbox is not None
    salt = sandbox.salt
    log_path = tmp_path / "cactus-desk.log"
    hook = install_exception_hook(sandbox_window, log_path)
    try:

        def broken_slot() -> None:
            raise RuntimeError(f"the handler choked on {salt}")

        with caplog.at_level(logging.ERROR, logger="cactus_desk.crash"):
            QTimer.singleShot(0, broken_slot)
            qtbot.waitUntil(lambda: hook.dialog() is not None, timeout=5000)
            dialog = hook.dialog()
            assert dialog is not None and dialog.objectName() == "crashDialog"
            assert dialog.isVisible() and not dialog.isModal()
            text = dialog.text()
            assert text.startswith("Something went wrong inside Cactus Desk: RuntimeError")
            assert f"written to the log at {log_path}" in text
            assert "Cactus Desk is still running" in text
            assert salt not in text

            worker = threading.Thread(target=broken_slot)
            worker.start()
            worker.join()
            qtbot.waitUntil(lambda: hook.count == 2, timeout=5000)
            assert hook.dialog() is dialog  # one dialog, however many errors
            assert "2 times" in dialog.text()
        assert "Traceback" in caplog.text and "broken_slot" in caplog.text
        assert salt not in caplog.text

        dialog.close()
        driver = PayoutDriver(sandbox_window, qtbot)
        request_id = driver.send("card", "RUB")
        assert driver.record(request_id).state is State.ACCEPTED
    finally:
        hook.uninstall()
    assert QApplication.instance() is not None
