"""Render approvals in the window on a team store to PNG:
``python -m tests.history.postgres.approval_screenshots OUTDIR`` (``QT_QPA_PLATFORM=offscreen``
without a display).

A throwaway PostgreSQL cluster set up for a team, a policy from 1 000.00 RUB on the team's
sandbox shop, and two real windows: the maker's (``approvals-submit.png``: the form above the
threshold, its button reading "Submit for approval…") and the approver's
(``approvals-tab.png``: the Approvals tab with the maker's pending payout selected).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import keyring
from PySide6.QtWidgets import QApplication

from cactus_desk.app import build_main_window
from cactus_desk.history import open_profiles
from cactus_desk.history.postgres import approvals, team
from cactus_desk.history.postgres.connect import parse_store_url
from cactus_desk.profiles import Profile, extension_methods
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.secrets import SecretStore, set_store_password
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.screenshots import _fill, _save, _settle
from tests.memory_keyring import MemoryKeyring
from tests.pg_cluster import PgCluster
from tests.pg_databases import TEMPLATE, PgDatabases


def _console(work: Path, databases: PgDatabases, login: str, password: str) -> MainWindow:
    url = databases.url("cactus", user=login)
    set_store_password(parse_store_url(url).account, password)
    window = build_main_window(["--data-dir", str(work / login), "--store", url])
    assert isinstance(window, MainWindow)
    window.resize(1000, 860)
    window.show()
    return window


def render(outdir: Path) -> list[Path]:
    """Render both windows into ``outdir``; the files written."""
    keyring.set_keyring(MemoryKeyring())
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="cactus-approval-shots-"))
    cluster = PgCluster()
    cluster.start()
    sandbox = SandboxGateway().start()
    windows: list[MainWindow] = []
    try:
        databases = PgDatabases(cluster)
        databases._admin(f"CREATE DATABASE cactus TEMPLATE {TEMPLATE}")
        os.environ["PGPASSWORD"] = cluster.password
        owner_url = databases.url("cactus")
        passwords = {"ivan": secrets.token_urlsafe(12), "anna": secrets.token_urlsafe(12)}
        with team.team_connection(owner_url, cluster.password) as conn:
            team.init_team(conn)
            team.add_user(conn, "ivan", "maker", passwords["ivan"])
            team.add_user(conn, "anna", "approver", passwords["anna"])
        shop = open_profiles(work / "owner", owner_url).add(
            Profile(
                name="Acme shop",
                base_url=sandbox.base_url,
                merchant_id=sandbox.merchant_id,
                site_id=sandbox.site_id,
                environment="sandbox",
                extensions=sorted(extension_methods()),
            )
        )
        SecretStore().set_salt(shop.id, sandbox.salt)
        with team.team_connection(owner_url, cluster.password) as conn:
            approvals.set_policy(conn, shop.id, "RUB", 100_000, 1_000_000, 72)
            approvals.set_limit(conn, "anna", "RUB", 500_000_00)
        maker = _console(work, databases, "ivan", passwords["ivan"])
        approver = _console(work, databases, "anna", passwords["anna"])
        windows = [maker, approver]
        for window in windows:
            _settle(lambda w=window: w.approvals_tab is not None, 30)  # type: ignore[misc]
            _settle(lambda w=window: bool(w.form.profiles()), 30)  # type: ignore[misc]
        _fill(maker, "sbp", "RUB", "2500.00", "alice")
        _settle(lambda: maker.form.send_button.text() == "Submit for approval…", 15)
        outdir.mkdir(parents=True, exist_ok=True)
        written = [_save(maker, outdir / "approvals-submit.png")]
        dialog = maker.form.request_send()
        assert dialog is not None, maker.form.errors()
        dialog.accept()
        _settle(lambda: maker.form.banner.kind() == "awaiting", 30)
        tab = approver.approvals_tab
        assert tab is not None
        approver.tabs.setCurrentWidget(tab)
        _settle(lambda: tab.table.rowCount() == 1, 30)
        tab.table.selectRow(0)
        tab.note.setText("Invoice 2026-114 checked with the supplier")
        _settle(lambda: "Maker:" in tab.details.toPlainText(), 15)
        written.append(_save(approver, outdir / "approvals-tab.png"))
        return written
    finally:
        for window in windows:
            window.shutdown()
        sandbox.stop()
        cluster.destroy()
        app.processEvents()


if __name__ == "__main__":
    for path in render(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(path)
