"""The History tab's clerk filters, totals, chart and exports in the real window."""

from __future__ import annotations

import csv
import threading
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
from pytestqt.qtbot import QtBot

from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, TotalRow
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.callbacks.helpers import ATTEMPT

WAIT_MS = 10_000
DAY_MS = 86_400_000


def _add(store: HistoryStore, request_id: str, status: int | None, **changes: object) -> None:
    record_id = store.create_attempt(replace(ATTEMPT, request_id=request_id, **changes))
    if status is not None:
        store.record_outcome(record_id, Accepted(f"inv-{request_id}", status, "ok"))


@pytest.fixture
def panel(window: MainWindow, qtbot: QtBot) -> HistoryPanel:
    """The History tab over a seeded history: cards, a phone, RUB and USD, each status."""
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    store = window.history
    _add(
        store,
        "po-petrov",
        4,
        amount_minor=150_000,
        request_fields={"card_number": "424242******4242", "card_holder": "Ivan Petrov"},
    )
    _add(
        store,
        "po-anna",
        5,
        amount_minor=2_500,
        request_fields={"card_number": "555555******4444", "card_holder": "Anna Smirnova"},
    )
    _add(
        store,
        "po-oleg",
        3,
        method="sbp",
        amount_minor=99_900,
        request_fields={"phone_number": "79990001122", "phone_holder": "Oleg Petrov"},
    )
    _add(
        store,
        "po-usd",
        4,
        currency="USD",
        amount_minor=10_000,
        request_fields={"card_number": "411111******1111", "card_holder": "John Wick"},
    )
    old = SqliteHistoryStore(store.location, clock=lambda: store.now() - 2 * DAY_MS)
    try:  # created two days ago and never answered: aged
        _add(
            old,
            "po-old",
            None,
            amount_minor=5_000,
            request_fields={"card_number": "220000******0001", "card_holder": "Pavel Orlov"},
        )
    finally:
        old.close()
    window.tabs.setCurrentIndex(HISTORY_TAB)
    shown = window.history_panel
    shown.refresh()
    assert shown.wait_until_idle()
    return shown


def _shown(panel: HistoryPanel, qtbot: QtBot) -> list[str]:
    qtbot.wait(400)  # the bar's typing pause
    assert panel.wait_until_idle()
    model = panel.model
    qtbot.waitUntil(
        lambda: all(model.history_row(i) is not None for i in range(model.rowCount())),
        timeout=WAIT_MS,
    )
    return sorted(model.history_row(i).request_id for i in range(model.rowCount()))  # type: ignore[union-attr]


def test_each_filter_in_the_bar_selects_the_right_payouts(
    panel: HistoryPanel, qtbot: QtBot
) -> None:
    bar = panel.filters_bar
    bar.recipient_edit.setText("petrov")
    assert _shown(panel, qtbot) == ["po-oleg", "po-petrov"]
    bar.recipient_edit.setText("4444")
    assert _shown(panel, qtbot) == ["po-anna"]
    bar.recipient_edit.clear()
    bar.amount_from.setText("25")
    bar.amount_to.setText("1000")
    assert len(_shown(panel, qtbot)) == 5  # no currency: the amount is left out, and said
    assert "Choose a currency" in bar.error_label.text()
    currency = panel.findChild(type(bar.status_combo), "historyCurrencyCombo")
    assert currency is not None
    qtbot.waitUntil(lambda: currency.findData("RUB") >= 0, timeout=WAIT_MS)
    currency.setCurrentIndex(currency.findData("RUB"))
    assert _shown(panel, qtbot) == ["po-anna", "po-old", "po-oleg"]
    assert not bar.error_label.isVisible()
    currency.setCurrentIndex(0)
    bar.amount_from.clear()
    bar.amount_to.clear()
    bar.status_combo.setCurrentIndex(bar.status_combo.findData(5))
    assert _shown(panel, qtbot) == ["po-anna"]
    bar.status_combo.setCurrentIndex(bar.status_combo.findData(4))
    assert _shown(panel, qtbot) == ["po-petrov", "po-usd"]
    bar.status_combo.setCurrentIndex(0)
    bar.dates_combo.setCurrentIndex(bar.dates_combo.findData("today"))
    assert _shown(panel, qtbot) == ["po-anna", "po-oleg", "po-petrov", "po-usd"]
    bar.dates_combo.setCurrentIndex(bar.dates_combo.findData("yesterday"))
    assert _shown(panel, qtbot) == []
    bar.dates_combo.setCurrentIndex(0)
    bar.aging_check.setChecked(True)
    assert _shown(panel, qtbot) == ["po-old"]


def test_filters_saved_by_name_come_back(panel: HistoryPanel, qtbot: QtBot) -> None:
    bar = panel.filters_bar
    bar.recipient_edit.setText("petrov")
    bar.status_combo.setCurrentIndex(bar.status_combo.findData(4))
    bar.save_as("Paid to Petrov")
    qtbot.waitUntil(lambda: "Paid to Petrov" in bar.saved_names(), timeout=WAIT_MS)
    bar.recipient_edit.clear()
    bar.status_combo.setCurrentIndex(0)
    assert len(_shown(panel, qtbot)) == 5
    assert bar.choose_saved("Paid to Petrov")
    assert _shown(panel, qtbot) == ["po-petrov"]


