"""A page that sorts every match keeps the order's first rows; the next pages read them by id,
and a change to the history makes the next page sort again. The facts a query's pages each
need (how many payouts a text matches) are kept the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.kept_orders import KEPT_FACTS, KEPT_ORDERS, KeptOrders
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryRow, SortKey
from tests.payouts.conftest import make_attempt

STATUS = 3  # the gateway status every accepted payout here has
BY_STATUS = HistoryFilter(gateway_statuses=frozenset({STATUS}))


def test_an_order_is_given_back_only_at_its_version_and_as_far_as_it_reaches() -> None:
    orders = KeptOrders()
    orders.keep("q", 7, list(range(100, 110)), complete=False)
    assert orders.ids("q", 7, 2, 3) == [102, 103, 104]
    assert orders.ids("q", 7, 8, 2) == [108, 109]
    assert orders.ids("q", 7, 8, 3) is None  # past the kept rows, and more may follow
    assert orders.ids("q", 8, 0, 1) is None  # the history changed since
    assert orders.ids("other", 7, 0, 1) is None
    orders.keep("all", 7, [1, 2], complete=True)
    assert orders.ids("all", 7, 1, 5) == [2]  # every match is kept: the end of the list
    assert orders.ids("all", 7, 4, 5) == []


def test_only_the_most_recently_used_orders_are_kept() -> None:
    orders = KeptOrders()
    for key in range(KEPT_ORDERS):
        orders.keep(key, 1, [key], complete=True)
    assert orders.ids(0, 1, 0, 1) == [0]  # used: the oldest is now key 1
    orders.keep("new", 1, [9], complete=True)
    assert orders.ids(1, 1, 0, 1) is None
    assert orders.ids(0, 1, 0, 1) == [0]
    assert orders.ids("new", 1, 0, 1) == [9]


def test_a_fact_is_given_back_only_at_its_version_and_none_is_a_fact_too() -> None:
    orders = KeptOrders()
    assert orders.fact("count", 7) is None
    orders.keep_fact("count", 7, 118_000)
    orders.keep_fact("few", 7, None)  # "too many to count": kept like any other answer
    assert orders.fact("count", 7) == (118_000,)
    assert orders.fact("few", 7) == (None,)
    assert orders.fact("count", 8) is None  # the history changed since
    for key in range(KEPT_FACTS):
        orders.keep_fact(key, 7, key)
    assert orders.fact("count", 7) is None  # the least recently used went
    assert orders.fact(0, 7) == (0,)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[SqliteHistoryStore]:
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    for i in range(40):
        _add(store, i, accepted=i % 4 != 0)
    yield store
    store.close()


def _add(store: SqliteHistoryStore, i: int, *, accepted: bool) -> int:
    record_id = store.create_attempt(
        make_attempt(request_id=f"po-{i:04d}", amount_minor=1_000 + (i * 37) % 23)
    )
    if accepted:
        store.record_outcome(record_id, Accepted(f"INV-{i}", STATUS, "Payout initialized"))
    else:
        store.record_outcome(record_id, Rejected("Insufficient funds", signature_verified=True))
    return record_id


def _by_amount(store: SqliteHistoryStore) -> list[int]:
    rows: list[HistoryRow] = store.page(HistoryFilter(), limit=1_000)
    matching = [row for row in rows if row.gateway_status == STATUS]
    return [row.id for row in sorted(matching, key=lambda row: (row.amount_minor, row.id))]


@pytest.fixture
def sorts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets of the sorts of every match that pages run (walks and merges of ranges
    give up at once)."""
    monkeypatch.setattr(store_module, "_NARROWED_WALK_STEPS", 1)
    monkeypatch.setattr(store_module, "_merged_triples", lambda *args: None)
    found: list[int] = []
    select = store_module._select

    def spied(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ids_only"):
            found.append(args[4])
        return select(*args, **kwargs)

    monkeypatch.setattr(store_module, "_select", spied)
    return found


def _page(store: SqliteHistoryStore, offset: int, limit: int = 5) -> list[int]:
    return [row.id for row in store.page(BY_STATUS, SortKey.AMOUNT, False, offset, limit)]


def test_the_next_pages_read_the_order_the_first_page_sorted(
    history: SqliteHistoryStore, sorts: list[int]
) -> None:
    expected = _by_amount(history)
    assert _page(history, 0) == expected[:5]
    assert sorts == [0]  # the first page sorted every match, keeping the order
    for offset in (5, 12, len(expected) - 3):
        assert _page(history, offset) == expected[offset : offset + 5]
    assert sorts == [0]  # no page sorted again
    assert _page(history, len(expected)) == []


def test_a_change_to_the_history_makes_the_next_page_sort_again(
    history: SqliteHistoryStore, sorts: list[int]
) -> None:
    _page(history, 0)
    cheapest = history.create_attempt(make_attempt(request_id="po-new", amount_minor=1))
    history.record_outcome(cheapest, Accepted("INV-new", STATUS, "Payout initialized"))
    expected = _by_amount(history)
    assert expected[0] == cheapest
    assert _page(history, 0, 40) == expected
    assert len(sorts) == 2


def test_other_filters_and_orders_are_kept_apart(
    history: SqliteHistoryStore, sorts: list[int]
) -> None:
    _page(history, 0)
    descending = [row.id for row in history.page(BY_STATUS, SortKey.AMOUNT, True, 0, 40)]
    assert descending == _by_amount(history)[::-1]
    assert len(sorts) == 2


def test_a_short_search_far_down_walks_briefly_then_keeps_its_sort(
    history: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Far down a 1-2 character search the walk's clock is short: the sort it falls back to
    is kept, so it is paid once rather than a walk for every page. In time order the walk
    costs only what the page's depth does, and keeps its full clock."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 3)
    monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 0)  # as many as at 5M rows
    budgets: list[float | None] = []

    def gives_up(*args: Any, **kwargs: Any) -> None:
        budgets.append(kwargs.get("seconds"))

    monkeypatch.setattr(store_module, "_walk_or_none", gives_up)
    short = HistoryFilter(text="po")  # every request id
    rows = history.page(HistoryFilter(), limit=1_000)
    expected = [row.id for row in sorted(rows, key=lambda row: (row.amount_minor, row.id))]

    def page(offset: int, descending: bool = False) -> list[int]:
        return [row.id for row in history.page(short, SortKey.AMOUNT, descending, offset, 5)]

    assert page(10) == expected[10:15]
    assert budgets == [store_module._DEEP_SHORT_WALK_S]
    assert page(20) == expected[20:25]
    assert page(2) == expected[2:7]
    assert budgets == [store_module._DEEP_SHORT_WALK_S]  # both read the kept order
    assert page(0, descending=True) == expected[::-1][:5]
    assert budgets[-1] == store_module._SHORT_WALK_S  # near the top: the full walk
    in_time = history.page(short, SortKey.CREATED_AT, True, 10, 5)
    newest_first = sorted(rows, key=lambda row: (row.created_at, row.id), reverse=True)
    assert [row.id for row in in_time] == [row.id for row in newest_first[10:15]]
    assert budgets[-1] == store_module._SHORT_WALK_S  # in time order: the full walk, deep too


def test_a_character_far_down_walks_only_when_its_share_reaches_the_page_in_time(
    history: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its share of the newest payouts says how many entries of the order the walk must pass
    to reach the page: past ``_DEEP_SHORT_WALK_ENTRIES`` the matches are sorted at once,
    where a walk would spend its whole clock first ("j", 2 % at 5M: 0.8 s for nothing)."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 3)
    monkeypatch.setattr(store_module, "_rare_character", lambda conn, text: False)
    budgets: list[float | None] = []

    def gives_up(*args: Any, **kwargs: Any) -> None:
        budgets.append(kwargs.get("seconds"))

    monkeypatch.setattr(store_module, "_walk_or_none", gives_up)
    rows = history.page(HistoryFilter(), limit=1_000)
    expected = [row.id for row in sorted(rows, key=lambda row: (row.amount_minor, row.id))]

    def page(text: str) -> list[int]:
        return [
            row.id for row in history.page(HistoryFilter(text=text), SortKey.AMOUNT, False, 10, 5)
        ]

    # Every payout holds "p" and "o" (request ids "po-…"): the page is 15 entries down.
    monkeypatch.setattr(store_module, "_DEEP_SHORT_WALK_ENTRIES", 15)
    assert page("p") == expected[10:15]
    assert budgets == [store_module._DEEP_SHORT_WALK_S]
    monkeypatch.setattr(store_module, "_DEEP_SHORT_WALK_ENTRIES", 14)
    assert page("o") == expected[10:15]
    assert budgets == [store_module._DEEP_SHORT_WALK_S]  # sorted without a walk


@pytest.mark.parametrize(
    ("history_filter", "counter"),
    [
        (HistoryFilter(text="po-00"), "_text_count"),
        (HistoryFilter(text="po"), "_short_matches"),
    ],
    ids=["text", "short text"],
)
def test_a_searchs_pages_count_its_matches_once_while_the_history_is_unchanged(
    history: SqliteHistoryStore,
    monkeypatch: pytest.MonkeyPatch,
    history_filter: HistoryFilter,
    counter: str,
) -> None:
    """Each page of a search, in any order, needed the count of its matches (17 ms for a
    recipient or a short text at 5M payouts): it is counted once per version of the history."""
    counts: list[str] = []
    count = getattr(store_module, counter)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts.append(args[1])
        return count(*args, **kwargs)

    monkeypatch.setattr(store_module, counter, counted)
    rows = history.page(HistoryFilter(), limit=1_000)
    text = history_filter.text
    matching = [row for row in rows if text in row.request_id]
    by_amount = [r.id for r in sorted(matching, key=lambda row: (row.amount_minor, row.id))]

    def page(sort: SortKey, offset: int) -> list[int]:
        return [row.id for row in history.page(history_filter, sort, False, offset, 3)]

    assert page(SortKey.AMOUNT, 0) == by_amount[:3]
    assert page(SortKey.AMOUNT, 3) == by_amount[3:6]
    history.page(history_filter, SortKey.STATE, True, 0, 3)
    assert counts == [text]
    _add(history, 99, accepted=True)  # request id po-0099: a match of both
    matching = [row for row in history.page(HistoryFilter(), limit=1_000) if text in row.request_id]
    by_amount = [r.id for r in sorted(matching, key=lambda row: (row.amount_minor, row.id))]
    assert page(SortKey.AMOUNT, 0) == by_amount[:3]
    assert counts == [text, text]  # counted again after the change


def test_a_recipients_pages_count_its_matches_once(
    history: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipient's count decides each page's plan (walk or sort): counted once."""
    tables: list[str] = []
    count = store_module._text_count

    def counted(*args: Any, **kwargs: Any) -> Any:
        tables.append(args[3] if len(args) > 3 else kwargs.get("table", ""))
        return count(*args, **kwargs)

    monkeypatch.setattr(store_module, "_text_count", counted)
    monkeypatch.setattr(store_module, "_live_triples", lambda *args: None)
    monkeypatch.setattr(store_module, "_DENSE_MATCHES", 1)  # each page walks: none is kept
    petrov = HistoryFilter(recipient="petrov")  # every payout here is Ivan Petrov's
    rows = history.page(HistoryFilter(), limit=1_000)
    by_amount = [r.id for r in sorted(rows, key=lambda row: (row.amount_minor, row.id))]
    for offset in (0, 4, 8):
        page = history.page(petrov, SortKey.AMOUNT, False, offset, 4)
        assert [row.id for row in page] == by_amount[offset : offset + 4]
    assert tables == [store_module.RECIPIENT_SEARCH_TABLE]


@pytest.mark.parametrize(
    ("query", "kept_rows"),
    [
        (BY_STATUS, 40),  # fewer matches than an order keeps: every one is in it
        (HistoryFilter(text="inv-"), 10),  # a search's count says they are few enough
    ],
)
def test_a_querys_every_match_kept_by_one_order_is_sorted_for_the_others(
    history: SqliteHistoryStore,
    sorts: list[int],
    monkeypatch: pytest.MonkeyPatch,
    every_match_kept: int,
    query: HistoryFilter,
    kept_rows: int,
) -> None:
    """Few enough matches (``_KEPT_SET_ROWS``), sorted once, are kept all: the query's other
    orders sort those ids alone, without reading the filter's matches again, and give the
    plain order's pages; a change to the history makes the next order read them again."""
    assert every_match_kept >= 30
    monkeypatch.setattr(store_module, "KEPT_ROWS", kept_rows)
    monkeypatch.setattr(store_module, "_SORT_MATCHES", 1)  # the search's matches are many
    monkeypatch.setattr(store_module, "_walk_or_none", lambda *args, **kwargs: None)
    for sort in (SortKey.METHOD, SortKey.AMOUNT, SortKey.REQUEST_ID, SortKey.CREATED_AT):
        for descending in (True, False):
            plain = history.page(HistoryFilter(), sort, descending, 0, 1_000)
            expected = [row.id for row in plain if row.gateway_status == STATUS]
            assert len(expected) == 30
            for offset in (0, 3, 25):
                page = history.page(query, sort, descending, offset, 5)
                assert [row.id for row in page] == expected[offset : offset + 5]
    assert sorts == [0]  # the first order's sort; the others sorted its ids
    added = _add(history, 99, accepted=True)
    page = history.page(query, SortKey.AMOUNT, True, 0, 1_000)
    assert added in {row.id for row in page} and len(page) == 31
    assert sorts == [0, 0]


AMOUNTS = HistoryFilter(amount_min=1_005, amount_max=1_015)  # a clerk's filter, no dates


@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("descending", [True, False])
def test_a_counted_filters_pages_near_the_end_read_the_reversed_order(
    history: SqliteHistoryStore, sort: SortKey, descending: bool
) -> None:
    """Once the clerk's filter is counted, a page nearer the end than the start is read as
    the start of the reversed order: the same rows, in the asked order, at every offset."""
    plain = history.page(HistoryFilter(), sort, descending, 0, 1_000)
    expected = [row.id for row in plain if 1_005 <= row.amount_minor <= 1_015]
    assert history.count(AMOUNTS) == len(expected) >= 15
    for offset in range(len(expected) + 2):
        page = history.page(AMOUNTS, sort, descending, offset, 4)
        assert [row.id for row in page] == expected[offset : offset + 4], offset


def test_the_last_page_reads_from_the_end_only_while_its_count_holds(
    history: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest-first last page of an amount range walks oldest first from the end, once
    a count of this version of the history said where the end is; not on a capped count,
    nor after a change."""
    walks: list[tuple[bool, int, int]] = []
    walk = store_module._amount_in_time_order

    def spied(*args: Any, **kwargs: Any) -> Any:
        walks.append((args[2], args[3], args[4]))
        return walk(*args, **kwargs)

    monkeypatch.setattr(store_module, "_amount_in_time_order", spied)
    total = len(history.page(AMOUNTS, limit=1_000))

    def last_page() -> list[int]:
        return [row.id for row in history.page(AMOUNTS, SortKey.CREATED_AT, True, total - 3, 5)]

    walks.clear()
    rows = last_page()  # not counted yet
    assert len(rows) == 3 and walks == [(True, total - 3, 5)]
    walks.clear()
    assert history.count(AMOUNTS, cap=total) == total  # a capped count: maybe more
    assert last_page() == rows and walks == [(True, total - 3, 5)]
    walks.clear()
    assert history.count(AMOUNTS) == total
    assert last_page() == rows and walks == [(False, 0, 3)]  # oldest first, from the end
    walks.clear()
    _add(history, 100, accepted=True)  # amount 1,020: not a match, but a new version
    assert last_page() == rows and walks == [(True, total - 3, 5)]
