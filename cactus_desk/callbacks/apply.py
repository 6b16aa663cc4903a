"""Applying one gateway callback to the payout history.

The callback is verified with the profile's salt over every field received except
``signature``, matched to its record by request_id and site_id, and compared with the
record's current status (``lifecycle``). The read, the check and the writes happen in one
``BEGIN IMMEDIATE`` transaction, so receivers in several threads or processes on the same
file never interleave. Every callback ends as exactly one event, applied or not, except an
unverified one over the caller's storage budget (``admit_unverified``).

Checks that need no salt run first and outside the write lock: a body nested deeper than a
callback can be, an integer beyond 64 bits, or a ``;`` in any value or key (the signing string
joins ``key:value;`` pairs, so a ``;`` could forge other fields) is refused before the signature
is even computed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cactus_desk.callbacks.events import (
    EventOutcome,
    EventSource,
    bounded_payload,
    insert_event,
)
from cactus_desk.callbacks.lifecycle import (
    NEEDS_REVIEW,
    PROVES_INVOICE,
    Transition,
    is_known,
    transition,
)
from cactus_desk.gateway.signature import verify
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus, status_label
from cactus_desk.payouts.store import HistoryStore, scrub_card_numbers

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


def _int_value(value: Any) -> int | None:
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
        return text.isascii() and text.isdigit() and _int_value(text) is None
    return False


def _screen(payload: Mapping[str, Any]) -> Reason | None:
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


def _is_payout(payload: Mapping[str, Any]) -> bool:
    """False when the callback says it is not for a payout (missing: a payout, as before)."""
    if "is_payout" not in payload:
        return True
    value = payload["is_payout"]
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1")


def _str_value(value: Any) -> str | None:
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
class _Parsed:
    request_id: str
    site_id: int
    status: int


def _parse(payload: Mapping[str, Any]) -> _Parsed | None:
    request_id = _str_value(payload.get("request_id"))
    site_id = _int_value(payload.get("site_id"))
    status = _int_value(payload.get("status"))
    if request_id is None or site_id is None or status is None:
        return None
    return _Parsed(request_id, site_id, status)


def apply_callback(
    store: HistoryStore,
    payload: Any,
    salt: str,
    *,
    merchant_id: str | None = None,
    site_id: int | None = None,
    source: EventSource = EventSource.GATEWAY,
    admit_unverified: Callable[[], bool] | None = None,
    raw: bytes | None = None,
) -> ApplyResult:
    """Verify ``payload`` (the parsed body, native types) with ``salt`` and apply it.

    ``merchant_id`` and ``site_id`` are the profile's: with them, a callback is only matched
    to that merchant's payouts, and one for another site is rejected. ``admit_unverified``
    (the receiver's per-client budget) is asked before a forged or garbled callback is stored;
    when it says no, nothing is written and the result's ``event_id`` is 0. ``raw`` is the body
    as received, hashed for a rejected one. Never raises for what the callback contains;
    database errors propagate (nothing is then stored).
    """
    if not salt:
        raise ValueError("A salt is needed to verify callbacks")
    unverified = _unverified(payload, salt, raw)
    if unverified is not None:
        reason, stored_payload, request_id = unverified
        if admit_unverified is not None and not admit_unverified():
            return ApplyResult(0, EventOutcome.REJECTED, None, reason, request_id=request_id)
        with store.write_transaction() as conn:
            return _reject(conn, store.now(), source, stored_payload, reason, request_id=request_id)
    with store.write_transaction() as conn:
        return _apply(conn, store.now(), payload, merchant_id, site_id, source)


def _unverified(
    payload: Any, salt: str, raw: bytes | None
) -> tuple[Reason, dict[str, Any], str | None] | None:
    """The reason, bounded payload and request_id of a callback that is not verified; or None."""
    if not isinstance(payload, Mapping) or not payload:
        if not isinstance(payload, str | bytes | Mapping):
            payload = f"({type(payload).__name__})"  # repr() of a deep list would recurse
        return Reason.BAD_BODY, bounded_payload(payload, raw), None
    payload = {str(key): value for key, value in payload.items()}
    reason = _screen(payload)
    request_id = _str_value(payload.get("request_id"))
    if request_id is not None:
        request_id = request_id[:200]
    if reason is None and not verify(payload, salt):
        reason = Reason.BAD_SIGNATURE
    if reason is None:
        return None
    return reason, bounded_payload(payload, raw), request_id


def _reject(
    conn: sqlite3.Connection,
    now: int,
    source: EventSource,
    payload: Mapping[str, Any],
    reason: Reason,
    *,
    record_id: int | None = None,
    status: int | None = None,
    request_id: str | None = None,
) -> ApplyResult:
    event_id = insert_event(
        conn,
        received_at=now,
        source=source,
        outcome=EventOutcome.REJECTED,
        payload=payload,
        record_id=record_id,
        status=status,
        reason=str(reason),
        message=reason.text,
    )
    return ApplyResult(
        event_id, EventOutcome.REJECTED, record_id, reason, status, request_id=request_id
    )


def _apply(
    conn: sqlite3.Connection,
    now: int,
    payload: Any,
    merchant_id: str | None,
    site_id: int | None,
    source: EventSource,
) -> ApplyResult:
    # Verified by apply_callback before the transaction.
    payload = {str(key): value for key, value in payload.items()}
    request_id = _str_value(payload.get("request_id"))
    parsed = _parse(payload)
    if parsed is None:
        return _reject(conn, now, source, payload, Reason.INCOMPLETE, request_id=request_id)
    if not _is_payout(payload):
        return _reject(conn, now, source, payload, Reason.NOT_PAYOUT, request_id=request_id)
    if site_id is not None and parsed.site_id != site_id:
        return _reject(conn, now, source, payload, Reason.SITE_MISMATCH, request_id=request_id)
    sql = "SELECT * FROM payouts WHERE site_id = ? AND request_id = ?"
    params: list[Any] = [parsed.site_id, parsed.request_id]
    if merchant_id is not None:
        sql += " AND merchant_id = ?"
        params.append(merchant_id)
    rows = conn.execute(sql + " LIMIT 2", params).fetchall()
    if not rows:
        return _reject(conn, now, source, payload, Reason.UNKNOWN_REQUEST, request_id=request_id)
    if len(rows) > 1:
        return _reject(conn, now, source, payload, Reason.AMBIGUOUS_REQUEST, request_id=request_id)
    record = rows[0]
    if not is_known(parsed.status):
        message = f"The gateway sent status {parsed.status}, which Cactus Desk does not know."
        _flag(conn, record, now, [message])
        return _reject(
            conn,
            now,
            source,
            payload,
            Reason.BAD_STATUS,
            record_id=record["id"],
            status=parsed.status,
            request_id=request_id,
        )
    return _apply_status(conn, now, payload, parsed, record, source)


def _flag(conn: sqlite3.Connection, record: sqlite3.Row, now: int, messages: list[str]) -> None:
    conn.execute(
        "UPDATE payouts SET needs_review = 1, review_message = ?, updated_at = ? WHERE id = ?",
        (
            scrub_card_numbers(_join_review(record["review_message"], messages)),
            now,
            record["id"],
        ),
    )


def _mismatches(payload: Mapping[str, Any], record: sqlite3.Row) -> list[str]:
    problems: list[str] = []
    if "amount" in payload:
        amount = _int_value(payload["amount"])
        if amount != record["amount_minor"]:
            problems.append(
                f"The callback's amount {payload['amount']!s:.40} differs from the "
                f"{record['amount_minor']} minor units sent."
            )
    currency = _str_value(payload.get("currency"))
    if "currency" in payload and currency != record["currency"]:
        problems.append(
            f"The callback's currency {currency or '(none)'!s:.16} differs from "
            f"{record['currency']} sent."
        )
    invoice_id = _str_value(payload.get("invoice_id"))
    if invoice_id and record["invoice_id"] and invoice_id != record["invoice_id"]:
        problems.append(
            f"The callback's invoice {invoice_id:.40} differs from invoice "
            f"{record['invoice_id']} in the history."
        )
    return problems


def _apply_status(
    conn: sqlite3.Connection,
    now: int,
    payload: dict[str, Any],
    parsed: _Parsed,
    record: sqlite3.Row,
    source: EventSource,
) -> ApplyResult:
    current = record["gateway_status"]
    step = transition(current, parsed.status)
    manual = record["status_source"] == "manual"
    review: list[str] = []
    outcome = EventOutcome.APPLIED
    message = ""
    if step is Transition.DUPLICATE and manual:
        # The gateway confirms what an operator set by hand: from now on it is verified.
        conn.execute(
            "UPDATE payouts SET status_source = 'gateway', updated_at = ? WHERE id = ?",
            (now, record["id"]),
        )
        message = "The gateway confirmed the status set by hand."
    elif step is Transition.DUPLICATE:
        outcome = EventOutcome.DUPLICATE
    elif step is Transition.STALE:
        outcome = EventOutcome.STALE
        message = f"The record is already at {status_label(current)}."
    elif step is Transition.CONFLICT:
        # The latest verified word wins the display, flagged so nobody trusts either alone.
        outcome = EventOutcome.CONFLICT
        who = "an operator" if manual else "the gateway"
        message = (
            f"Conflict: check. The gateway now says {status_label(parsed.status)}, but {who} "
            f"had already set {status_label(current)}; the latest verified status is shown."
        )
        review.append(message)
        _write_status(conn, now, payload, parsed, record, conflict=message)
        message = " ".join([message, *_decline_note(payload, parsed)])
    else:
        review = _mismatches(payload, record)
        if parsed.status in NEEDS_REVIEW:
            review.append(f"The gateway reports {status_label(parsed.status)}; check it by hand.")
        review.extend(_write_status(conn, now, payload, parsed, record))
        message = " ".join([*_decline_note(payload, parsed), *review])
    if review:
        _flag(conn, record, now, review)
    event_id = insert_event(
        conn,
        received_at=now,
        source=source,
        outcome=outcome,
        payload=payload,
        record_id=record["id"],
        status=parsed.status,
        message=message,
    )
    return ApplyResult(
        event_id,
        outcome,
        record["id"],
        None,
        parsed.status,
        request_id=parsed.request_id,
        review="\n".join(review),
    )


def _write_status(
    conn: sqlite3.Connection,
    now: int,
    payload: Mapping[str, Any],
    parsed: _Parsed,
    record: sqlite3.Row,
    *,
    conflict: str = "",
) -> list[str]:
    """Move the record to the callback's status; return any review messages it raises.

    ``conflict`` (the review text) marks a final status replacing a different final one.
    """
    columns: dict[str, Any] = {
        "gateway_status": parsed.status,
        "status_source": "gateway",
        "received_amount": _int_value(payload.get("received_amount")),
        "received_currency": _str_value(payload.get("received_currency")),
        "description": scrub_card_numbers(_str_value(payload.get("description")) or ""),
        "updated_at": now,
    }
    invoice_id = _str_value(payload.get("invoice_id"))
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
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE payouts SET {assignments} WHERE id = ?", [*columns.values(), record["id"]]
    )
    return review


def decline_reason(payload: Mapping[str, Any]) -> str:
    """The gateway's reason for a decline: the callback's description, else its message."""
    for key in ("description", "message"):
        text = _str_value(payload.get(key))
        if text:
            return " ".join(text.split())[:DECLINE_REASON_LIMIT]
    return ""


def _decline_note(payload: Mapping[str, Any], parsed: _Parsed) -> list[str]:
    """``["Declined by the gateway: <reason>"]`` for a decline, ``[]`` for anything else."""
    if parsed.status != GatewayStatus.DECLINE:
        return []
    reason = decline_reason(payload)
    return [f"Declined by the gateway: {reason}" if reason else "Declined by the gateway."]
