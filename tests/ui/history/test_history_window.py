"""The history tab in the real window: the keyboard menu, columns that fit and are remembered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QMenu
from pytestqt.qtbot import QtBot

from cactus_desk.app import _build_shell, _finish, build_main_window, parse_args
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.main_window import DEFAULT_SIZE, HISTORY_TAB, MainWindow
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
    panel = window.history_panel
    assert panel.wait_until_idle()  # the rows are read on workers
    return panel


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
    if how in ("menu-key", "menu-key-and-platform-event"):
        QTest.keyClick(handle, Qt.Key.Key_Menu)
    elif how == "shift-f10":
        QTest.keyClick(handle, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    if how in ("platform-menu-event", "menu-key-and-platform-event"):
        # What the X11 and Windows platform plugins send for the Menu key (besides the key
        # itself): a keyboard context-menu event, at a point that is not the selected row's.
        corner = QPoint(5, 5)
        event = QContextMenuEvent(
            QContextMenuEvent.Reason.Keyboard, corner, panel.view.mapToGlobal(corner)
        )
        QApplication.sendEvent(panel.view, event)


@pytest.mark.parametrize(
    "how", ["menu-key", "shift-f10", "platform-menu-event", "menu-key-and-platform-event"]
)
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
    assert panel.wait_until_idle()
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
    window.activateWindow()  # the closed dialog may have left no window active (offscreen)
    panel.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.view, timeout=WAIT_MS)
    _press(window, panel, how)
    menu = _open_menu(qtbot, panel)
    action = menu.findChild(QAction, "resendAction")
    assert action is not None and not action.isEnabled()
    menu.close()


FIRST_COLUMNS = (
    Column.TIME,
    Column.REQUEST_ID,
    Column.AMOUNT,
    Column.CURRENCY,
    Column.STATE,
    Column.GATEWAY_STATUS,
)


def test_at_the_default_size_the_main_columns_show_without_scrolling_sideways(
    window: MainWindow,
) -> None:
    assert (window.width(), window.height()) == DEFAULT_SIZE
    unknown_record(window.history, "cd-20261129-0997394c09")
    panel = history(window)
    panel.refresh()
    assert panel.wait_until_idle()
    QApplication.processEvents()
    view = panel.view
    assert view.horizontalScrollBar().value() == 0
    shown = view.viewport().rect()
    for column in FIRST_COLUMNS:
        cell = view.visualRect(panel.model.index(0, column))
        assert shown.contains(cell), (column.name, cell, shown)
    # The request id is whole, not cut short.
    request = panel.model.index(0, Column.REQUEST_ID)
    text_width = view.fontMetrics().horizontalAdvance(request.data())
    assert view.horizontalHeader().sectionSize(Column.REQUEST_ID) > text_width


def _header_menu(qtbot: QtBot, panel: HistoryPanel) -> QMenu:
    header = panel.view.horizontalHeader()
    header.customContextMenuRequested.emit(QPoint(10, header.height() // 2))
    qtbot.waitUntil(
        lambda: any(m.isVisible() for m in panel.findChildren(QMenu, "historyColumnsMenu")),
        timeout=WAIT_MS,
    )
    [menu] = [m for m in panel.findChildren(QMenu, "historyColumnsMenu") if m.isVisible()]
    return menu


def test_columns_can_be_hidden_from_the_header_menu_and_dragged_to_a_new_place(
    window: MainWindow, qtbot: QtBot
) -> None:
    accepted_record(window.history, "po-cols")
    panel = history(window)
    QApplication.processEvents()
    header = panel.view.horizontalHeader()

    menu = _header_menu(qtbot, panel)
    invoice = menu.findChild(QAction, "columnAction_INVOICE_ID")
    assert invoice is not None and invoice.isCheckable() and invoice.isChecked()
    invoice.trigger()
    menu.close()
    assert header.isSectionHidden(Column.INVOICE_ID)
    menu = _header_menu(qtbot, panel)
    assert not menu.findChild(QAction, "columnAction_INVOICE_ID").isChecked()
    menu.close()

    # Drag the Profile header onto the first place with the mouse.
    start = QPoint(header.sectionViewportPosition(Column.PROFILE) + 10, header.height() // 2)
    target = QPoint(4, header.height() // 2)
    QTest.mousePress(header.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 11):
        QTest.mouseMove(header.viewport(), start + (target - start) * step / 10)
    QTest.mouseRelease(header.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert header.visualIndex(Column.PROFILE) == 0

    # "Reset columns" brings back the default arrangement.
    menu = _header_menu(qtbot, panel)
    menu.findChild(QAction, "resetColumnsAction").trigger()
    menu.close()
    assert not header.isSectionHidden(Column.INVOICE_ID)
    assert [header.logicalIndex(v) for v in range(len(FIRST_COLUMNS))] == list(FIRST_COLUMNS)


def test_the_last_column_shown_cannot_be_hidden(window: MainWindow, qtbot: QtBot) -> None:
    panel = history(window)
    header = panel.view.horizontalHeader()
    for column in Column:
        if column != Column.STATE:
            header.setSectionHidden(column, True)
    menu = _header_menu(qtbot, panel)
    assert not menu.findChild(QAction, "columnAction_STATE").isEnabled()
    menu.close()


def test_columns_sort_and_window_geometry_are_remembered_across_a_restart(
    window: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    store = window.history
    for index, amount in enumerate((30_000, 10_000, 20_000)):
        accepted_record(store, f"po-{index}", amount_minor=amount)
    panel = history(window)
    header = panel.view.horizontalHeader()
    header.setSectionHidden(Column.INVOICE_ID, True)
    header.moveSection(header.visualIndex(Column.SITE_LOGIN), 0)
    header.resizeSection(Column.REQUEST_ID, 241)
    panel.view.sortByColumn(Column.AMOUNT, Qt.SortOrder.AscendingOrder)
    window.resize(700, 640)
    window.move(40, 30)
    QApplication.processEvents()
    geometry = window.geometry()
    window.close()
    assert not window.isVisible()

    settings = (data_home / "window.ini").read_text(encoding="utf-8")
    assert SALT not in settings and "po-0" not in settings  # layout only, never secrets or data

    again = _open_window(data_home)
    qtbot.addWidget(again)
    try:
        again.show()
        qtbot.waitExposed(again)
        assert again.geometry() == geometry
        again.tabs.setCurrentIndex(HISTORY_TAB)
        panel = again.history_panel
        assert panel.wait_until_idle()
        header = panel.view.horizontalHeader()
        assert header.isSectionHidden(Column.INVOICE_ID)
        assert header.logicalIndex(0) == Column.SITE_LOGIN
        assert header.sectionSize(Column.REQUEST_ID) == 241
        assert header.sortIndicatorSection() == Column.AMOUNT
        assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
        amounts = [panel.model.history_row(row).amount_minor for row in range(3)]
        assert amounts == [10_000, 20_000, 30_000]
    finally:
        again.shutdown()


def test_an_unreadable_remembered_layout_falls_back_to_the_default(
    qtbot: QtBot, data_home: Path
) -> None:
    data_home.mkdir(parents=True, exist_ok=True)
    (data_home / "window.ini").write_text(
        '[history]\ncolumns="{\\"order\\": 7, \\"widths\\": {\\"TIME\\": -5}, '
        '\\"hidden\\": [\\"TIME\\", \\"NOPE\\"], \\"sort\\": \\"MESSAGE\\"}"\n'
        "[window]\ngeometry=not a geometry\n",
        encoding="utf-8",
    )
    built = _open_window(data_home)
    qtbot.addWidget(built)
    try:
        built.show()
        qtbot.waitExposed(built)
        assert (built.width(), built.height()) == DEFAULT_SIZE
        built.tabs.setCurrentIndex(HISTORY_TAB)
        header = built.history_panel.view.horizontalHeader()
        assert [header.logicalIndex(v) for v in range(len(FIRST_COLUMNS))] == list(FIRST_COLUMNS)
        assert header.isSectionHidden(Column.TIME)  # the one readable part is applied
        header.setSectionHidden(Column.TIME, False)
        assert header.sectionSize(Column.TIME) > 24  # not the -5 of the file
        assert header.sortIndicatorSection() == Column.TIME
    finally:
        built.shutdown()


# The app as started from the command line: once its window is ready, ``ACT`` runs on it,
# then every window is closed the way the desktop closes them and ``run`` returns.
RUN_APP = """
import json, sys
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from cactus_desk import app
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow

