"""Shared looks: the flat scroll bars that spare a paint Fusion's threaded gradient fill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QComboBox,
    QPlainTextEdit,
    QScrollBar,
    QStyleFactory,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from pytestqt.qtbot import QtBot

from cactus_desk.history.port import HistoryStore
from cactus_desk.profiles import ProfileStore
from cactus_desk.ui import style
from cactus_desk.ui.history.panel import HistoryPanel
from tests.ui.history.test_history_view import profiles, store, template  # noqa: F401


def _areas(qtbot: QtBot) -> tuple[QWidget, QTableView, QPlainTextEdit]:
    root = QWidget()
    qtbot.addWidget(root)
    table, text = QTableView(root), QPlainTextEdit(root)
    layout = QVBoxLayout(root)
    layout.addWidget(table)
    layout.addWidget(text)
    return root, table, text


def _bars(*areas: QAbstractScrollArea) -> list[QScrollBar]:
    return [bar for area in areas for bar in (area.verticalScrollBar(), area.horizontalScrollBar())]


@pytest.fixture
def windows_style(qapp: QApplication) -> Iterator[None]:
    """The application on another built-in style for one test."""
    before = qapp.style().name()
    qapp.setStyle(QStyleFactory.create("Windows"))
    yield
    qapp.setStyle(QStyleFactory.create(before))


def test_under_fusion_every_scroll_area_gets_flat_bars(qtbot: QtBot, qapp: QApplication) -> None:
    assert qapp.style().name().lower() == "fusion"
    root, table, text = _areas(qtbot)
    style.flat_scroll_bars(root)
    sheets = {bar.styleSheet() for bar in _bars(table, text)}
    assert len(sheets) == 1
    assert "QScrollBar::handle" in sheets.pop()
    assert table.horizontalHeader().verticalScrollBar().styleSheet() == ""


def test_bars_that_are_never_shown_are_left_alone(qtbot: QtBot, qapp: QApplication) -> None:
    root, table, _text = _areas(qtbot)
    listed = QComboBox(root)  # its list scrolls with arrows: both bars always off
    listed.addItems([f"Currency {n}" for n in range(40)])
    typed = QComboBox(root)  # an editable one's list does show a scroll bar
    typed.setEditable(True)
    typed.addItems([f"Login {n}" for n in range(40)])
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    style.flat_scroll_bars(root)
    flat = table.verticalScrollBar().styleSheet()
    assert "QScrollBar::handle" in flat
    assert table.horizontalScrollBar().styleSheet() == ""
    assert {bar.styleSheet() for bar in _bars(listed.view())} == {""}
    assert typed.view().verticalScrollBar().styleSheet() == flat


def test_another_style_keeps_its_own_scroll_bars(qtbot: QtBot, windows_style: None) -> None:
    root, table, text = _areas(qtbot)
    style.flat_scroll_bars(root)
    assert {bar.styleSheet() for bar in _bars(table, text)} == {""}


def test_the_history_panel_and_its_totals_have_flat_bars(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
) -> None:
    panel = HistoryPanel(store, profiles)
    qtbot.addWidget(panel)
    details = panel.findChild(QPlainTextEdit, "historyDetails")
    assert details is not None
    totals = panel.totals_panel.figures
    bars = _bars(panel.view, details, totals)
    assert all("QScrollBar::handle" in bar.styleSheet() for bar in bars)
    assert panel.wait_until_idle(5_000)
