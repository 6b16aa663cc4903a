"""The history table paints a screen of loaded rows itself, in one pass, as Qt would; the
history keeps the GUI thread's waits for its readers short."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QTableView
from pytestqt.qtbot import QtBot

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import NewAttempt
from cactus_desk.profiles import ProfileStore
from cactus_desk.ui import style
from cactus_desk.ui.history.model import LOADING_TEXT, Column, HistoryModel
from cactus_desk.ui.history.panel import GUI_SWITCH_INTERVAL_S, HistoryPanel
from cactus_desk.ui.history.table_view import HistoryTableView

ROWS = 60


def _attempt(i: int) -> NewAttempt:
    live = i % 3 == 0
    return NewAttempt(
        profile_id="p-live" if live else "p-test",
        profile_name="Main desk" if live else "Test desk",
        environment="live" if live else "sandbox",
        merchant_id="m",
        site_id=7,
        request_id=f"po-{i:04d}-a-request-id-long-enough-to-be-cut",
        site_login=f"user{i % 17}",
        method="card",
        currency=("USD", "EUR", "VND")[i % 3],
        amount_minor=1_000 + i * 3_701,
        request_fields={"card_number": "411111******1111"},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteHistoryStore]:
    clock = itertools.count(1_714_558_953_000, 60_000)
    with SqliteHistoryStore(tmp_path / "history.sqlite3", clock=lambda: next(clock)) as history:
        for i in range(ROWS):
            record_id = history.create_attempt(_attempt(i))
            if i % 7 == 6:
                continue  # stays submitting: italic
            if i % 5 == 1:
                history.record_outcome(
                    record_id, Rejected(message="Insufficient balance", signature_verified=True)
                )
            elif i % 5 == 2:
                history.record_outcome(
                    record_id, Unknown(reason="no answer", kind=UnknownKind.TIMEOUT)
                )
            else:
                message = "Payout initialized " * (1 + i % 4)
                history.record_outcome(
                    record_id, Accepted(invoice_id=str(i), status=3, message=message)
                )
        yield history


@pytest.fixture
def panel(qtbot: QtBot, store: SqliteHistoryStore, data_home: Path) -> HistoryPanel:
    widget = HistoryPanel(store, ProfileStore(data_home))
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    assert widget.wait_until_idle()
    return widget


def _plain_copy(qtbot: QtBot, panel: HistoryPanel) -> QTableView:
    """Qt's own table over the same model, with the panel's columns, widths, selection and
    scroll bars."""
    view = panel.view
    plain = QTableView()
    qtbot.addWidget(plain)
    style.flat_scroll_bars(plain)
    plain.setModel(panel.model)
    plain.setSelectionModel(view.selectionModel())
    plain.setWordWrap(False)
    plain.verticalHeader().setVisible(False)
    plain.verticalHeader().setDefaultSectionSize(view.verticalHeader().defaultSectionSize())
    plain.horizontalHeader().restoreState(view.horizontalHeader().saveState())
    plain.resize(view.size())
    plain.show()
    qtbot.waitExposed(plain)
    return plain


def _same_share(a: QImage, b: QImage) -> float:
    assert a.size() == b.size()
    same = sum(
        a.pixel(x, y) == b.pixel(x, y) for y in range(0, a.height()) for x in range(a.width())
    )
    return same / (a.width() * a.height())


class CountedModel(HistoryModel):
    """The history model, counting the roles the painting asks for."""

    def __init__(self, store: SqliteHistoryStore) -> None:
        super().__init__(store)
        self.calls: list[int] = []

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
        self.calls.append(role)
        return super().data(index, role)


def test_a_screen_of_loaded_rows_paints_without_asking_the_model_for_roles(
    qtbot: QtBot, store: SqliteHistoryStore
) -> None:
    # Qt's own painting asks for every role of every cell through Python (about a thousand
    # calls a screen): that alone held the GUI thread longer than a frame at 15 rows.
    model = CountedModel(store)
    model.refresh(wait=True)
    assert model.rowCount() == ROWS and model.loaded_record_id(0) is not None
    views = []
    for view in (HistoryTableView(), QTableView()):
        qtbot.addWidget(view)
        view.setModel(model)
        view.setWordWrap(False)  # as the panel has it: the painting cuts texts to one line
        view.resize(1200, 400)
        view.show()
        qtbot.waitExposed(view)
        views.append(view)
    mine, plain = views
    qtbot.waitUntil(lambda: all(view.rowAt(0) == 0 for view in views))
    model.calls.clear()
    painted = mine.viewport().grab().toImage()  # one paint of the screen, as the window's
    assert model.calls == []
    qts = plain.viewport().grab().toImage()
    assert len(model.calls) > 100  # the count is real: Qt's painting asks for every role
    assert _same_share(painted, qts) > 0.97  # and the screens look alike


def test_the_table_looks_as_qt_paints_it(qtbot: QtBot, panel: HistoryPanel) -> None:
    view = panel.view
    view.selectRow(2)  # the selection is drawn too
    view.horizontalHeader().moveSection(
        view.horizontalHeader().visualIndex(Column.MESSAGE), 1
    )  # moved and hidden columns follow the header
    view.setColumnHidden(Column.CURRENCY, True)
    plain = _plain_copy(qtbot, panel)
    qtbot.wait(50)
    mine = view.viewport().grab().toImage()
    qts = plain.viewport().grab().toImage()
    # Every pixel but a few where a cut text ends one letter apart.
    assert _same_share(mine, qts) > 0.97


def test_a_row_not_read_yet_shows_the_placeholder_and_asks_for_its_page(
    qtbot: QtBot, panel: HistoryPanel
) -> None:
    model = panel.model
    model.set_filter(model.history_filter, wait=True)  # only the first page is kept
    last = model.rowCount() - 1
    assert model.loaded_record_id(last) is None or model.rowCount() <= 200
    panel.view.scrollToBottom()
    panel.view.viewport().repaint()
    qtbot.waitUntil(lambda: model.loaded_record_id(last) is not None)
    assert model.data(model.index(last, 0)) != LOADING_TEXT
    assert model.data(model.index(last, Column.REQUEST_ID), Qt.ItemDataRole.DisplayRole).startswith(
        "po-0000"
    )


def test_the_history_keeps_the_gui_thread_s_waits_for_its_readers_short(
    qtbot: QtBot, store: SqliteHistoryStore, data_home: Path
) -> None:
    """The readers share the interpreter lock with the GUI thread: with the history open the
    interpreter switches threads every millisecond, not every 5 (Python's default)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        widget = HistoryPanel(store, ProfileStore(data_home))
        qtbot.addWidget(widget)
        assert sys.getswitchinterval() <= GUI_SWITCH_INTERVAL_S == 0.001
        assert widget.wait_until_idle()
    finally:
        sys.setswitchinterval(before)
