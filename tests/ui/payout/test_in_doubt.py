"""The window on the protocol items: an unverified refusal (1), a gateway that cannot be
reached (18), and a ';' typed into a value that would be signed (5)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QMenu, QPushButton
from pytestqt.qtbot import QtBot

from cactus_desk.gateway.signature import SEPARATOR_MESSAGE
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.history.reconcile_dialog import ReconcileDialog
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.ui.conftest import PayoutDriver
from tests.ui.test_safety_ui import open_resend_dialog


def _choose(combo: QComboBox, label: str) -> None:
    index = combo.findText(label)
    assert index >= 0, f"{label!r} not in {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setCurrentIndex(index)


def test_an_unverified_refusal_is_shown_guarded_filtered_and_can_be_settled(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot
) -> None:
    assert window.sandbox is not None
    # The sandbox refuses in the documented error shape, which names no request_id.
    window.sandbox.set_fault(Fault.REFUSE_WITHOUT_ID, message="Recipient bank offline")
    request_id = driver.send("card", "RUB", amount="700.00")
    assert driver.record(request_id).state is State.REFUSED_UNVERIFIED
    banner = driver.form.banner
    assert banner.kind() == "refused_unverified"
    assert banner.title() == "Refused, unverified:"
    assert "Recipient bank offline" in banner.text()
    assert "Nothing was paid" not in banner.text()

    # Possibly paid: the same payout again needs the duplicate override.
    driver.form.new_request_id()
    driver.fill("card", "RUB", amount="700.00")
    dialog = driver.open_confirm()
    assert dialog.override_check is not None
    listing = dialog.findChild(QLabel, "duplicateList").text()
    assert request_id in listing and "Refused, unverified" in listing
    dialog.reject()

    window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = window.history_panel
    combo = panel.findChild(QComboBox, "historyStateCombo")
    assert combo is not None
    _choose(combo, "Refused, unverified")
    qtbot.waitUntil(lambda: panel.model.row_of_request(request_id) is not None, timeout=5000)
    _choose(combo, "Needs attention")
    qtbot.waitUntil(lambda: panel.model.row_of_request(request_id) is not None, timeout=5000)
    row = panel.model.row_of_request(request_id)
    assert row is not None
    assert panel.model.index(row, Column.STATE).data() == "Refused, unverified"

    assert panel.select_request(request_id)
    assert "refusal could not be verified" in panel._details.toPlainText()
    resend_button = panel.findChild(QPushButton, "resendButton")
    assert resend_button is not None
    qtbot.waitUntil(resend_button.isVisible)  # shown by the tab switch's layout pass
    view = panel.view
    view.customContextMenuRequested.emit(view.visualRect(view.currentIndex()).center())
    menu = panel.findChild(QMenu, "historyContextMenu")
    assert menu is not None
    reconcile = menu.findChild(QAction, "reconcileAction")
    resend = menu.findChild(QAction, "resendAction")
    assert reconcile is not None and reconcile.isEnabled()
    assert resend is not None and resend.isEnabled()
    menu.close()

    # An operator settles it with a note, as for an unknown payout.
    assert panel.timeline.reconcile_button.isEnabled()
    qtbot.mouseClick(panel.timeline.reconcile_button, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(ReconcileDialog, "reconcileDialog")
    assert dialog is not None
    qtbot.waitExposed(dialog)
    dialog.set_values(5, "Cactus support: the bank never received it")
    save = dialog.findChild(QPushButton, "reconcileSaveButton")
    with qtbot.waitSignal(dialog.reconciled, timeout=5_000):
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    record = driver.record(request_id)
    assert (record.gateway_status, record.status_source) == (5, "manual")


def test_a_gateway_that_cannot_be_reached_is_not_sent_in_the_banner_and_the_history(
    window: MainWindow, driver: PayoutDriver
) -> None:
    assert window.sandbox is not None
    window.sandbox.stop()  # the profile's address now refuses connections
    request_id = driver.send("card", "RUB")
    record = driver.record(request_id)
    banner = driver.form.banner
    assert record.state is State.NOT_SENT
    assert banner.kind() == "error" and banner.title() == "Not sent:"
    assert "may have been created" not in banner.text()
    assert "never left this computer" in banner.text()
    assert record.message == "Not sent: " + banner.text()  # one message, both places


@pytest.mark.parametrize(
    ("key", "text"),
    [("site_login", "alice;amount:1"), ("card_holder", "Ivan;amount:1")],
)
def test_a_semicolon_is_refused_at_the_field(
    driver: PayoutDriver, qtbot: QtBot, key: str, text: str
) -> None:
    driver.fill("card", "RUB")
    form = driver.form
    edit = form.site_login_edit if key == "site_login" else form.field(key)
    assert isinstance(edit, QLineEdit)
    edit.clear()
    qtbot.keyClicks(edit, text)
    assert form.error_text(key) == SEPARATOR_MESSAGE
    assert not form.send_button.isEnabled()


def test_a_resend_that_cannot_connect_warns_and_leaves_the_payout_unknown(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot
) -> None:
    assert window.sandbox is not None
    window.sandbox.set_fault(Fault.NO_ANSWER)
    request_id = driver.send("sbp", "RUB")
    assert driver.record(request_id).state is State.UNKNOWN
    window.sandbox.stop()

    dialog = open_resend_dialog(window, qtbot, request_id)
    qtbot.keyClicks(dialog.confirm_edit, request_id)
    with qtbot.waitSignal(dialog.finished, timeout=10_000):
        qtbot.mouseClick(dialog.send_button(), Qt.MouseButton.LeftButton)

    record = driver.record(request_id)
    assert record.state is State.UNKNOWN  # never "Not sent": the first send may have paid
    banner = driver.form.banner
    assert banner.kind() == "warning"
    assert banner.text().startswith("Not sent again: could not connect")
    assert "still in doubt" in banner.text() and "nothing was paid" not in banner.text()
