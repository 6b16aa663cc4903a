"""``cactus-desk --store URL payout send``: the send path on the team history."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cactus_desk.payout_command import EXIT_ERROR
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import SandboxGateway
from tests.pg_databases import PgDatabases
from tests.test_payout_command import _close_the_log_file, cactus, gateway, send_args

__all__ = ["_close_the_log_file", "gateway"]


def _desk(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    folder: Path,
    *,
    shared: bool = False,
) -> list[str]:
    """A desk with its own data folder and a profile for the sandbox (``shared``: the team's
    profile exists already, this desk only saves its salt); its global options."""
    options = ["--data-dir", str(folder)]
    if shared:
        action = ["profile", "set-salt", "Shop", "--salt-stdin"]
    else:
        action = [
            *("profile", "add", "Shop", "--base-url", gateway.base_url),
            *("--merchant-id", gateway.merchant_id, "--site-id", str(gateway.site_id)),
            *("--environment", "sandbox", "--salt-stdin"),
        ]
    code, _, err = cactus(
        monkeypatch, capsys, *options, *action, stdin=io.StringIO(gateway.salt + "\n")
    )
    assert code == 0, err
    return options


def test_two_desks_send_on_one_team_history_and_the_second_sees_the_repeat(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_databases.cluster.password)
    monkeypatch.setenv("CACTUS_DESK_STORE", pg_databases.url(database))
    first = _desk(monkeypatch, capsys, gateway, tmp_path / "desk-a")
    second = _desk(monkeypatch, capsys, gateway, tmp_path / "desk-b", shared=True)

    code, out, err = cactus(
        monkeypatch, capsys, *first, *send_args("--request-id", "po-a", "--yes")
    )
    assert (code, err) == (0, "") and "REPEAT" not in out
    code, out, err = cactus(
        monkeypatch, capsys, *second, *send_args("--request-id", "po-b", "--yes")
    )
    assert code == 0, err
    assert "REPEAT: the same payout was sent in the last 24 hours: request po-a" in out
    # The same request id from the other desk is refused before anything leaves.
    code, out, err = cactus(
        monkeypatch, capsys, *second, *send_args("--request-id", "po-a", "--yes")
    )
    assert code != 0 and "po-a" in out + err
    assert len(gateway.invoices) == 2

    with pg_databases.open(database, tmp_path / "check") as team:
        ordered = sorted(team.iter_records(), key=lambda record: record.id)
    assert [(r.request_id, r.state) for r in ordered] == [
        ("po-a", State.ACCEPTED),
        ("po-b", State.ACCEPTED),
    ]


def test_nothing_is_sent_when_the_team_history_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
) -> None:
    cluster = pg_databases.cluster
    monkeypatch.setenv("PGPASSWORD", cluster.password)
    desk = _desk(monkeypatch, capsys, gateway, tmp_path / "desk")
    store = ["--store", pg_databases.url(database)]
    cluster.stop()
    try:
        code, out, err = cactus(monkeypatch, capsys, *desk, *store, *send_args("--yes"))
    finally:
        cluster.start()
    assert code == EXIT_ERROR
    assert "team history" in err and "cannot be reached" in err
    assert cluster.password not in out + err
    assert gateway.requests_received == 0
