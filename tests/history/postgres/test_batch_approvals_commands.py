"""``batch send`` on a team history above the approval threshold: the batch is submitted as one
request and nothing is sent; ``approvals approve`` on the approver's desk sends each row once."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from cactus_desk.batch.ids import row_request_id
from cactus_desk.history.postgres.opening import desk_id
from cactus_desk.payout_approval import EXIT_SUBMITTED
from cactus_desk.payout_command import EXIT_IN_DOUBT, EXIT_NOT_SENT
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.team_command import EXIT_DENIED
from tests.batch.files import CARD, write_csv
from tests.history.postgres.team_fixtures import team_db
from tests.history.postgres.test_approvals_commands import Desks, _with_salt, desks
from tests.test_payout_command import _close_the_log_file, gateway

__all__ = ["_close_the_log_file", "desks", "gateway", "team_db"]

HEADERS = ["site_login", "amount", "currency", "method", "phone_number", "phone_holder"]
# 1 200.00 RUB in all against the policy's 1 000.00 RUB; no row reaches it alone.
ROWS = [
    ["alice", "400.00", "RUB", "sbp", "79990001122", "Ivan Petrov"],
    ["bob", "400.00", "RUB", "sbp", "79990001133", "Petr Ivanov"],
    ["carol", "400.00", "RUB", "sbp", "79990001144", "Anna Sidorova"],
]


def _batch_id(out: str) -> str:
    for word in out.split():
        if len(word) == 12 and all(c in "0123456789abcdef" for c in word):
            return word
    raise AssertionError(out)


def test_batch_send_above_the_threshold_submits_and_the_approver_sends_each_row_once(
    desks: Desks, gateway: SandboxGateway, tmp_path: Path
) -> None:
    maker = desks.add_user("maker", "maker")
    approver = desks.add_user("approver", "approver", "RUB=500000")
    for login in (maker, approver):
        _with_salt(desks, login, gateway)
    path = write_csv(tmp_path / "payroll.csv", HEADERS, ROWS)
    send = ("batch", "send", str(path), "--profile", "Shop", "--yes")

    code, out, err = desks.run(maker, *send)
    assert (code, err) == (EXIT_SUBMITTED, ""), out + err
    assert "asks one approval for this batch's total" in out
    assert "for approval as request 1" in out and "nothing was sent to the gateway" in out
    assert "cactus-desk approvals approve 1 --note TEXT" in out
    batch = _batch_id(out.split("Submitted batch", 1)[1])
    assert gateway.requests_received == 0
    # Running it again submits nothing new and sends nothing.
    code, out, err = desks.run(maker, *send)
    assert code == EXIT_NOT_SENT and "submitted for approval before" in err, out + err
    assert "Nothing was sent." in err
    assert gateway.requests_received == 0

    code, out, err = desks.run(approver, "approvals", "list")
    assert code == 0, err
    assert f"batch {batch}: 3 rows 1200.00 RUB" in out and "AWAITING_APPROVAL" in out
    code, out, err = desks.run(approver, "approvals", "list", "--format", "json")
    listed = json.loads(out)
    assert [(i["id"], i["batch_id"], i["maker"], i["totals"]) for i in listed] == [
        (1, batch, maker, [{"currency": "RUB", "rows": 3, "amount": "1200.00"}])
    ]

    code, out, err = desks.run(maker, "approvals", "approve", "1", "--note", "mine")
    assert code == EXIT_DENIED and "may not do this" in err
    assert gateway.requests_received == 0

    code, out, err = desks.run(approver, "approvals", "approve", "1", "--note", "checked")
    assert code == 0, out + err
    assert f"Batch {batch}: 3 rows, 3 accepted, 0 refused, 0 in doubt" in out
    assert gateway.request_ids_received == {row_request_id(batch, n): 1 for n in (2, 3, 4)}
    code, out, err = desks.run(approver, "approvals", "send", "1")
    assert code == EXIT_DENIED and "SENT" in err
    assert gateway.requests_received == 3


def test_a_held_batch_with_card_rows_is_refused_naming_them_and_below_it_sends(
    desks: Desks, gateway: SandboxGateway, tmp_path: Path
) -> None:
    maker = desks.add_user("maker", "maker")
    _with_salt(desks, maker, gateway)
    headers = [*HEADERS, "card_number", "card_holder"]
    rows = [
        ["alice", "400.00", "RUB", "sbp", "79990001122", "Ivan Petrov", "", ""],
        ["bob", "400.00", "RUB", "card", "", "", CARD, "Petr Ivanov"],
        ["carol", "400.00", "RUB", "card", "", "", CARD, "Anna Sidorova"],
    ]
    path = write_csv(tmp_path / "cards.csv", headers, rows)
    code, out, err = desks.run(maker, "batch", "send", str(path), "--profile", "Shop", "--yes")
    assert code == EXIT_NOT_SENT, out + err
    assert "line(s) 3, 4 are card payouts" in err and "Nothing was sent." in err
    assert gateway.requests_received == 0
    code, out, err = desks.run(maker, "approvals", "list", "--all")
    assert code == 0 and "No payouts are waiting" in out

    # Below the threshold a team batch is sent as before.
    small = write_csv(tmp_path / "small.csv", HEADERS, ROWS[:2])
    code, out, err = desks.run(maker, "batch", "send", str(small), "--profile", "Shop", "--yes")
    assert code == 0, out + err
    assert gateway.requests_received == 2


def test_an_approved_batch_stopped_mid_send_resumes_without_resending_a_row_in_doubt(
    desks: Desks, gateway: SandboxGateway, tmp_path: Path
) -> None:
    maker = desks.add_user("maker", "maker")
    approver = desks.add_user("approver", "approver", "RUB=500000")
    _with_salt(desks, maker, gateway)
    path = write_csv(tmp_path / "payroll.csv", HEADERS, ROWS)
    code, out, err = desks.run(maker, "batch", "send", str(path), "--profile", "Shop", "--yes")
    assert code == EXIT_SUBMITTED, out + err
    batch = _batch_id(out.split("Submitted batch", 1)[1])
    # As if the approver's desk had approved and claimed it, then died after recording line 2
    # and sending it (the answer lost).
    with psycopg.connect(
        desks.team.url(approver), password=desks.team.passwords[approver], autocommit=True
    ) as conn:
        conn.execute("SELECT cactus_approve_payout(1, 'checked')")
        conn.execute("SELECT cactus_claim_send(1)")
        conn.execute(
            "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment, "
            "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, "
            "state, request_json, desk) SELECT 1, 1, r.profile_id, r.profile_name, r.environment, "
            "b.merchant_id, b.site_id, b.request_id, b.site_login, b.method, b.currency, "
            "b.amount_minor, 'SUBMITTING', b.request_json, %s FROM approval_batch_rows b "
            "JOIN approval_requests r ON r.id = b.approval_id WHERE b.line = 2",
            (desk_id(desks.folder / approver),),
        )
        conn.execute("UPDATE payouts SET sending_started_at = 2, send_attempts = 1")
    code, out, err = desks.run(approver, "approvals", "send", "1")
    assert code == EXIT_IN_DOUBT, out + err
    assert f"Batch {batch}: 3 rows, 2 accepted, 0 refused, 0 in doubt, 1 already recorded" in out
    with psycopg.connect(desks.team.url(), password=desks.team.owner_password) as conn:
        states = conn.execute("SELECT request_id, state FROM payouts ORDER BY request_id")
        assert [state for _, state in states] == ["UNKNOWN", "ACCEPTED", "ACCEPTED"]
    assert gateway.request_ids_received == {row_request_id(batch, n): 1 for n in (3, 4)}
    code, out, err = desks.run(approver, "approvals", "list", "--all", "--format", "json")
    assert [item["state"] for item in json.loads(out)] == ["SENT"]
    # Nothing sends the row in doubt again.
    code, out, err = desks.run(approver, "approvals", "send", "1")
    assert code == EXIT_DENIED and "SENT" in err
    assert gateway.requests_received == 2
