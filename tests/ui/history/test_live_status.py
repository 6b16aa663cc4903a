"""Live statuses: the sandbox's callbacks turn payouts final in the open window, and writes by
another process show up in place, without reloading the table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.callbacks.reconcile import set_final_state
from cactus_desk.gateway.signature import sign
from cactus_desk.history import open_history
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.payouts.states import State
from cactus_desk.receiver import BackgroundReceiver, CallbackApp
from cactus_desk.ui.history import panel as history_view
from cactus_desk.ui.history.live_updates import NO_RECEIVER_MESSAGE
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.ui.conftest import READ_TIMEOUT, PayoutDriver

ROOT = Path(__file__).resolve().parents[2]
# Long enough to see the payout Processing first, short enough to keep the tests quick.
FINALIZE_AFTER = "1.0"


@pytest.fixture(autouse=True)
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Look for other processes' writes every 0.3 s instead of 2 s, to keep the tests short."""
    monkeypatch.setattr(history_view, "WATCH_INTERVAL_MS", 300)


def open_window(qtbot: QtBot, data_home: Path, *extra: str) -> MainWindow:
    window = build_main_window(
        ["--sandbox", "--data-dir", str(data_home), "--read-timeout", READ_TIMEOUT, *extra]
    )
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def live_window(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    """``cactus-desk --sandbox --finalize-after 1.0``, with its receiver up."""
    window = open_window(qtbot, data_home, "--finalize-after", FINALIZE_AFTER)
    live = window.live_statuses
    assert live is not None
    qtbot.waitUntil(live.is_running, timeout=10_000)
    yield window
    window.shutdown()


def status_cell(panel: HistoryPanel, request_id: str) -> str:
    assert panel.wait_until_idle()  # the rows are read on workers
    row = panel.model.row_of_request(request_id)
    assert row is not None, request_id
    return panel.model.index(row, Column.GATEWAY_STATUS).data()


def test_a_sandbox_payout_goes_from_processing_to_success_or_declined_in_place(
    live_window: MainWindow, qtbot: QtBot
) -> None:
    driver = PayoutDriver(live_window, qtbot)
    live_window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = live_window.history_panel
    paid = driver.send(amount="1500.50")
    declined = driver.send(amount="500.13")
    assert status_cell(panel, paid) == "Processing (3)"
    assert status_cell(panel, declined) == "Processing (3)"

    resets: list[bool] = []
    panel.model.modelReset.connect(lambda: resets.append(True))
    qtbot.waitUntil(lambda: status_cell(panel, paid) == "Success (4)", timeout=8_000)
    qtbot.waitUntil(lambda: status_cell(panel, declined) == "Declined (5)", timeout=8_000)
    assert resets == [], "the table was reloaded instead of updated in place"

    assert driver.record(paid).received_amount == 150050
    assert driver.record(declined).description.startswith("Payout declined by the sandbox")
    panel.select_request(declined)
    assert panel.timeline.status_text() == "Declined (5) · verified by a gateway callback"
    timeline = panel.timeline.tree
    assert timeline.topLevelItemCount() == 1
    assert timeline.topLevelItem(0).text(1) == "Gateway (verified)"
    assert timeline.topLevelItem(0).text(2) == "Declined (5)"
    assert "live statuses on" in live_window.statusBar().currentMessage().lower()


def test_the_result_banner_follows_the_payout_just_sent_to_paid_or_declined(
    live_window: MainWindow, qtbot: QtBot
) -> None:
    driver = PayoutDriver(live_window, qtbot)
    banner = live_window.form.banner
    paid = driver.send(amount="1500.50")
    assert banner.kind() == "accepted" and "status Processing (3)" in banner.text()

    qtbot.waitUntil(lambda: banner.kind() == "paid", timeout=8_000)
    assert banner.title() == "Paid:"
    assert "status Success (4)" in banner.text() and paid in banner.text()
    assert live_window.form.status_follower.following() is None  # final: nothing more to say

    declined = driver.send(amount="500.13")
    qtbot.waitUntil(lambda: banner.kind() == "declined", timeout=8_000)
    assert "status Declined (5)" in banner.text() and "Nothing was paid" in banner.text()
    assert declined in banner.text()


def test_a_hidden_banner_stays_hidden_when_the_payout_settles(
    live_window: MainWindow, qtbot: QtBot
) -> None:
    driver = PayoutDriver(live_window, qtbot)
    paid = driver.send(amount="1500.50")
    live_window.form.banner.clear()
    qtbot.waitUntil(lambda: driver.record(paid).gateway_status == 4, timeout=8_000)
    qtbot.wait(1_200)  # a follower tick after the callback landed
    assert live_window.form.banner.kind() == ""
    assert not live_window.form.banner.isVisible()


def test_a_payout_sent_before_the_receiver_is_up_is_still_finalized(
    qtbot: QtBot, data_home: Path
) -> None:
    window = build_main_window(
        ["--sandbox", "--data-dir", str(data_home), "--finalize-after", "0.3"]
    )
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    try:
        live = window.live_statuses
        assert live is not None
        driver = PayoutDriver(window, qtbot)
        # Sent while the window has not painted yet: the receiver is not up, the invoice waits.
        request_id = driver.send(amount="20.00")
        assert not live.is_running()
        assert driver.record(request_id).gateway_status == 3
        window.show()
        qtbot.waitUntil(live.is_running, timeout=10_000)
        qtbot.waitUntil(lambda: driver.record(request_id).gateway_status == 4, timeout=8_000)
    finally:
        window.shutdown()


def test_another_process_writing_the_history_shows_up_without_a_reload(
    live_window: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    other = SqliteHistoryStore(data_home / "history.sqlite3")  # as the receiver process opens it
    try:
        first = accepted_record(other, "po-other-1", profile_id="p-other")
        live_window.tabs.setCurrentIndex(HISTORY_TAB)
        panel = live_window.history_panel
        assert status_cell(panel, "po-other-1") == "Processing (3)"
        panel.select_request("po-other-1")

        resets: list[bool] = []
        inserted: list[int] = []
        panel.model.modelReset.connect(lambda: resets.append(True))
        panel.model.rowsInserted.connect(
            lambda _parent, first_row, _last: inserted.append(first_row)
        )

        set_final_state(other, first, 5, "Cabinet shows it declined", who="alice")
        accepted_record(other, "po-other-2", invoice_id="500002", profile_id="p-other")
        qtbot.waitUntil(lambda: status_cell(panel, "po-other-1") == "Declined (5)", timeout=5_000)
        qtbot.waitUntil(lambda: panel.model.row_of_request("po-other-2") == 0, timeout=5_000)

        assert resets == []
        assert inserted == [0]
        assert panel.model.total() == 2
        # The selected payout's details follow: its timeline now shows the manual state.
        qtbot.waitUntil(
            lambda: (
                panel.timeline.status_text()
                == "Manual: Declined (5) by alice — Cabinet shows it declined"
            ),
            timeout=5_000,
        )
        assert panel.view.currentIndex().row() == panel.model.row_of_request("po-other-1")
    finally:
        other.close()


def test_a_verified_callback_from_another_receiver_moves_a_row_in_place(
    live_window: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    other = SqliteHistoryStore(data_home / "history.sqlite3")
    try:
        accepted_record(other, "po-cb", merchant_id="m_demo")
        live_window.tabs.setCurrentIndex(HISTORY_TAB)
        panel = live_window.history_panel
        panel.select_request("po-cb")
        resets: list[bool] = []
        panel.model.modelReset.connect(lambda: resets.append(True))

        apply_callback(other, callback(4, "po-cb"), SALT, merchant_id="m_demo", site_id=7)
        qtbot.waitUntil(lambda: status_cell(panel, "po-cb") == "Success (4)", timeout=5_000)
        assert resets == []
        qtbot.waitUntil(
            lambda: panel.timeline.status_text() == "Success (4) · verified by a gateway callback",
            timeout=5_000,
        )
    finally:
        other.close()


def test_without_uvicorn_the_window_says_so_and_still_sends(
    qtbot: QtBot, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the extra were not installed
    window = open_window(qtbot, data_home, "--finalize-after", "0.3")
    try:
        live = window.live_statuses
        assert live is not None
        qtbot.waitUntil(lambda: live.message != "", timeout=5_000)
        assert live.message == NO_RECEIVER_MESSAGE
        assert "receiver extra" in window.statusBar().currentMessage()
        assert live.finalizer is None and live.callback_url is None

        driver = PayoutDriver(window, qtbot)
        request_id = driver.send(amount="12.00")
        assert driver.record(request_id).state is State.ACCEPTED
        assert driver.record(request_id).gateway_status == 3
    finally:
        window.shutdown()


def test_the_standalone_sandbox_posts_signed_callbacks_to_a_receiver(data_home: Path) -> None:
    """``cactus-desk sandbox --callback-url URL`` finalizes payouts into a running receiver."""
    salt = "standalone-salt"
    with (
        open_history(data_home) as store,
        BackgroundReceiver(CallbackApp(store, salt)) as receiver,
    ):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cactus_desk",
                "--data-dir",
                str(data_home),
                "sandbox",
                "--salt",
                salt,
                "--callback-url",
                receiver.url,
                "--finalize-after",
                "0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        try:
            assert process.stdout is not None
            banner = ""
            for line in process.stdout:
                banner += line
                if line.startswith("Press Ctrl+C"):
                    break
            assert "ends in 13" in banner and receiver.url in banner, banner
            match = re.search(r"base URL:\s+(\S+)", banner)
            assert match, banner
            payout = {
                "merchant_id": "sandbox",
                "site_login": "alice",
                "site_id": 101,
                "request_id": "po-standalone",
                "amount": 70013,
                "currency": "USD",
                "method": "card",
                "additional_fields": {"card_number": "4111111111111111", "card_holder": "A B"},
            }
            answer = httpx.post(
                match.group(1) + "/api/payout/",
                json={**payout, "signature": sign(payout, salt)},
                timeout=5,
            ).json()
            assert answer["success"] is True, answer
            deadline = time.monotonic() + 10
            events = store.events_since()
            while not events and time.monotonic() < deadline:
                time.sleep(0.05)  # the callback arrives over HTTP from the other process
                events = store.events_since()
            [event] = events
            # Signed with the sandbox's salt; no payout here has that request id.
            assert event.request_id == "po-standalone" and event.payload["status"] == 5
            assert event.outcome is EventOutcome.REJECTED and event.reason == "unknown_request"
        finally:
            process.terminate()
            process.communicate(timeout=10)


def test_finalize_after_needs_a_callback_url() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cactus_desk", "sandbox", "--finalize-after", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode != 0
    assert "--finalize-after needs --callback-url" in result.stderr


def test_start_up_does_not_load_the_receiver_before_the_first_paint(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from cactus_desk.app import build_main_window\n"
        "qapp = QApplication([])\n"
        f"w = build_main_window(['--sandbox', '--data-dir', {str(tmp_path)!r}])\n"
        "before = [m for m in ('uvicorn', 'cactus_desk.receiver') if m in sys.modules]\n"
        "w.show()\n"
        "while not w.live_statuses.is_running() and not w.live_statuses.message:\n"
        "    qapp.processEvents()\n"
        "print(before, w.live_statuses.is_running())\n"
        "w.shutdown()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] True"
