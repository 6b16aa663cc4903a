"""The fast page paths (day counts, merged amount ranges, text regimes) give the exact order.

Each path is forced on a small history by lowering its threshold, and every page it reads is
compared with the full order computed here in Python from every record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.clerk import FINAL_STATUSES, OPEN_STATES
from cactus_desk.history.sqlite import migrations as migrations_module
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.migrations import amount_bucket_range, amount_bucket_sql
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryRow, SortKey
from cactus_desk.payouts.states import State
from tests.payouts.conftest import make_attempt

ROWS = 150
CURRENCIES = ("USD", "IDR", "RUB")
LOGINS = ("ivan.petrov", "anna.yu", "budi", "maria.petrova")
HOUR_MS = 3_600_000


class SteadyClock:
    """Seven hours forward per reading: records are created in time order."""

    def __init__(self) -> None:
        self._now = 1_714_558_953_123

    def __call__(self) -> int:
        self._now += 7 * HOUR_MS
        return self._now


class WanderingClock:
    """Seven hours forward per reading, and now and then a day and a half back (a clock step),
    so days hold a few records each and creation order is not always time order."""

    def __init__(self) -> None:
        self._now = 1_714_558_953_123
        self._readings = 0

    def __call__(self) -> int:
        self._readings += 1
        self._now += -36 * HOUR_MS if self._readings % 11 == 0 else 7 * HOUR_MS
        return self._now


@pytest.fixture(scope="module", params=[SteadyClock, WanderingClock])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqliteHistoryStore]:
    path: Path = tmp_path_factory.mktemp("paths") / "history.sqlite3"
    store = SqliteHistoryStore(path, clock=request.param())
    for i in range(ROWS):
        currency = CURRENCIES[i % 3]
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{i:04d}",
                site_login=f"{LOGINS[i % 4]}{i % 7}",
                currency=currency,
                # Amounts repeat (ties broken by id) and follow the currency as they do for real.
                amount_minor=(100 if currency == "USD" else 10**7) + (i * 37) % 23,
                profile_id=f"p{i % 2}",
                profile_name=f"Shop {i % 2}",
            )
        )
        if i % 5 == 0:
            store.record_outcome(record_id, Rejected("Insufficient funds", signature_verified=True))
        elif i % 7 == 0:
            store.record_outcome(record_id, Unknown("No answer.", UnknownKind.TIMEOUT))
        else:
            store.record_outcome(record_id, Accepted(f"INV-{9000 + i}", 3, "Payout initialized"))
    yield store
    store.close()


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds a small history crosses, so every path runs."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 3)
    monkeypatch.setattr(store_module, "_SORT_MATCHES", 8)
    monkeypatch.setattr(store_module, "_SET_MATCHES", 60)


def _everything(store: SqliteHistoryStore) -> list[HistoryRow]:
    return store.page(HistoryFilter(), limit=ROWS + 10)


def _matches(row: HistoryRow, history_filter: HistoryFilter) -> bool:
    text = history_filter.text.casefold()
    columns = (row.request_id, row.invoice_id or "", row.site_login, row.message)
    return (
        (not text or any(text in column.casefold() for column in columns))
        and (not history_filter.states or str(row.state) in history_filter.states)
        and (history_filter.currency in (None, row.currency))
        and (history_filter.profile_id in (None, row.profile_id))
    )


def _key(sort: SortKey) -> Any:
    keys = {
        SortKey.CREATED_AT: lambda row: (row.created_at, row.id),
        SortKey.AMOUNT: lambda row: (row.amount_minor, row.id),
        SortKey.STATE: lambda row: (str(row.state), row.created_at, row.id),
        SortKey.CURRENCY: lambda row: (row.currency, row.created_at, row.id),
        SortKey.SITE_LOGIN: lambda row: (row.site_login.casefold(), row.id),
    }
    return keys[sort]


FILTERS = [
    HistoryFilter(),
    HistoryFilter(states=frozenset({"REJECTED"})),
    HistoryFilter(currency="USD"),
    HistoryFilter(states=frozenset({"ACCEPTED"}), currency="IDR"),
    HistoryFilter(states=frozenset({"REJECTED", "UNKNOWN"}), profile_id="p1"),
    HistoryFilter(states=frozenset({"REJECTED", "UNKNOWN"}), currency="IDR"),
    HistoryFilter(currency="RUB", profile_id="p0"),
    HistoryFilter(profile_id="p1"),
    HistoryFilter(text="petrov"),  # dense: a LIKE walk
    HistoryFilter(text="PETROVA"),  # between: the matches as a set the walk tests ids against
    HistoryFilter(text="po-001"),  # few: fetched and sorted
    HistoryFilter(text="yu"),  # short: a LIKE walk
    HistoryFilter(text="petrov", currency="USD"),
    HistoryFilter(text="yu", states=frozenset({"ACCEPTED"})),
]


@pytest.mark.parametrize("history_filter", FILTERS, ids=repr)
@pytest.mark.parametrize(
    "sort",
    [SortKey.CREATED_AT, SortKey.AMOUNT, SortKey.STATE, SortKey.CURRENCY, SortKey.SITE_LOGIN],
)
@pytest.mark.parametrize("descending", [True, False])
def test_every_page_is_the_slice_of_the_full_order(
    history: SqliteHistoryStore, history_filter: HistoryFilter, sort: SortKey, descending: bool
) -> None:
    expected = sorted(
        (row for row in _everything(history) if _matches(row, history_filter)),
        key=_key(sort),
        reverse=descending,
    )
    assert expected, "the filter should match something"
    if not history_filter.text:
        assert history.count(history_filter) == len(expected)
    middle = len(expected) // 2
    for offset in (0, 1, 5, middle - 3, middle, len(expected) - 4):
        offset = max(0, offset)
        page = history.page(history_filter, sort, descending, offset, 7)
        assert [row.id for row in page] == [row.id for row in expected[offset : offset + 7]], offset


@pytest.mark.parametrize(
    "history_filter",
    [HistoryFilter(text="yu"), HistoryFilter(text="yu", states=frozenset({"ACCEPTED"}))],
    ids=repr,
)
@pytest.mark.parametrize("sort", [SortKey.CREATED_AT, SortKey.AMOUNT, SortKey.SITE_LOGIN])
@pytest.mark.parametrize("descending", [True, False])
def test_a_short_search_whose_walk_gives_up_sorts_its_matches(
    history: SqliteHistoryStore,
    monkeypatch: pytest.MonkeyPatch,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
) -> None:
    """A 1-2 character search walks the sort's index for a while, then reads every row and
    sorts the matches (the walk's clock runs out at once here): the same rows either way.
    The first page's sort keeps the order, so the next pages read it instead of sorting.
    In time order, while every record was created in time order, no page sorts: the sort
    keys are read in id order."""
    monkeypatch.setattr(store_module, "_SHORT_WALK_S", 0.0)
    monkeypatch.setattr(store_module, "_BUDGET_STEPS", 1)
    monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 0)  # as many as at 5M rows
    sorted_pages: list[int] = []
    select = store_module._select

    def spied(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("sort_matches"):
            sorted_pages.append(args[4])  # the offset
        return select(*args, **kwargs)

    monkeypatch.setattr(store_module, "_select", spied)
    expected = sorted(
        (row for row in _everything(history) if _matches(row, history_filter)),
        key=_key(sort),
        reverse=descending,
    )
    middle = len(expected) // 2
    for offset in (0, 5, middle, len(expected) - 4):
        page = history.page(history_filter, sort, descending, offset, 7)
        assert [row.id for row in page] == [row.id for row in expected[offset : offset + 7]], offset
    in_id_order = sort is SortKey.CREATED_AT and isinstance(history._clock, SteadyClock)
    # One sort, of the first rows of the order, for every page; none in id order.
    assert sorted_pages == ([] if in_id_order else [0])


@pytest.mark.parametrize(
    "history_filter",
    [
        HistoryFilter(text="petrov"),
        HistoryFilter(text="petrov", currency="USD"),
        HistoryFilter(text="PETROVA", states=frozenset({"ACCEPTED"}), profile_id="p1"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("sort", [SortKey.AMOUNT, SortKey.STATE, SortKey.SITE_LOGIN])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("lookup_cost", [0, 10**6])
def test_a_search_whose_walk_gives_up_sorts_its_matches(
    history: SqliteHistoryStore,
    monkeypatch: pytest.MonkeyPatch,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    lookup_cost: int,
) -> None:
    """A 3+ character search of fewer matches than a set walk serves walks the sort's
    index testing each entry against them for a while, then sorts its matches, read first
    (or through the exact filter's index when that holds fewer rows): the same rows."""
    monkeypatch.setattr(store_module, "_SORT_MATCHES", 1)
    monkeypatch.setattr(store_module, "_MEMBER_WALK_S", 0.0)
    monkeypatch.setattr(store_module, "_BUDGET_STEPS", 1)
    monkeypatch.setattr(store_module, "_LOOKUP_COST", lookup_cost)
    expected = sorted(
        (row for row in _everything(history) if _matches(row, history_filter)),
        key=_key(sort),
        reverse=descending,
    )
    assert len(expected) > 8, "the filter should match several pages"
    for offset in (0, 1, 5, len(expected) // 2, len(expected) - 4):
        page = history.page(history_filter, sort, descending, offset, 4)
        assert [row.id for row in page] == [row.id for row in expected[offset : offset + 4]], offset


def _clerk_matches(row: HistoryRow, f: HistoryFilter) -> bool:
    aged = f.aged_before is None or (
        row.created_at < f.aged_before
        and (
            row.state in OPEN_STATES
            or (row.state == State.ACCEPTED and row.gateway_status not in FINAL_STATUSES)
        )
    )
    return (
        (f.currency in (None, row.currency))
        and (f.amount_min is None or row.amount_minor >= f.amount_min)
        and (f.amount_max is None or row.amount_minor <= f.amount_max)
        and (not f.gateway_statuses or row.gateway_status in f.gateway_statuses)
        and (f.created_from is None or row.created_at >= f.created_from)
        and (f.created_to is None or row.created_at < f.created_to)
        and aged
    )


@pytest.mark.parametrize(
    "clerk",
    [
        {"amount_min": 10**7 + 5},  # most rows: a walk finds every page
        {"currency": "IDR", "amount_max": 10**7 + 10},
        {"gateway_statuses": frozenset({3})},
        {"aged": True},
        {"dated": True},  # sorted from the span of ids its payouts lie in, in time order
    ],
    ids=repr,
)
@pytest.mark.parametrize(
    "sort",
    [SortKey.CREATED_AT, SortKey.AMOUNT, SortKey.STATE, SortKey.CURRENCY, SortKey.SITE_LOGIN],
)
@pytest.mark.parametrize("descending", [True, False])
def test_every_page_under_the_clerks_filters_is_the_slice_of_the_full_order(
    history: SqliteHistoryStore,
    monkeypatch: pytest.MonkeyPatch,
    clerk: dict[str, Any],
    sort: SortKey,
    descending: bool,
) -> None:
    """Near the top a page walks the sort's index on a small budget, far down when the
    matches are many; either way, or sorted when the walk gives up, the same rows."""
    monkeypatch.setattr(store_module, "_DENSE_MATCHES", 10)
    monkeypatch.setattr(store_module, "_DATED_SORT_ROWS", 0)  # a "long" date range
    everything = _everything(history)
    times = sorted(row.created_at for row in everything)
    if clerk.pop("aged", False):
        clerk["aged_before"] = times[ROWS // 2]
    if clerk.pop("dated", False):
        clerk.update(created_from=times[ROWS // 4], created_to=times[ROWS * 3 // 4])
    history_filter = HistoryFilter(**clerk)
    expected = sorted(
        (row for row in everything if _clerk_matches(row, history_filter)),
        key=_key(sort),
        reverse=descending,
    )
    assert len(expected) >= 10, "the filter should match several pages"
    middle = len(expected) // 2
    for offset in (0, 1, 5, middle - 3, middle, len(expected) - 4):
        page = history.page(history_filter, sort, descending, offset, 7)
        assert [row.id for row in page] == [row.id for row in expected[offset : offset + 7]], offset


def test_the_day_counts_follow_every_write(history: SqliteHistoryStore) -> None:
    """Inserts and state changes keep the per-day counts equal to the rows."""
    with history.read_connection() as conn:
        kept = conn.execute(
            "SELECT day, state, currency, profile_id, n FROM payouts_day_counts WHERE n > 0 "
            "ORDER BY 1, 2, 3, 4"
        ).fetchall()
        actual = conn.execute(
            "SELECT created_at / 86400000, state, currency, profile_id, count(*) FROM payouts "
            "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        ).fetchall()
    assert [tuple(row) for row in kept] == [tuple(row) for row in actual]
    assert len(actual) > 20  # many days: the jump has something to skip


def test_records_created_out_of_time_order_are_listed_as_breaks(
    history: SqliteHistoryStore,
) -> None:
    """The text search reads its index in id order only while time order is id order."""
    rows = _everything(history)
    by_id = sorted(rows, key=lambda row: row.id)
    latest, expected = 0, []
    for row in by_id:
        if row.created_at < latest:
            expected.append(row.id)
        latest = max(latest, row.created_at)
    with history.read_connection() as conn:
        breaks = [row[0] for row in conn.execute("SELECT id FROM payouts_time_breaks ORDER BY 1")]
    assert breaks == expected
    assert bool(expected) == isinstance(history._clock, WanderingClock)


def test_the_amount_counts_follow_every_write(history: SqliteHistoryStore) -> None:
    with history.read_connection() as conn:
        kept = conn.execute(
            "SELECT bucket, state, currency, profile_id, n FROM payouts_amount_counts "
            "WHERE n > 0 ORDER BY 1, 2, 3, 4"
        ).fetchall()
        rows = conn.execute("SELECT amount_minor, state, currency, profile_id FROM payouts")
        actual: dict[tuple[Any, ...], int] = {}
        for amount, *rest in rows:
            bucket = next(
                b
                for b in range(100, 2000)
                if amount_bucket_range(b)[0] <= amount < amount_bucket_range(b)[1]
            )
            actual[(bucket, *rest)] = actual.get((bucket, *rest), 0) + 1
    assert [tuple(row) for row in kept] == sorted((*key, n) for key, n in actual.items())


@pytest.mark.parametrize(
    "amount", [1, 9, 10, 19, 20, 99, 100, 109, 110, 4_999, 5_000, 10**12, 10**18 - 1]
)
def test_an_amount_lies_in_its_buckets_range_and_buckets_sort_as_amounts(amount: int) -> None:
    conn = sqlite3.connect(":memory:")
    bucket_sql = f"WITH a(v) AS (SELECT ?) SELECT {amount_bucket_sql('v')} FROM a"
    bucket = conn.execute(bucket_sql, (amount,)).fetchone()[0]
    low, high = amount_bucket_range(bucket)
    assert low <= amount < high
    assert conn.execute(bucket_sql, (amount + 1,)).fetchone()[0] >= bucket
    assert conn.execute(bucket_sql, (high,)).fetchone()[0] > bucket


SORTABLE_ROWS = 120
PROFILE_NAMES = ("Shop A", "shop a", "Shop b", "Ärger")  # two equal under NOCASE, one non-ASCII
METHODS = ("card", "Card", "bank", "QIWI", "emanat")
LOGIN_STARTS = ("ivan", "IVA", "Anna", "anne", "z", "Ølaf", "iv")


def _ascii_lower(text: str) -> str:
    """Lower-case as SQLite's NOCASE does: ASCII letters only."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _bucketed_key(sort: SortKey) -> Any:
    def nullable(value: str | None) -> tuple[int, str]:
        return (0, "") if value is None else (1, _ascii_lower(value))

    keys = {
        SortKey.PROFILE: lambda row: (_ascii_lower(row.profile_name), row.id),
        SortKey.REQUEST_ID: lambda row: (_ascii_lower(row.request_id), row.id),
        SortKey.INVOICE_ID: lambda row: (nullable(row.invoice_id), row.id),
        SortKey.SITE_LOGIN: lambda row: (_ascii_lower(row.site_login), row.id),
        SortKey.METHOD: lambda row: (_ascii_lower(row.method), row.id),
        SortKey.GATEWAY_STATUS: lambda row: (
            (0, 0) if row.gateway_status is None else (1, int(row.gateway_status)),
            row.id,
        ),
    }
    return keys[sort]


@pytest.fixture(scope="module")
def sortable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteHistoryStore]:
    """Values that share bucket prefixes, differ only in case, are missing (NULL) or are not
    ASCII; ids are cut into blocks of four, so a few-valued column has many buckets."""
    path: Path = tmp_path_factory.mktemp("sorts") / "history.sqlite3"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(migrations_module, "ID_BLOCK_BITS", 2)
        patch.setattr(store_module, "ID_BLOCK_BITS", 2)
        store = SqliteHistoryStore(path, clock=SteadyClock())
        for i in range(SORTABLE_ROWS):
            currency = CURRENCIES[i % 3]
            record_id = store.create_attempt(
                make_attempt(
                    request_id=("cd-2024010", "CD-2024011", "cd-20240")[i % 3] + f"{i * 7919 % 97}",
                    site_login=f"{LOGIN_STARTS[i % 7]}{i % 5}",
                    method=METHODS[i % 5],
                    currency=currency,
                    profile_id=f"p{i % 2}",
                    profile_name=PROFILE_NAMES[i % 4],
                )
            )
            if i % 5 == 0:
                store.record_outcome(record_id, Rejected("Refused", signature_verified=True))
            elif i % 7 == 0:
                store.record_outcome(record_id, Unknown("No answer.", UnknownKind.TIMEOUT))
            else:
                invoice = ("INV-", "inv-", "7")[i % 3] + f"{i * 31 % 89}"
                store.record_outcome(record_id, Accepted(invoice, (3, 2)[i % 2], "Initialized"))
        yield store
        store.close()


BUCKETED_FILTERS = [
    HistoryFilter(),
    HistoryFilter(states=frozenset({"UNKNOWN"})),
    # No invoice and no gateway status: the middle of those orders is the NULL bucket, then
    # every value from the index's start.
    HistoryFilter(states=frozenset({"REJECTED"})),
    HistoryFilter(states=frozenset({"REJECTED", "UNKNOWN"})),
    HistoryFilter(currency="USD"),
    HistoryFilter(profile_id="p1"),
    HistoryFilter(states=frozenset({"ACCEPTED"}), currency="IDR", profile_id="p0"),
]


@pytest.mark.parametrize("history_filter", BUCKETED_FILTERS, ids=repr)
@pytest.mark.parametrize(
    "sort",
    [
        SortKey.PROFILE,
        SortKey.REQUEST_ID,
        SortKey.INVOICE_ID,
        SortKey.SITE_LOGIN,
        SortKey.METHOD,
        SortKey.GATEWAY_STATUS,
    ],
)
@pytest.mark.parametrize("descending", [True, False])
def test_every_page_of_a_bucketed_sort_is_the_slice_of_the_full_order(
    sortable: SqliteHistoryStore,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Merged (state, currency, profile) ranges near the top, and every deep page started at
    its counted bucket (by prefix, or by value and id block), give the exact order."""
    monkeypatch.setattr(store_module, "ID_BLOCK_BITS", 2)
    everything = sortable.page(HistoryFilter(), limit=SORTABLE_ROWS + 10)
    expected = sorted(
        (row for row in everything if _matches(row, history_filter)),
        key=_bucketed_key(sort),
        reverse=descending,
    )
    assert len(expected) > 8, "the filter should match several rows"
    for offset in range(len(expected)):
        page = sortable.page(history_filter, sort, descending, offset, 5)
        assert [row.id for row in page] == [row.id for row in expected[offset : offset + 5]], offset


def test_the_sort_counts_follow_every_write(sortable: SqliteHistoryStore) -> None:
    """Inserts and outcomes keep each sort's bucket counts equal to a fresh recount."""
    with sortable.read_connection() as conn:
        kept = conn.execute(
            "SELECT sort, v, blk, state, currency, profile_id, n FROM payouts_sort_counts "
            "WHERE n > 0 ORDER BY 1, 2, 3, 4, 5, 6"
        ).fetchall()
        conn.execute("SAVEPOINT recount")
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(migrations_module, "ID_BLOCK_BITS", 2)
                migrations_module.rebuild_counts(conn)
            fresh = conn.execute(
                "SELECT sort, v, blk, state, currency, profile_id, n FROM payouts_sort_counts "
                "ORDER BY 1, 2, 3, 4, 5, 6"
            ).fetchall()
        finally:
            conn.execute("ROLLBACK TO recount")
            conn.execute("RELEASE recount")
    assert [tuple(row) for row in kept] == [tuple(row) for row in fresh]
    assert len({row[0] for row in fresh}) == 6
    assert any(row[2] > 3 for row in fresh)  # several id blocks


def _clerk_and_exact_matches(row: HistoryRow, f: HistoryFilter) -> bool:
    return _matches(row, f) and _clerk_matches(row, f)


@pytest.mark.parametrize(
    "clerk",
    [
        {"gateway_statuses": frozenset({3})},
        {"gateway_statuses": frozenset({2, 3}), "currency": "IDR"},
        {"gateway_statuses": frozenset({2}), "states": frozenset({"ACCEPTED", "REJECTED"})},
        {"amount_min": 1, "profile_id": "p1"},
        {"aged": True},
    ],
    ids=repr,
)
@pytest.mark.parametrize("sort", [sort for sort in SortKey if sort is not SortKey.CREATED_AT])
@pytest.mark.parametrize("descending", [True, False])
def test_merged_triples_under_the_clerks_filters_give_the_full_order(
    sortable: SqliteHistoryStore,
    monkeypatch: pytest.MonkeyPatch,
    clerk: dict[str, Any],
    sort: SortKey,
    descending: bool,
) -> None:
    """In another order than its own index's, a page under the clerk's filters merges one
    range per live (state, currency, profile) triple: near the top, kept far down, and read
    by OFFSET past the kept rows, the same rows as the full order."""
    monkeypatch.setattr(store_module, "KEPT_ROWS", 12)
    merged: list[int] = []
    merge = store_module._merged_triples

    def spied(*args: Any, **kwargs: Any) -> Any:
        ids = merge(*args, **kwargs)
        if ids:
            merged.append(args[4])  # the offset
        return ids

    monkeypatch.setattr(store_module, "_merged_triples", spied)
    everything = sortable.page(HistoryFilter(), limit=SORTABLE_ROWS + 10)
    times = sorted(row.created_at for row in everything)
    if clerk.pop("aged", False):
        clerk["aged_before"] = times[len(times) * 2 // 3]
    history_filter = HistoryFilter(**clerk)
    key = _bucketed_key(sort) if sort in store_module._BUCKETED else _key(sort)
    expected = sorted(
        (row for row in everything if _clerk_and_exact_matches(row, history_filter)),
        key=key,
        reverse=descending,
    )
    assert len(expected) > 15, "the filter should match past the kept rows"
    for offset in (0, 1, 2, 4, 9, 11, 14, len(expected) - 2):
        page = sortable.page(history_filter, sort, descending, offset, 3)
        assert [row.id for row in page] == [row.id for row in expected[offset : offset + 3]], offset
    # A currency's own order is its time order, and the amount and status indexes hold a
    # range's order.
    own_order = (
        (sort is SortKey.CURRENCY and bool(history_filter.currency))
        or (sort is SortKey.AMOUNT and history_filter.amount_min is not None)
        or (sort is SortKey.GATEWAY_STATUS and bool(history_filter.gateway_statuses))
    )
    assert bool(merged) is not own_order, merged
