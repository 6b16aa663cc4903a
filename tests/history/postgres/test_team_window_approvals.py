"""Approvals in the window on a team store: a maker's and an approver's console (real
windows, offscreen) on one PostgreSQL, the sandbox gateway over loopback and the receiver as
its own process.

The maker's form submits a payout the team's policy holds (nothing reaches the gateway), the
approver's Approvals tab shows it live and approves it with a note, the approver's desk sends
it once, and it becomes Success live in the maker's window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.history import open_profiles
from cactus_desk.history.approvals import approvals_connection, get, set_limit, set_policy
from cactus_desk.history.postgres.connect import parse_store_url
from cactus_desk.profiles import Profile, extension_methods
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.sandbox.finalizer import Finalizer
from cactus_desk.secrets import SecretStore, set_store_password
from cactus_desk.ui.approvals.tab import ApprovalsTab
from cactus_desk.ui.history import panel as panel_module
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.payout import status_follower as follower_module
from tests.history.conftest import pg_databases
from tests.history.postgres.approval_fixtures import ApprovalTeam, approval_team
from tests.history.postgres.conftest import database
from tests.history.postgres.team_consoles import receiver_process, show_history, wait_until
from tests.history.postgres.team_fixtures import team_db
from tests.ui.conftest import PayoutDriver

__all__ = ["approval_team", "database", "pg_databases", "team_db"]

SUCCESS = 4
SLOW_LOOK_MS = 60_000
APPROVE_AT = 100_000  # 1 000.00 RUB


def _row_of(tab: ApprovalsTab, approval_id: int) -> int:
    for row in range(tab.table.rowCount()):
        item = tab.table.item(row, 0)
        if item is not None and item.text() == str(approval_id):
            return row
    return -1


def _only_request(tab: ApprovalsTab) -> int:
    assert tab.table.rowCount() == 1
    item = tab.table.item(0, 0)
    assert item is not None
    return int(item.text())


@pytest.fixture
def desks(
    approval_team: ApprovalTeam,
    tmp_path: Path,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ApprovalTeam, SandboxGateway, Profile, Callable[[str], MainWindow]]]:
    """The team's sandbox shop (a profile on the team store whose salt this computer holds)
    with a policy from 1 000.00 RUB, and a way to open a console as a login."""
    monkeypatch.setenv("PGPASSWORD", approval_team.team.owner_password)
    # The consoles' own timers wait a minute: what they show within the test came by NOTIFY.
    monkeypatch.setattr(panel_module, "WATCH_INTERVAL_MS", SLOW_LOOK_MS)
    monkeypatch.setattr(follower_module, "INTERVAL_MS", SLOW_LOOK_MS)
    sandbox = SandboxGateway().start()
    shop = open_profiles(tmp_path / "owner", approval_team.team.url()).add(
        Profile(
            name="Sandbox shop",
            base_url=sandbox.base_url,
            merchant_id=sandbox.merchant_id,
            site_id=sandbox.site_id,
            environment="sandbox",
            extensions=sorted(extension_methods()),
        )
    )
    SecretStore().set_salt(shop.id, sandbox.salt)
    set_policy(approval_team.conn(), shop.id, "RUB", APPROVE_AT, None, 72)
    opened: list[MainWindow] = []

    def open_as(login: str) -> MainWindow:
        url = approval_team.team.url(login)
        set_store_password(parse_store_url(url).account, approval_team.team.passwords[login])
        window = build_main_window(
            ["--data-dir", str(tmp_path / login), "--store", url, "--read-timeout", "2.5"]
        )
        assert isinstance(window, MainWindow)
        window.show()
        qtbot.addWidget(window)
        opened.append(window)
        return window

    try:
        yield approval_team, sandbox, shop, open_as
    finally:
        for window in opened:
            window.shutdown()
        sandbox.stop()


def _ready(window: MainWindow, shop: Profile, qtbot: QtBot) -> PayoutDriver:
    """Wait for the console's team profiles and Approvals tab; its form's driver."""
    wait_until(lambda: window.approvals_tab is not None)
    wait_until(lambda: any(p.id == shop.id for p in window.form.profiles()))
    window.form.select_profile(shop.id)
    return PayoutDriver(window, qtbot)


def test_a_payout_submitted_from_the_window_is_approved_in_another_and_becomes_success_live(
    desks: tuple[ApprovalTeam, SandboxGateway, Profile, Callable[[str], MainWindow]],
    pg_databases: object,
    database: str,
    tmp_path: Path,
    qtbot: QtBot,
) -> None:
    team, sandbox, shop, open_as = desks
    maker_login = team.add("maker", "maker")
    approver_login = team.add("appr", "approver")
    set_limit(team.conn(), approver_login, "RUB", 10**9)
    env = {
        "SHOP_URL": sandbox.base_url,
        "SHOP_MERCHANT": sandbox.merchant_id,
        "SHOP_SITE": str(sandbox.site_id),
        "SHOP_SALT": sandbox.salt,
    }
    with receiver_process(pg_databases, database, env, tmp_path / "rx") as (_, callback_url):  # type: ignore[arg-type]
        finalizer = Finalizer(sandbox.salt, callback_url, delay=0.3).start()
        sandbox.on_accept = finalizer.schedule
        try:
            maker = open_as(maker_login)
            approver = open_as(approver_login)
            driver = _ready(maker, shop, qtbot)
            _ready(approver, shop, qtbot)
            assert maker.tabs.tabText(maker.tabs.indexOf(maker.approvals_tab)) == "Approvals"

            # Below the policy the button sends; from 1 000.00 RUB it submits.
            driver.fill("sbp", "RUB", amount="999.99")
            wait_until(lambda: maker.form.send_button.text() == "Send…")
            maker.form.amount_edit.setText("1500.00")
            wait_until(lambda: maker.form.send_button.text() == "Submit for approval…")
            request_id = maker.form.request_id_edit.text()
            dialog = driver.open_confirm()
            assert dialog.send_button().text() == "Submit for approval"
            driver.confirm(dialog)
            wait_until(lambda: maker.form.banner.kind() == "awaiting")
            assert "awaits approval" in maker.form.banner.text()
            assert "nothing was sent to the gateway" in maker.form.banner.text()
            assert sandbox.requests_received == 0
            assert maker.form.request_id_edit.text() != request_id  # the id is taken now

            # The approver's tab shows it live, with the badge.
            approver_tab = approver.approvals_tab
            assert approver_tab is not None
            wait_until(lambda: approver_tab.table.rowCount() == 1)
            approval_id = _only_request(approver_tab)
            wait_until(
                lambda: (
                    approver.tabs.tabText(approver.tabs.indexOf(approver_tab)) == "Approvals (1)"
                )
            )

            # The maker cannot approve their own payout: the database refuses, said plainly.
            maker_tab = maker.approvals_tab
            assert maker_tab is not None
            wait_until(lambda: _row_of(maker_tab, approval_id) >= 0)
            maker_tab.table.selectRow(_row_of(maker_tab, approval_id))
            maker_tab.note.setText("my own")
            maker_tab.approve_button.click()
            wait_until(lambda: "may not do this" in maker_tab.status.text())
            with approvals_connection(team.team.url(), team.team.owner_password) as conn:
                assert get(conn, approval_id).state == "AWAITING_APPROVAL"
            assert sandbox.requests_received == 0

            # The approver approves with a note; their desk sends it, once.
            approver_tab.table.selectRow(_row_of(approver_tab, approval_id))
            approver_tab.note.setText("checked the invoice")
            approver_tab.approve_button.click()
            wait_until(
                lambda: approver_tab.status.text().startswith(f"Approved request {approval_id}.")
            )
            assert "accepted" in approver_tab.status.text(), approver_tab.status.text()
            with approvals_connection(team.team.url(), team.team.owner_password) as conn:
                sent = get(conn, approval_id)
            assert sent.state == "SENT" and sent.notes == ("checked the invoice",)
            assert sent.payout_id is not None

            # The maker's window follows: approved and sent, then Success by the callback.
            wait_until(lambda: "Success" in maker.form.banner.text(), 20_000)
            assert sandbox.requests_received == 1
            show_history(maker)
            model = maker.history_panel.model
            wait_until(lambda: model.row_of(sent.payout_id) is not None)
            row = model.row_of(sent.payout_id)
            assert row is not None
            found = model.history_row(row)
            assert found is not None and found.request_id == request_id
            wait_until(
                lambda: (
                    (r := model.history_row(model.row_of(sent.payout_id))) is not None
                    and r.gateway_status == SUCCESS
                )
            )
            assert sandbox.requests_received == 1
        finally:
            finalizer.stop()


def test_a_rejected_payout_is_told_to_the_maker_and_never_sent(
    desks: tuple[ApprovalTeam, SandboxGateway, Profile, Callable[[str], MainWindow]],
    qtbot: QtBot,
) -> None:
    team, sandbox, shop, open_as = desks
    maker_login = team.add("maker", "maker")
    approver_login = team.add("appr", "approver")
    set_limit(team.conn(), approver_login, "RUB", 10**9)
    maker = open_as(maker_login)
    approver = open_as(approver_login)
    driver = _ready(maker, shop, qtbot)
    _ready(approver, shop, qtbot)
    driver.fill("sbp", "RUB", amount="2000.00")
    wait_until(lambda: maker.form.send_button.text() == "Submit for approval…")
    driver.confirm(driver.open_confirm())
    wait_until(lambda: maker.form.banner.kind() == "awaiting")
    approver_tab = approver.approvals_tab
    assert approver_tab is not None
    wait_until(lambda: approver_tab.table.rowCount() == 1)
    approval_id = _only_request(approver_tab)
    approver_tab.table.selectRow(0)
    approver_tab.note.setText("wrong recipient")
    approver_tab.reject_button.click()
    wait_until(lambda: "rejected" in maker.form.banner.text())
    assert maker.form.banner.kind() == "error"
    assert f"Request {approval_id}" in maker.form.banner.text()
    assert "wrong recipient" in maker.form.banner.text()
    assert "not sent" in maker.form.banner.text()
    assert sandbox.requests_received == 0


def test_a_card_payout_above_the_threshold_is_refused_with_the_reason_and_not_recorded(
    desks: tuple[ApprovalTeam, SandboxGateway, Profile, Callable[[str], MainWindow]],
    qtbot: QtBot,
) -> None:
    team, sandbox, shop, open_as = desks
    maker = open_as(team.add("maker", "maker"))
    driver = _ready(maker, shop, qtbot)
    driver.fill("card", "RUB", amount="5000.00")
    wait_until(lambda: maker.form.send_button.text() == "Submit for approval…")
    driver.confirm(driver.open_confirm())
    wait_until(lambda: maker.form.banner.kind() == "error")
    assert "full card number" in maker.form.banner.text()
    assert sandbox.requests_received == 0
    with approvals_connection(team.team.url(), team.team.owner_password) as conn:
        assert conn.execute("SELECT count(*) AS n FROM approval_requests").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM payouts").fetchone()["n"] == 0
