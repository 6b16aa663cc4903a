"""Manual reconciliation: an operator's final state, and callbacks imported from a file.

A manual state is audited as an event with source ``manual`` and the OS user's name, and the
record's ``status_source`` says ``manual`` until a verified callback confirms it. An import
applies each line as a callback, verified with the profile's salt, and reports per line.
"""

from __future__ import annotations

import csv
import getpass
import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from cactus_desk.callbacks.apply import ApplyResult, apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.callbacks.lifecycle import FINAL
from cactus_desk.callbacks.rules import ReconcileError
from cactus_desk.history.port import HistoryStore

log = logging.getLogger(__name__)

NOTE_LIMIT = 1000
IMPORT = EventSource.IMPORT


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
    return store.set_final_state(
        record_id, status, note, invoice_id=invoice_id, who=who or current_user()
    )


# -- import -----------------------------------------------------------------------------------

# A callback is a small object; the receiver takes no body over 64 KiB, nor does an import line.
MAX_LINE_BYTES = 64 * 1024
# An overlong line is skipped up to its end; one with no end in sight (say /dev/zero) stops the
# import after this much, with the report of every line before it.
MAX_SKIP_BYTES = 16 * 1024 * 1024
# Past this many rejected lines only their number grows, so a hostile file keeps memory flat.
MAX_REJECTIONS_KEPT = 1000
_READ_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"


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
    """Counts per outcome and one entry per rejected line (the first ``MAX_REJECTIONS_KEPT``).

    ``stopped`` says why the import ended before the end of the file, if it did.
    """

    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    conflict: int = 0
    rejected: list[ImportRejection] = field(default_factory=list)
    rejected_more: int = 0
    stopped: str | None = None

    @property
    def total(self) -> int:
        """How many callbacks (lines) were read."""
        return (
            self.applied
            + self.duplicate
            + self.stale
            + self.conflict
            + len(self.rejected)
            + self.rejected_more
        )

    @property
    def rejected_count(self) -> int:
        """How many lines were rejected, listed or not."""
        return len(self.rejected) + self.rejected_more

    def reject(self, line: int, reason: str, request_id: str | None = None) -> None:
        """Count one line that changed nothing."""
        if len(self.rejected) < MAX_REJECTIONS_KEPT:
            self.rejected.append(ImportRejection(line, reason, request_id))
        else:
            self.rejected_more += 1

    def add(self, line: int, result: ApplyResult) -> None:
        """Count one applied callback."""
        if result.rejected:
            reason = result.reason.text if result.reason else "rejected"
            self.reject(line, reason, result.request_id)
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
            f"{self.rejected_count} rejected"
        )
        lines = [summary, *(f"  rejected {item}" for item in self.rejected)]
        if self.rejected_more:
            lines.append(f"  … and {self.rejected_more} more rejected line(s), not listed")
        if self.stopped:
            lines.append(f"Import stopped: {self.stopped}")
        return lines


