from __future__ import annotations

import csv
import io

from cactus_desk.gateway.outcomes import Accepted, Rejected
from cactus_desk.history.export import HEADER, export_csv, guard_cell, recipient_columns
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from tests.payouts.conftest import make_attempt


def _export(store: HistoryStore, history_filter: HistoryFilter | None = None) -> list[list[str]]:
    stream = io.StringIO(newline="")
    written = export_csv(
        store, history_filter or HistoryFilter(), SortKey.CREATED_AT, False, stream
    )
    rows = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert written == len(rows) - 1
    return rows


def test_the_export_has_a_header_and_one_readable_row_per_payout(store: HistoryStore) -> None:
    first = store.create_attempt(make_attempt())
    store.record_outcome(first, Accepted("1314", 3, "Payout initialized"))
    store.create_attempt(make_attempt(request_id="po-2", currency="VND", amount_minor=5000))
    store.create_attempt(make_attempt(request_id="po-3", currency="USD", amount_minor=2**53))
    rows = _export(store)
    assert rows[0] == list(HEADER)
    table = [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]
    assert table[0] == {
        "Record": str(first),
        "Created (UTC)": "2024-05-01T10:22:33.123Z",
        "Updated (UTC)": "2024-05-01T10:22:34.123Z",
        "Profile": "Main shop",
        "Environment": "sandbox",
        "Merchant ID": "m_demo",
        "Site ID": "7",
        "Request ID": "po-0001",
        "Invoice ID": "1314",
        "Site login": "alice",
        "Method": "card",
        "Currency": "RUB",
        "Amount": "1500.00",
        "Amount (minor units)": "150000",
        "State": "Accepted",
        "Gateway status": "Processing (3)",
        "Message": "Payout initialized",
        "Detail": "",
        "Recipient": "card_holder=Ivan Petrov; card_number=411111******1111",
        **dict.fromkeys(recipient_columns(), ""),
        "card_holder": "Ivan Petrov",
        "card_number": "411111******1111",
    }
    assert (table[1]["Amount"], table[1]["State"], table[1]["Gateway status"]) == (
        "5000",
        "Submitting",
        "",
    )
    assert table[2]["Amount"] == "90071992547409.92"


def test_the_export_follows_the_filter(store: HistoryStore) -> None:
    store.create_attempt(make_attempt())
    rejected = store.create_attempt(make_attempt(request_id="po-2"))
    store.record_outcome(rejected, Rejected("Insufficient funds", signature_verified=True))
    rows = _export(store, HistoryFilter(states=frozenset({"REJECTED"})))
    assert [row[0] for row in rows[1:]] == [str(rejected)]
    assert _export(store, HistoryFilter(text="nothing matches")) == [list(HEADER)]


def test_cells_a_spreadsheet_would_run_are_neutralised(store: HistoryStore) -> None:
    record_id = store.create_attempt(
        make_attempt(site_login='=HYPERLINK("http://evil","x")', request_id="@SUM(A1)")
    )
    store.record_outcome(record_id, Rejected("+cmd|' /C calc'!A0"))
    row = dict(zip(HEADER, _export(store)[1], strict=True))
    assert row["Site login"] == '\'=HYPERLINK("http://evil","x")'
    assert row["Request ID"] == "'@SUM(A1)"
    assert row["Message"] == "'+cmd|' /C calc'!A0"
    assert guard_cell("-1") == "'-1" and guard_cell("\t=1") == "'\t=1"
    assert guard_cell("plain") == "plain"


def test_a_currency_missing_from_the_data_keeps_the_minor_units(store: HistoryStore) -> None:
    store.create_attempt(make_attempt(currency="KZT", amount_minor=900000))
    row = dict(zip(HEADER, _export(store)[1], strict=True))
    assert (row["Amount"], row["Amount (minor units)"]) == ("", "900000")
