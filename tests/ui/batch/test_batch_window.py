"""The window's batch payouts, on the real window (offscreen) and its embedded sandbox."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QMessageBox, QTableWidgetItem
from pytestqt.qtbot import QtBot

from cactus_desk.batch.store import batch_records
from cactus_desk.catalog import load_catalog
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault
from cactus_desk.ui.batch.dialog import SENDING_NICENESS, BatchDialog
from cactus_desk.ui.batch.menu import save_template
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.batch.files import CARD, CARD_HEADERS, card_rows, write_csv, write_xlsx


def every_method_rows(count: int) -> tuple[list[str], list[list[str]]]:
    """``count`` valid rows cycling through every method of the catalog."""
    methods = list(load_catalog().methods)
    headers = ["site_login", "amount", "currency", "method"]
    for method in methods:
        headers += [spec.wire for spec in method.fields if spec.wire not in headers]
    later = (datetime.now() + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    rows = []
    for n in range(count):
        method = methods[n % len(methods)]
        values = {
            "site_login": f"w{n:04d}",
            "amount": f"{1 + n % 5}.{n % 90 + 10}",
            "currency": method.currencies[0],
            "method": method.wire,
        }
        values.update({spec.wire: spec.example for spec in method.fields})
        if "time" in values:
            values["time"] = later
        rows.append([values.get(header, "") for header in headers])
    return headers, rows


def opened(window: MainWindow, qtbot: QtBot, path: Path) -> BatchDialog:
    dialog = window.open_batch(path)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.batch is not None, timeout=20_000)
    return dialog


def send(dialog: BatchDialog, qtbot: QtBot, timeout: int = 60_000) -> None:
    box = dialog.request_send()
    assert box is not None
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: dialog.outcome is not None, timeout=timeout)


def test_bad_cells_show_their_errors_and_nothing_is_sent_until_fixed_in_place(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    rows = [
        ["alice", "10.00", "RUB", "card", CARD, "Ivan Petrov"],
        ["bob", "ten", "RUB", "card", CARD, "Ivan Petrov"],
        ["carol", "12.00", "RUB", "card", "4.24242E+15", "Ivan Petrov"],
    ]
    dialog = opened(window, qtbot, write_csv(tmp_path / "bad.csv", CARD_HEADERS, rows))
    assert dialog.cell_error(1, "amount")
    assert "scientific notation" in (dialog.cell_error(2, "card_number") or "")
    assert dialog.cell_error(0, "amount") is None
    assert not dialog.send_button.isEnabled()
    assert dialog.request_send() is None
    assert "3 rows, 2 with errors" in dialog.summary.text()

    # Typed into the cell's editor, as a person does: Enter commits it.
    amount = dialog.grid_model.index(1, dialog.batch.columns.index("amount"))  # type: ignore[union-attr]
    dialog.grid.setCurrentIndex(amount)
    dialog.grid.edit(amount)
    editor = dialog.grid.findChild(QLineEdit)
    assert editor is not None and editor.text() == "ten"
    editor.selectAll()
    qtbot.keyClicks(editor, "11.00")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.cell_error(1, "amount") is None)
    assert dialog.batch.rows[1].values["amount"] == "11.00"  # type: ignore[union-attr]
    assert not dialog.send_button.isEnabled()  # one error left
    assert dialog.grid.currentIndex().row() == 1  # the check kept the place
    dialog.edit_cell(2, "card_number", CARD)
    qtbot.waitUntil(dialog.send_button.isEnabled)
    sandbox = window.sandbox
    assert sandbox is not None and sandbox.invoices == []

    assert "SANDBOX: no real money" in dialog.confirm_text()
    assert "RUB: 3 payouts, 33.00 RUB" in dialog.confirm_text()
    send(dialog, qtbot)
    assert sorted(i["site_login"] for i in sandbox.invoices) == ["alice", "bob", "carol"]


def test_a_200_row_xlsx_over_every_method_sends_from_the_window(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    headers, rows = every_method_rows(200)
    assert len({row[3] for row in rows}) == len(load_catalog().methods) >= 12
    path = write_xlsx(tmp_path / "big.xlsx", headers, rows, text_columns=headers)
    dialog = opened(window, qtbot, path)
    assert dialog.batch is not None and dialog.batch.ok, [
        (row.line, row.errors)
        for row in dialog.batch.bad_rows  # type: ignore[union-attr]
    ]
    send(dialog, qtbot, timeout=120_000)
    sandbox = window.sandbox
    assert sandbox is not None
    seen = Counter(invoice["request_id"] for invoice in sandbox.invoices)
    assert len(seen) == 200 and set(seen.values()) == {1}
    assert dialog.progress_bar.value() == 200
    assert "200 accepted" in dialog.counts.text()
    records = batch_records(window.history, dialog.batch.batch_id)
    assert len(records) == 200 and {r.state for r in records} == {State.ACCEPTED}

    # The report matches the history, row by row.
    report = tmp_path / "report.csv"
    done: list[Path] = []
    dialog.save_report(report, done.append)
    qtbot.waitUntil(lambda: bool(done))
    import csv

    with report.open(encoding="utf-8-sig") as handle:
        lines = {line["request_id"]: line for line in csv.DictReader(handle)}
    assert len(lines) == 200
    for record in records:
        assert lines[record.request_id]["invoice_id"] == record.invoice_id
        assert lines[record.request_id]["state"] == record.state.label


def test_a_lost_answer_stays_unknown_and_reimporting_the_file_does_not_resend_it(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    sandbox = window.sandbox
    assert sandbox is not None
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(3))
    sandbox.set_fault(Fault.RESET, times=1)
    dialog = opened(window, qtbot, path)
    send(dialog, qtbot)
    states = sorted(r.state for r in batch_records(window.history, dialog.batch.batch_id))  # type: ignore[union-attr]
    assert states.count(State.UNKNOWN) == 1 and states.count(State.ACCEPTED) == 2
    assert len(sandbox.invoices) == 3

    again = opened(window, qtbot, path)
    assert "imported before" in again.summary.text()
    send(again, qtbot)
    assert len(sandbox.invoices) == 3  # nothing resent, the UNKNOWN row included
    assert "3 already sent" in again.counts.text()


def test_totals_over_the_balance_are_warned_before_sending(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    sandbox = window.sandbox
    assert sandbox is not None
    available = sandbox.available("RUB")
    big = f"{available // 100 + 1}.00"
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(1, amount=big))
    dialog = opened(window, qtbot, path)
    qtbot.waitUntil(lambda: "above the available balance" in dialog.summary.text(), timeout=10_000)
    assert "above the available balance" in dialog.confirm_text()


def test_pause_resume_and_cancel_keep_the_window_responsive(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    sandbox = window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.LATENCY, delay=0.05)
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(40))
    dialog = opened(window, qtbot, path)
    box = dialog.request_send()
    assert box is not None
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() >= 4, timeout=20_000)
    dialog.toggle_pause()
    assert dialog.pause_button.text() == "Resume"
    assert "(paused)" in dialog.counts.text()
    assert not dialog.close()  # a batch in flight keeps its dialog open
    assert dialog.isVisible() and "cancel or wait" in dialog.counts.text()
    dialog.toggle_pause()
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.outcome is not None, timeout=20_000)
    outcome = dialog.outcome
    assert outcome is not None
    sent = len(sandbox.invoices)
    assert 4 <= sent < 40
    assert outcome.count("cancelled") == 40 - sent
    assert dialog.again_button.isEnabled() and dialog.report_button.isEnabled()
    assert dialog.close()


def test_file_menu_has_import_batch_and_download_template(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    from cactus_desk.batch.reading import read_table

    names = {action.objectName() for action in window.menuBar().actions()[0].menu().actions()}
    assert {"importBatchAction", "batchTemplateAction"} <= names
    out = tmp_path / "card.xlsx"
    runner = save_template(window, "card", out)
    qtbot.waitUntil(lambda: not runner.busy())
    assert read_table(out).headers[:4] == ("site_login", "amount", "currency", "method")


def test_show_in_history_filters_the_history_to_the_batch(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    other = opened(window, qtbot, write_csv(tmp_path / "a.csv", CARD_HEADERS, card_rows(2)))
    send(other, qtbot)
    dialog = opened(
        window, qtbot, write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(3, start=20))
    )
    send(dialog, qtbot)
    assert dialog.history_button.isEnabled()
    dialog.history_button.click()
    panel = window.history_panel
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10_000)
    assert window.tabs.currentIndex() == HISTORY_TAB


def test_the_window_sends_on_threads_below_the_gui_threads_priority(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = opened(window, qtbot, write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(5)))
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    put = dialog._relay.put
    seen: list[int] = []

    def spy(result, progress):  # type: ignore[no-untyped-def]
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        put(result, progress)

    dialog._relay.put = spy  # type: ignore[method-assign]
    send(dialog, qtbot)
    assert len(seen) == 5
    # Linux gives each thread its own nice value; elsewhere nothing changes.
    lowered = min(gui + SENDING_NICENESS, 19) if sys.platform.startswith("linux") else gui
    assert set(seen) == {lowered}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui


def _cell_items() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, QTableWidgetItem))


def test_the_grids_keep_no_object_per_cell(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    """A 10,000-row batch in item-based tables kept 110,000 item wrappers alive; each full
    collection of Python's heap walked them, 0.12-0.18 s holding the interpreter lock, and the
    window stalled that long while it sent. The tables' models read plain rows instead."""
    before = _cell_items()
    dialog = opened(window, qtbot, write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(300)))
    assert dialog.grid_model.rowCount() == 300
    assert dialog.grid_model.data(dialog.grid_model.index(0, 0)) == card_rows(300)[0][0]
    send(dialog, qtbot)
    results = dialog.results_model
    assert results.rowCount() == 300
    assert {results.data(results.index(row, 1)) for row in range(300)} == {"Accepted"}
    assert _cell_items() == before


def test_fitting_the_columns_reads_only_the_rows_on_show(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    """Fitting the tables' columns to their contents measured 1,000 rows (Qt's default): at
    the end of a 10,000-row batch that held the GUI thread for 135 ms. Only the rows on
    show are measured now: a long value far down does not widen its column, one on show
    does."""
    dialog = opened(window, qtbot, write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(300)))
    send(dialog, qtbot)
    table, model = dialog.results, dialog.results_model
    long_id = "cd-" + "9" * 120
    wide = table.fontMetrics().horizontalAdvance(long_id)
    assert table.rowAt(table.viewport().height() - 1) < 250
    model.put([(250, (long_id, "Accepted", "", ""))])
    table.resizeColumnsToContents()
    assert table.columnWidth(0) < wide
    model.put([(0, (long_id, "Accepted", "", ""))])
    table.resizeColumnsToContents()
    assert table.columnWidth(0) >= wide
