"""What an answer writes to a record, column by column, for every history adapter.

The adapters must record an outcome identically (the contract suite checks it); these
functions are backend-free and read the record by column name.
"""

from __future__ import annotations

from typing import Any, Protocol

from cactus_desk.callbacks.lifecycle import PROVES_INVOICE, later_status
from cactus_desk.gateway.outcomes import (
    Accepted,
    PayoutOutcome,
    RefusedUnverified,
    Rejected,
    Unknown,
)
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus

RESPONSE_TEXT_LIMIT = 4000


class _Row(Protocol):
    """A record read by column name (a ``sqlite3.Row`` or a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


_KNOWN_STATUSES = frozenset(int(status) for status in GatewayStatus)


def _unknown_status_review(status: Any) -> dict[str, Any]:
    """Review columns for an accepted answer whose status is outside the gateway's 1-7."""
    if type(status) is int and status in _KNOWN_STATUSES:
        return {}
    in_range = type(status) is int and -(2**63) <= status < 2**63
    return {
        "gateway_status": status if in_range else None,
        "needs_review": 1,
        "review_message": (
            f"The gateway accepted the payout with status {str(status)[:40]}, which Cactus Desk "
            "does not know; check it by hand."
        ),
    }


def outcome_columns(outcome: PayoutOutcome) -> dict[str, Any]:
    """The columns an outcome writes (``response`` still a mapping or None)."""
    if isinstance(outcome, Accepted):
        return {
            "state": State.ACCEPTED,
            "invoice_id": outcome.invoice_id,
            "gateway_status": outcome.status,
            "message": outcome.message,
            "detail": "",
            "http_status": None,
            "response": dict(outcome.response),
            "unknown_kind": None,
            **_unknown_status_review(outcome.status),
        }
    if isinstance(outcome, Rejected) and outcome.signature_verified:
        return {
            "state": State.REJECTED,
            "invoice_id": None,
            "gateway_status": None,
            "message": outcome.message,
            "detail": "",
            "http_status": outcome.http_status,
            "response": dict(outcome.response),
            "unknown_kind": None,
        }
    if isinstance(outcome, Rejected | RefusedUnverified):
        # Possibly paid: kept apart from REJECTED so the duplicate guard still counts it.
        why = outcome.why if isinstance(outcome, RefusedUnverified) else "it is not signed"
        return {
            "state": State.REFUSED_UNVERIFIED,
            "invoice_id": None,
            "gateway_status": None,
            "message": outcome.message,
            "detail": f"The refusal could not be verified: {why}.",
            "http_status": outcome.http_status,
            "response": dict(outcome.response),
            "unknown_kind": None,
        }
    if isinstance(outcome, Unknown):
        raw = outcome.response_text
        return {
            "state": State.UNKNOWN,
            "invoice_id": None,
            "gateway_status": None,
            "message": outcome.reason,
            "detail": outcome.detail,
            "http_status": outcome.http_status,
            "response": None if raw is None else {"raw_body": raw[:RESPONSE_TEXT_LIMIT]},
            "unknown_kind": str(outcome.kind),
        }
    raise TypeError(f"Not a payout outcome: {type(outcome).__name__}")


def keep_early_callback(columns: dict[str, Any], row: _Row) -> None:
    """A verified callback applied while the attempt was SUBMITTING outranks its answer.

    Callbacks can overtake the synchronous answer; the answer's status 3 must not move a
    callback's later status back, and a callback that proves the invoice exists turns an
    UNKNOWN outcome into ACCEPTED.
    """
    early = int(row["gateway_status"])
    columns["gateway_status"] = later_status(early, columns.get("gateway_status"))
    columns["invoice_id"] = columns.get("invoice_id") or row["invoice_id"]
    doubt = (State.UNKNOWN, State.REFUSED_UNVERIFIED)
    if columns.get("state") in doubt and early in PROVES_INVOICE and row["invoice_id"]:
        columns["state"] = str(State.ACCEPTED)
        columns["detail"] = f"Before the callback: {columns['message']} {columns['detail']}".strip()
        columns["message"] = "Invoice confirmed by a gateway callback"
        columns["unknown_kind"] = None
