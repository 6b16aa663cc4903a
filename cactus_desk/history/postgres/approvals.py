"""Approvals on the team history: policies, limits, and a payout's way from maker to sending.

Each operation is one call of the owner's SECURITY DEFINER function on one connection; the
database decides who may do what (``approval_schema``), and its refusal comes back as
``ApprovalRefusedError`` with the database's own reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from cactus_desk.history.postgres.approval_schema import APPROVALS_CHANNEL
from cactus_desk.history.types import HistoryError, HistoryPermissionError
from cactus_desk.masking import masked_json

Conn = psycopg.Connection[Any]  # dict rows (``team.team_connection``)

#: The states a request shows; EXPIRED is an AWAITING_APPROVAL request past its time.
EXPIRED = "EXPIRED"


class ApprovalError(HistoryError):
    """An approval operation failed; the message says why."""


class ApprovalRefusedError(ApprovalError):
    """The database refused the operation (who, state, limit); the message says why."""


class NotApprovableError(ApprovalError):
    """The payout cannot go through approval (e.g. a full card number cannot be stored)."""


@dataclass(frozen=True)
class BatchTotal:
    """One currency of a batch submitted for approval: its rows and their total."""

    currency: str
    rows: int
    amount_minor: int


@dataclass(frozen=True)
class ApprovalRequest:
    """One payout submitted for approval, as the approvers see it."""

    id: int
    created_at: int
    expires_at: int
    maker: str
    profile_id: str
    profile_name: str
    environment: str
    merchant_id: str
    site_id: int
    request_id: str
    site_login: str
    method: str
    currency: str
    amount_minor: int
    request_json: str
    required: int
    state: str
    approvers: tuple[str, ...]
    notes: tuple[str, ...]
    decided_by: str | None
    reason: str
    send_claimed_by: str | None
    payout_id: int | None
    batch_id: str | None = None  # a whole batch (its rows in ``batch_approvals``)
    totals: tuple[BatchTotal, ...] = ()  # a batch's rows and total per currency

    @property
    def is_batch(self) -> bool:
        """True when the request is a whole batch, approved or rejected as one unit."""
        return self.batch_id is not None

    def fields(self) -> dict[str, str]:
        """The payout's additional fields (full: card payouts never reach approval)."""
        body = json.loads(self.request_json)
        return {str(key): str(value) for key, value in body.get("additional_fields", {}).items()}


def _refused(exc: psycopg.Error) -> ApprovalError:
    text = (exc.diag.message_primary or str(exc)).removeprefix("cactus: ")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege) and "permission denied" in text:
        return ApprovalRefusedError(f"Your team role may not do this ({text}).")
    return ApprovalRefusedError(text[:1].upper() + text[1:] + ".")


def _call(conn: Conn, statement: str, params: tuple[object, ...]) -> dict[str, Any] | None:
    try:
        with conn.transaction():
            row: dict[str, Any] | None = conn.execute(statement, params).fetchone()
            return row
    except (
        psycopg.errors.InsufficientPrivilege,
        psycopg.errors.ObjectNotInPrerequisiteState,
        psycopg.errors.NoDataFound,
        psycopg.errors.InvalidParameterValue,
        psycopg.errors.UniqueViolation,
        psycopg.errors.CheckViolation,
    ) as exc:
        raise _refused(exc) from None
    except psycopg.errors.UndefinedFunction:
        raise ApprovalError(
            "This team history has no approvals yet: the database owner runs "
            "cactus-desk --store URL team init first."
        ) from None


def required_approvals(conn: Conn, profile_id: str, currency: str, amount_minor: int) -> int:
    """How many approvals the team's policy asks for this payout (0, 1 or 2)."""
    row = _call(
        conn,
        "SELECT cactus_required_approvals(%s, %s, %s) AS n",
        (profile_id, currency, amount_minor),
    )
    return int(row["n"]) if row else 0


