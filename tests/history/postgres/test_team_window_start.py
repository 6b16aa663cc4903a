"""The window started while its team store is down: it opens, says so, sends nothing, and
connects by itself once the database is back (the real PostgreSQL stopped and started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from cactus_desk.ui.team_store import RECONNECTED_TEXT, UNREACHABLE_TEXT
from tests.history.postgres.team_consoles import open_console, wait_until
from tests.pg_databases import PgDatabases
from tests.ui.conftest import PayoutDriver


def test_the_window_opens_while_the_team_store_is_down_and_connects_when_it_is_back(
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_databases.cluster.password)
    url = pg_databases.url(database)
    cluster = pg_databases.cluster
    cluster.stop()
    window: MainWindow | None = None
    try:
        window = open_console(tmp_path / "desk", url)
        qtbot.addWidget(window)
        # The window is open and usable, not ended with a message.
        assert window.isVisible() and window.is_ready()
        assert window.store_indicator.unreachable
        assert "unreachable" in window.store_indicator.text()
        assert window.statusBar().currentMessage() == UNREACHABLE_TEXT
        window.tabs.setCurrentIndex(HISTORY_TAB)
        assert UNREACHABLE_TEXT in window._history_note.text()
        assert window._history_note.isVisible()
        assert pg_databases.cluster.password not in window._history_note.text()

        # Sending is refused with the reason; nothing reaches the gateway.
        sandbox = window.sandbox
        assert sandbox is not None
        driver = PayoutDriver(window, qtbot)
        driver.fill(amount="100.00")
        assert driver.form.request_send() is None
        assert window.form.banner.kind() == "error"
        assert UNREACHABLE_TEXT in window.form.banner.text()
        assert "Nothing can be sent" in window.form.banner.text()
        assert sandbox.requests_received == 0

        # Still trying while it stays down (a few back-off rounds).
        qtbot.wait(1500)
        assert window.store_indicator.unreachable
    finally:
        cluster.start()
    assert window is not None
    # Back: it connects by itself, says so, and the History and sends work.
    wait_until(lambda: window.statusBar().currentMessage() == RECONNECTED_TEXT, 30_000)
    assert not window.store_indicator.unreachable
    wait_until(lambda: window.team_live is not None, 10_000)
    driver = PayoutDriver(window, qtbot)
    request_id = driver.send(amount="100.00")
    assert window.form.banner.kind() == "accepted", window.form.banner.text()
    assert driver.record(request_id).request_id == request_id
    window.tabs.setCurrentIndex(HISTORY_TAB)
    assert window.history_panel.wait_until_idle(30_000)
    assert window.history_panel.model.rowCount() == 1
    window.shutdown()
