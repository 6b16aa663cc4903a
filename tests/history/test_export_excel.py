"""The CSV export for spreadsheets: a UTF-8 BOM on request, recipient fields in their own
columns (issue 11, item 19), from the core, the command line and the window."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from cactus_desk import cli
from cactus_desk.history import open_history
from cactus_desk.history.export import BOM, HEADER, export_csv, recipient_columns
from cactus_desk.history.types import HistoryFilter, SortKey
from cactus_desk.logs import stop_logging
from cactus_desk.profiles import ProfileStore
from cactus_desk.ui.history.panel import HistoryPanel
from tests.payouts.conftest import make_attempt

UTF8_BOM = b"\xef\xbb\xbf"


@pytest.fixture(autouse=True)
def _close_the_log_file() -> Iterator[None]:
    yield
    stop_logging()


@pytest.fixture
def filled(data_home: Path) -> Path:
    """A card payout and a phone payout, with non-Latin names; returns the data folder."""
    with open_history(data_home) as store:
        store.create_attempt(
            make_attempt(
                request_fields={"card_number": "411111******1111", "card_holder": "Иван Пётр"}
            )
        )
        store.create_attempt(
            make_attempt(
                request_id="po-2",
                method="sbp",
                request_fields={
                    "phone_number": "79990000000",
                    "phone_holder": "=HYPERLINK(1)",
                    "bank_name": "Сбер",
                },
            )
        )
    return data_home


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_each_recipient_field_has_its_own_column(filled: Path) -> None:
    assert {"card_number", "card_holder", "phone_number", "bank_name"} <= set(recipient_columns())
    assert HEADER[-len(recipient_columns()) :] == recipient_columns()
    assert len(set(HEADER)) == len(HEADER)
    stream = io.StringIO(newline="")
    with open_history(filled) as store:
        export_csv(store, HistoryFilter(), SortKey.CREATED_AT, False, stream)
    card, phone = _rows(stream.getvalue())
    assert (card["card_number"], card["card_holder"]) == ("411111******1111", "Иван Пётр")
    assert card["phone_number"] == "" and card["bank_name"] == ""
    assert (phone["phone_number"], phone["bank_name"]) == ("79990000000", "Сбер")
    assert phone["phone_holder"] == "'=HYPERLINK(1)"  # a formula stays text
    assert phone["card_number"] == ""
    assert not stream.getvalue().startswith(BOM)


def test_the_bom_is_written_only_on_request(filled: Path) -> None:
    with open_history(filled) as store:
        plain, excel = io.StringIO(newline=""), io.StringIO(newline="")
        export_csv(store, HistoryFilter(), SortKey.CREATED_AT, False, plain)
        export_csv(store, HistoryFilter(), SortKey.CREATED_AT, False, excel, bom=True)
    assert excel.getvalue() == BOM + plain.getvalue()


def test_history_export_bom_on_the_command_line(
    filled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    excel, plain = tmp_path / "excel.csv", tmp_path / "plain.csv"
    assert cli.main(["history", "export", "--bom", "--output", str(excel)]) == 0
    assert cli.main(["history", "export", "--output", str(plain)]) == 0
    capsys.readouterr()
    assert excel.read_bytes() == UTF8_BOM + plain.read_bytes()
    assert not plain.read_bytes().startswith(UTF8_BOM)
    rows = _rows(excel.read_text(encoding="utf-8-sig"))
    assert rows[0]["card_holder"] == "Иван Пётр"

    assert cli.main(["history", "export", "--bom"]) == 0
    assert capsys.readouterr().out.startswith(BOM + "Record,")


def test_the_windows_export_offers_the_bom_for_excel(
    qtbot: QtBot, filled: Path, tmp_path: Path
) -> None:
    store = open_history(filled)
    try:
        panel = HistoryPanel(store, ProfileStore(filled))
        qtbot.addWidget(panel)
        panel.show()
        check = panel.export_bom_check
        assert check.isVisible() and not check.isChecked()
        plain = tmp_path / "plain.csv"
        with qtbot.waitSignal(panel.exportFinished, timeout=5_000):
            panel.export_csv(plain)

        qtbot.mouseClick(check, Qt.MouseButton.LeftButton)
        assert check.isChecked()
        excel = tmp_path / "excel.csv"
        with qtbot.waitSignal(panel.exportFinished, timeout=5_000):
            panel.export_csv(excel)
    finally:
        store.close()
    assert excel.read_bytes().startswith(UTF8_BOM)
    assert not plain.read_bytes().startswith(UTF8_BOM)
    rows = _rows(excel.read_text(encoding="utf-8-sig"))
    assert {row["card_number"] for row in rows} == {"411111******1111", ""}
