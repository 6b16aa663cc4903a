"""The batch report: every row with its state, invoice id and latest status from the history
(so it is current as callbacks arrive), as CSV or XLSX. Recipient fields are masked as the
history keeps them; no secret is in it."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from cactus_desk.batch.validate import Batch
from cactus_desk.history.types import PayoutRecord
from cactus_desk.money import format_major

HEADERS = (
    "line",
    "request_id",
    "site_login",
    "method",
    "currency",
    "amount",
    "state",
    "gateway_status",
    "invoice_id",
    "record_id",
    "message",
    "errors",
)


def report_rows(batch: Batch, records: Mapping[str, PayoutRecord]) -> list[tuple[str, ...]]:
    """One line per row of ``batch``: its history record when it has one, else why not."""
    lines: list[tuple[str, ...]] = []
    for row in batch.rows:
        record = records.get(row.request_id)
        payout = row.payout
        amount = row.values.get("amount", "")
        if payout is not None:
            amount = format_major(payout.amount_minor, batch.profile.currency(payout.currency))
            amount = amount.replace(" ", "")
        errors = "; ".join(f"{key}: {message}" for key, message in row.errors.items())
        if record is None:
            state = "Invalid" if row.errors else "Not sent"
            lines.append(
                (
                    str(row.line),
                    row.request_id,
                    row.values.get("site_login", ""),
                    row.values.get("method", ""),
                    row.values.get("currency", ""),
                    amount,
                    state,
                    "",
                    "",
                    "",
                    "",
                    errors,
                )
            )
            continue
        lines.append(
            (
                str(row.line),
                record.request_id,
                record.site_login,
                record.method,
                record.currency,
                amount,
                record.state.label,
                "" if record.gateway_status is None else str(record.gateway_status),
                record.invoice_id or "",
                str(record.id),
                record.message,
                errors,
            )
        )
    return lines


def _safe(cell: str) -> str:
    # A cell starting with = + - @ would run as a formula when the report is opened.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def write_report(path: Path, lines: Sequence[tuple[str, ...]]) -> None:
    """Write the report to ``path``: XLSX for ``.xlsx``, else CSV (UTF-8 with BOM)."""
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(path, lines)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for line in lines:
        writer.writerow([_safe(cell) for cell in line])
    path.write_text(buffer.getvalue(), encoding="utf-8-sig", newline="")


def _write_xlsx(path: Path, lines: Sequence[tuple[str, ...]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Report"
    sheet.append(list(HEADERS))
    for line in lines:
        sheet.append([_safe(cell) for cell in line])
    for column in sheet.iter_cols(min_row=1, max_row=sheet.max_row):
        for cell in column:
            cell.number_format = "@"  # text: ids and invoice numbers keep every digit
    book.save(path)