qapp = QApplication([])

def act(window):
    window.tabs.setCurrentIndex(HISTORY_TAB)
    header = window.history_panel.view.horizontalHeader()
{act}

def poll():
    windows = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
    if windows and windows[0].is_ready():
        timer.stop()
        try:
            act(windows[0])
        finally:
            qapp.closeAllWindows()

timer = QTimer()
timer.timeout.connect(poll)
timer.start(20)
sys.exit(app.run(["--sandbox", "--data-dir", {data!r}]))
"""


def _run_app(data_home: Path, act: str) -> str:
    code = RUN_APP.format(act=act, data=str(data_home))
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code],  # a crash says where
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_panel_asked_for_while_the_history_opens_is_built_once(
    qtbot: QtBot, data_home: Path
) -> None:
    # Waiting for the history delivers it, and a window on its History tab builds the
    # panel then: the panel asked for must be that one, not a second (whose reads, never
    # stopped, outlived the window and crashed the process at exit).
    args = parse_args(["--data-dir", str(data_home)])
    window = _build_shell(args)
    qtbot.addWidget(window)
    _finish(window, args)
    assert window.is_ready()
    window.tabs.setCurrentIndex(HISTORY_TAB)
    try:
        panel = window.history_panel
        assert window.findChildren(HistoryPanel) == [panel]
        assert window.history_panel is panel
    finally:
        window.shutdown()


def test_a_restarted_app_shows_the_columns_and_window_as_they_were_left(data_home: Path) -> None:
    _run_app(
        data_home,
        "    header.setSectionHidden(Column.METHOD, True)\n"
        "    header.moveSection(header.visualIndex(Column.STATE), 0)\n"
        "    header.resizeSection(Column.TIME, 222)\n"
        "    window.history_panel.view.sortByColumn(Column.CURRENCY, Qt.SortOrder.AscendingOrder)\n"
        "    window.setGeometry(30, 40, 690, 610)\n",
    )
    shown = _run_app(
        data_home,
        "    geometry = window.geometry()\n"
        "    print(json.dumps({\n"
        "        'hidden': header.isSectionHidden(Column.METHOD),\n"
        "        'first': header.logicalIndex(0),\n"
        "        'time': header.sectionSize(Column.TIME),\n"
        "        'sort': [header.sortIndicatorSection(), header.sortIndicatorOrder().value],\n"
        "        'geometry': [geometry.x(), geometry.y(), geometry.width(), geometry.height()],\n"
        "    }))\n",
    )
    assert json.loads(shown.strip().splitlines()[-1]) == {
        "hidden": True,
        "first": Column.STATE,
        "time": 222,
        "sort": [Column.CURRENCY, 0],
        "geometry": [30, 40, 690, 610],
    }
