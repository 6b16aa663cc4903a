"""The Approvals tab on the real team history, two consoles at once (a maker's and an
approver's): live by NOTIFY, the maker refused approval of their own payout by the database,
the approver's decision seen by the maker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QTabWidget
from pytestqt.qtbot import QtBot

from cactus_desk.approvals_desk import TeamApprovals
from cactus_desk.history.approvals import approvals_connection, get, set_limit
from cactus_desk.ui.approvals.tab import ApprovalsTab, attach_approvals_tab
from tests.history.conftest import pg_databases
from tests.history.postgres.approval_fixtures import (
    ApprovalTeam,
    approval_team,
    payout,
    submit,
)
from tests.history.postgres.conftest import database
from tests.history.postgres.team_fixtures import team_db

__all__ = ["approval_team", "database", "pg_databases", "team_db"]

WAIT_MS = 15_000


def _tab(qtbot: QtBot, team: ApprovalTeam, login: str, folder: Path) -> ApprovalsTab:
    port = TeamApprovals(team.team.url(login), folder, password=team.team.passwords[login])
    tab = ApprovalsTab(port)
    qtbot.addWidget(tab)
    return tab


@pytest.fixture
def consoles(
    qtbot: QtBot, approval_team: ApprovalTeam, tmp_path: Path
) -> Iterator[tuple[ApprovalTeam, str, str, ApprovalsTab, ApprovalsTab]]:
    """A maker's tab and an approver's tab, each its own desk and login."""
    maker = approval_team.add("maker", "maker")
    approver = approval_team.add("appr", "approver")
    set_limit(approval_team.conn(), approver, "RUB", 10**9)
    maker_tab = _tab(qtbot, approval_team, maker, tmp_path / "maker")
    approver_tab = _tab(qtbot, approval_team, approver, tmp_path / "approver")
    yield approval_team, maker, approver, maker_tab, approver_tab
    for tab in (maker_tab, approver_tab):
        tab.stop()


def _row_of(tab: ApprovalsTab, approval_id: int) -> int:
    for row in range(tab.table.rowCount()):
        item = tab.table.item(row, 0)
        if item is not None and item.text() == str(approval_id):
            return row
    return -1


def test_a_submitted_payout_reaches_the_approvers_tab_live_and_the_decision_the_makers(
    qtbot: QtBot, consoles: tuple[ApprovalTeam, str, str, ApprovalsTab, ApprovalsTab]
) -> None:
    team, maker, approver, maker_tab, approver_tab = consoles
    counts: list[int] = []
    approver_tab.count_changed.connect(counts.append)
    qtbot.waitUntil(lambda: approver_tab._login == approver, timeout=WAIT_MS)

    with approvals_connection(team.team.url(maker), team.team.passwords[maker]) as conn:
        approval_id = submit(conn, payout("po-window", 150_000))
    # Nobody refreshes by hand: NOTIFY brings it to both consoles.
    qtbot.waitUntil(lambda: _row_of(approver_tab, approval_id) >= 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: _row_of(maker_tab, approval_id) >= 0, timeout=WAIT_MS)
    assert counts[-1] == 1 and maker_tab.actionable() == 0
    approver_tab.table.selectRow(_row_of(approver_tab, approval_id))
    details = approver_tab.details.toPlainText()
    assert "1 500.00 RUB = 150000 minor units" in details and f"Maker:       {maker}" in details
    assert "No similar payout" in details
    assert not approver_tab.withdraw_button.isEnabled()

    # The maker's own console: the database refuses the approval.
    maker_tab.table.selectRow(_row_of(maker_tab, approval_id))
    assert maker_tab.withdraw_button.isEnabled()
    maker_tab.note.setText("my own")
    maker_tab.approve_button.click()
    qtbot.waitUntil(lambda: "may not do this" in maker_tab.status.text(), timeout=WAIT_MS)

    # An approval needs a note, said at the field.
    approver_tab.approve_button.click()
    assert "Write a note" in approver_tab.status.text()
    approver_tab.note.setText("checked the invoice")
    approver_tab.approve_button.click()
    qtbot.waitUntil(
        lambda: approver_tab.status.text().startswith(f"Approved request {approval_id}."),
        timeout=WAIT_MS,
    )
    # This desk holds no salt: it says so and sends nothing.
    assert "has no salt" in approver_tab.status.text()
    with approvals_connection(team.team.url(maker), team.team.passwords[maker]) as conn:
        assert get(conn, approval_id).state == "APPROVED"
    # The maker sees the decision live.
    qtbot.waitUntil(
        lambda: (
            (item := maker_tab.table.item(_row_of(maker_tab, approval_id), 1)) is not None
            and item.text() == "APPROVED"
        ),
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: counts[-1] == 0, timeout=WAIT_MS)


def test_the_maker_withdraws_from_the_tab_and_it_leaves_the_approvers_list(
    qtbot: QtBot, consoles: tuple[ApprovalTeam, str, str, ApprovalsTab, ApprovalsTab]
) -> None:
    team, maker, _approver, maker_tab, approver_tab = consoles
    qtbot.waitUntil(lambda: maker_tab._login == maker, timeout=WAIT_MS)
    with approvals_connection(team.team.url(maker), team.team.passwords[maker]) as conn:
        approval_id = submit(conn, payout("po-back", 150_000))
    qtbot.waitUntil(lambda: _row_of(maker_tab, approval_id) >= 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: _row_of(approver_tab, approval_id) >= 0, timeout=WAIT_MS)
    maker_tab.table.selectRow(_row_of(maker_tab, approval_id))
    maker_tab.withdraw_button.click()
    qtbot.waitUntil(lambda: _row_of(approver_tab, approval_id) < 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: _row_of(maker_tab, approval_id) < 0, timeout=WAIT_MS)
    assert maker_tab.status.text() == f"Withdrew request {approval_id}."


def test_the_tab_title_counts_what_this_login_can_approve(
    qtbot: QtBot, approval_team: ApprovalTeam, tmp_path: Path
) -> None:
    maker = approval_team.add("maker", "maker")
    approver = approval_team.add("appr", "approver")
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    port = TeamApprovals(
        approval_team.team.url(approver), tmp_path, password=approval_team.team.passwords[approver]
    )
    tab = attach_approvals_tab(tabs, port)
    try:
        qtbot.waitUntil(lambda: tab._login == approver, timeout=WAIT_MS)
        assert tabs.tabText(tabs.indexOf(tab)) == "Approvals"
        with approvals_connection(
            approval_team.team.url(maker), approval_team.team.passwords[maker]
        ) as conn:
            for request_id in ("po-1", "po-2"):
                submit(conn, payout(request_id, 150_000))
        qtbot.waitUntil(lambda: tabs.tabText(tabs.indexOf(tab)) == "Approvals (2)", timeout=WAIT_MS)
    finally:
        tab.stop()
