"""EXPLAIN QUERY PLAN of every statement the history panel's reads run, per filter and sort.

Each combination the panel offers (filters alone and combined, every sort, both directions,
short and long search text) reads a first page, a middle page and a last page and counts;
every statement those calls ran is explained on the same file. No statement may read the
whole table (``SCAN payouts`` without an index), not even for a 2-character search: its
trigrams and the values that end with it are indexed. No statement may sort (``USE TEMP
B-TREE FOR ORDER BY``) when the page's order comes from an index: without search text in
every order but under the "Needs review" filter (few rows, read through their own index and
sorted), and with search text in time order. Every sort under a state, currency or profile
filter merges the ordered ranges of the filter's (state, currency, profile) triples in that
sort's index.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from tests.history.sqlite.tracing import trace_into
from tests.payouts.conftest import StepClock, make_attempt

ROWS = 120
REJECTED, ACCEPTED, UNKNOWN = "REJECTED", "ACCEPTED", "UNKNOWN"

STATE_CHOICES = [frozenset(), frozenset({REJECTED}), frozenset({REJECTED, UNKNOWN})]
CURRENCY_CHOICES = [None, "USD"]
PROFILE_CHOICES = [None, "p1"]
REVIEW_CHOICES = [False, True]
TEXT_CHOICES = ["", "yu", "petrov"]


def _filters() -> list[HistoryFilter]:
    return [
        HistoryFilter(text, states, currency, profile, review)
        for text, states, currency, profile, review in itertools.product(
            TEXT_CHOICES, STATE_CHOICES, CURRENCY_CHOICES, PROFILE_CHOICES, REVIEW_CHOICES
        )
    ]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteHistoryStore, list]]:
    """A small history whose store records every statement its connections run."""
    path: Path = tmp_path_factory.mktemp("plans") / "history.sqlite3"
    statements: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        trace_into(patch, statements)
        store = SqliteHistoryStore(path, clock=StepClock())
    for i in range(ROWS):
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{i:04d}",
                site_login=("ivan.petrov", "yulia", "budi")[i % 3] + str(i),
                currency=("USD", "IDR", "RUB")[i % 3],
                amount_minor=1000 + (i * 37) % 101,
                profile_id=f"p{i % 2}",
            )
        )
        if i % 5 == 0:
            store.record_outcome(record_id, Rejected("Refused", signature_verified=True))
        elif i % 7 == 0:
            store.record_outcome(record_id, Unknown("No answer.", UnknownKind.TIMEOUT))
        else:
            status = 9 if i % 4 == 0 else 3  # an unknown status: flagged for review
            store.record_outcome(record_id, Accepted(f"INV-{i}", status, "Payout initialized"))
    yield store, statements
    store.close()


@pytest.fixture(autouse=True)
def walk_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small history's searches take the paths a 5M-row history's do: no text match is
    few enough to sort, and every deep page starts from its day's count."""
    monkeypatch.setattr(store_module, "_SORT_MATCHES", 0)
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 0)


def _plans(path: Path, statements: list[str]) -> list[tuple[str, list[str]]]:
    explained = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            explained.append((sql, plan))
    return explained


def _ordered_by_index(history_filter: HistoryFilter, sort: SortKey) -> bool:
    text = history_filter.text.strip()
    if text:
        return sort is SortKey.CREATED_AT and len(text) >= 3
    # "Needs review" marks few rows: those are read through their own index and sorted.
    return sort in (SortKey.CREATED_AT, SortKey.AMOUNT) or not history_filter.needs_review