def test_totals_match_a_direct_sum_and_export_as_csv_and_xlsx(
    panel: HistoryPanel, qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    panel.filters_bar.recipient_edit.setText("petrov")
    _shown(panel, qtbot)
    with qtbot.waitSignal(panel.totals_panel.updated, timeout=WAIT_MS):
        panel.totals_button.click()
    records = list(window.history.iter_records(HistoryFilter(recipient="petrov")))
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for r in records:
        count, total = expected.get((r.currency, str(r.state)), (0, 0))
        expected[(r.currency, str(r.state))] = (count + 1, total + r.amount_minor)
    shown = {(t.currency, t.state): (t.count, t.amount_minor) for t in panel.totals_panel.totals()}
    assert shown == expected == {("RUB", "ACCEPTED"): (2, 249_900)}
    assert "2499.00" in panel.totals_panel.figures_text()  # 1500.00 + 999.00 in RUB
    figures = panel.totals_panel.figures  # read-only, and a clerk can copy the figures
    assert figures.isReadOnly()
    figures.selectAll()
    assert "2499.00" in figures.textCursor().selectedText()
    days = panel.totals_panel.chart.days()
    assert sum(d.sent_minor for d in days) == 249_900
    assert sum(d.paid_minor for d in days) == 150_000
    image = panel.totals_panel.chart.grab().toImage()
    assert image.width() > 0

    csv_path, xlsx_path = tmp_path / "totals.csv", tmp_path / "totals.xlsx"
    panel.totals_panel.export(str(csv_path))
    qtbot.waitUntil(lambda: not panel.totals_panel.busy(), timeout=WAIT_MS)
    panel.totals_panel.export(str(xlsx_path))
    qtbot.waitUntil(lambda: not panel.totals_panel.busy(), timeout=WAIT_MS)
    rows = list(csv.reader(csv_path.open(encoding="utf-8")))
    assert ["RUB", "All", "2", "249900", "2499.00"] in rows
    sheet = openpyxl.load_workbook(xlsx_path)["Totals"]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert ["RUB", "All", 2, 249900, "2499.00"] in cells


def test_a_saved_filter_brings_back_every_setting_of_both_rows(
    panel: HistoryPanel, qtbot: QtBot
) -> None:
    from PySide6.QtCore import QDate
    from PySide6.QtWidgets import QComboBox, QLineEdit

    bar = panel.filters_bar
    search = panel.findChild(QLineEdit, "historyFilterEdit")
    states = panel.findChild(QComboBox, "historyStateCombo")
    currency = panel.findChild(QComboBox, "historyCurrencyCombo")
    assert search is not None and states is not None and currency is not None
    qtbot.waitUntil(lambda: currency.findData("RUB") >= 0, timeout=WAIT_MS)
    search.setText("po-")
    states.setCurrentIndex(states.findText("Accepted"))
    currency.setCurrentIndex(currency.findData("RUB"))
    bar.recipient_edit.setText("petrov")
    bar.amount_from.setText("1000")
    bar.amount_to.setText("2000")
    bar.dates_combo.setCurrentIndex(bar.dates_combo.findData("custom"))
    today = QDate.currentDate()
    bar.date_from.setDate(today.addDays(-3))
    bar.date_to.setDate(today)
    bar.status_combo.setCurrentIndex(bar.status_combo.findData(4))
    assert _shown(panel, qtbot) == ["po-petrov"]
    wanted = panel.current_filter()
    bar.save_as("Big Petrov RUB")
    qtbot.waitUntil(lambda: "Big Petrov RUB" in bar.saved_names(), timeout=WAIT_MS)

    search.clear()
    states.setCurrentIndex(0)
    currency.setCurrentIndex(0)
    for edit in (bar.recipient_edit, bar.amount_from, bar.amount_to):
        edit.clear()
    bar.dates_combo.setCurrentIndex(0)
    bar.date_from.setDate(today)
    bar.status_combo.setCurrentIndex(0)
    assert len(_shown(panel, qtbot)) == 5

    assert bar.choose_saved("Big Petrov RUB")
    assert _shown(panel, qtbot) == ["po-petrov"]
    assert search.text() == "po-"
    assert states.currentText() == "Accepted"
    assert currency.currentData() == "RUB"
    assert bar.date_from.date() == today.addDays(-3)
    assert panel.current_filter() == wanted
    assert panel.model.history_filter == panel.current_filter()


def test_totals_are_read_on_a_worker_and_old_figures_never_stand_for_a_new_filter(
    panel: HistoryPanel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    for name in ("totals", "daily_totals"):
        original = getattr(SqliteHistoryStore, name)

        def spy(self: object, *args: object, _original: object = original, **kw: object) -> object:
            threads.append(threading.current_thread().name)
            return _original(self, *args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(SqliteHistoryStore, name, spy)
    panel.filters_bar.recipient_edit.setText("petrov")
    _shown(panel, qtbot)
    with qtbot.waitSignal(panel.totals_panel.updated, timeout=WAIT_MS):
        panel.totals_button.click()
    assert threads and threading.main_thread().name not in threads
    pane = panel.totals_panel
    assert "2499.00" in pane.figures_text()
    height = pane.height()
    # A new filter: until its own figures arrive the pane shows none, never the old ones.
    panel.filters_bar.recipient_edit.setText("anna")
    panel.filters_bar.changed.emit()
    assert pane.totals() == [] and pane.chart.days() == []
    assert "2499.00" not in pane.figures_text()
    qtbot.waitUntil(lambda: not pane.busy() and pane.totals() != [], timeout=WAIT_MS)
    # Figures arriving never resize the pane (which would re-lay out and repaint the table).
    assert pane.height() == height


def test_the_totals_pane_is_built_when_first_shown_and_reads_once_it_has_painted(
    panel: HistoryPanel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cactus_desk.ui.history.totals import TotalsPanel

    panel.show_totals(False)  # hiding a pane never shown builds nothing
    assert panel.findChildren(TotalsPanel) == []
    painted_at_read: list[bool] = []
    original = SqliteHistoryStore.totals

    def spy(self: object, *args: object, **kw: object) -> object:
        painted_at_read.append(panes[0]._painted_since_shown)
        return original(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteHistoryStore, "totals", spy)
    panes = [panel.totals_panel]
    assert panel.findChildren(TotalsPanel) == panes
    with qtbot.waitSignal(panes[0].updated, timeout=WAIT_MS):
        panel.totals_button.click()
    # The read waited for the pane's first paint (the window laid out anew around it).
    assert painted_at_read == [True]
    # A pane shown that never paints (its updates off) still reads, a moment later.
    panel.show_totals(False)
    panes[0].setUpdatesEnabled(False)
    with qtbot.waitSignal(panes[0].updated, timeout=WAIT_MS):
        panel.show_totals(True)
        assert panes[0].busy()
    assert painted_at_read == [True, False]


def test_totals_too_broad_to_add_up_say_so_and_show_no_figure(
    panel: HistoryPanel, qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Card digits are not in the kept word sums: the payouts are summed, here over the bound.
    monkeypatch.setattr(window.history, "direct_totals_max_rows", 0)
    panel.filters_bar.recipient_edit.setText("4242")
    assert _shown(panel, qtbot) == ["po-petrov"]
    pane = panel.totals_panel
    with qtbot.waitSignal(pane.updated, timeout=WAIT_MS):
        panel.totals_button.click()
    assert pane.totals() == [] and pane.chart.days() == []
    assert pane.figures_text() == "Totals not available."
    assert "not available for this search" in pane.status.text()
    assert "Narrow it" in pane.status.text()
    assert "1500.00" not in pane.figures_text() + pane.status.text()
    # Within the bound the same search is added up exactly.
    monkeypatch.setattr(window.history, "direct_totals_max_rows", 10)
    with qtbot.waitSignal(pane.updated, timeout=WAIT_MS):
        panel.filters_bar.changed.emit()
    assert [(t.currency, t.count, t.amount_minor) for t in pane.totals()] == [("RUB", 1, 150_000)]
    assert "1500.00" in pane.figures_text()


def test_showing_the_totals_reads_them_once_and_a_superseded_read_never_keeps_them_busy(
    panel: HistoryPanel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    asked: list[str] = []
    original = SqliteHistoryStore.totals

    def held(self: SqliteHistoryStore, history_filter: HistoryFilter) -> list[TotalRow]:
        asked.append(history_filter.recipient)
        if history_filter.recipient == "petrov":
            release.wait(WAIT_MS / 1000)
        return original(self, history_filter)

    monkeypatch.setattr(SqliteHistoryStore, "totals", held)
    panel.filters_bar.recipient_edit.setText("petrov")
    _shown(panel, qtbot)
    pane = panel.totals_panel
    try:
        panel.show_totals(True)  # as a shortcut or a saved layout does: the button follows
        assert panel.totals_button.isChecked() and pane.isVisible()
        qtbot.waitUntil(lambda: asked == ["petrov"], timeout=WAIT_MS)
        # A new filter while the first read still runs: once its own figures are in, the
        # pane is done, whatever the superseded read is still doing.
        panel.filters_bar.recipient_edit.setText("anna")
        panel.filters_bar.changed.emit()
        qtbot.waitUntil(lambda: not pane.busy() and pane.totals() != [], timeout=WAIT_MS)
        assert asked == ["petrov", "anna"]  # one read per filter, none twice
    finally:
        release.set()
    qtbot.wait(100)
    assert asked == ["petrov", "anna"]
    assert not pane.busy()
