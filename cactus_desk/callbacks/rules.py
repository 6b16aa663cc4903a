"""The rules of one callback, free of storage: parsing, screening, and what it changes.

The history adapter calls ``decide_status`` inside its write transaction with the record it
read, and writes what the decision says; ``final_state_change`` does the same for a status
set by hand. Nothing here reads or writes the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.callbacks.lifecycle import (
    FINAL,
    NEEDS_REVIEW,
    PROVES_INVOICE,
    Transition,
    is_final,
    transition,
)
from cactus_desk.history.types import iso_utc
from cactus_desk.masking import scrub_card_numbers
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus, status_label

REVIEW_MESSAGE_LIMIT = 1000
DECLINE_REASON_LIMIT = 300
# A callback's values are scalars, or one object/list of scalars (additional_fields).
MAX_DEPTH = 2
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Fields read as integers: a digit string beyond 64 bits in one of them is refused too.
_INT_FIELDS = frozenset({"site_id", "status", "amount", "received_amount", "invoice_id"})
_SEPARATORS = (";",)
_KEY_SEPARATORS = (";", ":")


class Reason(StrEnum):
    """Why a callback was rejected: the short code the receiver answers with."""

    BAD_SIGNATURE = "bad_signature"
    BAD_BODY = "bad_body"
    UNKNOWN_REQUEST = "unknown_request"
    AMBIGUOUS_REQUEST = "ambiguous_request"
    SITE_MISMATCH = "site_mismatch"
    BAD_STATUS = "bad_status"
    AMBIGUOUS_VALUE = "ambiguous_value"
    INCOMPLETE = "incomplete"
    NOT_PAYOUT = "not_payout"

    @property
    def verified(self) -> bool:
        """False for the reasons decided before (or by) the signature check: forged or garbled."""
        return self not in UNVERIFIED_REASONS

    @property
    def text(self) -> str:
        """A plain sentence for reports and the timeline."""
        return _REASON_TEXT[self]


_REASON_TEXT = {
    Reason.BAD_SIGNATURE: "the signature does not match the profile's salt",
    Reason.BAD_BODY: "not a callback (not a JSON object, or request_id/status/site_id missing)",
    Reason.UNKNOWN_REQUEST: "no payout in the history has this request_id for this site",
    Reason.AMBIGUOUS_REQUEST: "several merchants' payouts have this request_id for this site",
    Reason.SITE_MISMATCH: "the callback is for another site than the profile's",
    Reason.BAD_STATUS: "the status is not one of the gateway's statuses 1-7",
    Reason.AMBIGUOUS_VALUE: "a value or key contains ';', which could forge other signed fields",
    Reason.INCOMPLETE: "signed, but request_id, status or site_id is missing or unreadable",
    Reason.NOT_PAYOUT: "the callback is not for a payout (is_payout is false); nothing changed",
}
UNVERIFIED_REASONS = frozenset({Reason.BAD_SIGNATURE, Reason.BAD_BODY, Reason.AMBIGUOUS_VALUE})


@dataclass(frozen=True)
class ApplyResult:
    """What one callback did: its event, the record it touched, and why if it was rejected."""

    event_id: int
    outcome: EventOutcome
    record_id: int | None = None
    reason: Reason | None = None
    status: int | None = None
    request_id: str | None = None
    review: str = ""

    @property
    def rejected(self) -> bool:
        """True when the callback was applied to nothing because it could not be trusted/used."""
        return self.outcome is EventOutcome.REJECTED

    @property
    def stored(self) -> bool:
        """False for an unverified callback over the storage budget: no event was written."""
        return self.event_id > 0


def int_value(value: Any) -> int | None:
    """An int or a string of ASCII digits (form bodies carry strings) within 64 bits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= INT64_MAX:
            return int(text)
    return None


