"""A batch above the team's approval threshold in the window: a maker's and an approver's
console (real windows, offscreen) on one PostgreSQL and the sandbox gateway over loopback.

The maker confirms a batch whose rows are each below the threshold but whose total is not: it
goes to the Approvals tab as one request and nothing reaches the gateway; the maker cannot
approve it; the approver approves it once and their desk sends each row exactly once. A
rejected batch sends nothing, ever.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from cactus_desk.batch import sending
from cactus_desk.batch.ids import row_request_id
from cactus_desk.batch.sending import Control
from cactus_desk.batch.summary import interrupted_batches
from cactus_desk.batch_approval import send_approved_batch
from cactus_desk.history import open_history
from cactus_desk.history.approvals import approvals_connection, approve, get, set_limit
from cactus_desk.history.postgres.connect import parse_store_url
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.secrets import set_store_password
from cactus_desk.ui.approvals.tab import ApprovalsTab
from cactus_desk.ui.batch.dialog import SENDING_NICENESS, BatchDialog
from cactus_desk.ui.batch.interrupted import NOTICE, SHOW_APPROVALS
from cactus_desk.ui.main_window import MainWindow
from tests.batch.files import write_csv
from tests.history.conftest import pg_databases
from tests.history.postgres.approval_fixtures import ApprovalTeam, approval_team
from tests.history.postgres.conftest import database
from tests.history.postgres.team_consoles import wait_until
from tests.history.postgres.team_fixtures import team_db
from tests.history.postgres.test_team_window_approvals import _ready, _row_of, desks

__all__ = ["approval_team", "database", "desks", "pg_databases", "team_db"]

Desks = tuple[ApprovalTeam, SandboxGateway, Profile, Callable[[str], MainWindow]]
HEADERS = ["site_login", "amount", "currency", "method", "phone_number", "phone_holder"]
# 1 200.00 RUB in all, against a threshold of 1 000.00 RUB; no row reaches it alone.
ROWS = [
    ["alice", "400.00", "RUB", "sbp", "79990001122", "Ivan Petrov"],
    ["bob", "400.00", "RUB", "sbp", "79990001133", "Petr Ivanov"],
    ["carol", "400.00", "RUB", "sbp", "79990001144", "Anna Sidorova"],
]


def _import(window: MainWindow, shop: Profile, path: Path, qtbot: QtBot) -> BatchDialog:
    dialog = window.open_batch(path)
    assert dialog is not None
    qtbot.addWidget(dialog)
    dialog.profile_box.setCurrentIndex(dialog.profile_box.findData(shop.id))
    wait_until(
        lambda: (
            dialog.batch is not None
            and dialog.batch.profile.id == shop.id
            and dialog.batch.ok
            and not dialog.checking()
        ),
        20_000,
    )
    return dialog


def _confirm(dialog: BatchDialog) -> None:
    box = dialog.request_send()
    assert box is not None
    assert "submitted for approval as one request" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    wait_until(lambda: dialog.submitted is not None or "stopped" in dialog.counts.text(), 20_000)
    assert dialog.submitted is not None, dialog.counts.text()


def _select(tab: ApprovalsTab, approval_id: int) -> None:
    wait_until(lambda: _row_of(tab, approval_id) >= 0)
    tab.table.selectRow(_row_of(tab, approval_id))


def test_a_batch_above_the_threshold_waits_for_approval_as_one_and_is_sent_once(
    desks: Desks, tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, sandbox, shop, open_as = desks
    maker_login = team.add("maker", "maker", "approver")  # holding both roles changes nothing
    approver_login = team.add("appr", "approver")
    for login in (maker_login, approver_login):
        set_limit(team.conn(), login, "RUB", 10**9)
    maker = open_as(maker_login)
    approver = open_as(approver_login)
    _ready(maker, shop, qtbot)
    _ready(approver, shop, qtbot)

    dialog = _import(maker, shop, write_csv(tmp_path / "payroll.csv", HEADERS, ROWS), qtbot)
    batch = dialog.batch
    assert batch is not None
    _confirm(dialog)
    submitted = dialog.submitted
    assert submitted is not None
    approval_id = submitted.approval_id
    assert "nothing was sent to the gateway" in dialog.counts.text()
    assert dialog.outcome is None
    assert sandbox.requests_received == 0

    # One entry in the approver's tab for the whole batch, with its totals and its rows.
    approver_tab = approver.approvals_tab
    assert approver_tab is not None
    wait_until(lambda: approver_tab.table.rowCount() == 1)
    _select(approver_tab, approval_id)
    cells = [approver_tab.table.item(0, c).text() for c in range(approver_tab.table.columnCount())]  # type: ignore[union-attr]
    assert cells[1] == "AWAITING_APPROVAL"
    assert cells[2] == "3 rows: 1 200.00 RUB"
    assert cells[4] == f"Batch {batch.batch_id}"
    details = approver_tab.details.toPlainText()
    assert "Total RUB:   3 payouts, 1 200.00 RUB" in details
    for line in (2, 3, 4):
        assert f"line {line}: {row_request_id(batch.batch_id, line)}" in details
    wait_until(
        lambda: approver.tabs.tabText(approver.tabs.indexOf(approver_tab)) == "Approvals (1)"
    )

    # The maker cannot approve their own batch, though they hold the approver role.
    maker_tab = maker.approvals_tab
    assert maker_tab is not None
    _select(maker_tab, approval_id)
    maker_tab.note.setText("my own")
    maker_tab.approve_button.click()
    wait_until(lambda: "nobody approves their own" in maker_tab.status.text().lower())
    with approvals_connection(team.team.url(), team.team.owner_password) as conn:
        assert get(conn, approval_id).state == "AWAITING_APPROVAL"
        assert conn.execute("SELECT count(*) AS n FROM payouts").fetchone()["n"] == 0
    assert sandbox.requests_received == 0

    # The approver approves the batch; their desk sends every row, each exactly once, on
    # threads below the GUI thread's priority, as the batch window does.
    lowered: list[int] = []
    lower = sending.lower_thread_priority

    def spy(niceness: int) -> None:
        lowered.append(niceness)
        lower(niceness)

    monkeypatch.setattr(sending, "lower_thread_priority", spy)
    _select(approver_tab, approval_id)
    approver_tab.note.setText("payroll checked against the contract")
    approver_tab.approve_button.click()
    wait_until(
        lambda: approver_tab.status.text().startswith(f"Approved request {approval_id}."), 30_000
    )
    assert "3 accepted, 0 refused, 0 in doubt" in approver_tab.status.text()
    assert lowered and set(lowered) == {SENDING_NICENESS}
    expected = {row_request_id(batch.batch_id, line): 1 for line in (2, 3, 4)}
    assert sandbox.request_ids_received == expected
    with approvals_connection(team.team.url(), team.team.owner_password) as conn:
        sent = get(conn, approval_id)
        recorded = conn.execute(
            "SELECT request_id, created_by FROM payouts ORDER BY request_id"
        ).fetchall()
    assert sent.state == "SENT" and sent.send_claimed_by == approver_login
    assert [(r["request_id"], r["created_by"]) for r in recorded] == [
        (request_id, approver_login) for request_id in sorted(expected)
    ]
    wait_until(lambda: approver_tab.table.rowCount() == 0)

    # Confirming the same file again submits nothing and sends nothing.
    again = _import(maker, shop, write_csv(tmp_path / "payroll.csv", HEADERS, ROWS), qtbot)
    box = again.request_send()
    assert box is not None
    box.button(QMessageBox.StandardButton.Yes).click()
    wait_until(lambda: "stopped" in again.counts.text(), 20_000)
    assert "submitted for approval before" in again.counts.text()
    assert sandbox.request_ids_received == expected


def test_a_rejected_batch_sends_nothing(desks: Desks, tmp_path: Path, qtbot: QtBot) -> None:
    team, sandbox, shop, open_as = desks
    maker_login = team.add("maker", "maker")
    approver_login = team.add("appr", "approver")
    set_limit(team.conn(), approver_login, "RUB", 10**9)
    maker = open_as(maker_login)
    approver = open_as(approver_login)
    _ready(maker, shop, qtbot)
    _ready(approver, shop, qtbot)
    dialog = _import(maker, shop, write_csv(tmp_path / "payroll.csv", HEADERS, ROWS), qtbot)
    _confirm(dialog)
    assert dialog.submitted is not None
    approval_id = dialog.submitted.approval_id

    approver_tab = approver.approvals_tab
    assert approver_tab is not None
    _select(approver_tab, approval_id)
    approver_tab.note.setText("not this month")
    approver_tab.reject_button.click()
    wait_until(lambda: "it will never be sent" in approver_tab.status.text())
    with approvals_connection(team.team.url(), team.team.owner_password) as conn:
        assert get(conn, approval_id).state == "REJECTED_BY_APPROVER"
        assert conn.execute("SELECT count(*) AS n FROM payouts").fetchone()["n"] == 0
    # Confirming the same file again cannot bring the rejected batch back.
    again = _import(maker, shop, write_csv(tmp_path / "payroll.csv", HEADERS, ROWS), qtbot)
    box = again.request_send()
    assert box is not None
    box.button(QMessageBox.StandardButton.Yes).click()
    wait_until(lambda: "stopped" in again.counts.text(), 20_000)
    assert "REJECTED_BY_APPROVER" in again.counts.text()
    assert sandbox.requests_received == 0


def test_an_approved_batch_stopped_at_the_approver_desk_is_resumed_from_approvals(
    desks: Desks, tmp_path: Path, qtbot: QtBot
) -> None:
    """The approver's desk stopped right after claiming the approved batch: on its next
    start it names the batch and points to the Approvals tab (never to the file, which that
    desk may not have); another login's desk is not told of a batch it never sent."""
    team, sandbox, shop, open_as = desks
    maker_login = team.add("maker", "maker")
    approver_login = team.add("appr", "approver")
    set_limit(team.conn(), approver_login, "RUB", 10**9)
    maker = open_as(maker_login)
    _ready(maker, shop, qtbot)
    dialog = _import(maker, shop, write_csv(tmp_path / "payroll.csv", HEADERS, ROWS), qtbot)
    batch = dialog.batch
    assert batch is not None
    _confirm(dialog)
    assert dialog.submitted is not None
    approval_id = dialog.submitted.approval_id

    url, password = team.team.url(approver_login), team.team.passwords[approver_login]
    set_store_password(parse_store_url(url).account, password)  # as the approver's desk holds it
    with approvals_connection(url, password) as conn:
        assert approve(conn, approval_id, "checked") == "APPROVED"
        request = get(conn, approval_id)
    stopped = Control()
    stopped.cancel()  # the desk stops after the claim, before any row leaves
    outcome = send_approved_batch(
        tmp_path / approver_login, url, request, password=password, control=stopped
    )
    assert not isinstance(outcome, str)
    assert sandbox.requests_received == 0
    with approvals_connection(url, password) as conn:
        assert get(conn, approval_id).state == "SENDING"

    approver = open_as(approver_login)
    wait_until(lambda: approver.findChild(QMessageBox, NOTICE) is not None, 20_000)
    box = approver.findChild(QMessageBox, NOTICE)
    assert isinstance(box, QMessageBox)
    assert f"approved as request {approval_id}" in box.text()
    assert f"batch {batch.batch_id}" in box.text() and "3 of its 3 rows" in box.text()
    assert "Open the file again…" not in [button.text() for button in box.buttons()]
    [show] = [button for button in box.buttons() if button.text() == SHOW_APPROVALS]
    show.click()
    tab = approver.approvals_tab
    assert tab is not None
    assert approver.tabs.currentWidget() is tab
    wait_until(lambda: tab.selected_id() == approval_id)
    assert tab.send_button.isEnabled()

    # The maker's desk never began sending it: nothing to resume there.
    with open_history(tmp_path / "maker-check", team.team.url(maker_login)) as store:
        assert interrupted_batches(store, login=maker_login) == []
        [mine] = interrupted_batches(store, login=approver_login)
    assert mine.entry.batch_id == batch.batch_id and mine.entry.created_by == approver_login
