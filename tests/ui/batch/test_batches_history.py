"""The History tab's Batches pane on the real window: one entry per batch that expands to
its rows, and choosing a batch filters the history table to it."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from cactus_desk.batch.ids import batch_prefix
from cactus_desk.batch.store import batch_records
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault
from cactus_desk.ui.batch.history_pane import BatchesPane
from cactus_desk.ui.main_window import MainWindow
from tests.batch.files import CARD_HEADERS, card_rows, write_csv
from tests.ui.batch.test_batch_window import opened, send


def test_batches_pane_lists_each_batch_expanding_to_its_rows_and_filters_the_history(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    first = opened(window, qtbot, write_csv(tmp_path / "first.csv", CARD_HEADERS, card_rows(2)))
    send(first, qtbot)
    sandbox = window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.RESET, times=1)  # one answer lost: that row stays UNKNOWN
    second = opened(
        window,
        qtbot,
        write_csv(tmp_path / "second.csv", CARD_HEADERS, card_rows(3, start=20)),
    )
    send(second, qtbot)
    assert first.batch is not None and second.batch is not None

    panel = window.history_panel
    pane = window.findChild(BatchesPane)
    assert pane is not None and not pane.tree.isVisible()
    window.tabs.setCurrentWidget(window.tabs.widget(window.tabs.count() - 1))
    pane.toggle.click()  # the collapsed pane opens and reads the batches on a worker
    qtbot.waitUntil(lambda: pane.tree.topLevelItemCount() == 2, timeout=10_000)
    newest = pane.tree.topLevelItem(0)
    assert newest is not None
    assert newest.text(0) == second.batch.batch_id
    assert newest.text(2) == "second.csv"
    profile = window.sandbox_profile
    assert profile is not None and newest.text(3) == profile.name
    assert newest.text(4) == "3"
    assert "2 accepted" in newest.text(5) and "1 unknown" in newest.text(5)
    # Expanded, the entry shows its rows: one per request id, with its state.
    records = batch_records(window.history, second.batch.batch_id)
    assert newest.childCount() == 3
    children = {newest.child(i).text(0): newest.child(i).text(5) for i in range(3)}
    assert children == {record.request_id: record.state.label for record in records}
    assert sorted(children.values()).count(State.UNKNOWN.label) == 1
    older = pane.tree.topLevelItem(1)
    assert older is not None and older.text(2) == "first.csv" and older.childCount() == 2

    # Choosing a batch filters the main table to its rows.
    pane.tree.setCurrentItem(older)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=10_000)
    assert panel.current_filter().text == batch_prefix(first.batch.batch_id)
    pane.tree.setCurrentItem(newest.child(0))  # a row chosen: its batch
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=10_000)
    assert panel.current_filter().text == batch_prefix(second.batch.batch_id)
