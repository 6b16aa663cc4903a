"""Batch templates per method: XLSX (one column per field, identifier columns formatted as
text, an example row, a notes sheet) and CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cactus_desk.batch.columns import BASE_COLUMNS
from cactus_desk.catalog import MethodSpec

_NUMBER_FIELDS = ("amount",)


def template_columns(method: MethodSpec) -> list[str]:
    """The template's columns: the base columns, then the method's fields by wire name."""
    return [*BASE_COLUMNS, *(spec.wire for spec in method.fields)]


def example_row(method: MethodSpec) -> list[str]:
    """A filled-in example row for ``method``."""
    currency = method.currencies[0]
    values = {
        "site_login": "user123",
        "amount": "1500.00",
        "currency": currency,
        "method": method.wire,
    }
    for spec in method.fields:
        values[spec.wire] = spec.example
    return [values[column] for column in template_columns(method)]


def notes(method: MethodSpec) -> list[tuple[str, str]]:
    """The notes sheet: what each column means."""
    lines = [
        ("site_login", "The user's login on your site (required)."),
        ("amount", "In major units as typed in the form, e.g. 1500.00 (required)."),
        ("currency", "One of: " + ", ".join(method.currencies) + " (required)."),
        ("method", f"{method.wire} ({method.label}) (required)."),
        (
            "request_id",
            "Optional column: leave it out and each row gets an id derived from "
            "the file and its line, so sending the file again never pays a row twice.",
        ),
    ]
    for spec in method.fields:
        need = "required" if spec.required else "optional"
        extra = " Write true or false." if spec.kind == "bool" else ""
        lines.append((spec.wire, f"{spec.label} ({need}), e.g. {spec.example}.{extra}"))
    lines.append(
        (
            "",
            "Identifier columns are formatted as text: keep them so, or a "
            "spreadsheet drops leading zeros and shortens long numbers.",
        )
    )
    return lines


def write_template(method: MethodSpec, path: Path) -> None:
    """Write the template for ``method`` to ``path`` (XLSX for ``.xlsx``, else CSV)."""
    columns = template_columns(method)
    if path.suffix.lower() != ".xlsx":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerow(example_row(method))
        path.write_text(buffer.getvalue(), encoding="utf-8-sig", newline="")
        return
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Payouts"
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.append(example_row(method))
    for index, column in enumerate(columns, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(14, len(column) + 4)
        if column in _NUMBER_FIELDS:
            continue
        # Text format for the whole column, so typed identifiers keep every digit.
        sheet.column_dimensions[letter].number_format = "@"
        for row in range(2, 1002):
            sheet.cell(row=row, column=index).number_format = "@"
    info = book.create_sheet("Notes")
    info.append(["column", "meaning"])
    for name, text in notes(method):
        info.append([name, text])
    info.column_dimensions["A"].width = 18
    info.column_dimensions["B"].width = 100
    book.save(path)
