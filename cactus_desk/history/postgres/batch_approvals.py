"""A batch on its way through approval as one unit: submitting it, and reading its rows.

Approve, reject, withdraw and the send claim are the single payout's (``approvals``); the
database judges a batch on each currency's total (``batch_approval_schema``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cactus_desk.history.postgres.approvals import Conn, NotApprovableError, _call
from cactus_desk.masking import masked_json


@dataclass(frozen=True)
class BatchApprovalRow:
    """One row of a batch submitted for approval: its line and its exact request body."""

    line: int
    request_id: str
    site_login: str
    method: str
    currency: str
    amount_minor: int
    request_json: str

    def fields(self) -> dict[str, str]:
        """The row's additional fields (full: card rows never reach approval)."""
        body = json.loads(self.request_json)
        return {str(key): str(value) for key, value in body.get("additional_fields", {}).items()}


def _full(body: Mapping[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)


def held_lines(bodies: Sequence[tuple[int, Mapping[str, Any]]]) -> list[int]:
    """The lines whose body holds anything the history must mask (a full card number)."""
    return [line for line, body in bodies if masked_json(dict(body)) != _full(body)]


def required_for_totals(conn: Conn, profile_id: str, totals: Mapping[str, int]) -> int:
    """How many approvals the team's policy asks for a batch with these totals per currency
    (0, 1 or 2): each currency's total is judged as one payout of that amount."""
    needed = 0
    for currency, total in sorted(totals.items()):
        row = _call(
            conn,
            "SELECT cactus_required_approvals(%s, %s, %s) AS n",
            (profile_id, currency, total),
        )
        needed = max(needed, int(row["n"]) if row else 0)
    return needed


def submit_batch(
    conn: Conn,
    *,
    profile_id: str,
    profile_name: str,
    environment: str,
    merchant_id: str,
    site_id: int,
    batch_id: str,
    details: Mapping[str, Any],
    bodies: Sequence[tuple[int, Mapping[str, Any]]],
) -> int:
    """Record the batch (each row's line and ``Payout.wire_body()``) as one request awaiting
    approval; nothing is sent. Its id.

    Raises ``NotApprovableError`` naming the lines that hold a full card number (the
    approving desk could not send what is never stored), ``ApprovalRefusedError`` (the
    database refused: not a maker, no approval needed, submitted before, ids taken).
    """
    cards = held_lines(bodies)
    if cards:
        shown = ", ".join(str(line) for line in cards[:20]) + (", …" if len(cards) > 20 else "")
        raise NotApprovableError(
            f"This batch needs approval, but line(s) {shown} are card payouts: a full card "
            "number is never stored in the team history, so they cannot wait for approval. "
            "Send the card rows as a batch of their own within the limit, or one by one; "
            "nothing was recorded or sent."
        )
    rows = [{"line": line, "body": _full(body)} for line, body in bodies]
    row = _call(
        conn,
        "SELECT cactus_submit_batch(%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb) AS id",
        (
            profile_id,
            profile_name,
            environment,
            merchant_id,
            site_id,
            batch_id,
            json.dumps(dict(details), sort_keys=True),
            json.dumps(rows, ensure_ascii=False),
        ),
    )
    assert row is not None
    return int(row["id"])


def batch_rows(conn: Conn, approval_id: int, limit: int | None = None) -> list[BatchApprovalRow]:
    """The rows of batch request ``approval_id`` in line order (the first ``limit``; none for
    a single payout)."""
    with conn.transaction():
        found = conn.execute(
            "SELECT line, request_id, site_login, method, currency, amount_minor, request_json "
            "FROM approval_batch_rows WHERE approval_id = %s ORDER BY line LIMIT %s",
            (approval_id, limit),
        ).fetchall()
    return [
        BatchApprovalRow(
            int(r["line"]),
            r["request_id"],
            r["site_login"],
            r["method"],
            r["currency"],
            int(r["amount_minor"]),
            r["request_json"],
        )
        for r in found
    ]
