"""Callbacks and manual states in SQLite: read, decide (``callbacks.rules``), write, audit.

Each function runs inside the caller's ``BEGIN IMMEDIATE`` transaction, so the read, the
decision and the writes see no concurrent writer in this process or another one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.callbacks.lifecycle import is_known
from cactus_desk.callbacks.rules import (
    ApplyResult,
    Reason,
    decide_status,
    final_state_change,
    is_payout,
    parse_callback,
    review_columns,
    str_value,
    unknown_status_message,
)
from cactus_desk.history.sqlite.events import insert_event
from cactus_desk.masking import scrub_card_numbers


def update_record(conn: sqlite3.Connection, record_id: int, columns: Mapping[str, Any]) -> None:
    """Write ``columns`` (names from the rules, never from outside input) to one record."""
    if not columns:
        return
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(f"UPDATE payouts SET {assignments} WHERE id = ?", [*columns.values(), record_id])


def reject(
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
    """Store a callback that changes nothing, with why; return its result."""
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


def apply_verified(
    conn: sqlite3.Connection,
    now: int,
    payload: Mapping[str, Any],
    merchant_id: str | None,
    site_id: int | None,
    source: EventSource,
) -> ApplyResult:
    """Match a verified callback to its record and apply it; always exactly one event."""
    payload = {str(key): value for key, value in payload.items()}
    request_id = str_value(payload.get("request_id"))
    parsed = parse_callback(payload)
    if parsed is None:
        return reject(conn, now, source, payload, Reason.INCOMPLETE, request_id=request_id)
    if not is_payout(payload):
        return reject(conn, now, source, payload, Reason.NOT_PAYOUT, request_id=request_id)
    if site_id is not None and parsed.site_id != site_id:
        return reject(conn, now, source, payload, Reason.SITE_MISMATCH, request_id=request_id)
    sql = "SELECT * FROM payouts WHERE site_id = ? AND request_id = ?"
    params: list[Any] = [parsed.site_id, parsed.request_id]
    if merchant_id is not None:
        sql += " AND merchant_id = ?"
        params.append(merchant_id)
    rows = conn.execute(sql + " LIMIT 2", params).fetchall()
    if not rows:
        return reject(conn, now, source, payload, Reason.UNKNOWN_REQUEST, request_id=request_id)
    if len(rows) > 1:
        return reject(conn, now, source, payload, Reason.AMBIGUOUS_REQUEST, request_id=request_id)
    record = rows[0]
    if not is_known(parsed.status):
        message = unknown_status_message(parsed.status)
        update_record(conn, record["id"], review_columns(record, now, [message]))
        return reject(
            conn,
            now,
            source,
            payload,
            Reason.BAD_STATUS,
            record_id=record["id"],
            status=parsed.status,
            request_id=request_id,
        )
    decision = decide_status(record, payload, parsed, now)
    columns = dict(decision.columns)
    if decision.review:
        columns.update(review_columns(record, now, decision.review))
    update_record(conn, record["id"], columns)
    event_id = insert_event(
        conn,
        received_at=now,
        source=source,
        outcome=decision.outcome,
        payload=payload,
        record_id=record["id"],
        status=parsed.status,
        message=decision.message,
    )
    return ApplyResult(
        event_id,
        decision.outcome,
        record["id"],
        None,
        parsed.status,
        request_id=parsed.request_id,
        review="\n".join(decision.review),
    )


def set_final_state(
    conn: sqlite3.Connection,
    now: int,
    record_id: int,
    status: int,
    note: str,
    invoice_id: str | None,
    who: str,
) -> int:
    """Set a final state by hand (checked by ``final_state_change``); return the event id."""
    row = conn.execute("SELECT * FROM payouts WHERE id = ?", (record_id,)).fetchone()
    change = final_state_change(row, record_id, status, note, invoice_id, who, now)
    update_record(conn, record_id, change.columns)
    return insert_event(
        conn,
        received_at=now,
        source=EventSource.MANUAL,
        outcome=EventOutcome.APPLIED,
        payload=change.event_payload,
        record_id=record_id,
        status=int(status),
        message=scrub_card_numbers(note),
        who=who,
    )
