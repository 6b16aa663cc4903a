"""Applying one gateway callback to the payout history.

The callback is verified with the profile's salt over every field received except
``signature``, matched to its record by request_id and site_id, and compared with the
record's current status (``lifecycle``). The read, the check and the writes happen in one
``BEGIN IMMEDIATE`` transaction, so receivers in several threads or processes on the same
file never interleave. Every callback ends as exactly one event, applied or not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cactus_desk.callbacks.events import EventOutcome, EventSource, insert_event, raw_body_payload
from cactus_desk.callbacks.lifecycle import (
    NEEDS_REVIEW,
    PROVES_INVOICE,
    Transition,
    is_known,
    transition,
)
from cactus_desk.gateway.signature import verify
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import status_label
from cactus_desk.payouts.store import HistoryStore, scrub_card_numbers

REVIEW_MESSAGE_LIMIT = 1000


class Reason(StrEnum):
    """Why a callback was rejected: the short code the receiver answers with."""

    BAD_SIGNATURE = "bad_signature"
    BAD_BODY = "bad_body"
    UNKNOWN_REQUEST = "unknown_request"
    AMBIGUOUS_REQUEST = "ambiguous_request"
    SITE_MISMATCH = "site_mismatch"
    BAD_STATUS = "bad_status"

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
}


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


def _int_value(value: Any) -> int | None:
    """An int, or a string of ASCII digits (form bodies carry strings); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
    return None


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
) -> ApplyResult:
    """Verify ``payload`` (the parsed body, native types) with ``salt`` and apply it.

    ``merchant_id`` and ``site_id`` are the profile's: with them, a callback is only matched
    to that merchant's payouts, and one for another site is rejected. Never raises for what
    the callback contains; database errors propagate (nothing is then stored).
    """
    if not salt:
        raise ValueError("A salt is needed to verify callbacks")
    with store.write_transaction() as conn:
        return _apply(conn, store.now(), payload, salt, merchant_id, site_id, source)


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
    salt: str,
    merchant_id: str | None,
    site_id: int | None,
    source: EventSource,
) -> ApplyResult:
    if not isinstance(payload, Mapping):
        raw = payload if isinstance(payload, str | bytes) else repr(payload)
        return _reject(conn, now, source, raw_body_payload(raw), Reason.BAD_BODY)
    if not payload:
        return _reject(conn, now, source, {}, Reason.BAD_BODY)
    payload = {str(key): value for key, value in payload.items()}
    request_id = _str_value(payload.get("request_id"))
    if not verify(payload, salt):
        return _reject(conn, now, source, payload, Reason.BAD_SIGNATURE, request_id=request_id)
    parsed = _parse(payload)
    if parsed is None:
        return _reject(conn, now, source, payload, Reason.BAD_BODY, request_id=request_id)
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
        outcome = EventOutcome.CONFLICT
        who = "an operator" if manual else "the gateway"
        message = (
            f"The gateway now says {status_label(parsed.status)}, but {who} had already "
            f"set {status_label(current)}; the final status was not changed."
        )
        review.append(message)
    else:
        review = _mismatches(payload, record)
        if parsed.status in NEEDS_REVIEW:
            review.append(f"The gateway reports {status_label(parsed.status)}; check it by hand.")
        review.extend(_write_status(conn, now, payload, parsed, record))
        message = " ".join(review)
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
) -> list[str]:
    """Move the record to the callback's status; return any review messages it raises."""
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
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE payouts SET {assignments} WHERE id = ?", [*columns.values(), record["id"]]
    )
    return review
