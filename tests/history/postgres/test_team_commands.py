"""``cactus-desk --store URL team init / add-user / list-users / import-history`` on a real
PostgreSQL, and each person's desk working with exactly its role."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.callbacks.rules import Reason
from cactus_desk.history import open_history
from cactus_desk.history.types import ManualEvent
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import SandboxGateway
from tests.history.contract.helpers import accepted, attempt, callback, unknown
from tests.history.postgres.team_fixtures import Team, team_db
from tests.history.postgres.test_team_send import _desk
from tests.test_payout_command import _close_the_log_file, cactus, gateway, send_args

__all__ = ["_close_the_log_file", "gateway", "team_db"]


def _as(monkeypatch: pytest.MonkeyPatch, team_db: Team, login: str | None) -> list[str]:
    """The global options (and password) of a command run as ``login`` (None: the owner)."""
    password = team_db.owner_password if login is None else team_db.passwords[login]
    monkeypatch.setenv("PGPASSWORD", password)
    return ["--store", team_db.url(login)]


def _add_user(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    team_db: Team,
    by: str | None,
    role: str,
    password: str,
    login: str | None = None,
) -> tuple[int, str, str]:
    login = login or team_db.login_name(role)
    code, out, err = cactus(
        monkeypatch,
        capsys,
        *_as(monkeypatch, team_db, by),
        *("team", "add-user", login, "--role", role, "--password-stdin"),
        stdin=io.StringIO(password + "\n"),
    )
    if code == 0:
        team_db.passwords[login] = password
    return code, out, err


def _leaks(folder: Path, secrets: list[str]) -> list[str]:
    """The files under ``folder`` holding any of ``secrets``."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [str(path) for secret in secrets if secret.encode() in data]
    return found


def test_team_init_from_the_command_line_is_idempotent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], team_db: Team
) -> None:
    code, out, err = cactus(monkeypatch, capsys, *_as(monkeypatch, team_db, None), "team", "init")
    assert (code, err) == (0, "")
    assert "is set up (schema version" in out and "Group roles created: none" in out
    code, _, err = cactus(monkeypatch, capsys, "team", "init")
    assert code == 2 and "--store" in err


def test_an_owner_adds_an_admin_who_adds_people_and_each_desk_works_with_its_role(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    team_db: Team,
    tmp_path: Path,
) -> None:
    passwords = {"admin": "adm-Secret-91x", "maker": "mk-Secret-52y", "viewer": "vw-Secret-73z"}
    code, out, err = _add_user(monkeypatch, capsys, team_db, None, "admin", passwords["admin"])
    assert (code, err) == (0, "") and "Added the login" in out
    admin = team_db.login_name("admin")
    for role in ("maker", "viewer"):
        code, out, err = _add_user(monkeypatch, capsys, team_db, admin, role, passwords[role])
        assert (code, err) == (0, ""), role
    code, out, err = cactus(
        monkeypatch, capsys, *_as(monkeypatch, team_db, admin), "team", "list-users"
    )
    assert code == 0, err
    assert out.splitlines() == [
        f"{team_db.login_name(role)}\t{role}" for role in ("admin", "maker", "viewer")
    ]

    # The admin adds the team's profile once; each desk then saves only its own salt.
    code, _, err = cactus(
        monkeypatch,
        capsys,
        *("--data-dir", str(tmp_path / "desk-admin")),
        *_as(monkeypatch, team_db, admin),
        *("profile", "add", "Shop", "--base-url", gateway.base_url),
        *("--merchant-id", gateway.merchant_id, "--site-id", str(gateway.site_id)),
        *("--environment", "sandbox", "--salt-stdin"),
        stdin=io.StringIO(gateway.salt + "\n"),
    )
    assert code == 0, err

    # A maker's desk sends a sandbox payout on the team history.
    monkeypatch.setenv(
        "CACTUS_DESK_STORE", _as(monkeypatch, team_db, team_db.login_name("maker"))[1]
    )
    maker_desk = _desk(monkeypatch, capsys, gateway, tmp_path / "desk-maker", shared=True)
    code, out, err = cactus(
        monkeypatch,
        capsys,
        *maker_desk,
        *_as(monkeypatch, team_db, team_db.login_name("maker")),
        *send_args("--request-id", "po-m", "--yes"),
    )
    assert (code, err) == (0, ""), out
    assert len(gateway.invoices) == 1
    # A viewer's desk is told its role cannot send; nothing leaves.
    monkeypatch.setenv(
        "CACTUS_DESK_STORE", _as(monkeypatch, team_db, team_db.login_name("viewer"))[1]
    )
    viewer_desk = _desk(monkeypatch, capsys, gateway, tmp_path / "desk-viewer", shared=True)
    code, out, err = cactus(
        monkeypatch,
        capsys,
        *viewer_desk,
        *_as(monkeypatch, team_db, team_db.login_name("viewer")),
        *send_args("--request-id", "po-v", "--yes"),
    )
    assert code != 0
    assert "cannot send payouts" in out + err and "Traceback" not in err
    assert len(gateway.invoices) == 1 and gateway.requests_received == 1
    records = team_db.store().iter_records()
    assert [(record.request_id, record.state) for record in records] == [("po-m", State.ACCEPTED)]
    assert team_db.sql().execute("SELECT created_by FROM payouts").fetchone() == (
        team_db.login_name("maker"),
    )
    assert _leaks(tmp_path, list(passwords.values())) == []