def _too_big(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not INT64_MIN <= value <= INT64_MAX
    if key in _INT_FIELDS and isinstance(value, str):
        text = value.strip()
        return text.isascii() and text.isdigit() and int_value(text) is None
    return False


def screen(payload: Mapping[str, Any]) -> Reason | None:
    """Why ``payload`` is refused before its signature is checked, or None.

    Iterative, so a body nested a million levels deep costs one pass and no recursion.
    """
    ambiguous = False
    stack: list[tuple[str, Any, int]] = [(str(key), value, 1) for key, value in payload.items()]
    while stack:
        key, value, depth = stack.pop()
        if any(mark in key for mark in _KEY_SEPARATORS):
            ambiguous = True
        if isinstance(value, Mapping | list | tuple):
            if depth >= MAX_DEPTH:
                return Reason.BAD_BODY
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            stack.extend((str(inner), item, depth + 1) for inner, item in items)
            continue
        if _too_big(key, value):
            return Reason.BAD_BODY
        if key == "signature" and depth == 1:
            continue
        if isinstance(value, str) and any(mark in value for mark in _SEPARATORS):
            ambiguous = True
    if ambiguous:
        return Reason.AMBIGUOUS_VALUE
    signature = payload.get("signature")
    if isinstance(signature, str) and not signature.isascii():
        return Reason.BAD_SIGNATURE  # hmac.compare_digest refuses non-ASCII text
    return None


def is_payout(payload: Mapping[str, Any]) -> bool:
    """False when the callback says it is not for a payout (missing: a payout, as before)."""
    if "is_payout" not in payload:
        return True
    value = payload["is_payout"]
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1")


def str_value(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, Mapping | list | tuple):
        return None
    text = str(value).strip()
    return text or None


def _join_review(existing: str, messages: list[str]) -> str:
    parts = [part for part in existing.split("\n") if part] if existing else []
    for message in messages:
        if message not in parts:
            parts.append(message)
    return "\n".join(parts)[-REVIEW_MESSAGE_LIMIT:]


@dataclass(frozen=True)
class ParsedCallback:
    """The three fields every callback needs, read as their types."""

    request_id: str
    site_id: int
    status: int


def parse_callback(payload: Mapping[str, Any]) -> ParsedCallback | None:
    request_id = str_value(payload.get("request_id"))
    site_id = int_value(payload.get("site_id"))
    status = int_value(payload.get("status"))
    if request_id is None or site_id is None or status is None:
        return None
    return ParsedCallback(request_id, site_id, status)


def _mismatches(payload: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if "amount" in payload:
        amount = int_value(payload["amount"])
        if amount != record["amount_minor"]:
            problems.append(
                f"The callback's amount {payload['amount']!s:.40} differs from the "
                f"{record['amount_minor']} minor units sent."
            )
    currency = str_value(payload.get("currency"))
    if "currency" in payload and currency != record["currency"]:
        problems.append(
            f"The callback's currency {currency or '(none)'!s:.16} differs from "
            f"{record['currency']} sent."
        )
    invoice_id = str_value(payload.get("invoice_id"))
    if invoice_id and record["invoice_id"] and invoice_id != record["invoice_id"]:
        problems.append(
            f"The callback's invoice {invoice_id:.40} differs from invoice "
            f"{record['invoice_id']} in the history."
        )
    return problems


def decline_reason(payload: Mapping[str, Any]) -> str:
    """The gateway's reason for a decline: the callback's description, else its message."""
    for key in ("description", "message"):
        text = str_value(payload.get(key))
        if text:
            return " ".join(text.split())[:DECLINE_REASON_LIMIT]
    return ""


def _decline_note(payload: Mapping[str, Any], parsed: ParsedCallback) -> list[str]:
    """``["Declined by the gateway: <reason>"]`` for a decline, ``[]`` for anything else."""
    if parsed.status != GatewayStatus.DECLINE:
        return []
    reason = decline_reason(payload)
    return [f"Declined by the gateway: {reason}" if reason else "Declined by the gateway."]


def review_columns(record: Mapping[str, Any], now: int, messages: list[str]) -> dict[str, Any]:
    """The columns that flag ``record`` for review with ``messages`` (added once each)."""
    return {
        "needs_review": 1,
        "review_message": scrub_card_numbers(_join_review(record["review_message"], messages)),
        "updated_at": now,
    }


@dataclass(frozen=True)
class StatusDecision:
    """What a verified callback does to its record: the event's outcome and message, the
    record's columns to write (none for a duplicate or a stale one) and review messages."""

    outcome: EventOutcome
    message: str
    columns: dict[str, Any] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)


def unknown_status_message(status: int) -> str:
    """The review message for a signed callback with a status outside the gateway's 1-7."""
    return f"The gateway sent status {status}, which Cactus Desk does not know."


def decide_status(
    record: Mapping[str, Any], payload: Mapping[str, Any], parsed: ParsedCallback, now: int
) -> StatusDecision:
    """Compare a verified callback with the record's current status (``lifecycle``)."""
    current = record["gateway_status"]
    step = transition(current, parsed.status)
    manual = record["status_source"] == "manual"
    if step is Transition.DUPLICATE and manual:
        # The gateway confirms what an operator set by hand: from now on it is verified.
        return StatusDecision(
            EventOutcome.APPLIED,
            "The gateway confirmed the status set by hand.",
            {"status_source": "gateway", "updated_at": now},
        )
    if step is Transition.DUPLICATE:
        return StatusDecision(EventOutcome.DUPLICATE, "")
    if step is Transition.STALE:
        return StatusDecision(
            EventOutcome.STALE, f"The record is already at {status_label(current)}."
        )
    if step is Transition.CONFLICT:
        # The latest verified word wins the display, flagged so nobody trusts either alone.
        who = "an operator" if manual else "the gateway"
        message = (
            f"Conflict: check. The gateway now says {status_label(parsed.status)}, but {who} "
            f"had already set {status_label(current)}; the latest verified status is shown."
        )
        columns, _ = _status_columns(record, payload, parsed, now, conflict=message)
        note = " ".join([message, *_decline_note(payload, parsed)])
        return StatusDecision(EventOutcome.CONFLICT, note, columns, [message])
    review = _mismatches(payload, record)
    if parsed.status in NEEDS_REVIEW:
        review.append(f"The gateway reports {status_label(parsed.status)}; check it by hand.")
    columns, more = _status_columns(record, payload, parsed, now)
    review.extend(more)
    message = " ".join([*_decline_note(payload, parsed), *review])
    return StatusDecision(EventOutcome.APPLIED, message, columns, review)


def _status_columns(
    record: Mapping[str, Any],
    payload: Mapping[str, Any],
    parsed: ParsedCallback,
    now: int,
    *,
    conflict: str = "",
) -> tuple[dict[str, Any], list[str]]:
    """The columns that move the record to the callback's status, and any review messages.

    ``conflict`` (the review text) marks a final status replacing a different final one.
    """
    columns: dict[str, Any] = {
        "gateway_status": parsed.status,
        "status_source": "gateway",
        "received_amount": int_value(payload.get("received_amount")),
        "received_currency": str_value(payload.get("received_currency")),
        "description": scrub_card_numbers(str_value(payload.get("description")) or ""),
        "updated_at": now,
    }
    invoice_id = str_value(payload.get("invoice_id"))
    if invoice_id and not record["invoice_id"]:
        columns["invoice_id"] = invoice_id
    state = State(record["state"])
    review: list[str] = []
    if state.in_doubt and parsed.status in PROVES_INVOICE and invoice_id:
        columns["state"] = str(State.ACCEPTED)
        columns["message"] = "Invoice confirmed by a gateway callback"
        columns["detail"] = f"Before the callback: {record['message']} {record['detail']}".strip()
        columns["unknown_kind"] = None
    elif state in (State.REJECTED, State.NOT_SENT):
        review.append(
            f"The gateway sent a signed callback for a payout recorded as {state.label.lower()}."
        )
    note = _decline_note(payload, parsed)
    if conflict:
        columns["status_conflict"] = 1
        columns["message"] = scrub_card_numbers(" ".join([conflict, *note]))
    elif note and columns.get("state", str(state)) == State.ACCEPTED:
        columns["message"] = scrub_card_numbers(note[0])
    return columns, review


# -- a final state set by hand ----------------------------------------------------------------

_ALLOWED_STATES = (State.UNKNOWN, State.REFUSED_UNVERIFIED, State.ACCEPTED)


class ReconcileError(ValueError):
    """A manual change that cannot be made; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str = "record") -> None:
        super().__init__(message)
        self.field = field


def can_settle_by_hand(state: State, gateway_status: int | None) -> bool:
    """True when a payout may be given a final state by hand: in doubt, or accepted and not
    final yet."""
    return state in _ALLOWED_STATES and not is_final(gateway_status)


@dataclass(frozen=True)
class FinalStateChange:
    """What setting a final state by hand writes: the record's columns and the audit event."""

    columns: dict[str, Any]
    event_payload: dict[str, Any]


def final_state_change(
    record: Mapping[str, Any] | None,
    record_id: int,
    status: int,
    note: str,
    invoice_id: str | None,
    who: str,
    now: int,
) -> FinalStateChange:
    """Check a final state set by hand against ``record`` (as read) and say what it writes.

    Raises ``ReconcileError`` naming the field at fault.
    """
    if isinstance(status, bool) or status not in FINAL:
        raise ReconcileError("Choose Success (4) or Declined (5).", "status")
    if record is None:
        raise ReconcileError(f"There is no payout with history record {record_id}.")
    state = State(record["state"])
    if is_final(record["gateway_status"]):
        raise ReconcileError(
            f"Record {record_id} is already final ({status_label(record['gateway_status'])})."
        )
    if state not in _ALLOWED_STATES:
        raise ReconcileError(
            f"Record {record_id} is {state.label.lower()}: only unknown, unverified refused "
            "or accepted payouts can be given a final state by hand."
        )
    if invoice_id and record["invoice_id"] and invoice_id != record["invoice_id"]:
        raise ReconcileError(
            f"Record {record_id} already has invoice {record['invoice_id']}.", "invoice_id"
        )
    label = GatewayStatus(status).label
    columns: dict[str, Any] = {
        "gateway_status": int(status),
        "status_source": "manual",
        "needs_review": 0,
        "review_message": "",
        "updated_at": now,
    }
    if state is not State.ACCEPTED:
        # The gateway never accepted it: it is settled by hand, never shown as "Accepted".
        columns.update(
            state=str(State.SETTLED),
            message=f"Settled manually: {label} ({who})",
            detail=f"Before: {record['message']} {record['detail']}".strip(),
            unknown_kind=None,
        )
    if invoice_id and not record["invoice_id"]:
        columns["invoice_id"] = invoice_id
    payload = {
        "request_id": record["request_id"],
        "invoice_id": invoice_id or record["invoice_id"],
        "status": int(status),
        "previous_state": str(state),
        "previous_status": record["gateway_status"],
        "note": note,
    }
    return FinalStateChange(columns, payload)


# -- pruning old unverified callbacks --------------------------------------------------------

DAY_MS = 86_400_000


def prune_audit(
    older_than_ms: int, cutoff: int, deleted: int, reasons: tuple[str, ...]
) -> tuple[dict[str, Any], str]:
    """The audit event's payload and message for a prune of ``deleted`` callbacks."""
    days = older_than_ms // DAY_MS
    payload = {
        "action": "prune_rejected",
        "older_than_days": days,
        "cutoff": iso_utc(cutoff),
        "deleted": deleted,
        "reasons": list(reasons),
    }
    message = f"Removed {deleted} unverified rejected callbacks older than {days} days"
    return payload, message
