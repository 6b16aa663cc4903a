"""The team's audit trail: checking its hash chain and writing it out as CSV.

Each row's hash is SHA-256 over its fields and the previous row's hash, each field
length-prefixed (``len:value;``, NULL as ``-;``). The chain is recomputed here in Python,
independently of the database's function, so a row changed (or removed) by the owner, who
alone may write the table, is named by ``verify``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import psycopg

from cactus_desk.history.export import guard_cell
from cactus_desk.history.postgres.approvals import Conn, _call
from cactus_desk.history.types import HistoryPermissionError

CSV_COLUMNS = ("seq", "at", "who", "action", "subject", "before", "after", "prev_hash", "hash")


@dataclass(frozen=True)
class AuditCheck:
    """What ``verify`` found: the rows checked and the first broken one (None when intact)."""

    rows: int
    broken_seq: int | None
    problem: str

    @property
    def intact(self) -> bool:
        """True when every row's hash and link hold."""
        return self.broken_seq is None


def _piece(value: str | None) -> str:
    return "-;" if value is None else f"{len(value)}:{value};"


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The hash a row must carry after ``prev_hash``."""
    body = "".join(
        _piece(value)
        for value in (
            prev_hash,
            str(row["seq"]),
            str(row["at"]),
            row["who"],
            row["action"],
            row["subject"],
            row["before"],
            row["after"],
        )
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _rows(conn: Conn) -> Iterator[dict[str, Any]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor = conn.cursor(name="audit_rows")
        cursor.execute(
            "SELECT seq, at, who, action, subject, before::text AS before, "
            "after::text AS after, prev_hash, hash FROM audit_log ORDER BY seq"
        )
        yield from cursor


def verify(conn: Conn) -> AuditCheck:
    """Recompute the chain from the first row; name the first row that does not hold."""
    previous, expected_seq, count = "", 1, 0
    try:
        for row in _rows(conn):
            count += 1
            seq = int(row["seq"])
            if seq != expected_seq:
                return AuditCheck(count, seq, f"row {expected_seq} is missing before row {seq}")
            if row["prev_hash"] != previous:
                return AuditCheck(count, seq, "its link to the previous row does not match")
            if row_hash(previous, row) != row["hash"]:
                return AuditCheck(count, seq, "its content does not match its hash")
            previous, expected_seq = row["hash"], seq + 1
    except psycopg.errors.InsufficientPrivilege:
        raise HistoryPermissionError("Your team role may not read the audit trail.") from None
    return AuditCheck(count, None, "")


def export_csv(conn: Conn, stream: TextIO) -> int:
    """Write the audit trail as CSV (a header, then one line per row); the rows written.

    The export itself is noted in the trail first (who exported it, and when).
    """
    _call(conn, "SELECT cactus_audit_note('export audit', 'audit_log', NULL)", ())
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in _rows(conn):
        writer.writerow(
            [guard_cell("" if row[name] is None else str(row[name])) for name in CSV_COLUMNS]
        )
        count += 1
    return count
