"""Approvals on the command line, across desks on one team history and the sandbox over
loopback: maker submits, the maker cannot approve, an approver approves and sends once."""

from __future__ import annotations

import csv
import io
import json
import secrets
from pathlib import Path

import psycopg
import pytest

from cactus_desk.payout_approval import EXIT_SUBMITTED
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.secrets import SecretStore
from cactus_desk.team_command import EXIT_DENIED, EXIT_FAILURE, EXIT_USAGE
from tests.history.postgres.team_fixtures import Team, team_db
from tests.test_payout_command import CARD, _close_the_log_file, cactus, gateway

__all__ = ["_close_the_log_file", "gateway", "team_db"]


class Desks:
    """One data folder per login; every command runs as that login on the team history."""

    def __init__(
        self,
        team: Team,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        folder: Path,
    ) -> None:
        self.team, self.monkeypatch, self.capsys, self.folder = team, monkeypatch, capsys, folder

    def run(self, login: str | None, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        """``cactus-desk`` as ``login`` (the owner when None) from its own desk."""
        password = self.team.owner_password if login is None else self.team.passwords[login]
        self.monkeypatch.setenv("PGPASSWORD", password)
        self.monkeypatch.setenv("CACTUS_DESK_STORE", self.team.url(login))
        folder = self.folder / (login or "owner")
        return cactus(
            self.monkeypatch,
            self.capsys,
            "--data-dir",
            str(folder),
            *argv,
            stdin=io.StringIO(stdin),
        )

    def add_user(self, name: str, role: str, *limits: str) -> str:
        """A login made with ``team add-user`` by the owner; its name."""
        login = f"{self.team.database}_{name}"
        password = secrets.token_urlsafe(12)
        options = [item for limit in limits for item in ("--limit", limit)]
        code, _out, err = self.run(
            None,
            *("team", "add-user", login, "--role", role, "--password-stdin", *options),
            stdin=password,
        )
        assert code == 0, err
        self.team.passwords[login] = password
        return login


def _send(*extra: str, amount: str = "1500.00") -> list[str]:
    return [
        *("payout", "send", "--profile", "Shop", "--currency", "RUB", "--method", "sbp"),
        *("--site-login", "alice", "--amount", amount, "--yes"),
        *("--field", "phone_number=79990001122", "--field", "phone_holder=Ivan Petrov"),
        *extra,
    ]


@pytest.fixture
def desks(
    team_db: Team,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    tmp_path: Path,
) -> Desks:
    """The team's profile for the sandbox and its policy: one approval from 1 000 RUB."""
    made = Desks(team_db, monkeypatch, capsys, tmp_path)
    code, _, err = made.run(
        None,
        *("profile", "add", "Shop", "--base-url", gateway.base_url),
        *("--merchant-id", gateway.merchant_id, "--site-id", str(gateway.site_id)),
        *("--environment", "sandbox", "--salt-stdin"),
        stdin=gateway.salt + "\n",
    )
    assert code == 0, err
    code, out, err = made.run(
        None,
        *("team", "policy", "set", "Shop", "RUB", "--approve-above", "1000"),
        *("--second-approval-above", "100 000"),
    )
    assert code == 0, err
    assert "one approval from 1 000.00 RUB; two approvals from 100 000.00 RUB" in out
    return made


def _with_salt(desks: Desks, login: str, gateway: SandboxGateway) -> None:
    code, _, err = desks.run(
        login, "profile", "set-salt", "Shop", "--salt-stdin", stdin=gateway.salt + "\n"
    )
    assert code == 0, err


def test_a_payout_goes_maker_to_approver_to_the_sandbox_once(
    desks: Desks, gateway: SandboxGateway
) -> None:
    maker = desks.add_user("maker", "maker")
    approver = desks.add_user("approver", "approver", "RUB=500000")
    for login in (maker, approver):
        _with_salt(desks, login, gateway)

    code, out, err = desks.run(maker, *_send("--request-id", "po-held"))
    assert (code, err) == (EXIT_SUBMITTED, "")
    assert "Submitted for approval as request 1" in out and "Nothing was sent" in out
    assert gateway.invoices == {} or len(gateway.invoices) == 0
    # Below the threshold the maker sends as before.
    code, out, err = desks.run(maker, *_send("--request-id", "po-small", amount="999.99"))
    assert code == 0, err
    assert len(gateway.invoices) == 1

    code, out, err = desks.run(maker, "approvals", "approve", "1", "--note", "mine")
    assert code == EXIT_DENIED and "may not do this" in err

    code, out, err = desks.run(approver, "approvals", "list", "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [
        {key: item[key] for key in ("id", "request_id", "amount", "currency", "maker", "state")}
        for item in listed
    ] == [
        {
            "id": 1,
            "request_id": "po-held",
            "amount": "1500.00",
            "currency": "RUB",
            "maker": maker,
            "state": "AWAITING_APPROVAL",
        }
    ]

    code, out, err = desks.run(approver, "approvals", "approve", "1", "--note", "checked")
    assert code == 0, err
    assert "Outcome:     accepted" in out and "Request ID:  po-held" in out
    assert len(gateway.invoices) == 2
    # Approved and sent: nobody sends it again.
    code, out, err = desks.run(approver, "approvals", "send", "1")
    assert code == EXIT_DENIED and "SENT" in err
    assert len(gateway.invoices) == 2

    code, out, err = desks.run(None, "team", "audit", "verify")
    assert code == 0 and "The audit trail holds" in out, out + err
    target = desks.folder / "audit.csv"
    code, out, err = desks.run(None, "team", "audit", "export", "--output", str(target))
    assert code == 0, err
    with target.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    actions = [row["action"] for row in rows]
    assert actions[-6:] == ["submit", "send", "approve", "claim send", "send", "export audit"]
    assert rows[-2]["who"] == approver and rows[-6]["who"] == maker
    assert gateway.salt not in target.read_text(encoding="utf-8")


def test_a_rejected_payout_is_never_sent_and_the_maker_withdraws_their_own(
    desks: Desks, gateway: SandboxGateway
) -> None:
    maker = desks.add_user("maker", "maker")
    approver = desks.add_user("approver", "approver", "RUB=500000")
    for login in (maker, approver):
        _with_salt(desks, login, gateway)
    for request_id in ("po-a", "po-b"):
        code, _, err = desks.run(maker, *_send("--request-id", request_id))
        assert code == EXIT_SUBMITTED, err
    code, out, err = desks.run(approver, "approvals", "reject", "1", "--reason", "unknown payee")
    assert code == 0, err
    code, out, err = desks.run(approver, "approvals", "withdraw", "2")
    assert code == EXIT_DENIED and "may not do this" in err
    code, out, err = desks.run(maker, "approvals", "withdraw", "2")
    assert code == 0, err
    for approval_id in ("1", "2"):
        code, out, err = desks.run(approver, "approvals", "approve", approval_id, "--note", "x")
        assert code == EXIT_DENIED, out
    assert len(gateway.invoices) == 0
    code, out, err = desks.run(maker, "approvals", "list", "--all", "--format", "json")
    assert [item["state"] for item in json.loads(out)] == ["WITHDRAWN", "REJECTED_BY_APPROVER"]


def test_limits_are_an_admins_and_a_card_payout_cannot_wait_for_approval(
    desks: Desks, gateway: SandboxGateway
) -> None:
    maker = desks.add_user("maker", "maker")
    approver = desks.add_user("approver", "approver")
    code, _, err = desks.run(approver, "team", "set-limit", approver, "--limit", "RUB=1000000")
    assert code == EXIT_DENIED and "may not" in err
    code, out, err = desks.run(None, "team", "set-limit", approver, "--limit", "RUB=abc")
    assert code == EXIT_USAGE
    _with_salt(desks, maker, gateway)
    code, out, err = desks.run(
        maker,
        *("payout", "send", "--profile", "Shop", "--currency", "RUB", "--method", "card"),
        *("--site-login", "alice", "--amount", "5000", "--yes", "--field"),
        f"card_number={CARD}",
    )
    assert code != 0 and "full card number" in err and "Nothing was sent" in err
    assert CARD not in out + err
    assert len(gateway.invoices) == 0


def test_approval_commands_on_this_computers_own_history_say_they_need_a_team(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("CACTUS_DESK_STORE", raising=False)
    for argv in (("approvals", "list"), ("approvals", "approve", "1", "--note", "x")):
        code, _out, err = cactus(
            monkeypatch, capsys, "--data-dir", str(tmp_path), "--store", "local", *argv
        )
        assert code == EXIT_USAGE and "approvals work on a team history" in err


def test_settling_by_hand_and_a_history_export_are_audited_with_who(
    desks: Desks, gateway: SandboxGateway
) -> None:
    maker = desks.add_user("maker", "maker")
    viewer = desks.add_user("viewer", "viewer")
    _with_salt(desks, maker, gateway)
    code, _, err = desks.run(maker, *_send("--request-id", "po-1", amount="10.00"))
    assert code == 0, err
    owner = desks.team.sql()
    (record_id,) = owner.execute("SELECT id FROM payouts WHERE request_id = 'po-1'").fetchone()
    desks.team.store(maker).set_final_state(
        record_id, 4, "bank says declined", invoice_id=None, who="maker"
    )
    code, out, err = desks.run(viewer, "history", "export")
    assert code == 0, err
    rows = owner.execute(
        "SELECT action, who FROM audit_log WHERE action IN ('settle by hand', 'export history') "
        "ORDER BY seq"
    ).fetchall()
    assert rows == [("settle by hand", maker), ("export history", viewer)]
    code, out, err = desks.run(None, "team", "audit", "verify")
    assert code == 0, out + err


def test_a_desk_without_the_salt_leaves_the_send_and_a_changed_profile_sends_nothing(
    desks: Desks, gateway: SandboxGateway
) -> None:
    """The approving desk holds no salt: it approves, sends nothing and names the command for
    a desk that holds it. Once the profile's shop changed, no desk sends the old request."""
    maker = desks.add_user("maker", "maker")
    approver = desks.add_user("approver", "approver", "RUB=500000")
    code, _, err = desks.run(maker, *_send("--request-id", "po-held"))
    assert code == EXIT_SUBMITTED, err
    # The desks of this test share one keyring: the approver's desk is one without the salt.
    with psycopg.connect(desks.team.url(), password=desks.team.owner_password) as conn:
        row = conn.execute("SELECT id FROM profiles WHERE name = 'Shop'").fetchone()
    assert row is not None
    SecretStore().delete_salt(row[0])

    code, out, err = desks.run(approver, "approvals", "approve", "1", "--note", "checked")
    assert code == 0, err
    assert "has no salt for 'Shop', so it does not send the payout" in out
    assert "cactus-desk approvals send 1" in out
    assert len(gateway.invoices) == 0

    # The shop's site changes after the approval: what was approved no longer goes there.
    with psycopg.connect(desks.team.url(), password=desks.team.owner_password) as conn:
        conn.execute("UPDATE profiles SET site_id = site_id + 1 WHERE name = 'Shop'")
    _with_salt(desks, maker, gateway)
    code, out, err = desks.run(maker, "approvals", "send", "1")
    assert code == EXIT_FAILURE, out
    assert "changed since the payout was submitted" in err and "Nothing" not in out
    assert len(gateway.invoices) == 0