def policy_thresholds(conn: Conn) -> dict[tuple[str, str], int]:
    """(profile id, currency) -> the minor units from which a payout needs an approval."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT profile_id, currency, approve_at FROM approval_policies"
        ).fetchall()
    return {(str(r["profile_id"]), str(r["currency"])): int(r["approve_at"]) for r in rows}


def set_policy(
    conn: Conn,
    profile_id: str,
    currency: str,
    approve_at: int,
    second_at: int | None,
    expiry_hours: int,
) -> None:
    """One approval at or above ``approve_at``, two at or above ``second_at`` (an admin)."""
    _call(
        conn,
        "SELECT cactus_set_policy(%s, %s, %s, %s, %s)",
        (profile_id, currency, approve_at, second_at, expiry_hours),
    )


def set_limit(conn: Conn, login: str, currency: str, max_minor: int) -> None:
    """``login`` may approve payouts in ``currency`` up to ``max_minor`` (an admin)."""
    _call(conn, "SELECT cactus_set_limit(%s, %s, %s)", (login, currency, max_minor))


def submit(conn: Conn, profile_name: str, body: dict[str, Any], profile_id: str, env: str) -> int:
    """Record the payout ``body`` (``Payout.wire_body()``) as awaiting approval; its id.

    Raises ``NotApprovableError`` when the body holds anything the history must mask (a full
    card number): the approving desk could not send what was never stored.
    """
    full = json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)
    if masked_json(body) != full:
        raise NotApprovableError(
            "This payout holds a full card number, which the team history never stores, so "
            "it cannot wait for approval; nothing was recorded or sent."
        )
    row = _call(
        conn,
        "SELECT cactus_submit_payout(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) AS id",
        (
            profile_id,
            profile_name,
            env,
            body["merchant_id"],
            body["site_id"],
            body["request_id"],
            body["site_login"],
            body["method"],
            body["currency"],
            body["amount"],
            full,
        ),
    )
    assert row is not None
    return int(row["id"])


def approve(conn: Conn, approval_id: int, note: str) -> str:
    """Approve as this login; the request's state after it (APPROVED when enough)."""
    row = _call(conn, "SELECT cactus_approve_payout(%s, %s) AS state", (approval_id, note))
    assert row is not None
    return str(row["state"])


def reject(conn: Conn, approval_id: int, reason: str) -> None:
    """Reject as this login: the payout is never sent."""
    _call(conn, "SELECT cactus_reject_payout(%s, %s)", (approval_id, reason))


def withdraw(conn: Conn, approval_id: int) -> None:
    """Withdraw this login's own payout before it is approved."""
    _call(conn, "SELECT cactus_withdraw_payout(%s)", (approval_id,))


def claim_send(conn: Conn, approval_id: int) -> ApprovalRequest:
    """Take an approved request for sending; exactly one caller wins, the others are refused."""
    _call(conn, "SELECT cactus_claim_send(%s)", (approval_id,))
    return get(conn, approval_id)


_SELECT = (
    "SELECT r.*, coalesce((SELECT array_agg(a.approver ORDER BY a.approved_at) FROM approvals a "
    "WHERE a.approval_id = r.id), '{}') AS approvers, "
    "coalesce((SELECT array_agg(a.note ORDER BY a.approved_at) FROM approvals a "
    "WHERE a.approval_id = r.id), '{}') AS notes, "
    "coalesce((SELECT jsonb_agg(jsonb_build_array(t.currency, t.row_count, t.amount_minor) "
    "ORDER BY t.currency) FROM approval_batch_totals t WHERE t.approval_id = r.id), '[]') "
    "AS totals, "
    "CASE WHEN r.state = 'AWAITING_APPROVAL' AND r.expires_at <= "
    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN 'EXPIRED' ELSE r.state END "
    "AS shown_state FROM approval_requests r"
)


