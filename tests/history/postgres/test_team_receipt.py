"""A receipt from the team store names who acted as the database recorded them: the maker's
login, the approvers of its request and the login that settled it by hand."""

from __future__ import annotations

from cactus_desk.gateway.outcomes import Unknown, UnknownKind
from cactus_desk.history.postgres import approvals
from cactus_desk.payouts.submit import recorded_attempt
from cactus_desk.reports.receipt import build_receipt
from tests.history.postgres.approval_fixtures import (
    APPROVE_AT,
    ApprovalTeam,
    approval_team,
    payout,
    submit,
)
from tests.history.postgres.team_fixtures import team_db

__all__ = ["approval_team", "team_db"]
SUCCESS = 4


def test_a_team_receipt_reads_made_approved_and_settled_by_from_the_store(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    approver = approval_team.add("ann", "approver")
    approvals.set_limit(approval_team.conn(), approver, "RUB", APPROVE_AT * 10)
    maker_conn = approval_team.conn(maker)
    held = payout("po-approved", APPROVE_AT)
    approval_id = submit(maker_conn, held)
    assert approvals.approve(approval_team.conn(approver), approval_id, "ok") == "APPROVED"
    approvals.claim_send(maker_conn, approval_id)
    maker_store = approval_team.team.store(maker)
    record_id = maker_store.create_attempt(recorded_attempt(held))
    maker_store.record_outcome(record_id, Unknown("No answer in time.", UnknownKind.TIMEOUT))
    # The desk may write any name in the event; the receipt goes by the database's login.
    approval_team.team.store(approver).set_final_state(
        record_id, SUCCESS, "Cabinet shows it paid", invoice_id=None, who="Somebody Else"
    )
    details = approval_team.team.store().details(record_id)
    assert (details.made_by, details.approved_by, details.settled_by) == (
        maker,
        (approver,),
        (approver,),
    )
    people = dict(build_receipt(details).people)
    assert people == {"Made by": maker, "Approved by": approver, "Settled by hand by": approver}
    # A payout below the threshold, never approved nor settled: only its maker.
    small = payout("po-small", APPROVE_AT - 1)
    small_id = maker_store.create_attempt(recorded_attempt(small))
    people = dict(build_receipt(maker_store.details(small_id)).people)
    assert people == {"Made by": maker, "Approved by": "—", "Settled by hand by": "—"}


def test_a_receipt_still_reads_where_the_login_may_not_read_the_approvals(
    approval_team: ApprovalTeam,
) -> None:
    maker = approval_team.add("maker", "maker")
    viewer = approval_team.add("vic", "viewer")
    record_id = approval_team.team.store(maker).create_attempt(
        recorded_attempt(payout("po-viewed", APPROVE_AT - 1))
    )
    # A team whose privileges predate the approvals (``team init`` not run again).
    approval_team.conn().execute("REVOKE SELECT ON approvals FROM cactus_viewer")
    details = approval_team.team.store(viewer).details(record_id)
    assert (details.made_by, details.approved_by) == (maker, None)
    people = dict(build_receipt(details).people)
    assert people["Approved by"] == "— (this login may not read the approvals)"
