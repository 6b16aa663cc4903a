"""The history tab in the real window: the keyboard menu, columns that fit and are remembered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QMenu
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.history_view import HistoryPanel
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.callbacks.helpers import MERCHANT, SALT, SITE, accepted_record, unknown_record

PROFILE_ID = "p-main"
WAIT_MS = 5_000


def _open_window(data_home: Path) -> MainWindow:
    built = build_main_window(["--data-dir", str(data_home)])
    assert isinstance(built, MainWindow)
    return built


@pytest.fixture
def window(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    """The window on a saved profile whose salt is in the keyring, at its default size."""
    ProfileStore(data_home).add(
        Profile(
            id=PROFILE_ID,
            name="Main shop",
            base_url="https://pay.example.com",
            merchant_id=MERCHANT,
            site_id=SITE,
        )
    )
    SecretStore().set_salt(PROFILE_ID, SALT)
    built = _open_window(data_home)
    qtbot.addWidget(built)
    built.show()
    qtbot.waitExposed(built)
    yield built
    built.shutdown()


def history(window: MainWindow) -> HistoryPanel:
    window.tabs.setCurrentIndex(HISTORY_TAB)
    return window.history_panel


def _open_menu(qtbot: QtBot, panel: HistoryPanel) -> QMenu:
    qtbot.waitUntil(
        lambda: any(m.isVisible() for m in panel.findChildren(QMenu, "historyContextMenu")),
        timeout=WAIT_MS,
    )
    [menu] = [m for m in panel.findChildren(QMenu, "historyContextMenu") if m.isVisible()]
    return menu


def _press(window: MainWindow, panel: HistoryPanel, how: str) -> None:
    """Ask for the row menu from the keyboard, through the window as a keyboard would."""
    handle = window.windowHandle()
    if how == "menu-key":
        QTest.keyClick(handle, Qt.Key.Key_Menu)
    elif how == "shift-f10":
        QTest.keyClick(handle, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    else:
        # What the X11 and Windows platform plugins send for the Menu key: a keyboard
        # context-menu event, at a point that is not the selected row's.
        corner = QPoint(5, 5)
        event = QContextMenuEvent(
            QContextMenuEvent.Reason.Keyboard, corner, panel.view.mapToGlobal(corner)
        )
        QApplication.sendEvent(panel.view, event)


@pytest.mark.parametrize("how", ["menu-key", "shift-f10", "platform-menu-event"])
def test_the_keyboard_context_menu_acts_on_the_selected_row(
    window: MainWindow, qtbot: QtBot, how: str
) -> None:
    store = window.history
    # Unknown payouts above and below the selected one: a menu for the wrong row would be
    # just as enabled, so the test checks which record it acts on.
    for index in range(12):
        unknown_record(store, f"po-{index:02d}")
    accepted_record(store, "po-done", invoice_id="500077")
    panel = history(window)
    panel.refresh()
    assert panel.select_request("po-07")
    selected = panel.model.record_id(panel.view.currentIndex().row())
    window.activateWindow()
    panel.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.view, timeout=WAIT_MS)
    QApplication.processEvents()  # the tab's pending layout, so rows stay where they are

    _press(window, panel, how)
    menu = _open_menu(qtbot, panel)
    # It opens at the selected row, not where the mouse or the event's corner is.
    row_rect = panel.view.visualRect(panel.view.currentIndex())
    row_top = panel.view.viewport().mapToGlobal(row_rect.topLeft()).y()
    assert row_top <= menu.pos().y() <= row_top + 2 * row_rect.height()
    resend = menu.findChild(QAction, "resendAction")
    assert resend is not None and resend.isEnabled()
    with qtbot.waitSignal(panel.resendRequested, timeout=WAIT_MS) as asked:
        resend.trigger()
    menu.close()
    assert asked.args == [selected]
    resend_dialog = window.findChild(QDialog, "resendDialog")
    assert resend_dialog is not None  # the window opened "Send again" for that payout
    resend_dialog.reject()

    # The same keys on a final payout offer nothing that would change it.
    assert panel.select_request("po-done")
    panel.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.view, timeout=WAIT_MS)
    _press(window, panel, how)
    menu = _open_menu(qtbot, panel)
    action = menu.findChild(QAction, "resendAction")
    assert action is not None and not action.isEnabled()
    menu.close()