def _request(row: dict[str, Any]) -> ApprovalRequest:
    return ApprovalRequest(
        id=int(row["id"]),
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
        maker=row["maker"],
        profile_id=row["profile_id"],
        profile_name=row["profile_name"],
        environment=row["environment"],
        merchant_id=row["merchant_id"],
        site_id=int(row["site_id"]),
        request_id=row["request_id"],
        site_login=row["site_login"],
        method=row["method"],
        currency=row["currency"],
        amount_minor=int(row["amount_minor"]),
        request_json=row["request_json"],
        required=int(row["required"]),
        state=row["shown_state"],
        approvers=tuple(row["approvers"]),
        notes=tuple(row["notes"]),
        decided_by=row["decided_by"],
        reason=row["reason"],
        send_claimed_by=row["send_claimed_by"],
        payout_id=row["payout_id"],
        batch_id=row.get("batch_id"),
        totals=tuple(BatchTotal(str(c), int(n), int(a)) for c, n, a in row.get("totals") or ()),
    )


def get(conn: Conn, approval_id: int) -> ApprovalRequest:
    """One request; raises ``ApprovalRefusedError`` when there is none."""
    row = _call(conn, f"{_SELECT} WHERE r.id = %s", (approval_id,))
    if row is None:
        raise ApprovalRefusedError(f"There is no approval request {approval_id}.")
    return _request(row)


def list_requests(conn: Conn, *, open_only: bool = False) -> list[ApprovalRequest]:
    """The requests, newest first (``open_only``: those still awaiting approval)."""
    # A batch still SENDING is open too: its claimant resumes the rows not yet recorded.
    where = (
        " WHERE r.state IN ('AWAITING_APPROVAL', 'APPROVED') "
        "OR (r.state = 'SENDING' AND r.batch_id IS NOT NULL)"
        if open_only
        else ""
    )
    try:
        rows = conn.execute(f"{_SELECT}{where} ORDER BY r.id DESC").fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise HistoryPermissionError(str(_refused(exc))) from None
    except psycopg.errors.UndefinedTable:
        raise ApprovalError(
            "This team history has no approvals yet: the database owner runs "
            "cactus-desk --store URL team init first."
        ) from None
    return [_request(row) for row in rows]


def similar_sent(conn: Conn, request: ApprovalRequest, window_ms: int = 86_400_000) -> list[str]:
    """The duplicate check: request ids of payouts to the same login, amount, currency and
    method recorded within ``window_ms`` before this request was submitted."""
    rows = conn.execute(
        "SELECT request_id FROM payouts WHERE site_login = %s AND amount_minor = %s "
        "AND currency = %s AND method = %s AND created_at >= %s AND request_id <> %s "
        "ORDER BY id DESC LIMIT 5",
        (
            request.site_login,
            request.amount_minor,
            request.currency,
            request.method,
            request.created_at - window_ms,
            request.request_id,
        ),
    ).fetchall()
    return [str(row["request_id"]) for row in rows]


def session_login(conn: Conn) -> str:
    """The login this connection authenticated as."""
    row = conn.execute("SELECT session_user AS login").fetchone()
    return str(row["login"]) if row else ""


def listen(conn: Conn) -> None:
    """Hear every change to the approval requests on ``conn`` (``wait_for_change``)."""
    conn.execute(f"LISTEN {APPROVALS_CHANNEL}")


def wait_for_change(conn: Conn, timeout_s: float) -> bool:
    """True when a request changed (NOTIFY) within ``timeout_s``; ``conn`` must ``listen``."""
    return any(True for _ in conn.notifies(timeout=timeout_s, stop_after=1))


def note_export(conn: Conn, what: str, details: dict[str, Any]) -> None:
    """Note in the audit trail that this login exported ``what`` (before it is written)."""
    _call(
        conn,
        "SELECT cactus_audit_note('export history', %s, %s::jsonb)",
        (what, json.dumps(details, sort_keys=True, default=str)),
    )
