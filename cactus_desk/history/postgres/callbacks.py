"""Events, callbacks and manual states in PostgreSQL: read, decide, write, audit.

Each function runs inside the caller's transaction. Where the SQLite adapter relies on its
single writer (``BEGIN IMMEDIATE``), these lock the payout's row (``FOR NO KEY UPDATE``, which
still lets events reference it) before the rules in ``callbacks.rules`` read it, so two desks
or the receiver applying to one payout at once are serialised on that row alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

import psycopg

from cactus_desk.callbacks.events import (
    Event,
    EventOutcome,
    EventSource,
    capped_text,
    masked_payload,
)
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
from cactus_desk.masking import scrub_card_numbers

Conn = psycopg.Connection[dict[str, Any]]


def plain(value: Any) -> Any:
    """A value as the database takes it: enums by their value."""
    return value.value if isinstance(value, Enum) else value


def update_record(conn: Conn, record_id: int, columns: Mapping[str, Any]) -> None:
    """Write ``columns`` (names from the rules, never from outside input) to one record."""
    if not columns:
        return
    assignments = ", ".join(f"{name} = %s" for name in columns)
    values = [plain(value) for value in columns.values()]
    conn.execute(f"UPDATE payouts SET {assignments} WHERE id = %s", [*values, record_id])


def insert_event(
    conn: Conn,
    *,
    received_at: int,
    source: EventSource,
    outcome: EventOutcome,
    payload: Mapping[str, Any],
    record_id: int | None = None,
    status: int | None = None,
    reason: str = "",
    message: str = "",
    who: str = "",
) -> int:
    """Append one event inside the caller's transaction and return its id."""
    row = conn.execute(
        "INSERT INTO events (received_at, record_id, source, who, outcome, reason, message, "
        "request_id, invoice_id, status, payload_json) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            received_at,
            record_id,
            str(source),
            who,
            str(outcome),
            reason,
            scrub_card_numbers(message),
            capped_text(payload.get("request_id")),
            capped_text(payload.get("invoice_id")),
            status,
            json.dumps(masked_payload(payload), ensure_ascii=False, sort_keys=True, default=str),
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def row_to_event(row: Mapping[str, Any]) -> Event:
    """One row of the events table as an ``Event``."""
    return Event(
        id=row["id"],
        received_at=row["received_at"],
        record_id=row["record_id"],
        source=EventSource(row["source"]),
        who=row["who"],
        outcome=EventOutcome(row["outcome"]),
        reason=row["reason"],
        message=row["message"],
        request_id=row["request_id"],
        invoice_id=row["invoice_id"],
        status=row["status"],
        payload=json.loads(row["payload_json"]),
    )


def reject(
    conn: Conn,
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
    conn: Conn,
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
    sql = "SELECT * FROM payouts WHERE site_id = %s AND request_id = %s"
    params: list[Any] = [parsed.site_id, parsed.request_id]
    if merchant_id is not None:
        sql += " AND merchant_id = %s"
        params.append(merchant_id)
    rows = conn.execute(sql + " ORDER BY id LIMIT 2 FOR NO KEY UPDATE", params).fetchall()
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
    conn: Conn,
    now: int,
    record_id: int,
    status: int,
    note: str,
    invoice_id: str | None,
    who: str,
) -> int:
    """Set a final state by hand (checked by ``final_state_change``); return the event id."""
    row = conn.execute(
        "SELECT * FROM payouts WHERE id = %s FOR NO KEY UPDATE", (record_id,)
    ).fetchone()
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
