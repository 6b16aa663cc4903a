"""Maker-checker approvals enforced by PostgreSQL: each refusal tried as the login itself,
through the product's functions and with plain SQL that skips them."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest

from cactus_desk.history.postgres import approvals, audit
from cactus_desk.history.postgres.approvals import ApprovalRefusedError
from cactus_desk.history.types import HistoryPermissionError
from cactus_desk.payouts.send import SendCode, SendService
from cactus_desk.payouts.submit import recorded_attempt
from cactus_desk.sandbox import SandboxGateway
from tests.history.postgres.approval_fixtures import (
    APPROVE_AT,
    PROFILE_ID,
    SECOND_AT,
    ApprovalTeam,
    approval_team,
    payout,
    profile,
    submit,
)
from tests.history.postgres.team_fixtures import team_db

__all__ = ["approval_team", "team_db"]

_INSERT = (
    "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment, "
    "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, state, "
    "request_json) VALUES (1, 1, %s, 'Shop', 'sandbox', 'm_demo', 7, %s, 'alice', 'sbp', "
    "'RUB', %s, 'SUBMITTING', %s)"
)


def _plain_insert(conn: psycopg.Connection[Any], request_id: str, amount: int) -> None:
    body = payout(request_id, amount).wire_body()
    conn.execute(_INSERT, (PROFILE_ID, request_id, amount, json.dumps(body, sort_keys=True)))


def test_a_held_payout_cannot_be_recorded_for_sending_until_approved(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    maker_conn = approval_team.conn(maker)
    # Below the threshold a maker sends as before.
    _plain_insert(maker_conn, "po-small", APPROVE_AT - 1)
    # At the threshold the database refuses the attempt, by plain SQL and through the port.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs 1 approval"):
        _plain_insert(maker_conn, "po-big", APPROVE_AT)
    store = approval_team.team.store(maker)
    with pytest.raises(HistoryPermissionError, match="submit it for approval"):
        store.create_attempt(recorded_attempt(payout("po-big", APPROVE_AT)))
    approval_id = submit(maker_conn, payout("po-big", APPROVE_AT))
    # Submitted is not approved: still refused, and the maker cannot claim it for sending.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _plain_insert(maker_conn, "po-big", APPROVE_AT)
    with pytest.raises(ApprovalRefusedError, match="not approved"):
        approvals.claim_send(maker_conn, approval_id)
    held = approvals.get(maker_conn, approval_id)
    assert (held.state, held.maker, held.required) == ("AWAITING_APPROVAL", maker, 1)
    assert [r.request_id for r in store.iter_records()] == ["po-small"]


def test_the_maker_cannot_approve_their_own_payout_even_holding_the_approver_role(
    approval_team: ApprovalTeam,
) -> None:
    both = approval_team.add("both", "maker", "approver")
    approvals.set_limit(approval_team.conn(), both, "RUB", 10**9)
    conn = approval_team.conn(both)
    approval_id = submit(conn, payout("po-own", APPROVE_AT))
    with pytest.raises(ApprovalRefusedError, match=r"(?i)nobody approves their own payout"):
        approvals.approve(conn, approval_id, "looks fine")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="own payout"):
        conn.execute("SELECT cactus_approve_payout(%s, 'plain sql')", (approval_id,))
    # Writing the tables directly is no way around it.
    for statement in (
        "INSERT INTO approvals (approval_id, approver, note, approved_at) VALUES (%s, 'x', 'n', 1)",
        "UPDATE approval_requests SET state = 'APPROVED' WHERE id = %s",
        "DELETE FROM approval_requests WHERE id = %s",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement, (approval_id,))
    assert approvals.get(conn, approval_id).state == "AWAITING_APPROVAL"


def test_a_second_level_payout_needs_two_different_approvers(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    first, second = approval_team.add("ann", "approver"), approval_team.add("bob", "approver")
    for login in (first, second):
        approvals.set_limit(approval_team.conn(), login, "RUB", SECOND_AT * 10)
    approval_id = submit(approval_team.conn(maker), payout("po-large", SECOND_AT))
    first_conn = approval_team.conn(first)
    assert approvals.approve(first_conn, approval_id, "first look") == "AWAITING_APPROVAL"
    with pytest.raises(ApprovalRefusedError, match="approved this payout already"):
        approvals.approve(first_conn, approval_id, "again")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _plain_insert(approval_team.conn(maker), "po-large", SECOND_AT)
    assert approvals.approve(approval_team.conn(second), approval_id, "second look") == "APPROVED"
    done = approvals.get(first_conn, approval_id)
    assert (done.state, done.approvers) == ("APPROVED", (first, second))


def test_an_approver_over_their_limit_or_without_one_is_refused(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    small, none = approval_team.add("small", "approver"), approval_team.add("none", "approver")
    approvals.set_limit(approval_team.conn(), small, "RUB", APPROVE_AT * 2)
    approval_id = submit(approval_team.conn(maker), payout("po-over", APPROVE_AT * 2 + 1))
    for login in (small, none):
        with pytest.raises(ApprovalRefusedError, match="over your approval limit"):
            approvals.approve(approval_team.conn(login), approval_id, "ok")
    assert approvals.get(approval_team.conn(maker), approval_id).approvers == ()


def test_limits_and_policies_are_an_admins_and_nobody_raises_their_own(
    approval_team: ApprovalTeam,
) -> None:
    admin = approval_team.add("admin", "admin", "approver")
    approver = approval_team.add("appr", "approver")
    admin_conn, approver_conn = approval_team.conn(admin), approval_team.conn(approver)
    approvals.set_limit(admin_conn, approver, "RUB", 500_000)
    with pytest.raises(ApprovalRefusedError, match=r"(?i)nobody sets their own approval limit"):
        approvals.set_limit(admin_conn, admin, "RUB", 10**12)
    with pytest.raises(ApprovalRefusedError, match="may not"):
        approvals.set_limit(approver_conn, approver, "RUB", 10**12)
    with pytest.raises(ApprovalRefusedError, match="may not"):
        approvals.set_policy(approver_conn, PROFILE_ID, "RUB", 10**12, None, 72)
    for statement in (
        "UPDATE approver_limits SET max_minor = 1000000000000",
        "INSERT INTO approver_limits VALUES (session_user, 'USD', 1, 'x', 1)",
        "UPDATE approval_policies SET approve_at = 1000000000000",
        "DELETE FROM approval_policies",
    ):
        for conn in (admin_conn, approver_conn):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    approvals.set_policy(admin_conn, PROFILE_ID, "RUB", 200_000, None, 24)
    assert approvals.required_approvals(approver_conn, PROFILE_ID, "RUB", 199_999) == 0
    assert approvals.required_approvals(approver_conn, PROFILE_ID, "RUB", 10**9) == 1


def test_an_expired_request_cannot_be_approved_and_shows_expired(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    approver = approval_team.add("appr", "approver")
    approvals.set_limit(approval_team.conn(), approver, "RUB", 10**9)
    approval_id = submit(approval_team.conn(maker), payout("po-late", APPROVE_AT))
    held = approvals.get(approval_team.conn(maker), approval_id)
    assert held.expires_at - held.created_at == 72 * 3600 * 1000
    # The owner moves the clock's mark back: 72 hours have passed.
    approval_team.conn().execute(
        "UPDATE approval_requests SET expires_at = created_at - 1 WHERE id = %s", (approval_id,)
    )
    with pytest.raises(ApprovalRefusedError, match="expired"):
        approvals.approve(approval_team.conn(approver), approval_id, "too late")
    assert approvals.get(approval_team.conn(maker), approval_id).state == "EXPIRED"


def test_a_rejected_or_withdrawn_payout_is_never_sent(approval_team: ApprovalTeam) -> None:
    maker = approval_team.add("maker", "maker")
    other_maker = approval_team.add("maker2", "maker")
    approver = approval_team.add("appr", "approver")
    approvals.set_limit(approval_team.conn(), approver, "RUB", 10**9)
    maker_conn, approver_conn = approval_team.conn(maker), approval_team.conn(approver)
    rejected = submit(maker_conn, payout("po-no", APPROVE_AT))
    approvals.reject(approver_conn, rejected, "unknown recipient")
    with pytest.raises(ApprovalRefusedError, match="REJECTED_BY_APPROVER"):
        approvals.approve(approver_conn, rejected, "changed my mind")
    withdrawn = submit(maker_conn, payout("po-back", APPROVE_AT))
    with pytest.raises(ApprovalRefusedError, match=r"(?i)only the maker withdraws"):
        approvals.withdraw(approval_team.conn(other_maker), withdrawn)
    approvals.withdraw(maker_conn, withdrawn)
    for approval_id, request_id in ((rejected, "po-no"), (withdrawn, "po-back")):
        with pytest.raises(ApprovalRefusedError):
            approvals.claim_send(maker_conn, approval_id)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _plain_insert(maker_conn, request_id, APPROVE_AT)
    states = {r.id: r.state for r in approvals.list_requests(maker_conn)}
    assert states == {rejected: "REJECTED_BY_APPROVER", withdrawn: "WITHDRAWN"}


def test_two_approvers_sending_at_once_make_exactly_one_gateway_request(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    ann, bob = approval_team.add("ann", "approver"), approval_team.add("bob", "approver")
    for login in (ann, bob):
        approvals.set_limit(approval_team.conn(), login, "RUB", 10**9)
    with SandboxGateway(merchant_id="m_demo", site_id=7, balances={"RUB": 10**9}) as gateway:
        shop = profile(gateway.base_url, gateway.merchant_id)
        held = payout("po-race", SECOND_AT, shop)
        approval_id = submit(approval_team.conn(maker), held)
        approvals.approve(approval_team.conn(ann), approval_id, "ok from ann")
        approvals.approve(approval_team.conn(bob), approval_id, "ok from bob")
        barrier = threading.Barrier(2)
        results: dict[str, object] = {}

        def desk(login: str) -> None:
            conn = approval_team.conn(login)
            store = approval_team.team.store(login)
            service = SendService(store, lambda _p: gateway.salt)
            barrier.wait()
            try:
                approvals.claim_send(conn, approval_id)
            except ApprovalRefusedError as exc:
                # A desk that skips the claim and sends anyway is refused by the gate.
                results[login] = service.send(held, shop).code
                results[login + " claim"] = str(exc)
            else:
                results[login] = service.send(held, shop).code
            finally:
                service.close()

        threads = [threading.Thread(target=desk, args=(login,)) for login in (ann, bob)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        codes = sorted(str(results[login]) for login in (ann, bob))
        assert codes == sorted([str(SendCode.ACCEPTED), str(SendCode.HISTORY_UNAVAILABLE)])
        assert len(gateway.invoices) == 1
    sent = approvals.get(approval_team.conn(maker), approval_id)
    assert sent.state == "SENT" and sent.payout_id is not None
    assert sent.send_claimed_by in (ann, bob)


def test_the_audit_chain_verifies_refuses_rewrites_and_names_the_owners_tampering(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    approver = approval_team.add("appr", "approver")
    admin = approval_team.add("admin", "admin")
    approvals.set_limit(approval_team.conn(admin), approver, "RUB", 10**9)
    approval_id = submit(approval_team.conn(maker), payout("po-audit", APPROVE_AT))
    approvals.reject(approval_team.conn(approver), approval_id, "no")
    owner = approval_team.conn()
    actions = [row["action"] for row in owner.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert actions == ["policy", "add user", "add user", "add user", "limit", "submit", "reject"]
    who = owner.execute("SELECT who FROM audit_log WHERE action = 'reject'").fetchone()
    assert who == {"who": approver}
    check = audit.verify(approval_team.conn(admin))
    assert (check.intact, check.rows) == (True, 7)
    for login in (maker, approver, admin):
        conn = approval_team.conn(login)
        for statement in (
            "UPDATE audit_log SET who = 'someone else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "INSERT INTO audit_log VALUES (99, 1, 'x', 'x', 'x', NULL, NULL, '', '')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    owner.execute('UPDATE audit_log SET after = \'{"state": "APPROVED"}\' WHERE seq = 7')
    check = audit.verify(approval_team.conn(admin))
    assert (check.intact, check.broken_seq) == (False, 7)
    assert "content" in check.problem
    owner.execute("DELETE FROM audit_log WHERE seq = 4")
    check = audit.verify(approval_team.conn(admin))
    assert (check.broken_seq, check.problem) == (5, "row 4 is missing before row 5")
