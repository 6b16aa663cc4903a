"""Reading a batch file as a table of text: CSV (any delimiter, UTF-8 with or without BOM,
or Windows-1251) and XLSX/XLS/ODS through calamine.

Every value is text, so leading zeros and long identifiers survive. A number a spreadsheet
stored as a number with more digits than it can hold exactly is rendered in scientific
notation, which validation flags rather than guesses at.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ROWS = 100_000
# Integers beyond this many digits cannot be held exactly by a spreadsheet's number type.
_EXACT_DIGITS = 15


class BatchFileError(ValueError):
    """The file cannot be read as a batch; the message says why, for a person."""


@dataclass(frozen=True)
class Table:
    """A file's header and rows, all text. ``rows[i]`` is spreadsheet line ``i + 2``."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    sha256: str
    encoding: str = ""
    delimiter: str = ""
    notes: tuple[str, ...] = field(default=())

    def line_of(self, index: int) -> int:
        """The line number a person sees for row ``index`` (the header is line 1)."""
        return index + 2


def file_sha256(data: bytes) -> str:
    """The file's SHA-256 in hex: what identifies an import."""
    return hashlib.sha256(data).hexdigest()


def read_table(path: Path) -> Table:
    """Read ``path`` (by its suffix) as a table of text; raises ``BatchFileError``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BatchFileError(f"{path.name}: cannot be read ({exc.strerror or exc}).") from None
    if size > MAX_FILE_BYTES:
        raise BatchFileError(f"{path.name}: too large (at most {MAX_FILE_BYTES // 2**20} MiB).")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BatchFileError(f"{path.name}: cannot be read ({exc.strerror or exc}).") from None
    suffix = path.suffix.lower()
    if suffix in SPREADSHEET_SUFFIXES:
        return read_spreadsheet(data, path.name)
    if suffix in CSV_SUFFIXES:
        return read_csv(data, path.name)
    raise BatchFileError(
        f"{path.name}: use a .csv, .xlsx, .xls or .ods file (not {suffix or 'no extension'})."
    )


def decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251"), "windows-1251"
    except UnicodeDecodeError:
        raise BatchFileError(
            "The file is neither UTF-8 nor Windows-1251 text; save it as CSV UTF-8."
        ) from None


def read_csv(data: bytes, name: str = "file") -> Table:
    """A CSV file's table; the delimiter is sniffed (comma, semicolon, tab or pipe)."""
    try:
        text, encoding = decode(data)
    except UnicodeDecodeError:
        raise BatchFileError(f"{name}: not UTF-8 text; save it as CSV UTF-8.") from None
    if "\x00" in text:
        raise BatchFileError(f"{name}: this is not a CSV text file.")
    sample = text[:65536]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        delimiter = max(",;\t|", key=first.count)
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    try:
        lines = [tuple(cell.strip() for cell in row) for row in reader]
    except csv.Error as exc:
        raise BatchFileError(f"{name}: not a readable CSV file ({exc}).") from None
    return _table(lines, file_sha256(data), name, encoding=encoding, delimiter=delimiter)


def read_spreadsheet(data: bytes, name: str = "file") -> Table:
    """The first sheet of an XLSX, XLS or ODS file, every cell as text."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = book.get_sheet_by_index(0)
        cells = sheet.to_python(skip_empty_area=False)
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise BatchFileError(
            f"{name}: not a readable spreadsheet ({type(exc).__name__})."
        ) from None
    return _table(_text_lines(cells), file_sha256(data), name)


def _text_lines(cells: Sequence[Sequence[object]]) -> list[tuple[str, ...]]:
    """Every row's cells as text (``cell_text``)."""
    strip = str.strip
    lines = []
    for row in cells:
        try:
            # Most rows (a template's) are text throughout: stripped without a call per cell.
            lines.append(tuple(map(strip, row)))  # type: ignore[arg-type]  # TypeError below
        except TypeError:  # a number, date, boolean or empty cell
            lines.append(tuple(map(cell_text, row)))
    return lines


def cell_text(value: object) -> str:
    """One spreadsheet cell as the text a person typed, as far as it can be known."""
    if type(value) is str:  # most cells: text, as the template formats them
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if len(str(abs(value))) > _EXACT_DIGITS:
            return f"{value:.6E}"
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer():
            if abs(value) >= 10**_EXACT_DIGITS:
                return f"{value:.6E}"  # digits were lost when the spreadsheet stored it
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value).strip()


def _table(
    lines: list[tuple[str, ...]], sha: str, name: str, *, encoding: str = "", delimiter: str = ""
) -> Table:
    # Rows with nothing in them (a spreadsheet's trailing area) are not payouts.
    while lines and not any(lines[-1]):
        lines.pop()
    if not lines or not any(lines[0]):
        raise BatchFileError(f"{name}: the first line must name the columns; it is empty.")
    headers = tuple(cell.strip() for cell in lines[0])
    width = len(headers)
    rows = tuple(
        row if len(row) == width else tuple(row[:width]) + ("",) * (width - len(row))
        for row in lines[1:]
    )
    if len(rows) > MAX_ROWS:
        raise BatchFileError(f"{name}: too many rows (at most {MAX_ROWS:,}).")
    notes = tuple(
        f"line {index + 2}: {len(row) - width} cell(s) beyond the named columns were ignored"
        for index, row in enumerate(lines[1:])
        if len(row) > width and any(row[width:])
    )
    return Table(headers, rows, sha, encoding=encoding, delimiter=delimiter, notes=notes)
