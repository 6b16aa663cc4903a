"""The events table in SQLite: appending one event, and reading events back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from cactus_desk.callbacks.events import (
    Event,
    EventOutcome,
    EventSource,
    capped_text,
    masked_payload,
)
from cactus_desk.masking import scrub_card_numbers


def insert_event(
    conn: sqlite3.Connection,
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
    cursor = conn.execute(
        "INSERT INTO events (received_at, record_id, source, who, outcome, reason, message, "
        "request_id, invoice_id, status, payload_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def row_to_event(row: sqlite3.Row) -> Event:
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


def events_for(conn: sqlite3.Connection, record_id: int) -> list[Event]:
    """The record's timeline: every event attached to it, oldest first."""
    rows = conn.execute("SELECT * FROM events WHERE record_id = ? ORDER BY id", (record_id,))
    return [row_to_event(row) for row in rows]


def events_since(conn: sqlite3.Connection, after_id: int, limit: int) -> list[Event]:
    """Events newer than ``after_id``, oldest first."""
    rows = conn.execute(
        "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, max(0, limit))
    )
    return [row_to_event(row) for row in rows]


def rejected_events(conn: sqlite3.Connection, limit: int) -> list[Event]:
    """The latest rejected events, newest first."""
    rows = conn.execute(
        "SELECT * FROM events WHERE outcome = ? ORDER BY id DESC LIMIT ?",
        (str(EventOutcome.REJECTED), max(0, limit)),
    )
    return [row_to_event(row) for row in rows]


def newest_event_id(conn: sqlite3.Connection, record_id: int) -> int:
    """The id of the record's newest event, 0 when it has none."""
    row = conn.execute(
        "SELECT COALESCE(MAX(id), 0) FROM events WHERE record_id = ?", (record_id,)
    ).fetchone()
    return int(row[0])


def prune_rejected(conn: sqlite3.Connection, cutoff: int, reasons: tuple[str, ...]) -> int:
    """Delete rejected events with one of ``reasons`` received before ``cutoff``; the count."""
    marks = ", ".join("?" * len(reasons))
    cursor = conn.execute(
        f"DELETE FROM events WHERE outcome = ? AND reason IN ({marks}) AND received_at < ?",
        (str(EventOutcome.REJECTED), *reasons, cutoff),
    )
    return max(cursor.rowcount, 0)
