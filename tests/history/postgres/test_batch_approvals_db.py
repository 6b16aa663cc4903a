"""A batch held for approval as one unit, enforced by PostgreSQL: each rule tried as the login
itself, through the product's functions and with plain SQL that skips them."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from cactus_desk.history.postgres import approvals, audit
from cactus_desk.history.postgres.approvals import ApprovalRefusedError, NotApprovableError
from cactus_desk.history.postgres.batch_approvals import batch_rows, submit_batch
from cactus_desk.payouts.payout import Payout, PayoutTarget
from tests.history.postgres.approval_fixtures import (
    APPROVE_AT,
    PROFILE_ID,
    SECOND_AT,
    ApprovalTeam,
    approval_team,
    payout,
    profile,
)
from tests.history.postgres.team_fixtures import team_db

__all__ = ["approval_team", "team_db"]

BATCH = "0123456789ab"
ROW = APPROVE_AT // 2  # each row alone is below the threshold; three together are not

_INSERT = (
    "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment, "
    "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, state, "
    "request_json) VALUES (1, 1, %s, 'Shop', 'sandbox', 'm_demo', 7, %s, %s, %s, %s, %s, "
    "'SUBMITTING', %s)"
)


def _rows(amounts: list[int], batch: str = BATCH) -> list[Payout]:
    return [payout(f"cb-{batch}-{line:06d}", amount) for line, amount in enumerate(amounts, 2)]


def _submit(conn: psycopg.Connection[Any], rows: list[Payout], batch: str = BATCH) -> int:
    shop = profile()
    return submit_batch(
        conn,
        profile_id=shop.id,
        profile_name=shop.name,
        environment=shop.environment,
        merchant_id=shop.merchant_id,
        site_id=shop.site_id,
        batch_id=batch,
        details={"batch_id": batch, "file_sha256": "00" * 32, "file_name": "pay.csv"},
        bodies=[(line, row.wire_body()) for line, row in enumerate(rows, 2)],
    )


def _plain_insert(conn: psycopg.Connection[Any], row: Payout) -> None:
    body = row.wire_body()
    conn.execute(
        _INSERT,
        (
            PROFILE_ID,
            row.request_id,
            row.site_login,
            row.method,
            row.currency,
            row.amount_minor,
            json.dumps(body, sort_keys=True),
        ),
    )


def test_a_batch_is_held_on_its_total_and_its_rows_cannot_be_recorded_without_approval(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    conn = approval_team.conn(maker)
    rows = _rows([ROW, ROW, ROW])
    approval_id = _submit(conn, rows)
    held = approvals.get(conn, approval_id)
    assert (held.state, held.batch_id, held.required, held.maker) == (
        "AWAITING_APPROVAL",
        BATCH,
        1,
        maker,
    )
    assert [(t.currency, t.rows, t.amount_minor) for t in held.totals] == [("RUB", 3, 3 * ROW)]
    assert [(r.line, r.request_id) for r in batch_rows(conn, approval_id)] == [
        (2, rows[0].request_id),
        (3, rows[1].request_id),
        (4, rows[2].request_id),
    ]
    # Each row alone is below the threshold, yet a plain SQL record of it is refused.
    for row in rows:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs 1 approval"):
            _plain_insert(conn, row)
    with pytest.raises(ApprovalRefusedError, match="not approved"):
        approvals.claim_send(conn, approval_id)
    assert conn.execute("SELECT count(*) AS n FROM payouts").fetchone() == {"n": 0}
    # The same batch cannot be submitted twice, nor its rows' request ids reused.
    with pytest.raises(ApprovalRefusedError, match="submitted for approval before"):
        _submit(conn, rows)
    with pytest.raises(ApprovalRefusedError, match="already in the history"):
        _submit(conn, rows[:1] + _rows([ROW, ROW], "ba0123456789")[:1], "ba0123456789")


def test_approval_is_of_the_whole_batch_with_no_self_approval_and_limits_on_the_total(
    approval_team: ApprovalTeam,
) -> None:
    both = approval_team.add("both", "maker", "approver")
    small = approval_team.add("small", "approver")
    big = approval_team.add("big", "approver")
    owner = approval_team.conn()
    approvals.set_limit(owner, both, "RUB", 10**9)
    approvals.set_limit(owner, small, "RUB", 2 * ROW)  # covers each row, not the total
    approvals.set_limit(owner, big, "RUB", 10**9)
    maker_conn = approval_team.conn(both)
    usd = Payout(PayoutTarget.of(profile()), f"cb-{BATCH}-000005", "carol", "sbp", "USD", 2_500, {})
    rows = [*_rows([ROW, ROW, ROW]), usd]
    approval_id = _submit(maker_conn, rows)
    totals = approvals.get(maker_conn, approval_id).totals
    assert [(t.currency, t.rows, t.amount_minor) for t in totals] == [
        ("RUB", 3, 3 * ROW),
        ("USD", 1, 2_500),
    ]
    with pytest.raises(ApprovalRefusedError, match=r"(?i)nobody approves their own"):
        approvals.approve(maker_conn, approval_id, "mine")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="own payout"):
        maker_conn.execute("SELECT cactus_approve_payout(%s, 'plain sql')", (approval_id,))
    with pytest.raises(ApprovalRefusedError, match="over your approval limit in RUB"):
        approvals.approve(approval_team.conn(small), approval_id, "fine")
    # Every currency's total is judged: no limit in USD, no approval of this batch.
    with pytest.raises(ApprovalRefusedError, match="batch total in USD is over your approval"):
        approvals.approve(approval_team.conn(big), approval_id, "fine")
    approvals.set_limit(owner, big, "USD", 2_500)
    # The single payout's function under the old name is nobody's to call.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        approval_team.conn(small).execute(
            "SELECT cactus_approve_one(%s, 'around the limit')", (approval_id,)
        )
    assert approvals.get(maker_conn, approval_id).approvers == ()
    big_conn = approval_team.conn(big)
    assert approvals.approve(big_conn, approval_id, "checked the file") == "APPROVED"
    # Approved is not claimed: the maker's plain record is still refused.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _plain_insert(maker_conn, rows[0])
    claimed = approvals.claim_send(big_conn, approval_id)
    assert (claimed.state, claimed.send_claimed_by) == ("SENDING", big)
    with pytest.raises(ApprovalRefusedError, match="not approved"):
        approvals.claim_send(maker_conn, approval_id)
    # Only the claimant records the rows, and only with the very body that was approved.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _plain_insert(maker_conn, rows[0])
    changed = Payout(
        PayoutTarget.of(profile()), rows[0].request_id, "mallory", "sbp", "RUB", ROW, {}
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _plain_insert(big_conn, changed)
    for index, row in enumerate(rows):
        assert approvals.get(big_conn, approval_id).state == "SENDING"
        _plain_insert(big_conn, row)
        assert index < len(rows) - 1 or approvals.get(big_conn, approval_id).state == "SENT"
    actions = [r["action"] for r in owner.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert actions[-8:] == ["submit batch", "limit", "approve", "claim send", *["send"] * 4]
    assert audit.verify(owner).intact


def test_a_second_level_batch_total_needs_two_different_approvers(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    ann, bob = approval_team.add("ann", "approver"), approval_team.add("bob", "approver")
    for login in (ann, bob):
        approvals.set_limit(approval_team.conn(), login, "RUB", 10**9)
    rows = _rows([SECOND_AT // 2, SECOND_AT // 2])
    approval_id = _submit(approval_team.conn(maker), rows)
    assert approvals.get(approval_team.conn(maker), approval_id).required == 2
    ann_conn = approval_team.conn(ann)
    assert approvals.approve(ann_conn, approval_id, "first") == "AWAITING_APPROVAL"
    with pytest.raises(ApprovalRefusedError, match="approved this payout already"):
        approvals.approve(ann_conn, approval_id, "again")
    assert approvals.approve(approval_team.conn(bob), approval_id, "second") == "APPROVED"


def test_a_rejected_withdrawn_or_expired_batch_is_never_recorded(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    approver = approval_team.add("appr", "approver")
    approvals.set_limit(approval_team.conn(), approver, "RUB", 10**9)
    maker_conn, approver_conn = approval_team.conn(maker), approval_team.conn(approver)
    rejected_rows = _rows([APPROVE_AT], "aaaaaaaaaaaa")
    rejected = _submit(maker_conn, rejected_rows, "aaaaaaaaaaaa")
    approvals.reject(approver_conn, rejected, "wrong file")
    withdrawn_rows = _rows([APPROVE_AT], "bbbbbbbbbbbb")
    withdrawn = _submit(maker_conn, withdrawn_rows, "bbbbbbbbbbbb")
    approvals.withdraw(maker_conn, withdrawn)
    expired_rows = _rows([APPROVE_AT], "cccccccccccc")
    expired = _submit(maker_conn, expired_rows, "cccccccccccc")
    approval_team.conn().execute(
        "UPDATE approval_requests SET expires_at = created_at - 1 WHERE id = %s", (expired,)
    )
    with pytest.raises(ApprovalRefusedError, match="expired"):
        approvals.approve(approver_conn, expired, "late")
    for approval_id, rows in (
        (rejected, rejected_rows),
        (withdrawn, withdrawn_rows),
        (expired, expired_rows),
    ):
        for conn in (maker_conn, approver_conn):
            with pytest.raises(ApprovalRefusedError):
                approvals.claim_send(conn, approval_id)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                _plain_insert(conn, rows[0])


def test_card_rows_cannot_wait_and_a_batch_below_the_threshold_is_not_submitted(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    conn = approval_team.conn(maker)
    card = Payout(
        PayoutTarget.of(profile()),
        f"cb-{BATCH}-000003",
        "bob",
        "card",
        "RUB",
        ROW,
        {"card_number": "4242424242424242"},
    )
    with pytest.raises(NotApprovableError, match=r"line\(s\) 3 are card payouts"):
        _submit(conn, [_rows([ROW])[0], card])
    with pytest.raises(ApprovalRefusedError, match="needs no approval"):
        _submit(conn, _rows([ROW]))
    assert approvals.list_requests(conn) == []
