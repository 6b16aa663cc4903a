"""The baselines' hand-written queries show the very rows the app shows for each action.

A lower bound of a different result would be no bound at all: each query is checked against
the store's own page for the same filter and sort, on a tiny generated history.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks.app_api import HistoryFilter, HistoryStore, SortKey
from benchmarks.baselines import PAGE, queries, side_index
from benchmarks.generate import timeline_ids
from benchmarks.history import SHORT_QUERY, TEXT_QUERY
from tests.benchmarks.conftest import ROWS

REJECTED_USD = HistoryFilter(states=frozenset({"REJECTED"}), currency="USD")


@pytest.fixture(scope="module")
def shown(tiny_history: Path) -> dict[str, list[int]]:
    """The ids (or event record ids) each baseline query shows."""
    side = side_index(tiny_history)
    conn = sqlite3.connect(f"file:{tiny_history}?mode=ro", uri=True)
    conn.execute("ATTACH DATABASE ? AS side", (f"file:{side}?mode=ro",))
    try:
        return {name: [row[0] for row in query(conn)] for name, query in queries(ROWS).items()}
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("name", "history_filter", "sort"),
    [
        ("open", HistoryFilter(), SortKey.CREATED_AT),
        ("filter_text", HistoryFilter(text=TEXT_QUERY), SortKey.CREATED_AT),
        ("filter_text_short", HistoryFilter(text=SHORT_QUERY), SortKey.CREATED_AT),
        ("filter_state_currency", REJECTED_USD, SortKey.CREATED_AT),
        ("sort_amount", HistoryFilter(), SortKey.AMOUNT),
        ("sort_amount_filtered", REJECTED_USD, SortKey.AMOUNT),
    ],
)
def test_a_baseline_shows_the_first_page_the_store_shows(
    tiny_history: Path,
    shown: dict[str, list[int]],
    name: str,
    history_filter: HistoryFilter,
    sort: SortKey,
) -> None:
    with HistoryStore(tiny_history) as store:
        expected = [row.id for row in store.page(history_filter, sort, True, limit=PAGE)]
    assert expected  # a query with nothing to show would bound nothing
    assert shown[name] == expected


def test_the_jump_baselines_show_the_last_and_the_middle_rows(
    shown: dict[str, list[int]],
) -> None:
    assert shown["jump_last"] == list(range(PAGE, 0, -1))
    assert shown["jump_middle"][0] == ROWS - ROWS // 2
    assert len(shown["jump_middle"]) == PAGE


def test_the_details_baseline_reads_the_twenty_event_timeline(
    tiny_history: Path,
) -> None:
    record_id = timeline_ids(ROWS)[1]
    conn = sqlite3.connect(tiny_history)
    conn.execute("ATTACH DATABASE ? AS side", (str(side_index(tiny_history)),))
    try:
        events = queries(ROWS)["details"](conn)
        owners = {
            row[0]
            for row in conn.execute(
                f"SELECT record_id FROM events WHERE id IN ({','.join(str(e[0]) for e in events)})"
            )
        }
    finally:
        conn.close()
    assert len(events) >= 20
    assert owners == {record_id}