class ImportFileError(ValueError):
    """The file cannot be read as callbacks at all (the message says why)."""


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be a callback before it is even parsed (too long, not UTF-8)."""

    reason: str


class _Endless(Exception):
    """A line with no end within ``MAX_SKIP_BYTES``."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _physical_lines(binary: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """``(number, text)`` per line, or ``(number, BadLine)``; never more than ``limit`` bytes
    of one line in memory. Raises ``_Endless`` for a line that does not end in time."""
    number = 0
    while True:
        raw = binary.readline(limit + 1)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if len(raw) > limit and not raw.endswith(b"\n"):
            skipped = len(raw)
            while not raw.endswith(b"\n"):
                raw = binary.readline(_READ_CHUNK)
                if not raw:
                    break
                skipped += len(raw)
                if skipped > MAX_SKIP_BYTES:
                    raise _Endless(number)
            yield number, BadLine(f"longer than {limit // 1024} KiB: not a callback")
            continue
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, BadLine("not UTF-8 text")


def _csv_value(text: str) -> Any:
    # A nested object (additional_fields) can only travel through CSV as JSON text.
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            return text
    return text


def _read_jsonl(lines: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    for number, line in lines:
        if isinstance(line, BadLine):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError):
            yield number, line.rstrip("\r\n")


def _read_csv(lines: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    bad: list[tuple[int, BadLine]] = []

    def text() -> Iterator[str]:
        for number, line in lines:
            if isinstance(line, BadLine):
                bad.append((number, line))
                yield "\n"  # keeps the reader's line count; the line itself is reported
            else:
                yield line

    def flush() -> Iterator[tuple[int, Any]]:
        while bad:
            yield bad.pop(0)

    reader = csv.reader(text())
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
    yield from flush()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            yield from flush()
            return
        except csv.Error as exc:
            yield from flush()
            yield reader.line_num, f"unreadable CSV: {exc}"
            continue
        yield from flush()
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield reader.line_num, ",".join(row)[:MAX_LINE_BYTES]
            continue
        yield (
            reader.line_num,
            {name: _csv_value(cell) for name, cell in zip(names, row, strict=True) if name},
        )


def _sniff(lines: Iterator[tuple[int, Any]]) -> tuple[str, Iterator[tuple[int, Any]]]:
    """The format from the first line with text (``{`` is JSON lines), and all the lines."""
    seen: list[tuple[int, Any]] = []
    fmt = "csv"
    for item in lines:
        seen.append(item)
        line = item[1]
        if isinstance(line, BadLine) or not line.strip():
            continue
        fmt = "jsonl" if line.lstrip().startswith("{") else "csv"
        break
    return fmt, itertools.chain(seen, lines)


def read_callbacks(
    stream: TextIO | Iterable[tuple[int, Any]], fmt: str | None = None
) -> Iterator[tuple[int, Any]]:
    """``(line number, callback dict)`` for each callback; a line that is not one comes as text
    (or a ``BadLine``).

    ``stream`` is text, or ``(number, line)`` pairs; ``fmt`` is ``"jsonl"`` or ``"csv"``, and
    None looks at the first line with text (``{`` is JSON). Nothing is read ahead beyond it.
    """
    if fmt not in (None, "jsonl", "csv"):
        raise ImportFileError(f"Unknown format {fmt!r}: use jsonl or csv.")
    if hasattr(stream, "read"):
        lines: Iterator[tuple[int, Any]] = enumerate(stream, start=1)
    else:
        lines = iter(stream)
    if fmt is None:
        fmt, lines = _sniff(lines)
    return _read_jsonl(lines) if fmt == "jsonl" else _read_csv(lines)


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
    report: ImportReport | None = None,
) -> ImportReport:
    """Apply each ``(line, callback)`` as an imported callback and report what happened."""
    report = ImportReport() if report is None else report
    for line, callback in callbacks:
        if isinstance(callback, BadLine):
            report.reject(line, callback.reason)
            continue
        try:
            result = apply_callback(
                store, callback, salt, merchant_id=merchant_id, site_id=site_id, source=IMPORT
            )
        except Exception as exc:  # one hostile line must not hide the report of the others
            log.error("imported callback on line %d could not be applied: %r", line, exc)
            report.reject(line, f"could not be applied ({type(exc).__name__})")
            continue
        report.add(line, result)
    return report


def _check_text(binary: IO[bytes], name: str) -> None:
    """Refuse a file whose start is not text (a photo, /dev/zero) before anything is applied."""
    start = binary.peek(_READ_CHUNK)[:_READ_CHUNK] if hasattr(binary, "peek") else b""
    if b"\x00" in start:
        raise ImportFileError(f"{name} is not a text file (it contains NUL bytes).")
    first = start.split(b"\n", 1)[0]
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut at the end of what was peeked at is not an error.
        if exc.end < len(first) or exc.reason != "unexpected end of data":
            raise ImportFileError(f"{name} is not UTF-8 text.") from None


def import_file(
    store: HistoryStore,
    path: Path,
    salt: str,
    *,
    merchant_id: str | None = None,
    site_id: int | None = None,
    fmt: str | None = None,
) -> ImportReport:
    """Import a JSON-lines or CSV file of callbacks (format from ``fmt`` or the file name).

    The file is streamed, a line at a time: any size, with lines capped at
    ``MAX_LINE_BYTES``; every line gets a result in the report, a hostile one included.
    """
    path = Path(path)
    report = ImportReport()
    try:
        with path.open("rb") as binary:
            _check_text(binary, path.name)
            lines = _physical_lines(binary)
            try:
                import_callbacks(
                    store,
                    read_callbacks(lines, fmt or _format_for(path)),
                    salt,
                    merchant_id=merchant_id,
                    site_id=site_id,
                    report=report,
                )
            except _Endless as exc:
                report.reject(exc.line, "a line with no end: not a callback file")
                report.stopped = (
                    f"line {exc.line} ran past {MAX_SKIP_BYTES // (1024 * 1024)} MiB without "
                    "ending; the rest of the file was not read."
                )
    except OSError as exc:
        raise ImportFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return report
