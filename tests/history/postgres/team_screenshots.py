"""Render two consoles on one team store to PNG: ``python -m tests.history.postgres.team_screenshots
OUTDIR`` (``QT_QPA_PLATFORM=offscreen`` without a display).

A throwaway PostgreSQL cluster, a receiver process, and two real windows: console A sends
sandbox payouts, the sandbox's finalizer posts their callbacks to the receiver, and console
B's History shows them become Success (or Declined) live. Writes ``team-console-a.png`` (the
sender, its result banner) and ``team-console-b.png`` (the other desk's History).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import keyring
from PySide6.QtWidgets import QApplication

from cactus_desk.sandbox.finalizer import Finalizer
from cactus_desk.ui.main_window import HISTORY_TAB
from cactus_desk.ui.screenshots import _fill, _save, _settle
from tests.history.postgres.team_consoles import open_console, receiver_process
from tests.memory_keyring import MemoryKeyring
from tests.pg_cluster import PgCluster
from tests.pg_databases import TEMPLATE, PgDatabases

# The last one ends Success: the one whose banner console A shows.
SENDS = (("card", "RUB", "249.13", "boris"), ("card", "RUB", "1500.50", "alice"))


def render(outdir: Path) -> list[Path]:
    """Render both consoles into ``outdir``; the files written."""
    keyring.set_keyring(MemoryKeyring())
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="cactus-team-shots-"))
    cluster = PgCluster()
    cluster.start()
    windows = []
    try:
        databases = PgDatabases(cluster)
        databases._admin(f"CREATE DATABASE cactus TEMPLATE {TEMPLATE}")
        os.environ["PGPASSWORD"] = cluster.password
        url = databases.url("cactus")
        first = open_console(work / "desk-a", url, "--finalize-after", "600")
        second = open_console(work / "desk-b", url)
        windows = [first, second]
        assert first.live_statuses is not None and first.sandbox is not None
        first.live_statuses.stop()
        sandbox = first.sandbox
        shop = {
            "SHOP_URL": sandbox.base_url,
            "SHOP_MERCHANT": sandbox.merchant_id,
            "SHOP_SITE": str(sandbox.site_id),
            "SHOP_SALT": sandbox.salt,
        }
        first.resize(820, 860)
        second.resize(1240, 860)
        second.tabs.setCurrentIndex(HISTORY_TAB)
        with receiver_process(databases, "cactus", shop, work / "rx") as (_proc, callback_url):
            gateway = Finalizer(sandbox.salt, callback_url, delay=0.5).start()
            sandbox.on_accept = gateway.schedule
            try:
                for method, currency, amount, login in SENDS:
                    _fill(first, method, currency, amount, login)
                    dialog = first.form.request_send()
                    assert dialog is not None, first.form.errors()
                    dialog.accept()
                    _settle(lambda: not first.send_controller.is_sending(), 30)
                _settle(lambda: gateway.delivered == len(SENDS), 30)
                model = second.history_panel.model
                _settle(
                    lambda: all(
                        (row := model.history_row(index)) is not None
                        and row.gateway_status in (4, 5)
                        for index in range(len(SENDS))
                    ),
                    15,
                )
                _settle(lambda: "Success" in first.form.banner.text(), 15)
                second.history_panel.view.selectRow(0)
                _settle(lambda: second.history_panel.is_idle(), 15)
                outdir.mkdir(parents=True, exist_ok=True)
                return [
                    _save(first, outdir / "team-console-a.png"),
                    _save(second, outdir / "team-console-b.png"),
                ]
            finally:
                gateway.stop()
    finally:
        for window in windows:
            window.shutdown()
        cluster.destroy()
        app.processEvents()


if __name__ == "__main__":
    for path in render(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(path)
