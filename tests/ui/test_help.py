"""Help in the real window: Help › User guide opens the bundled guide, F1 opens the part for
the current tab, Ctrl+F puts the cursor in the History's search."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from cactus_desk.ui.help import HelpDialog
from cactus_desk.ui.main_window import HISTORY_TAB, PAYOUT_TAB, MainWindow

WAIT_MS = 10_000


def _press(
    window: MainWindow, qtbot: QtBot, key: Qt.Key, mods=Qt.KeyboardModifier.NoModifier
) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    QTest.keyClick(window.windowHandle(), key, mods)


def test_f1_opens_the_guide_at_the_part_for_the_current_tab(
    window: MainWindow, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    window.tabs.setCurrentIndex(PAYOUT_TAB)
    _press(window, qtbot, Qt.Key.Key_F1)
    guide = window.findChild(HelpDialog, "helpDialog")
    assert guide is not None
    qtbot.waitUntil(guide.loaded, timeout=WAIT_MS)
    assert guide.isVisible() and guide.section() == "payout"
    text = guide.browser.toPlainText()
    assert "Saved recipients" in text and "Repeat this payout" in text
    image = guide.browser.document().resource(
        QTextDocument.ResourceType.ImageResource, guide.browser.source().resolved("payout.png")
    )
    assert image is not None  # the screenshots ship with the guide
    guide.hide()

    window.tabs.setCurrentIndex(HISTORY_TAB)
    _press(window, qtbot, Qt.Key.Key_F1)
    assert guide.isVisible() and guide.section() == "history"
    top = guide.browser.cursorForPosition(guide.browser.viewport().rect().topLeft())
    assert guide.browser.verticalScrollBar().value() > 0, top.block().text()


def test_the_help_menu_has_the_user_guide(window: MainWindow, qtbot: QtBot) -> None:
    action = next(
        a
        for a in window.findChildren(type(window.menuBar().actions()[0]))
        if a.objectName() == "userGuideAction"
    )
    action.trigger()
    guide = window.findChild(HelpDialog, "helpDialog")
    assert guide is not None and guide.isVisible()


def test_ctrl_f_focuses_the_history_search(window: MainWindow, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    window.tabs.setCurrentIndex(PAYOUT_TAB)
    _press(window, qtbot, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == HISTORY_TAB, timeout=WAIT_MS)
    focused = QApplication.focusWidget()
    assert focused is not None and focused.objectName() == "historyFilterEdit"
