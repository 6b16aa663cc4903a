"""In the real window: contradicting final statuses, the "Needs review" filter, decline reasons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QPlainTextEdit
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.callbacks.helpers import ATTEMPT, MERCHANT, SALT, SITE, accepted_record, callback

IDS = {"merchant_id": MERCHANT, "site_id": SITE}


@pytest.fixture
def window(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    ProfileStore(data_home).add(
        Profile(
            id="p-main",
            name="Main shop",
            base_url="https://pay.example.com",
            merchant_id=MERCHANT,
            site_id=SITE,
        )
    )
    SecretStore().set_salt("p-main", SALT)
    built = build_main_window(["--data-dir", str(data_home)])
    assert isinstance(built, MainWindow)
    qtbot.addWidget(built)
    built.show()
    qtbot.waitExposed(built)
    yield built
    built.shutdown()


def _panel(window: MainWindow) -> HistoryPanel:
    window.tabs.setCurrentIndex(HISTORY_TAB)
    return window.history_panel


def _cell(panel: HistoryPanel, request_id: str, column: Column) -> str:
    row = panel.model.row_of_request(request_id)
    assert row is not None
    return panel.model.index(row, column).data()


def _timeline(panel: HistoryPanel) -> list[list[str]]:
    tree = panel.timeline.tree
    return [
        [tree.topLevelItem(i).text(c) for c in range(5)] for i in range(tree.topLevelItemCount())
    ]


@pytest.mark.parametrize(
    ("first", "then", "shown"), [(5, 4, "Success (4)"), (4, 5, "Declined (5)")]
)
def test_a_contradicting_final_status_shows_the_latest_flagged_everywhere(
    window: MainWindow, qtbot: QtBot, first: int, then: int, shown: str
) -> None:
    store = window.history
    accepted_record(store, "po-flip")
    accepted_record(store, "po-calm", invoice_id="500002")
    apply_callback(store, callback(first, "po-flip"), SALT, **IDS)
    apply_callback(store, callback(then, "po-flip"), SALT, **IDS)
    apply_callback(store, callback(4, "po-calm", invoice_id=500002), SALT, **IDS)

    panel = _panel(window)
    panel.refresh()
    qtbot.waitUntil(lambda: panel.model.row_of_request("po-flip") is not None)
    assert _cell(panel, "po-flip", Column.GATEWAY_STATUS) == shown
    assert _cell(panel, "po-flip", Column.STATE) == "Accepted · conflict: check"
    assert _cell(panel, "po-calm", Column.STATE) == "Accepted"

    assert panel.select_request("po-flip")
    assert panel.timeline.review_text().startswith("Conflict: check.")
    assert "conflict: check" in panel.timeline.status_text()
    assert panel.timeline.status_text().startswith(shown)
    details = panel.findChild(QPlainTextEdit, "historyDetails")
    assert details is not None
    qtbot.waitUntil(lambda: "Conflict: check" in details.toPlainText())
    last = _timeline(panel)[-1]
    assert last[2] == shown and last[3].startswith("Conflict: check")

    combo = panel.findChild(QComboBox, "historyStateCombo")
    assert combo is not None
    combo.setCurrentIndex(combo.findText("Needs review"))
    qtbot.waitUntil(lambda: panel.model.total() == 1)
    assert panel.model.history_row(0).request_id == "po-flip"


def test_the_needs_review_filter_finds_an_accepted_answer_with_an_unknown_status(
    window: MainWindow, qtbot: QtBot
) -> None:
    store = window.history
    odd = store.create_attempt(ATTEMPT)
    store.record_outcome(odd, Accepted("500001", 12, "Payout initialized"))
    accepted_record(store, "po-plain", invoice_id="500003")
    panel = _panel(window)
    panel.refresh()
    combo = panel.findChild(QComboBox, "historyStateCombo")
    assert combo is not None
    combo.setCurrentIndex(combo.findText("Needs review"))
    qtbot.waitUntil(lambda: panel.model.total() == 1)
    assert panel.model.history_row(0).id == odd
    assert panel.select_request("po-0001")
    assert "status 12" in panel.timeline.review_text()


def test_a_declines_reason_shows_in_the_message_column_and_the_timeline(
    window: MainWindow, qtbot: QtBot
) -> None:
    store = window.history
    accepted_record(store, "po-no")
    apply_callback(
        store, callback(5, "po-no", description="Session expired. No success payment"), SALT, **IDS
    )
    panel = _panel(window)
    panel.refresh()
    qtbot.waitUntil(lambda: panel.model.row_of_request("po-no") is not None)
    assert _cell(panel, "po-no", Column.MESSAGE) == (
        "Declined by the gateway: Session expired. No success payment"
    )
    assert panel.select_request("po-no")
    assert "Session expired. No success payment" in _timeline(panel)[-1][4]
