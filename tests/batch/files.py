"""Batch files for tests, written the way people's tools write them."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

CARD = "4242424242424242"
# A 20-digit account number with leading zeros: what spreadsheets destroy.
ACCOUNT = "00702810800070000366"

CARD_HEADERS = ["site_login", "amount", "currency", "method", "card_number", "card_holder"]


def write_csv(
    path: Path,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    """A CSV file with ``headers`` and ``rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(
    path: Path,
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    text_columns: Sequence[str] = (),
) -> Path:
    """An XLSX file; values keep their Python type (a float is a spreadsheet number)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    for index, header in enumerate(headers, start=1):
        if header in text_columns:
            for cell_row in range(2, len(rows) + 2):
                sheet.cell(row=cell_row, column=index).number_format = "@"
    book.save(path)
    return path


def card_rows(count: int, *, start: int = 0, amount: str = "10.00") -> list[list[str]]:
    """``count`` valid RUB card payouts to different logins."""
    return [
        [f"user{start + n:05d}", amount, "RUB", "card", CARD, "Ivan Petrov"] for n in range(count)
    ]
