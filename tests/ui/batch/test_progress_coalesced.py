"""Finished rows reach the GUI thread in bursts: one queued call however many rows."""

from __future__ import annotations

import threading

from pytestqt.qtbot import QtBot

from cactus_desk.batch.sending import Progress, RowResult
from cactus_desk.payouts.send import SendCode
from cactus_desk.ui.batch.dialog import _Relay

ROWS = 500


def test_a_burst_of_rows_wakes_the_gui_thread_once_and_keeps_every_row(qtbot: QtBot) -> None:
    relay = _Relay()
    wakes: list[int] = []
    relay.rows.connect(lambda: wakes.append(1))
    progress = Progress(total=ROWS)

    def sender() -> None:
        for line in range(2, ROWS + 2):
            result = RowResult(line, f"cb-x-{line:06d}", str(SendCode.ACCEPTED), None, "ok")
            progress.add(result)
            relay.put(result, progress)

    thread = threading.Thread(target=sender)
    thread.start()
    thread.join(timeout=30)
    qtbot.waitUntil(lambda: bool(wakes), timeout=5_000)
    qtbot.wait(50)  # any further queued wake-up would arrive now
    rows, latest = relay.take()
    assert len(wakes) == 1
    assert [row.line for row in rows] == list(range(2, ROWS + 2))
    assert latest is not None and latest.done == ROWS and latest.accepted == ROWS
    assert latest is not progress  # a copy: the sending threads go on counting
    assert relay.take() == ([], None)