@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("descending", [True, False])
def test_no_read_scans_the_table_or_sorts_what_an_index_orders(
    traced: tuple[SqliteHistoryStore, list[str]], sort: SortKey, descending: bool
) -> None:
    store, statements = traced
    checked = 0
    for history_filter in _filters():
        statements.clear()
        total = store.count(history_filter, cap=10_000)
        counted = list(statements)
        statements.clear()
        for offset in {0, max(0, total // 2 - 2), max(0, total - 5)}:
            store.page(history_filter, sort, descending, offset, 5)
        paged = list(statements)
        label = f"{history_filter} {sort} {'desc' if descending else 'asc'}"
        for sql, plan in _plans(store.path, counted):
            assert "SCAN payouts" not in plan, (label, sql, plan)
        for sql, plan in _plans(store.path, paged):
            checked += 1
            assert "SCAN payouts" not in plan, (label, sql, plan)
            if _ordered_by_index(history_filter, sort):
                assert not any("TEMP B-TREE FOR ORDER BY" in line for line in plan), (
                    label,
                    sql,
                    plan,
                )
    assert checked > len(_filters())


def test_the_explained_statements_are_the_ones_run(
    traced: tuple[SqliteHistoryStore, list[str]],
) -> None:
    """The trace sees the statements with their values bound, so their plans are the real ones."""
    store, statements = traced
    statements.clear()
    store.page(HistoryFilter(currency="USD", states=frozenset({REJECTED})), SortKey.AMOUNT)
    plans = _plans(store.path, statements)
    assert any("'USD'" in sql for sql, _ in plans)
    assert any(
        any("payouts_sc_amount" in line for line in plan) and any("MERGE" in line for line in plan)
        for _, plan in plans
    ) or any(any("payouts_sc_amount" in line for line in plan) for _, plan in plans)


@pytest.mark.parametrize(
    ("sort", "index"),
    [
        (SortKey.PROFILE, "payouts_scp_profile"),
        (SortKey.REQUEST_ID, "payouts_scp_request"),
        (SortKey.INVOICE_ID, "payouts_scp_invoice"),
        (SortKey.SITE_LOGIN, "payouts_scp_login"),
        (SortKey.METHOD, "payouts_scp_method"),
        (SortKey.GATEWAY_STATUS, "payouts_scp_status"),
    ],
)
@pytest.mark.parametrize(
    "history_filter",
    [
        HistoryFilter(states=frozenset({UNKNOWN})),
        HistoryFilter(states=frozenset({REJECTED, UNKNOWN}), currency="USD"),
        HistoryFilter(profile_id="p1"),
        HistoryFilter(currency="RUB", profile_id="p0"),
    ],
)
@pytest.mark.parametrize("middle", [False, True])
def test_a_filtered_sort_merges_the_filters_ranges_of_its_index(
    traced: tuple[SqliteHistoryStore, list[str]],
    sort: SortKey,
    index: str,
    history_filter: HistoryFilter,
    middle: bool,
) -> None:
    """A rare filter sorted by any column reads its own ranges in order, near the top and far
    down (where every range starts at the page's counted bucket): no walk, no sort."""
    store, statements = traced
    total = store.count(history_filter)
    assert total >= 4
    statements.clear()
    store.page(history_filter, sort, True, total // 2 - 1 if middle else 0, 3)
    plans = _plans(store.path, statements)
    assert any(any(index in line for line in plan) for _, plan in plans), plans
    for sql, plan in plans:
        assert not any("TEMP B-TREE" in line for line in plan), (sql, plan)
        assert "SCAN payouts" not in plan, (sql, plan)


@pytest.mark.parametrize(
    "history_filter",
    [
        HistoryFilter(profile_id="p1"),
        HistoryFilter(currency="RUB", profile_id="p0"),
        HistoryFilter(states=frozenset({REJECTED, UNKNOWN}), profile_id="p1"),
    ],
)
@pytest.mark.parametrize("middle", [False, True])
@pytest.mark.parametrize("descending", [True, False])
def test_the_amount_order_under_a_profile_merges_the_profiles_ranges(
    traced: tuple[SqliteHistoryStore, list[str]],
    history_filter: HistoryFilter,
    middle: bool,
    descending: bool,
) -> None:
    """Under a profile, near the top and far down: the profile's (state, currency) ranges of
    payouts_scp_amount, merged; never a walk of the whole amount order checking profiles."""
    store, statements = traced
    total = store.count(history_filter)
    assert total >= 4
    statements.clear()
    store.page(history_filter, SortKey.AMOUNT, descending, total // 2 - 1 if middle else 0, 3)
    plans = _plans(store.path, statements)
    merged = [
        plan
        for _, plan in plans
        if any(
            "payouts_scp_amount (state=? AND currency=? AND profile_id=?" in line for line in plan
        )
    ]
    assert merged, plans
    assert not any(any("payouts_by_amount" in line for line in plan) for _, plan in plans)
    for sql, plan in plans:
        assert not any("TEMP B-TREE" in line for line in plan), (sql, plan)
        assert "SCAN payouts" not in plan, (sql, plan)


def test_several_states_and_a_currency_in_time_order_merge_their_profiles_ranges(
    traced: tuple[SqliteHistoryStore, list[str]],
) -> None:
    """Several states and a currency, no profile, a page far down the time order (and so of
    the currency order under several states): one range of payouts_scp_time per (state,
    currency, profile), merged, where the currency's time index read every row of it to test
    the state."""
    store, statements = traced
    history_filter = HistoryFilter(states=frozenset({REJECTED, UNKNOWN}), currency="USD")
    total = store.count(history_filter)
    assert total >= 4
    statements.clear()
    store.page(history_filter, SortKey.CREATED_AT, True, total // 2 - 1, 3)
    plans = [plan for sql, plan in _plans(store.path, statements) if "UNION ALL" in sql]
    assert plans
    for plan in plans:
        assert any("MERGE" in line for line in plan), plan
        ranges = [line for line in plan if "payouts_scp_time" in line]
        assert ranges and all("profile_id=?" in line for line in ranges), plan
        assert not any("payouts_currency_time" in line for line in plan), plan
        assert not any("TEMP B-TREE" in line for line in plan), plan


@pytest.mark.parametrize(
    ("history_filter", "sort"),
    [
        (HistoryFilter(text="petrov", currency="USD"), SortKey.CURRENCY),
        (HistoryFilter(text="yu", currency="IDR"), SortKey.CURRENCY),
        (HistoryFilter(text="petrov", states=frozenset({ACCEPTED})), SortKey.STATE),
        (HistoryFilter(currency="USD", amount_min=1_050), SortKey.CURRENCY),
    ],
    ids=str,
)
def test_the_filters_own_value_sorted_reads_in_time_order(
    traced: tuple[SqliteHistoryStore, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    history_filter: HistoryFilter,
    sort: SortKey,
) -> None:
    """Sorted by currency under one currency (or by state under one state), the order is
    the time order: the page is read as one, by the time order's paths."""
    store, _ = traced
    asked: list[SortKey] = []
    for name in ("_text_page", "_narrowed_page"):
        path = getattr(store_module, name)

        def spied(*args: Any, path: Any = path, **kwargs: Any) -> Any:
            asked.append(args[2])  # the sort the path is given
            return path(*args, **kwargs)

        monkeypatch.setattr(store_module, name, spied)
    rows = store.page(history_filter, sort, True, 0, 5)
    assert asked == [SortKey.CREATED_AT]
    assert rows == store.page(history_filter, SortKey.CREATED_AT, True, 0, 5)


def test_state_currency_and_profile_in_time_order_read_one_index_range(
    traced: tuple[SqliteHistoryStore, list[str]],
) -> None:
    """All three exact filters in time order: one range of payouts_scp_time, no walk."""
    store, statements = traced
    statements.clear()
    store.page(HistoryFilter(states=frozenset({ACCEPTED}), currency="IDR", profile_id="p1"))
    plans = _plans(store.path, statements)
    assert any(
        any("payouts_scp_time (state=? AND currency=? AND profile_id=?)" in line for line in plan)
        for _, plan in plans
    ), plans


@pytest.mark.parametrize(
    ("sort", "name", "column"),
    [
        (SortKey.SITE_LOGIN, "login", "site_login"),
        (SortKey.INVOICE_ID, "invoice", "invoice_id"),
        (SortKey.GATEWAY_STATUS, "status", "gateway_status"),
    ],
)
@pytest.mark.parametrize("state", [REJECTED, UNKNOWN])
@pytest.mark.parametrize("descending", [True, False])
def test_a_middle_page_under_a_state_reads_only_ranges_from_its_bucket_on(
    traced: tuple[SqliteHistoryStore, list[str]],
    sort: SortKey,
    name: str,
    column: str,
    state: str,
    descending: bool,
) -> None:
    """Far down the login, invoice or status order under one state, no merged range reads
    rows before the page's bucket (an arm of "every value" after the NULLs, IS NOT NULL, read
    each triple's NULLs: 0.35 s at 5M rows)."""
    store, statements = traced
    history_filter = HistoryFilter(states=frozenset({state}))
    total = store.count(history_filter)
    for offset in (total // 2 - 1, total // 2 + 1):
        statements.clear()
        store.page(history_filter, sort, descending, offset, 3)
        plans = _plans(store.path, statements)
        ranges = [line for _, plan in plans for line in plan if f"payouts_scp_{name} " in line]
        assert ranges, plans
        for sql, plan in plans:
            # Each range is bounded on the sorted column or starts the order.
            assert f"{column} IS NOT NULL" not in sql, (sql, plan)
            assert not any("TEMP B-TREE" in line for line in plan), (sql, plan)


def test_a_short_search_that_gives_up_its_walk_reads_the_file_in_order(
    traced: tuple[SqliteHistoryStore, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its matches sorted from one pass over the narrow sort keys index (a fifth of the
    table), never through a state's index (a common state's rows read one lookup at a
    time)."""
    store, statements = traced
    monkeypatch.setattr(store_module, "_SHORT_WALK_S", 0.0)
    monkeypatch.setattr(store_module, "_BUDGET_STEPS", 1)
    monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 0)  # as many as at 5M rows
    statements.clear()
    store.page(HistoryFilter(text="yu", states=frozenset({ACCEPTED})), SortKey.AMOUNT)
    sorted_plans = [
        plan
        for sql, plan in _plans(store.path, statements)
        if "ORDER BY +" in sql  # the matches sorted (the walk's ORDER BY has no +)
    ]
    assert sorted_plans
    for plan in sorted_plans:
        assert "SCAN payouts USING COVERING INDEX payouts_sort_keys" in plan, plan
        assert not any("USING INDEX" in line for line in plan), plan


@pytest.mark.parametrize("sort", [SortKey.PROFILE, SortKey.AMOUNT])
def test_a_search_of_fewer_matches_than_its_currency_reads_the_matches_first(
    traced: tuple[SqliteHistoryStore, list[str]], monkeypatch: pytest.MonkeyPatch, sort: SortKey
) -> None:
    """Sorted, its matches are read by id (the currency tested on each in the narrow index
    of currencies by id, the matches left sorted by their terms in the sort's own), never
    the currency's whole index tested against the matches (1.3M entries at 5M payouts)."""
    store, statements = traced
    monkeypatch.setattr(store_module, "_LOOKUP_COST", 0)  # the matches are "few" here
    statements.clear()
    store.page(HistoryFilter(text="petrov", currency="USD"), sort, True, 5, 5)
    sorted_plans = [plan for sql, plan in _plans(store.path, statements) if "ORDER BY +" in sql]
    assert sorted_plans
    own = f"COVERING INDEX {store_module._TERMS_INDEX[sort]} (id=?"
    for plan in sorted_plans:
        assert any(own in line for line in plan), plan
        currencies = "COVERING INDEX payouts_id_currency (id=?)"
        assert any(currencies in line for line in plan), plan
        assert not any("payouts_currency" in line for line in plan), plan


@pytest.mark.parametrize("states", [frozenset(), frozenset({ACCEPTED})], ids=["alone", "state"])
@pytest.mark.parametrize("sort", [SortKey.AMOUNT, SortKey.SITE_LOGIN, SortKey.METHOD])
def test_a_like_walk_tests_each_entry_in_the_sort_keys_not_its_row(
    traced: tuple[SqliteHistoryStore, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    sort: SortKey,
    states: frozenset[str],
) -> None:
    """A common 1-character search walks the sort's index testing LIKE (and any exact
    filter) in one lookup of the entry's sort keys by id: at 5M payouts, a walk reading each
    entry's row from a cold disk took 23 s to the 5,000th "x" by amount, the sort keys 0.5 s."""
    store, statements = traced
    monkeypatch.setattr(store_module, "_rare_character", lambda conn, text: False)
    statements.clear()
    store.page(HistoryFilter(text="y", states=states), sort, False, 0, 5)
    walks = [
        (sql, plan)
        for sql, plan in _plans(store.path, statements)
        if " LIKE " in sql and "OFFSET" in sql and "ORDER BY +" not in sql
    ]
    assert walks
    for sql, plan in walks:
        assert "SEARCH k USING COVERING INDEX payouts_sort_keys (id=?)" in plan, (sql, plan)
        outer = sql.split(store_module._KEYED_TESTS)[0]
        assert " LIKE " not in outer, sql  # no text test on the row


def test_an_amount_walk_under_a_currency_reads_the_currencys_amounts(
    traced: tuple[SqliteHistoryStore, list[str]],
) -> None:
    """A search's walk in amount order under a currency reads (currency, amount_minor, id):
    the currency's amounts only, not every currency's."""
    store, statements = traced
    statements.clear()
    store.page(HistoryFilter(text="petrov", currency="USD"), SortKey.AMOUNT, False, 0, 5)
    walks = [plan for sql, plan in _plans(store.path, statements) if "ORDER BY amount" in sql]
    assert walks
    for plan in walks:
        assert any("payouts_currency_amount" in line for line in plan), plan


@pytest.mark.parametrize(
    "history_filter",
    [
        HistoryFilter(text="petrov"),
        HistoryFilter(text="yu"),
        HistoryFilter("petrov", currency="USD"),
    ],
    ids=str,
)
@pytest.mark.parametrize("sort", [SortKey.PROFILE, SortKey.AMOUNT, SortKey.SITE_LOGIN])
def test_a_sort_of_a_searchs_matches_reads_their_sort_keys_not_their_rows(
    traced: tuple[SqliteHistoryStore, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    history_filter: HistoryFilter,
    sort: SortKey,
) -> None:
    """Each match's sort terms come from the sort's own narrow index by id (and a currency
    it is tested for from the currencies' one): no lookup of its row, which at 5M payouts
    read tens of thousands of random places of the table (1.6-2.6 s with the file not in
    memory), nor of its wide ``payouts_sort_keys`` entry (0.17 s for 118,000 matches of a
    surname, where the narrow index takes 0.1)."""
    store, statements = traced
    monkeypatch.setattr(store_module, "_LOOKUP_COST", 0)  # the matches are "few" here
    statements.clear()
    total = store.count(history_filter)
    for offset in (0, total // 2, total - 3):  # ascending: no other test kept this order
        store.page(history_filter, sort, False, offset, 3)
    explained = _plans(store.path, statements)
    sorted_plans = [plan for sql, plan in explained if "ORDER BY +" in sql]
    assert sorted_plans
    own = f"COVERING INDEX {store_module._TERMS_INDEX[sort]} (id=?"
    for plan in sorted_plans:
        assert any(own in line for line in plan), plan
        assert not any("payouts_sort_keys" in line for line in plan), plan
    counted = [plan for sql, plan in explained if "count(*)" in sql and "MATCH" in sql]
    for plan in counted:
        assert not any("INTEGER PRIMARY KEY" in line for line in plan), plan


@pytest.mark.parametrize(
    "history_filter",
    [HistoryFilter(text="y"), HistoryFilter(text="y", states=frozenset({REJECTED}))],
    ids=str,
)
@pytest.mark.parametrize("descending", [True, False])
def test_a_one_character_search_in_time_order_reads_the_sort_keys_in_id_order(
    traced: tuple[SqliteHistoryStore, list[str]], history_filter: HistoryFilter, descending: bool
) -> None:
    """No text index serves one character: in time order (every record created in time
    order) its pages read ``payouts_sort_keys`` in id order, testing each entry there,
    with no sort and no row read but the page's: the 10,000th match of "q" at 5M payouts
    in 80 ms, where a walk of the time index reading rows gave up and sorted (2 s)."""
    store, statements = traced
    total = store.count(history_filter, cap=1_000)
    statements.clear()
    for offset in (0, max(0, total - 3)):
        assert store.page(history_filter, SortKey.CREATED_AT, descending, offset, 5)
    paged = [
        plan
        for sql, plan in _plans(store.path, statements)
        if "LIKE" in sql and "ORDER BY" in sql  # the pages (a count has no order)
    ]
    assert len(paged) == 2
    for plan in paged:
        assert plan == ["SCAN payouts USING COVERING INDEX payouts_sort_keys"], plan


@pytest.mark.parametrize("descending", [True, False])
def test_a_sort_by_request_id_newest_first_reads_its_matches_newest_first(
    traced: tuple[SqliteHistoryStore, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    descending: bool,
) -> None:
    """The request ids Cactus Desk makes start with their date: sorted Z-A, a search's
    matches are fed to the sort newest first, so few displace the top rows it keeps (the
    71,000 of "yu" at 5M in 70 ms, not 105); A-Z they come oldest first as they are."""
    store, statements = traced
    monkeypatch.setattr(store_module, "_LOOKUP_COST", 0)  # the matches are "few" here
    history_filter = HistoryFilter(text="petrov")
    matches = {row.id for row in store.page(history_filter, limit=1_000)}
    everything = store.page(HistoryFilter(), SortKey.REQUEST_ID, descending, 0, 1_000)
    expected = [row.id for row in everything if row.id in matches]
    statements.clear()
    rows = store.page(history_filter, SortKey.REQUEST_ID, descending, 3, 4)
    assert [row.id for row in rows] == expected[3:7]
    sorted_plans = [(sql, plan) for sql, plan in _plans(store.path, statements) if "+id" in sql]
    assert sorted_plans
    for sql, plan in sorted_plans:
        assert ("ORDER BY id DESC LIMIT -1" in sql) is descending, sql
        assert any("COVERING INDEX payouts_id_request (id=?)" in line for line in plan), plan


def test_a_short_search_under_a_profile_counts_through_the_narrow_index(
    traced: tuple[SqliteHistoryStore, list[str]],
) -> None:
    """A 2-character search's count under a profile tests the profile of each match in the
    narrow index of profiles by id, not on its row (from a cold disk at 5M payouts: 0.9 s
    for "yu" in one profile, now 0.1 s)."""
    store, statements = traced
    history_filter = HistoryFilter(text="yu", profile_id="p0")
    expected = [row.id for row in store.page(HistoryFilter(text="yu"), limit=1_000)]
    expected = [i for i in expected if store.get(i).profile_id == "p0"]
    statements.clear()
    assert store.count(history_filter) == len(expected) > 0
    counted = [(sql, plan) for sql, plan in _plans(store.path, statements) if "count(*)" in sql]
    tested = [plan for sql, plan in counted if "profile_id" in sql]
    assert tested, counted
    for plan in tested:
        assert any("COVERING INDEX payouts_id_profile (id=?)" in line for line in plan), plan
        assert not any("INTEGER PRIMARY KEY" in line for line in plan), plan
