"""The time order is the records' creation time, even when the clock stepped back.

A backend may read a text search's matches in the order records were written while that is
the time order; a record stamped earlier than one written before it (the clock was set back)
must still sort by its time, in every kind of page.
"""

from __future__ import annotations

from collections.abc import Callable

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from tests.history.contract.helpers import accepted

HOUR_MS = 3_600_000


def _stepping_back_clock() -> Callable[[], int]:
    """An hour forward per reading, except the eleventh reading: a day back."""
    state = {"now": 1_714_558_953_123, "readings": 0}

    def clock() -> int:
        state["readings"] += 1
        state["now"] += -24 * HOUR_MS if state["readings"] == 11 else HOUR_MS
        return state["now"]

    return clock


def test_text_search_pages_follow_the_time_not_the_writing_order(
    open_store: Callable[..., HistoryStore],
) -> None:
    store = open_store(_stepping_back_clock())
    for i in range(8):
        accepted(store, f"po-{i}", site_login=f"ivan.petrov{i}", invoice_id=f"70000{i}")
    rows = store.page(limit=100)
    assert [row.created_at for row in rows] == sorted((r.created_at for r in rows), reverse=True)
    assert [row.id for row in rows] != sorted((row.id for row in rows), reverse=True), (
        "the clock should have put one record out of writing order"
    )
    expected = [row.id for row in rows]
    for text in ("petrov", "PETROV", "ov"):
        search = HistoryFilter(text=text)
        assert [row.id for row in store.page(search, limit=100)] == expected
        assert [row.id for row in store.page(search, SortKey.CREATED_AT, False, limit=100)] == (
            expected[::-1]
        )
        paged = [
            row.id
            for offset in range(0, 8, 3)
            for row in store.page(search, offset=offset, limit=3)
        ]
        assert paged == expected
        assert store.count(search, cap=5) == 5
        assert store.count(search) == 8


def test_deep_pages_of_a_filter_equal_the_slice_of_its_order(
    open_store: Callable[..., HistoryStore],
) -> None:
    store = open_store(_stepping_back_clock())
    for i in range(12):
        accepted(
            store,
            f"po-{i}",
            currency=("USD", "RUB")[i % 2],
            amount_minor=500 + (i * 7) % 5,
            invoice_id=f"80000{i}",
        )
    usd = HistoryFilter(currency="USD")
    for sort in (SortKey.CREATED_AT, SortKey.AMOUNT):
        for descending in (True, False):
            whole = [row.id for row in store.page(usd, sort, descending, 0, 100)]
            assert len(whole) == 6
            pieces = [
                row.id
                for offset in range(0, 6, 2)
                for row in store.page(usd, sort, descending, offset, 2)
            ]
            assert pieces == whole
    by_amount = store.page(usd, SortKey.AMOUNT, True, 0, 100)
    assert [(r.amount_minor, r.id) for r in by_amount] == sorted(
        ((r.amount_minor, r.id) for r in by_amount), reverse=True
    )
