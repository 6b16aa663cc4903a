"""The GUI-thread block clock counts a busy GUI thread, and only while an action is labelled."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from benchmarks.history import HEARTBEAT_MS, BlockClock


def _busy(ms: float) -> None:
    until = time.perf_counter() + ms / 1000
    while time.perf_counter() < until:
        pass


def test_a_handler_that_blocks_the_gui_thread_is_counted_for_its_action(qtbot: QtBot) -> None:
    from PySide6.QtCore import QTimer

    clock = BlockClock()
    clock.start()
    qtbot.wait(20)
    clock.label = "reset"
    clock.label = None
    _busy(60)  # unlabelled work (a reset) is never counted
    qtbot.wait(20)
    clock.label = "action"
    clock.run(lambda: None)
    QTimer.singleShot(0, lambda: _busy(40))  # work the action left to the event loop
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        clock.process()
    clock.label = None
    # Less the heartbeat interval: a tick may come just before the busy stretch starts.
    assert 40 - HEARTBEAT_MS <= clock.longest["action"] < 60 + 40
    assert "reset" not in clock.longest
