"""Manual reconciliation: an operator's final state, and callbacks imported from a file.

A manual state is audited as an event with source ``manual`` and the OS user's name, and the
record's ``status_source`` says ``manual`` until a verified callback confirms it. An import
applies each line as a callback, verified with the profile's salt, and reports per line.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cactus_desk.callbacks.apply import ApplyResult, apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource, insert_event
from cactus_desk.callbacks.lifecycle import FINAL, is_final
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus, status_label
from cactus_desk.payouts.store import HistoryStore, scrub_card_numbers

NOTE_LIMIT = 1000
IMPORT = EventSource.IMPORT
_ALLOWED_STATES = (State.UNKNOWN, State.REFUSED_UNVERIFIED, State.ACCEPTED)


class ReconcileError(ValueError):
    """A manual change that cannot be made; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str = "record") -> None:
        super().__init__(message)
        self.field = field


def current_user() -> str:
    """The OS user name, as the audit trail records it."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown user"


def set_final_state(
    store: HistoryStore,
    record_id: int,
    status: int,
    note: str,
    *,
    invoice_id: str | None = None,
    who: str | None = None,
) -> int:
    """Set record ``record_id`` to success (4) or declined (5) by hand; return the event id.

    Allowed for a record in doubt (UNKNOWN, REFUSED_UNVERIFIED), or an ACCEPTED one whose
    status is not final yet. The note
    is required: it is what a later reader of the audit trail has to go on.
    """
    if isinstance(status, bool) or status not in FINAL:
        raise ReconcileError("Choose Success (4) or Declined (5).", "status")
    note = " ".join(str(note).split())
    if not note:
        raise ReconcileError("Write a note saying how the final state was established.", "note")
    if len(note) > NOTE_LIMIT:
        raise ReconcileError(f"The note is longer than {NOTE_LIMIT} characters.", "note")
    invoice_id = (invoice_id or "").strip() or None
    who = who or current_user()
    with store.write_transaction() as conn:
        row = conn.execute("SELECT * FROM payouts WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise ReconcileError(f"There is no payout with history record {record_id}.")
        state = State(row["state"])
        if state not in _ALLOWED_STATES:
            raise ReconcileError(
                f"Record {record_id} is {state.label.lower()}: only unknown, unverified refused "
                "or accepted payouts can be given a final state by hand."
            )
        if is_final(row["gateway_status"]):
            raise ReconcileError(
                f"Record {record_id} is already final ({status_label(row['gateway_status'])})."
            )
        if invoice_id and row["invoice_id"] and invoice_id != row["invoice_id"]:
            raise ReconcileError(
                f"Record {record_id} already has invoice {row['invoice_id']}.", "invoice_id"
            )
        now = store.now()
        label = GatewayStatus(status).label
        columns: dict[str, Any] = {
            "gateway_status": int(status),
            "status_source": "manual",
            "needs_review": 0,
            "review_message": "",
            "updated_at": now,
        }
        if state.in_doubt:
            columns.update(
                state=str(State.ACCEPTED),
                message=f"Set to {label} by hand ({who})",
                detail=f"Before: {row['message']} {row['detail']}".strip(),
                unknown_kind=None,
            )
        if invoice_id and not row["invoice_id"]:
            columns["invoice_id"] = invoice_id
        assignments = ", ".join(f"{name} = ?" for name in columns)
        conn.execute(
            f"UPDATE payouts SET {assignments} WHERE id = ?", [*columns.values(), record_id]
        )
        return insert_event(
            conn,
            received_at=now,
            source=EventSource.MANUAL,
            outcome=EventOutcome.APPLIED,
            payload={
                "request_id": row["request_id"],
                "invoice_id": invoice_id or row["invoice_id"],
                "status": int(status),
                "previous_state": str(state),
                "previous_status": row["gateway_status"],
                "note": note,
            },
            record_id=record_id,
            status=int(status),
            message=scrub_card_numbers(note),
            who=who,
        )


# -- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRejection:
    """One line of an import that changed nothing, and why."""

    line: int
    reason: str
    request_id: str | None = None

    def __str__(self) -> str:
        request = f" (request_id {self.request_id})" if self.request_id else ""
        return f"line {self.line}{request}: {self.reason}"


@dataclass
class ImportReport:
    """Counts per outcome and one entry per rejected line."""

    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    conflict: int = 0
    rejected: list[ImportRejection] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many callbacks (lines) were read."""
        return self.applied + self.duplicate + self.stale + self.conflict + len(self.rejected)

    def add(self, line: int, result: ApplyResult) -> None:
        """Count one applied callback."""
        if result.rejected:
            reason = result.reason.text if result.reason else "rejected"
            self.rejected.append(ImportRejection(line, reason, result.request_id))
        elif result.outcome is EventOutcome.DUPLICATE:
            self.duplicate += 1
        elif result.outcome is EventOutcome.STALE:
            self.stale += 1
        elif result.outcome is EventOutcome.CONFLICT:
            self.conflict += 1
        else:
            self.applied += 1

    def lines(self) -> list[str]:
        """The report as text: a summary line, then a line per rejected callback."""
        summary = (
            f"{self.total} callback(s): {self.applied} applied, {self.duplicate} duplicate, "
            f"{self.stale} late, {self.conflict} conflicting (need review), "
            f"{len(self.rejected)} rejected"
        )
        return [summary, *(f"  rejected {item}" for item in self.rejected)]