def test_add_user_errors_are_clear_with_their_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], team_db: Team
) -> None:
    maker = team_db.add("maker")
    code, _, err = _add_user(monkeypatch, capsys, team_db, None, "viewer", "pw-1", login=maker)
    assert code == 1 and f"the login {maker} exists already" in err
    code, _, err = _add_user(monkeypatch, capsys, team_db, maker, "viewer", "pw-2")
    assert code == 3 and "only a team admin" in err
    code, _, err = _add_user(monkeypatch, capsys, team_db, None, "boss", "pw-3", login="x1")
    assert code == 2 and "'boss' is not a team role" in err
    code, _, err = _add_user(monkeypatch, capsys, team_db, None, "maker", "pw-4", login="Bob X")
    assert code == 1 and "cannot be a login name" in err
    code, _, err = _add_user(monkeypatch, capsys, team_db, None, "maker", "", login="x2")
    assert code == 2 and "no password" in err
    assert "Traceback" not in err
    found = (
        team_db.sql()
        .execute(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('x1', 'x2', 'Bob X', %s)",
            (team_db.login_name("viewer"),),
        )
        .fetchone()
    )
    assert found == (0,)


def _solo_history(folder: Path) -> None:
    """A desk's own history: three payouts, four events (one without a payout), a resend."""
    with open_history(folder) as solo:
        first = accepted(solo, "po-1")
        solo.apply_verified_callback(callback(4, "po-1"), merchant_id="m_demo", site_id=7)
        second = unknown(solo, "po-2")
        start = solo.begin_resend(second, State.UNKNOWN)
        assert start is not None
        solo.undo_resend(
            start,
            ManualEvent(second, EventOutcome.RESEND_NOT_SENT, {"request_id": "po-2"}, "x", "ann"),
        )
        solo.set_final_state(unknown(solo, "po-3"), 5, "bank said no", invoice_id=None, who="ivan")
        solo.record_rejected_callback({"request_id": "po-zz"}, Reason.BAD_SIGNATURE)
        assert solo.get(first).gateway_status == 4


def test_import_history_twice_adds_nothing_the_second_time_and_keeps_who_and_when(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    team_db: Team,
    tmp_path: Path,
) -> None:
    solo_dir = tmp_path / "solo"
    _solo_history(solo_dir)
    with open_history(solo_dir) as solo:
        original = {record.request_id: record for record in solo.iter_records()}
    admin = team_db.add("admin")
    command = [
        *_as(monkeypatch, team_db, admin),
        *("team", "import-history", "--from-data-dir", str(solo_dir)),
    ]
    code, out, err = cactus(monkeypatch, capsys, *command)
    assert (code, err) == (0, "")
    assert out.strip() == (
        "Imported 3 payouts, 4 events and 1 resends; already there: 0 payouts, 0 events, 0 resends."
    )
    code, out, err = cactus(monkeypatch, capsys, *command)
    assert (code, err) == (0, "")
    assert out.strip() == (
        "Imported 0 payouts, 0 events and 0 resends; already there: 3 payouts, 4 events, 1 resends."
    )

    owner = team_db.sql()
    rows = owner.execute(
        "SELECT request_id, created_at, updated_at, state, created_by, imported_by, "
        "imported_at IS NOT NULL, desk FROM payouts ORDER BY request_id"
    ).fetchall()
    assert rows == [
        (
            key,
            original[key].created_at,
            original[key].updated_at,
            str(original[key].state),
            admin,
            admin,
            True,
            "",
        )
        for key in ("po-1", "po-2", "po-3")
    ]
    events = owner.execute(
        "SELECT p.request_id, e.source, e.outcome, e.who, e.recorded_by, e.received_at "
        "FROM events e LEFT JOIN payouts p ON p.id = e.record_id ORDER BY e.id"
    ).fetchall()
    with open_history(solo_dir) as solo:
        solo_events = solo.events_since(0)
    by_solo_id = {record.id: record.request_id for record in original.values()}
    assert events == [
        (by_solo_id.get(e.record_id), str(e.source), str(e.outcome), e.who, admin, e.received_at)
        for e in solo_events
    ]
    assert events[-1][0] is None  # the rejected callback that matched no payout came too
    # The copied payouts read back through the port as they were, resend audit included.
    viewer = team_db.store(team_db.add("viewer"))
    team_id = owner.execute("SELECT id FROM payouts WHERE request_id = 'po-2'").fetchone()[0]
    details = viewer.details(team_id)
    assert len(details.resends) == 1 and details.record.state is original["po-2"].state
    assert [event.who for event in details.events] == ["ann"]


def test_import_history_refuses_a_payout_still_being_sent_and_copies_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    team_db: Team,
    tmp_path: Path,
) -> None:
    solo_dir = tmp_path / "solo"
    _solo_history(solo_dir)
    command = ["team", "import-history", "--from-data-dir", str(solo_dir)]
    # A maker may not copy a history in.
    maker = team_db.add("maker")
    code, _, err = cactus(monkeypatch, capsys, *_as(monkeypatch, team_db, maker), *command)
    assert code == 3 and "only a team admin" in err
    with open_history(solo_dir) as solo:
        solo.create_attempt(attempt(request_id="po-flying"))
    code, _, err = cactus(monkeypatch, capsys, *_as(monkeypatch, team_db, None), *command)
    assert code == 1 and "po-flying is still being sent" in err
    assert team_db.sql().execute("SELECT count(*) FROM payouts").fetchone() == (0,)
    empty = ["team", "import-history", "--from-data-dir", str(tmp_path / "none")]
    code, _, err = cactus(monkeypatch, capsys, *_as(monkeypatch, team_db, None), *empty)
    assert code == 1 and "There is no Cactus Desk history in" in err
    assert not (tmp_path / "none").exists()
