"""The details pane's timeline, "Set final state…" and "Import callbacks…" in the real window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QLineEdit, QMenu, QPushButton
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.callbacks.events import EventSource
from cactus_desk.callbacks.reconcile import current_user
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.dialogs.import_callbacks import ImportCallbacksDialog
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.history.reconcile_dialog import ReconcileDialog
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.callbacks.helpers import (
    MERCHANT,
    SALT,
    SITE,
    accepted_record,
    callback,
    unknown_record,
)

PROFILE_ID = "p-main"


@pytest.fixture
def window(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    """The window on a saved profile (merchant m_demo, site 7) whose salt is in the keyring."""
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
    built = build_main_window(["--data-dir", str(data_home)])
    assert isinstance(built, MainWindow)
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


def cell(panel: HistoryPanel, request_id: str, column: Column) -> str:
    assert panel.wait_until_idle()
    row = panel.model.row_of_request(request_id)
    assert row is not None
    return panel.model.index(row, column).data()


def timeline_lines(panel: HistoryPanel) -> list[list[str]]:
    tree = panel.timeline.tree
    return [
        [tree.topLevelItem(i).text(c) for c in range(5)] for i in range(tree.topLevelItemCount())
    ]


def test_the_timeline_shows_verified_rejected_and_late_callbacks(
    window: MainWindow, qtbot: QtBot
) -> None:
    store = window.history
    accepted_record(store, "po-tl")
    ids = {"merchant_id": MERCHANT, "site_id": SITE}
    apply_callback(store, callback(4, "po-tl"), SALT, **ids)
    apply_callback(store, callback(3, "po-tl"), SALT, **ids)  # late: changes nothing
    apply_callback(store, callback(5, "po-tl", salt="forged"), SALT, **ids)  # attached to none
    apply_callback(store, callback(99, "po-tl"), SALT, **ids)  # signed, but no such status

    panel = history(window)
    assert panel.select_request("po-tl")
    assert [line[1:] for line in timeline_lines(panel)] == [
        ["Gateway (verified)", "Success (4)", "Applied", ""],
        [
            "Gateway (verified)",
            "Processing (3)",
            "Arrived late (ignored)",
            "The record is already at Success (4).",
        ],
        [
            "Gateway (rejected)",
            "Status 99 (unrecognised)",
            "Rejected",
            "the status is not one of the gateway's statuses 1-7",
        ],
    ]
    assert panel.timeline.status_text() == "Success (4) · verified by a gateway callback"
    assert "status 99" in panel.timeline.review_text()
    # A final payout cannot be set by hand.
    assert not panel.timeline.reconcile_button.isEnabled()


def test_a_payout_needing_review_says_so_above_its_timeline(
    window: MainWindow, qtbot: QtBot
) -> None:
    store = window.history
    accepted_record(store, "po-review")
    apply_callback(store, callback(6, "po-review"), SALT, merchant_id=MERCHANT, site_id=SITE)
    panel = history(window)
    assert panel.select_request("po-review")
    assert panel.timeline.review_text() == (
        "Needs review: The gateway reports Error (6); check it by hand."
    )
    assert panel.timeline.status_text() == "Error (6) · verified by a gateway callback"
    assert panel.timeline.reconcile_button.isEnabled()  # status 6 is not final

    accepted_record(store, "po-fine", invoice_id="500009")
    assert panel.select_request("po-fine")
    assert panel.timeline.review_text() == ""
    assert [line[1] for line in timeline_lines(panel)] == ["No callbacks or manual changes yet."]


def open_dialog(panel: HistoryPanel, qtbot: QtBot) -> ReconcileDialog:
    qtbot.mouseClick(panel.timeline.reconcile_button, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(ReconcileDialog, "reconcileDialog")
    assert dialog is not None
    qtbot.waitExposed(dialog)
    return dialog


def test_an_unknown_payout_is_set_to_success_by_hand_with_a_note(
    window: MainWindow, qtbot: QtBot
) -> None:
    store = window.history
    record_id = unknown_record(store, "po-lost")
    panel = history(window)
    assert panel.select_request("po-lost")
    assert cell(panel, "po-lost", Column.STATE) == "Unknown"
    dialog = open_dialog(panel, qtbot)

    save = dialog.findChild(QPushButton, "reconcileSaveButton")
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    assert set(dialog.errors()) == {"status", "note"}
    assert dialog.isVisible()
    assert store.events_for(record_id) == []

    dialog.set_values(4, "  Cabinet shows it paid,\n ticket 881 ")
    with qtbot.waitSignal(dialog.reconciled, timeout=5_000):
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible())

    record = store.get(record_id)
    assert (record.state, record.gateway_status, record.status_source) == (
        State.SETTLED,
        4,
        "manual",
    )
    assert cell(panel, "po-lost", Column.GATEWAY_STATUS) == "Success (4)"
    assert cell(panel, "po-lost", Column.STATE) == "Settled manually: Success"
    user = current_user()
    assert panel.timeline.status_text() == (
        f"Manual: Success (4) by {user} — Cabinet shows it paid, ticket 881"
    )
    [line] = timeline_lines(panel)
    assert line[1:] == [
        f"Manual by {user}",
        "Success (4)",
        "Applied",
        "Cabinet shows it paid, ticket 881",
    ]
    [event] = store.events_for(record_id)
    assert event.source is EventSource.MANUAL
    assert not panel.timeline.reconcile_button.isEnabled()


def test_a_refusal_from_the_store_is_shown_in_the_dialog(window: MainWindow, qtbot: QtBot) -> None:
    store = window.history
    accepted_record(store, "po-race")
    panel = history(window)
    assert panel.select_request("po-race")
    dialog = open_dialog(panel, qtbot)
    # The invoice id the gateway gave is shown and cannot be changed.
    invoice = dialog.findChild(QLineEdit, "reconcileInvoice")
    assert invoice.text() == "500001" and invoice.isReadOnly()
    # Meanwhile a verified callback makes it final.
    apply_callback(store, callback(5, "po-race"), SALT, merchant_id=MERCHANT, site_id=SITE)
    dialog.set_values(4, "Support says paid")
    dialog.submit()
    qtbot.waitUntil(lambda: "record" in dialog.errors(), timeout=5_000)
    assert "already final (Declined (5))" in dialog.errors()["record"]
    assert dialog.isVisible()
    assert dialog.findChild(QPushButton, "reconcileSaveButton").isEnabled()


def test_the_history_row_menu_offers_set_final_state(window: MainWindow, qtbot: QtBot) -> None:
    store = window.history
    unknown_record(store, "po-menu")
    accepted_record(store, "po-done", invoice_id="500077")
    apply_callback(store, callback(4, "po-done", invoice_id=500077), SALT, site_id=SITE)
    panel = history(window)

    def menu_action(request_id: str) -> QAction:
        row = panel.model.row_of_request(request_id)
        assert row is not None
        rect = panel.view.visualRect(panel.model.index(row, 0))
        panel.view.customContextMenuRequested.emit(rect.center())
        menus = [m for m in panel.findChildren(QMenu, "historyContextMenu") if m.isVisible()]
        assert len(menus) == 1
        action = menus[0].findChild(QAction, "reconcileAction")
        assert action is not None
        menus[0].close()
        return action

    assert not menu_action("po-done").isEnabled()
    action = menu_action("po-menu")
    assert action.isEnabled()
    action.trigger()
    dialog = panel.findChild(ReconcileDialog, "reconcileDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.record_id == panel.model.record_id(panel.model.row_of_request("po-menu") or 0)
    assert "request po-menu" in dialog.findChild(QLabel, "reconcileRecord").text()


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_import_callbacks_applies_a_file_and_reports_per_line(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    store = window.history
    accepted_record(store, "po-imp")
    panel = history(window)
    assert cell(panel, "po-imp", Column.GATEWAY_STATUS) == "Processing (3)"
    path = write_jsonl(
        tmp_path / "callbacks.jsonl",
        [
            callback(4, "po-imp"),
            callback(4, "po-imp"),
            callback(5, "po-imp", salt="not-the-salt"),
            "this is not a callback",
            callback(4, "po-nobody"),
        ],
    )
    dialog = window.open_import_callbacks()
    assert isinstance(dialog, ImportCallbacksDialog)
    assert dialog.objectName() == "importCallbacksDialog"
    assert dialog.select_profile(PROFILE_ID)
    with qtbot.waitSignal(dialog.imported, timeout=10_000) as done:
        dialog.start_import(path)
    report = done.args[0]
    assert (report.applied, report.duplicate, len(report.rejected)) == (1, 1, 3)
    text = dialog.report_text()
    assert text.startswith("5 callback(s): 1 applied, 1 duplicate")
    assert "line 3 (request_id po-imp): the signature does not match" in text
    assert "line 4: not a callback" in text
    assert "line 5 (request_id po-nobody): no payout in the history" in text
    assert SALT not in text
    qtbot.waitUntil(lambda: cell(panel, "po-imp", Column.GATEWAY_STATUS) == "Success (4)")
    assert panel.select_request("po-imp")
    assert timeline_lines(panel)[0][1] == "Import (verified)"
    assert panel.timeline.status_text() == "Success (4) · verified by an imported callback"


def test_import_explains_a_missing_file_and_a_missing_salt(
    window: MainWindow, qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = window.open_import_callbacks()
    dialog.start_import(tmp_path / "nope.jsonl")
    assert "There is no file" in dialog.error_text()
    assert not dialog.is_importing()

    SecretStore().delete_salt(PROFILE_ID)
    path = write_jsonl(tmp_path / "one.jsonl", [callback(4)])
    with qtbot.waitSignal(dialog.failed, timeout=5_000) as failed:
        dialog.start_import(path)
    assert "no salt for profile 'Main shop'" in failed.args[0]
    assert dialog.error_text() == failed.args[0]
    assert dialog.report_text() == ""
