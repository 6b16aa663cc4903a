"""The approval refusals as the window shows them: approvers' consoles (real windows,
offscreen) on one PostgreSQL, the sandbox gateway over loopback, the maker's payouts submitted
as the maker's login.

A second-level payout waits for a second, different approver and is then sent once; an
approver over their limit or without one is refused; an expired request cannot be approved;
two approvers' desks sending at once make one gateway request. Each refusal is the
database's, shown in the tab, and the sandbox sees nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from pytestqt.qtbot import QtBot

from cactus_desk.history.approvals import (
    approvals_connection,
    approve,
    get,
    set_limit,
    set_policy,
)
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.ui.approvals.tab import EXPIRED_NOTE, ApprovalsTab
from cactus_desk.ui.main_window import MainWindow
from tests.history.conftest import pg_databases
from tests.history.postgres.approval_fixtures import ApprovalTeam, approval_team, payout, submit
from tests.history.postgres.conftest import database
from tests.history.postgres.team_fixtures import team_db
from tests.history.postgres.test_team_window_approvals import _ready, _row_of, desks

__all__ = ["approval_team", "database", "desks", "pg_databases", "team_db"]

WAIT_MS = 20_000
APPROVE_AT = 100_000  # 1 000.00 RUB, as in ``desks``
SECOND_AT = 1_000_000  # 10 000.00 RUB

Desks = tuple[ApprovalTeam, SandboxGateway, Profile, Callable[[str], MainWindow]]


def _held(team: ApprovalTeam, maker: str, shop: Profile, request_id: str, amount: int) -> int:
    """The maker's payout through the team's sandbox shop, submitted; its approval id."""
    return submit(team.conn(maker), payout(request_id, amount, shop))


def _tab_of(window: MainWindow, shop: Profile, qtbot: QtBot) -> ApprovalsTab:
    _ready(window, shop, qtbot)
    tab = window.approvals_tab
    assert tab is not None
    return tab


def _cell(tab: ApprovalsTab, approval_id: int, column: int) -> str:
    row = _row_of(tab, approval_id)
    item = tab.table.item(row, column) if row >= 0 else None
    return item.text() if item is not None else ""


def _click_approve(tab: ApprovalsTab, approval_id: int, note: str) -> None:
    tab.table.selectRow(_row_of(tab, approval_id))
    assert tab.selected_id() == approval_id
    tab.note.setText(note)
    tab.approve_button.click()


def _until_quiet(tab: ApprovalsTab, qtbot: QtBot) -> None:
    """Wait until the tab heard every notice and read the list after it: one wait for NOTIFY
    ended with nothing new while no read is under way, so only a later action reads again."""
    port = tab._port
    heard: list[bool] = []
    listen = port.wait_for_change

    def recorded(timeout_s: float) -> bool:
        changed = listen(timeout_s)
        heard.append(changed)
        return changed

    port.wait_for_change = recorded  # type: ignore[method-assign]
    qtbot.waitUntil(
        lambda: bool(heard) and not heard[-1] and not tab._runner.busy("list"), timeout=WAIT_MS
    )


def _state(team: ApprovalTeam, approval_id: int) -> tuple[str, tuple[str, ...]]:
    with approvals_connection(team.team.url(), team.team.owner_password) as conn:
        found = get(conn, approval_id)
    return found.state, found.approvers


def test_a_second_level_payout_waits_for_a_second_different_approver_then_is_sent_once(
    desks: Desks, qtbot: QtBot
) -> None:
    team, sandbox, shop, open_as = desks
    set_policy(team.conn(), shop.id, "RUB", APPROVE_AT, SECOND_AT, 72)
    maker = team.add("maker", "maker")
    ann, bob = team.add("ann", "approver"), team.add("bob", "approver")
    for login in (ann, bob):
        set_limit(team.conn(), login, "RUB", 10**9)
    ann_tab = _tab_of(open_as(ann), shop, qtbot)
    bob_tab = _tab_of(open_as(bob), shop, qtbot)
    approval_id = _held(team, maker, shop, "po-two", 1_500_000)
    qtbot.waitUntil(lambda: _cell(ann_tab, approval_id, 7) == "0/2", timeout=WAIT_MS)

    # The first approval: it still waits, and nothing reaches the gateway.
    _click_approve(ann_tab, approval_id, "invoice checked")
    qtbot.waitUntil(
        lambda: (
            ann_tab.status.text()
            == f"Approved request {approval_id}. It waits for another approver."
        ),
        timeout=WAIT_MS,
    )
    assert _state(team, approval_id) == ("AWAITING_APPROVAL", (ann,))
    qtbot.waitUntil(lambda: _cell(bob_tab, approval_id, 7) == "1/2", timeout=WAIT_MS)
    assert sandbox.requests_received == 0

    # The same approver again: the database refuses, and the tab says so.
    qtbot.waitUntil(lambda: _cell(ann_tab, approval_id, 7) == "1/2", timeout=WAIT_MS)
    _click_approve(ann_tab, approval_id, "really sure")
    qtbot.waitUntil(
        lambda: "approved this payout already" in ann_tab.status.text(), timeout=WAIT_MS
    )
    assert "another approver" in ann_tab.status.text()
    assert _state(team, approval_id) == ("AWAITING_APPROVAL", (ann,))
    assert sandbox.requests_received == 0

    # A different approver completes it; their desk sends it, once.
    _click_approve(bob_tab, approval_id, "second pair of eyes")
    qtbot.waitUntil(
        lambda: bob_tab.status.text().startswith(f"Approved request {approval_id}. "),
        timeout=WAIT_MS,
    )
    assert "accepted" in bob_tab.status.text(), bob_tab.status.text()
    assert _state(team, approval_id) == ("SENT", (ann, bob))
    qtbot.waitUntil(lambda: _row_of(ann_tab, approval_id) < 0, timeout=WAIT_MS)
    assert sandbox.requests_received == 1


def test_an_approver_over_their_limit_or_without_one_is_refused_in_the_window(
    desks: Desks, qtbot: QtBot
) -> None:
    team, sandbox, shop, open_as = desks
    maker = team.add("maker", "maker")
    low, none = team.add("low", "approver"), team.add("none", "approver")
    set_limit(team.conn(), low, "RUB", 200_000)  # up to 2 000.00 RUB
    set_limit(team.conn(), none, "USD", 10**9)  # a limit, but not for roubles
    approval_id = _held(team, maker, shop, "po-big", 500_000)
    for login in (low, none):
        tab = _tab_of(open_as(login), shop, qtbot)
        qtbot.waitUntil(lambda tab=tab: _row_of(tab, approval_id) >= 0, timeout=WAIT_MS)
        _click_approve(tab, approval_id, "looks fine")
        qtbot.waitUntil(
            lambda tab=tab: tab.status.text() == "The amount is over your approval limit in RUB.",
            timeout=WAIT_MS,
        )
        assert _state(team, approval_id) == ("AWAITING_APPROVAL", ())
        assert _cell(tab, approval_id, 1) == "AWAITING_APPROVAL"
    assert sandbox.requests_received == 0


def test_an_expired_request_shows_expired_and_cannot_be_approved_from_the_window(
    desks: Desks, qtbot: QtBot
) -> None:
    team, sandbox, shop, open_as = desks
    maker = team.add("maker", "maker")
    approver = team.add("appr", "approver")
    set_limit(team.conn(), approver, "RUB", 10**9)
    stale = _held(team, maker, shop, "po-stale", 150_000)
    tab = _tab_of(open_as(approver), shop, qtbot)
    qtbot.waitUntil(lambda: _cell(tab, stale, 1) == "AWAITING_APPROVAL", timeout=WAIT_MS)
    _until_quiet(tab, qtbot)

    # Its time runs out while the tab shows it (the owner moves the mark back: no notice).
    team.conn().execute(
        "UPDATE approval_requests SET expires_at = created_at - 1 WHERE id = %s", (stale,)
    )
    _click_approve(tab, stale, "approving late")
    qtbot.waitUntil(
        lambda: tab.status.text() == f"Approval request {stale} expired.", timeout=WAIT_MS
    )
    # The tab reads the list again and now shows why nothing can be done.
    qtbot.waitUntil(lambda: _cell(tab, stale, 1) == "EXPIRED", timeout=WAIT_MS)
    tab.table.selectRow(_row_of(tab, stale))
    assert not tab.approve_button.isEnabled() and not tab.reject_button.isEnabled()
    assert not tab.send_button.isEnabled()
    assert EXPIRED_NOTE in tab.details.toPlainText()
    assert _state(team, stale) == ("EXPIRED", ())
    assert tab.actionable() == 0
    assert sandbox.requests_received == 0


def test_two_approvers_windows_approving_at_once_send_once(desks: Desks, qtbot: QtBot) -> None:
    team, sandbox, shop, open_as = desks
    maker = team.add("maker", "maker")
    ann, bob = team.add("ann", "approver"), team.add("bob", "approver")
    for login in (ann, bob):
        set_limit(team.conn(), login, "RUB", 10**9)
    tabs = [_tab_of(open_as(login), shop, qtbot) for login in (ann, bob)]
    approval_id = _held(team, maker, shop, "po-both", 150_000)
    for tab in tabs:
        qtbot.waitUntil(lambda tab=tab: _row_of(tab, approval_id) >= 0, timeout=WAIT_MS)
        tab.table.selectRow(_row_of(tab, approval_id))
        tab.note.setText("checked")
    # Both click in the same turn of the event loop: one approval decides, one is refused.
    for tab in tabs:
        tab.approve_button.click()
    qtbot.waitUntil(
        lambda: all(t.status.text() not in ("", "Working…") for t in tabs), timeout=WAIT_MS
    )
    outcomes = sorted(t.status.text() for t in tabs)
    sent = [text for text in outcomes if text.startswith(f"Approved request {approval_id}. ")]
    refused = [text for text in outcomes if "not awaiting approval" in text]
    assert len(sent) == 1 and len(refused) == 1, outcomes
    assert "accepted" in sent[0], outcomes
    state, approvers = _state(team, approval_id)
    assert state == "SENT" and len(approvers) == 1
    assert sandbox.requests_received == 1


def test_two_approvers_windows_sending_at_once_make_one_gateway_request(
    desks: Desks, qtbot: QtBot
) -> None:
    team, sandbox, shop, open_as = desks
    set_policy(team.conn(), shop.id, "RUB", APPROVE_AT, SECOND_AT, 72)
    maker = team.add("maker", "maker")
    ann, bob = team.add("ann", "approver"), team.add("bob", "approver")
    for login in (ann, bob):
        set_limit(team.conn(), login, "RUB", 10**9)
    tabs = [_tab_of(open_as(login), shop, qtbot) for login in (ann, bob)]
    approval_id = _held(team, maker, shop, "po-race", 1_500_000)
    # Both approve on plain connections (desks that do not send): both may send it now.
    for login in (ann, bob):
        with approvals_connection(team.team.url(login), team.team.passwords[login]) as conn:
            approve(conn, approval_id, f"checked by {login}")
    assert _state(team, approval_id) == ("APPROVED", (ann, bob))
    for tab in tabs:
        qtbot.waitUntil(lambda tab=tab: _cell(tab, approval_id, 1) == "APPROVED", timeout=WAIT_MS)
        tab.table.selectRow(_row_of(tab, approval_id))
        assert tab.send_button.isEnabled()
    # Both click in the same turn of the event loop: both desks' sends run at once.
    for tab in tabs:
        tab.send_button.click()
    done = f"Request {approval_id}: "
    qtbot.waitUntil(lambda: all(t.status.text().startswith(done) for t in tabs), timeout=WAIT_MS)
    outcomes = sorted(t.status.text() for t in tabs)
    refused = [text for text in outcomes if "Not sent:" in text]
    accepted = [text for text in outcomes if "accepted" in text]
    assert len(refused) == 1 and len(accepted) == 1, outcomes
    assert "not approved and waiting to be sent" in refused[0], outcomes
    assert _state(team, approval_id)[0] == "SENT"
    assert sandbox.requests_received == 1
