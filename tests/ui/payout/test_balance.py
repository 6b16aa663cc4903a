"""The status-bar balance: fetched from a real sandbox gateway off the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSize, QThreadPool
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QLabel, QStyle, QToolButton
from pytestqt.qtbot import QtBot

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.ui.payout.balance import BalanceWidget

WAIT_MS = 10_000


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(balances={"USD": 1_000_000, "EUR": 1_460_050, "VND": 25_000_000}) as gw:
        yield gw


def _profile(gateway: SandboxGateway, name: str = "Sandbox desk") -> Profile:
    return Profile(
        name=name,
        base_url=gateway.base_url,
        merchant_id=gateway.merchant_id,
        site_id=gateway.site_id,
        environment="sandbox",
    )


@pytest.fixture
def widget(qtbot: QtBot) -> BalanceWidget:
    balance = BalanceWidget()
    qtbot.addWidget(balance)
    return balance


def test_shows_the_sandbox_balances_and_emits_minor_units(
    qtbot: QtBot, widget: BalanceWidget, gateway: SandboxGateway
) -> None:
    with qtbot.waitSignal(
        widget.balancesChanged, timeout=WAIT_MS, check_params_cb=lambda b: bool(b)
    ) as signal:
        widget.set_profile(_profile(gateway), lambda: gateway.salt)

    assert signal.args == [{"USD": 1_000_000, "EUR": 1_460_050, "VND": 25_000_000}]
    assert all(type(value) is int for value in signal.args[0].values())
    assert widget.text() == "Balance: USD 10 000.00 · EUR 14 600.50 +1 more (available)"
    assert gateway.salt not in widget.text()
    widget.set_currency("VND")  # the currency being paid in comes first
    assert widget.text() == "Balance: VND 25 000 000 · USD 10 000.00 +1 more (available)"


def test_refresh_picks_up_a_changed_balance(
    qtbot: QtBot, widget: BalanceWidget, gateway: SandboxGateway
) -> None:
    with qtbot.waitSignal(widget.balancesChanged, timeout=WAIT_MS, check_params_cb=bool):
        widget.set_profile(_profile(gateway), lambda: gateway.salt)
    assert widget.balances()["USD"] == 1_000_000

    payout = PayoutRequest(
        merchant_id=gateway.merchant_id,
        site_login="alice",
        site_id=gateway.site_id,
        request_id="po-balance-1",
        amount=876_544,
        currency="USD",
        method="card",
        additional_fields={"card_number": "4111111111111111"},
    )
    with CactusClient(gateway.base_url) as client:
        assert isinstance(client.payout(payout, gateway.salt), Accepted)
    button = widget.findChild(QToolButton, "balanceRefreshButton")
    with qtbot.waitSignal(widget.balancesChanged, timeout=WAIT_MS, check_params_cb=bool):
        button.click()
        # The figures stay while they are fetched again (no flicker to "loading" and back).
        assert widget.text() == "Balance: USD 10 000.00 · EUR 14 600.50 +1 more (available)"
        assert not button.isEnabled()
    assert button.isEnabled()
    assert widget.balances()["USD"] == 123_456
    assert "USD 1 234.56" in widget.text()


def test_a_wrong_salt_shows_a_plain_error(
    qtbot: QtBot, widget: BalanceWidget, gateway: SandboxGateway
) -> None:
    widget.set_profile(_profile(gateway), lambda: "not-the-salt")
    qtbot.waitUntil(lambda: widget.text().startswith("Balance unavailable:"), timeout=WAIT_MS)
    assert "signature" in widget.text().lower()
    assert "not-the-salt" not in widget.text()
    assert widget.balances() == {}


def test_no_stored_salt_is_reported_without_contacting_the_gateway(
    qtbot: QtBot, widget: BalanceWidget, gateway: SandboxGateway
) -> None:
    widget.set_profile(_profile(gateway), lambda: None)
    qtbot.waitUntil(lambda: widget.text().startswith("Balance unavailable:"), timeout=WAIT_MS)
    assert "no salt is stored" in widget.text()


def test_an_unreachable_gateway_is_reported(qtbot: QtBot, widget: BalanceWidget) -> None:
    with SandboxGateway() as gone:
        profile = _profile(gone)
    widget.set_profile(profile, lambda: "salt")
    qtbot.waitUntil(lambda: widget.text().startswith("Balance unavailable:"), timeout=WAIT_MS)
    assert "Could not reach the gateway" in widget.text()


def test_a_stale_answer_for_the_previous_profile_is_dropped(
    qtbot: QtBot, widget: BalanceWidget, gateway: SandboxGateway
) -> None:
    release_first = threading.Event()

    def slow_salt() -> str:
        release_first.wait(WAIT_MS / 1000)
        return gateway.salt

    with SandboxGateway(balances={"EUR": 500}) as second:
        widget.set_profile(_profile(gateway, "First"), slow_salt)
        with qtbot.waitSignal(widget.balancesChanged, timeout=WAIT_MS, check_params_cb=bool):
            widget.set_profile(_profile(second, "Second"), lambda: second.salt)
        assert widget.balances() == {"EUR": 500}

        received: list[object] = []
        widget.balancesChanged.connect(received.append)
        release_first.set()
        QThreadPool.globalInstance().waitForDone(WAIT_MS)
        qtbot.waitUntil(lambda: not widget.is_busy(), timeout=WAIT_MS)

    assert received == []
    assert widget.balances() == {"EUR": 500}
    assert widget.text() == "Balance: EUR 5.00 (available)"


def test_clearing_the_profile_empties_the_balance(
    qtbot: QtBot, widget: BalanceWidget, gateway: SandboxGateway
) -> None:
    with qtbot.waitSignal(widget.balancesChanged, timeout=WAIT_MS, check_params_cb=bool):
        widget.set_profile(_profile(gateway), lambda: gateway.salt)
    with qtbot.waitSignal(widget.balancesChanged) as signal:
        widget.set_profile(None, None)
    assert signal.args == [{}]
    assert widget.text() == "Balance: no profile selected"


def test_many_currencies_are_shortened_with_all_in_the_tooltip(
    qtbot: QtBot, widget: BalanceWidget
) -> None:
    everything = SandboxGateway()  # a balance in every currency
    with (
        everything,
        qtbot.waitSignal(widget.balancesChanged, timeout=WAIT_MS, check_params_cb=bool) as sig,
    ):
        widget.set_profile(_profile(everything), lambda: everything.salt)
    assert len(sig.args[0]) == 8
    assert widget.text().endswith(" +6 more (available)")
    tooltip = widget.findChild(QLabel, "balanceLabel").toolTip()
    assert "VND: 1 000 000 available of 1 000 000 in sandbox_vnd" in tooltip


def test_available_balance_is_rounded_down_so_it_is_never_overstated() -> None:
    from decimal import Decimal

    from cactus_desk.ui.payout.balance import to_minor

    assert to_minor(Decimal("10.005"), 2) == 1000
    assert to_minor(Decimal("10.0099"), 2) == 1000
    assert to_minor(Decimal("10000.0"), 2) == 1000000


def test_the_refresh_button_shows_the_style_reload_icon(widget: BalanceWidget) -> None:
    # Built without QStyle (for the start), it is the very icon the style gives.
    button = widget.findChild(QToolButton, "balanceRefreshButton")
    assert button is not None
    expected = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload)
    assert not expected.isNull()
    for size in (16, 24, 32):
        for mode in (QIcon.Mode.Normal, QIcon.Mode.Disabled):
            shown = button.icon().pixmap(QSize(size, size), mode).toImage()
            assert shown == expected.pixmap(QSize(size, size), mode).toImage(), (size, mode)