class ImportFileError(ValueError):
    """The file cannot be read as callbacks at all (the message says why)."""


def _csv_value(text: str) -> Any:
    # A nested object (additional_fields) can only travel through CSV as JSON text.
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


def _read_jsonl(stream: TextIO) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError):
            yield number, line.rstrip("\r\n")


def _read_csv(stream: TextIO) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ImportFileError(f"The CSV header cannot be read: {exc}") from None
    names = [name.strip() for name in header]
    if "signature" not in names or "request_id" not in names:
        raise ImportFileError(
            "The CSV header must name the callback fields, including request_id and signature."
        )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"unreadable CSV: {exc}"
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield reader.line_num, ",".join(row)
            continue
        yield (
            reader.line_num,
            {name: _csv_value(cell) for name, cell in zip(names, row, strict=True) if name},
        )


def read_callbacks(stream: TextIO, fmt: str | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, callback dict)`` for each callback; a line that is not one comes as text.

    ``fmt`` is ``"jsonl"`` or ``"csv"``; None looks at the first character (``{`` is JSON).
    """
    if fmt is None:
        text = stream.read()
        fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
        stream = io.StringIO(text)
    if fmt == "jsonl":
        return _read_jsonl(stream)
    if fmt == "csv":
        return _read_csv(stream)
    raise ImportFileError(f"Unknown format {fmt!r}: use jsonl or csv.")


def _format_for(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return None


def import_callbacks(
    store: HistoryStore,
    callbacks: Iterable[tuple[int, Any]],
    salt: str,
    *,
    merchant_id: str | None = None,
    site_id: int | None = None,
) -> ImportReport:
    """Apply each ``(line, callback)`` as an imported callback and report what happened."""
    report = ImportReport()
    for line, callback in callbacks:
        result = apply_callback(
            store, callback, salt, merchant_id=merchant_id, site_id=site_id, source=IMPORT
        )
        report.add(line, result)
    return report


def import_file(
    store: HistoryStore,
    path: Path,
    salt: str,
    *,
    merchant_id: str | None = None,
    site_id: int | None = None,
    fmt: str | None = None,
) -> ImportReport:
    """Import a JSON-lines or CSV file of callbacks (format from ``fmt`` or the file name)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return import_callbacks(
                store,
                read_callbacks(stream, fmt or _format_for(path)),
                salt,
                merchant_id=merchant_id,
                site_id=site_id,
            )
    except UnicodeDecodeError:
        raise ImportFileError(f"{path.name} is not UTF-8 text.") from None
    except OSError as exc:
        raise ImportFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
