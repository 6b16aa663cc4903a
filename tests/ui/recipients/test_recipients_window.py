"""Saved recipients and "Repeat this payout" in the real window on the sandbox."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit
from pytestqt.qtbot import QtBot

from cactus_desk.recipients.store import RecipientStore
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.main_window import HISTORY_TAB, PAYOUT_TAB, MainWindow
from tests.ui.conftest import PayoutDriver

WAIT_MS = 10_000
FULL_CARD = "4242424242424242"
OTHER_CARD = "5555555555554444"


def _wait_ready(window: MainWindow, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.recipients.busy(), timeout=WAIT_MS)


def _save(window: MainWindow, qtbot: QtBot, label: str) -> None:
    assert window.recipients.save_current(label)
    qtbot.waitUntil(lambda: label in window.recipients.picker.labels(), timeout=WAIT_MS)


def _pick_by_typing(qtbot: QtBot, window: MainWindow, typed: str) -> None:
    """Type part of a label in the picker and take the first suggestion, as a person would."""
    edit = window.recipients.picker.edit
    window.activateWindow()
    edit.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is edit, timeout=WAIT_MS)
    QTest.keyClicks(edit, typed)
    popup = window.recipients.picker.completer.popup()
    qtbot.waitUntil(popup.isVisible, timeout=WAIT_MS)
    QTest.keyClick(popup, Qt.Key.Key_Down)
    QTest.keyClick(popup, Qt.Key.Key_Return)


def test_a_saved_recipient_is_paid_again_with_one_pick(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot
) -> None:
    window.start_sandbox()
    _wait_ready(window, qtbot)
    driver.fill("sbp", amount="250.00", site_login="bob")
    form = window.form
    form.field("phone_number").setText("79991234567")
    _save(window, qtbot, "Bob — SBP")
    form.clear_recipient()
    assert form.set_method("card")
    _pick_by_typing(qtbot, window, "bob")
    assert form.method() == "sbp"
    assert form.site_login_edit.text() == "bob"
    assert form.panel().values()["phone_number"] == "79991234567"
    assert form.panel().values()["phone_holder"] == "John Wick"
    form.amount_edit.setText("250.00")
    assert form.errors() == {}
    request_id = form.request_id_edit.text()
    driver.confirm(driver.open_confirm())
    driver.wait_done()
    record = driver.record(request_id)
    assert record.site_login == "bob"
    assert record.request["additional_fields"]["phone_number"] == "79991234567"


def test_a_card_recipient_asks_for_the_full_number_and_refuses_other_last_four(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot, data_home: object
) -> None:
    window.start_sandbox()
    _wait_ready(window, qtbot)
    driver.fill("card", "RUB", site_login="alice")
    _save(window, qtbot, "Alice card")
    stored = RecipientStore(window.data_dir).path.read_text(encoding="utf-8")
    assert FULL_CARD not in stored and "424242******4242" in stored
    form = window.form
    form.clear_recipient()
    assert window.recipients.pick("Alice card")
    card = form.field("card_number")
    assert isinstance(card, QLineEdit)
    assert card.text() == ""
    assert "4242" in card.placeholderText()
    assert "4242" in window.recipients.picker.note.text()
    assert "card_number" in form.errors()  # the number must be typed again
    driver.activate(card)
    QTest.keyClicks(card, OTHER_CARD)
    assert "ends in 4242" in form.error_text("card_number")
    assert not form.send_button.isEnabled()
    card.clear()
    QTest.keyClicks(card, FULL_CARD)
    assert form.errors() == {}
    assert form.send_button.isEnabled()


def _history(window: MainWindow, qtbot: QtBot, request_id: str) -> HistoryPanel:
    window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = window.history_panel
    panel.refresh()
    assert panel.wait_until_idle()
    qtbot.waitUntil(lambda: panel.select_request(request_id), timeout=WAIT_MS)
    qtbot.waitUntil(panel.repeat_button.isVisible, timeout=WAIT_MS)
    return panel


def test_repeat_from_history_keeps_everything_but_the_card_and_takes_a_new_id(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot
) -> None:
    window.start_sandbox()
    _wait_ready(window, qtbot)
    form = window.form
    driver.fill("card", "EUR", amount="12.34", site_login="carol")
    form.field("card_holder").setText("Carol Smith")
    sent = form.request_id_edit.text()
    driver.confirm(driver.open_confirm())
    driver.wait_done()
    form.clear_recipient()
    form.set_currency("RUB")
    panel = _history(window, qtbot, sent)
    qtbot.mouseClick(panel.repeat_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == PAYOUT_TAB, timeout=WAIT_MS)
    assert form.currency() == "EUR" and form.method() == "card"
    assert form.site_login_edit.text() == "carol"
    assert form.amount_edit.text() == "12.34"
    values = form.panel().values()
    assert values["card_number"] == ""
    assert values["card_holder"] == "Carol Smith"
    assert form.request_id_edit.text() not in ("", sent)
    assert window.recipients.expected_last4() == "4242"
    driver.activate(form.field("card_number"))
    QTest.keyClicks(form.field("card_number"), OTHER_CARD)
    assert not form.send_button.isEnabled()


def test_repeat_is_in_the_row_menu(window: MainWindow, driver: PayoutDriver, qtbot: QtBot) -> None:
    window.start_sandbox()
    _wait_ready(window, qtbot)
    sent = driver.send("sbp", amount="7.00", site_login="dave")
    window.form.clear_recipient()
    panel = _history(window, qtbot, sent)
    rect = panel.view.visualRect(panel.view.currentIndex())
    panel._menu_for(panel.view.currentIndex().row(), rect.center())
    from PySide6.QtWidgets import QMenu

    qtbot.waitUntil(
        lambda: any(m.isVisible() for m in panel.findChildren(QMenu, "historyContextMenu")),
        timeout=WAIT_MS,
    )
    [menu] = [m for m in panel.findChildren(QMenu, "historyContextMenu") if m.isVisible()]
    [action] = [a for a in menu.actions() if a.objectName() == "repeatAction"]
    action.trigger()
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == PAYOUT_TAB, timeout=WAIT_MS)
    assert window.form.site_login_edit.text() == "dave"
    assert window.form.amount_edit.text() == "7.00"
    assert window.form.request_id_edit.text() != sent
