"""The clerk's tools on a team store: saved recipients shared by the desks, and alerts raised
by the store's change notices (not by a poll), in real windows on one PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from cactus_desk.recipients.store import FILE_NAME
from cactus_desk.ui import alerts as alerts_module
from cactus_desk.ui.history import panel as panel_module
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.payout import status_follower as follower_module
from tests.callbacks.helpers import callback
from tests.history.postgres.team_consoles import open_console, receiver_process, wait_until
from tests.pg_databases import PgDatabases
from tests.ui.conftest import PayoutDriver

DECLINE = 5
SLOW_LOOK_MS = 60_000
#: From the receiver's answer to the notification in the other desk.
ALERT_WITHIN_S = 1.0
FULL_CARD = "4242424242424242"
OTHER_CARD = "5555555555554444"


@pytest.fixture
def consoles(
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., MainWindow]]:
    """Opens consoles on the test's team database (each with its own data folder); every
    timer that looks for changes by itself waits a minute."""
    monkeypatch.setenv("PGPASSWORD", pg_databases.cluster.password)
    monkeypatch.setattr(panel_module, "WATCH_INTERVAL_MS", SLOW_LOOK_MS)
    monkeypatch.setattr(follower_module, "INTERVAL_MS", SLOW_LOOK_MS)
    monkeypatch.setattr(alerts_module, "POLL_MS", SLOW_LOOK_MS)
    monkeypatch.setattr(alerts_module, "TEAM_POLL_MS", SLOW_LOOK_MS)
    url = pg_databases.url(database)
    opened: list[MainWindow] = []

    def open_one(name: str, *extra: str) -> MainWindow:
        window = open_console(tmp_path / name, url, *extra)
        qtbot.addWidget(window)
        opened.append(window)
        return window

    yield open_one
    for window in opened:
        window.shutdown()


def _ready(window: MainWindow) -> None:
    wait_until(lambda: window.history_opening() is False and window.team_live is not None)
    wait_until(lambda: not window.recipients.busy())


def test_a_recipient_saved_at_one_desk_is_picked_at_another(
    consoles: Callable[..., MainWindow],
    owner_sql: psycopg.Connection,
    tmp_path: Path,
    qtbot: QtBot,
) -> None:
    first, second = consoles("a"), consoles("b")
    for window in (first, second):
        _ready(window)
    # Showing a window asks for its activation; let those land (and their reads end) before
    # the first desk is brought forward, so the second desk gains focus only when told to.
    qtbot.wait(300)
    first.activateWindow()
    wait_until(lambda: QGuiApplication.focusWindow() is first.windowHandle())
    qtbot.wait(100)
    for window in (first, second):
        _ready(window)
    PayoutDriver(first, qtbot).fill("card", "RUB", site_login="alice")
    assert first.form.panel().values()["card_number"] == FULL_CARD
    assert first.recipients.save_current("Alice card")
    wait_until(lambda: "Alice card" in first.recipients.picker.labels())
    # In the team's table, masked; no desk's own file.
    [(fields, last4)] = owner_sql.execute(
        "SELECT fields, card_last4 FROM saved_recipients"
    ).fetchall()
    assert FULL_CARD not in fields and "424242******4242" in fields and last4 == "4242"
    assert not (tmp_path / "a" / FILE_NAME).exists()
    # The other desk reads it again when it gains focus.
    first.activateWindow()
    wait_until(first.isActiveWindow)
    assert "Alice card" not in second.recipients.picker.labels()
    second.activateWindow()
    wait_until(second.isActiveWindow)
    wait_until(lambda: "Alice card" in second.recipients.picker.labels())
    form = second.form
    assert second.recipients.pick("Alice card")
    assert form.method() == "card" and form.site_login_edit.text() == "alice"
    card = form.field("card_number")
    assert isinstance(card, QLineEdit)
    assert card.text() == "" and "4242" in card.placeholderText()
    assert "card_number" in form.errors()  # the full number must be typed again
    card.setFocus()
    QTest.keyClicks(card, OTHER_CARD)
    assert "ends in 4242" in form.error_text("card_number")
    card.clear()
    QTest.keyClicks(card, FULL_CARD)
    form.amount_edit.setText("150.00")
    assert form.errors() == {}
    assert form.send_button.isEnabled()


def test_a_declined_callback_raises_the_alert_at_the_other_desk_by_notice(
    consoles: Callable[..., MainWindow],
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
    qtbot: QtBot,
) -> None:
    first = consoles("a", "--finalize-after", "600")  # its own finalizer never fires
    second = consoles("b")
    assert first.live_statuses is not None
    first.live_statuses.stop()  # callbacks go to the receiver process instead
    sandbox = first.sandbox
    assert sandbox is not None
    shop = {
        "SHOP_URL": sandbox.base_url,
        "SHOP_MERCHANT": sandbox.merchant_id,
        "SHOP_SITE": str(sandbox.site_id),
        "SHOP_SALT": sandbox.salt,
    }
    with receiver_process(pg_databases, database, shop, tmp_path / "rx") as (_, url):
        driver = PayoutDriver(first, qtbot)
        request_id = driver.send(amount="500.13")
        record = driver.record(request_id)
        wait_until(lambda: second.history_opening() is False and second.team_live is not None)
        assert second.alert_watcher.interval_ms() == SLOW_LOOK_MS
        wait_until(lambda: second.alert_watcher.watching() and not second.alert_watcher.busy())
        assert not second.notifier.shown
        body = callback(
            DECLINE,
            request_id=request_id,
            invoice_id=record.invoice_id,
            salt=sandbox.salt,
            site_id=record.site_id,
            site_login=record.site_login,
            amount=record.amount_minor,
            received_amount=0,
            currency=record.currency,
            received_currency=record.currency,
            method=record.method,
            additional_fields=None,
        )
        reply = httpx.post(url, json=body, timeout=30)
        answered = time.monotonic()
        assert (reply.status_code, reply.json()) == (200, {"result": "ok"})
        wait_until(lambda: any(a.title == "Payout declined" for a in second.notifier.shown))
        took = time.monotonic() - answered
    assert took <= ALERT_WITHIN_S, took
    [alert] = second.notifier.shown
    assert request_id in alert.message and alert.record_id == record.id
    assert second.notifier.label.text().startswith("Payout declined")
