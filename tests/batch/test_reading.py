"""Reading batch files: every value as text, any delimiter, the encodings people save in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cactus_desk.batch.reading import BatchFileError, _text_lines, cell_text, read_table
from tests.batch.files import ACCOUNT, write_csv, write_xlsx

HEADERS = ["site_login", "amount", "currency", "method", "account_number", "account_holder"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_csv_with_any_delimiter_keeps_leading_zeros_and_twenty_digits(
    tmp_path: Path, delimiter: str
) -> None:
    path = write_csv(
        tmp_path / "batch.csv",
        HEADERS,
        [["007", "1500.50", "RUB", "localbanks", ACCOUNT, "Ivan Petrov"]],
        delimiter=delimiter,
    )
    table = read_table(path)
    assert table.delimiter == delimiter
    assert table.headers == tuple(HEADERS)
    assert table.rows == (("007", "1500.50", "RUB", "localbanks", ACCOUNT, "Ivan Petrov"),)


def test_utf8_with_a_bom_does_not_leak_into_the_first_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bom.csv", HEADERS, [["a", "1", "RUB", "x", "1", "Иван"]])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    table = read_table(path)
    assert table.headers[0] == "site_login"
    assert table.encoding == "utf-8-sig"
    assert table.rows[0][5] == "Иван"


def test_a_windows_1251_csv_imports(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "cp1251.csv",
        HEADERS,
        [["ivan", "100", "RUB", "localbanks", ACCOUNT, "Иван Петров"]],
        delimiter=";",
        encoding="cp1251",
    )
    table = read_table(path)
    assert table.encoding == "windows-1251"
    assert table.rows[0][5] == "Иван Петров"
    assert table.rows[0][4] == ACCOUNT


def test_xlsx_text_cells_keep_leading_zeros_and_twenty_digits(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "batch.xlsx",
        HEADERS,
        [["007", 1500.5, "RUB", "localbanks", ACCOUNT, "Ivan"], ["008", 12, "RUB", "x", "1", "I"]],
        text_columns=["account_number", "site_login"],
    )
    table = read_table(path)
    assert table.rows[0] == ("007", "1500.5", "RUB", "localbanks", ACCOUNT, "Ivan")
    assert table.rows[1][1] == "12"  # a whole number cell is its digits, not "12.0"


def test_a_long_number_the_spreadsheet_stored_as_a_number_reads_as_scientific(
    tmp_path: Path,
) -> None:
    path = write_xlsx(
        tmp_path / "lost.xlsx", HEADERS, [["a", 1, "RUB", "localbanks", 4242424242424242, "I"]]
    )
    [row] = read_table(path).rows
    assert row[4] == "4.242424E+15"  # flagged by validation, never guessed back


CELLS = st.one_of(
    st.text(),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.timedeltas(max_value=dt.timedelta(days=10_000)),
)


@given(st.lists(st.lists(st.text(), max_size=8) | st.lists(CELLS, max_size=8), max_size=6))
def test_rows_of_text_read_in_one_pass_read_as_each_cell_does(rows: list[list[object]]) -> None:
    """The one-pass strip of a text row gives what ``cell_text`` gives cell by cell, and a
    row with any other cell (at any place) falls back to it."""
    assert _text_lines(rows) == [tuple(map(cell_text, row)) for row in rows]


def test_the_file_sha256_identifies_the_bytes(tmp_path: Path) -> None:
    one = write_csv(tmp_path / "a.csv", HEADERS, [["a", "1", "RUB", "x", "1", "I"]])
    two = write_csv(tmp_path / "b.csv", HEADERS, [["a", "1", "RUB", "x", "1", "I"]])
    three = write_csv(tmp_path / "c.csv", HEADERS, [["a", "2", "RUB", "x", "1", "I"]])
    assert read_table(one).sha256 == read_table(two).sha256 != read_table(three).sha256


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("x.pdf", b"%PDF", "use a .csv"),
        ("x.xlsx", b"not a zip", "not a readable spreadsheet"),
        ("x.csv", b"", "must name the columns"),
        ("x.csv", b"\xff\xfe\x00a\x00b", "not a CSV"),
    ],
)
def test_a_file_that_is_not_a_batch_gets_a_plain_error(
    tmp_path: Path, name: str, data: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BatchFileError, match=words):
        read_table(path)
