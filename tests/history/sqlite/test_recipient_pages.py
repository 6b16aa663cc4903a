"""How a page under a recipient search (or another clerk's filter) is read: a common
recipient walks the sort's index testing its matches as a set, a rare one sorts its few
matches, and an order an index already gives is read a page at a time, never kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, RefusedUnverified, Rejected
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite import totals as kept_totals
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryRow, SortKey
from tests.history.sqlite.tracing import trace_into
from tests.payouts.conftest import make_attempt

ROWS = 60
HOLDERS = ("Ivan Petrov", "Yulia Sokolova", "Budi Santoso")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteHistoryStore]:
    store = SqliteHistoryStore(tmp_path_factory.mktemp("recipients") / "history.sqlite3")
    for i in range(ROWS):
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{i:04d}",
                currency=("USD", "IDR", "RUB")[i % 3],
                amount_minor=1_000 + (i * 37) % 41,
                request_fields={
                    "card_number": f"424242******{i:04d}",
                    "card_holder": HOLDERS[i % 3],
                },
            )
        )
        store.record_outcome(record_id, Accepted(f"INV-{i}", 3, "ok"))
    yield store
    store.close()


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The walks pages try (their budgets), with 10 matches counting as many."""
    monkeypatch.setattr(store_module, "_DENSE_MATCHES", 10)
    tried: list[dict[str, Any]] = []
    walk = store_module._walk_or_none

    def spied(*args: Any, **kwargs: Any) -> Any:
        tried.append(kwargs)
        return walk(*args, **kwargs)

    monkeypatch.setattr(store_module, "_walk_or_none", spied)
    return tried


def _expected(store: SqliteHistoryStore, holder: int, descending: bool) -> list[int]:
    """The ids of the payouts to ``HOLDERS[holder]`` in amount order."""
    rows: list[HistoryRow] = store.page(HistoryFilter(), limit=1_000)
    matching = [row for row in rows if int(row.request_id[3:]) % 3 == holder]
    ordered = [row.id for row in sorted(matching, key=lambda row: (row.amount_minor, row.id))]
    return ordered[::-1] if descending else ordered


@pytest.mark.parametrize("descending", [True, False])
def test_a_common_recipient_walks_the_sorts_index_testing_its_matches_as_a_set(
    history: SqliteHistoryStore, walks: list[dict[str, Any]], descending: bool
) -> None:
    expected = _expected(history, 0, descending)
    assert len(expected) == ROWS // 3
    search = HistoryFilter(recipient="petrov")
    for offset in (0, 3, len(expected) - 2):
        page = history.page(search, SortKey.AMOUNT, descending, offset, 4)
        assert [row.id for row in page] == expected[offset : offset + 4]
    assert walks and all(w.get("seconds") == store_module._MEMBER_WALK_S for w in walks)


@pytest.mark.parametrize(("entries", "walked"), [(10**6, True), (1, False)])
def test_far_down_a_recipient_walks_longer_only_where_its_matches_are_dense(
    history: SqliteHistoryStore,
    walks: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    entries: int,
    walked: bool,
) -> None:
    """Past ``_DEEP_OFFSET`` the walk's clock is longer, when the matches' density says it
    reaches the page within ``_DEEP_MEMBER_ENTRIES`` index entries; otherwise the page
    sorts every match at once. The same rows either way."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 5)
    monkeypatch.setattr(store_module, "_DEEP_MEMBER_ENTRIES", entries)
    expected = _expected(history, 1, False)
    page = history.page(HistoryFilter(recipient="sokolova"), SortKey.AMOUNT, False, 12, 4)
    assert [row.id for row in page] == expected[12:16]
    budgets = [w.get("seconds") for w in walks]
    assert budgets == ([store_module._DEEP_MEMBER_WALK_S] if walked else [])


def _wallets_to_petrov(store: SqliteHistoryStore) -> list[int]:
    """70 payouts: every one to Petrov a wallet's (method and login "zz-..."), sorting after
    40 card payouts to someone else ("aa-..."); the ids of Petrov's."""
    petrov = []
    for i in range(70):
        wallet = i % 7 < 3
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{i:04d}",
                site_login=f"zz-{i:04d}" if wallet else f"aa-{i:04d}",
                method="zz-wallet" if wallet else "aa-card",
                request_fields={"card_holder": HOLDERS[0 if wallet else 2]},
            )
        )
        if wallet:
            petrov.append(record_id)
    return petrov


@pytest.mark.parametrize(("descending", "walked"), [(True, True), (False, False)])
def test_far_down_a_recipients_walk_is_measured_from_a_sample_of_its_matches(
    tmp_path: Path,
    walks: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    descending: bool,
    walked: bool,
) -> None:
    """Matches are not spread evenly over an order: every payout to Petrov here is a
    wallet's, sorting after 40 card payouts. From a sample of the matches placed in the
    sort's counted buckets, the walk reaches the page soon in method Z-A and passes every
    card payout first in A-Z, which then sorts the matches at once. The same rows either
    way (a density over the whole history would walk both)."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 5)
    monkeypatch.setattr(store_module, "_SAMPLE_EVERY", 1)
    monkeypatch.setattr(store_module, "_SAMPLED_WALK_ENTRIES", 30)
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        petrov = _wallets_to_petrov(store)
        expected = sorted(petrov, reverse=descending)  # one method: in id order
        page = store.page(HistoryFilter(recipient="petrov"), SortKey.METHOD, descending, 12, 4)
        assert [row.id for row in page] == expected[12:16]
        assert bool(walks) is walked
    finally:
        store.close()


@pytest.mark.parametrize(("sort", "walked"), [(SortKey.METHOD, True), (SortKey.SITE_LOGIN, False)])
def test_far_down_a_walk_of_the_login_index_counts_its_entries_twice(
    tmp_path: Path,
    walks: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    sort: SortKey,
    walked: bool,
) -> None:
    """The login index's long values cost twice as much per entry walked (0.25-0.47 us
    against 0.13-0.24 at 5M payouts): a walk the sample measures just within the budget in
    method order is twice past it in login order, whose matches are then sorted."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 5)
    monkeypatch.setattr(store_module, "_SAMPLE_EVERY", 1)
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        petrov = _wallets_to_petrov(store)
        with store.read_connection() as conn:
            estimate = store_module._member_walk(
                conn, HistoryFilter(recipient="petrov"), sort, True, 16, True
            )
        assert estimate is not None
        monkeypatch.setattr(store_module, "_SAMPLED_WALK_ENTRIES", estimate[1])
        page = store.page(HistoryFilter(recipient="petrov"), sort, True, 12, 4)
        assert [row.id for row in page] == sorted(petrov, reverse=True)[12:16]
        assert bool(walks) is walked
    finally:
        store.close()


METHODS = ("card", "sbp", "papara", "skrill", "wise", "localbanks")


@pytest.fixture
def methods_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SqliteHistoryStore, list[str], list[int]]]:
    """90 payouts of six methods, 60 of them to Petrov; a deep page sorts at once (no walk)
    and keeps ten rows; every match is sampled. Yields the store, the SQL it runs and the
    ids of Petrov's payouts by method Z-A."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 5)
    monkeypatch.setattr(store_module, "_SAMPLE_EVERY", 1)
    monkeypatch.setattr(store_module, "_SAMPLED_WALK_ENTRIES", 0)
    monkeypatch.setattr(store_module, "KEPT_ROWS", 10)
    statements: list[str] = []
    trace_into(monkeypatch, statements)
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    petrov: list[tuple[str, int]] = []
    for i in range(90):
        method = METHODS[(i * 7) % len(METHODS)]
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{(i * 37) % 90:04d}",
                method=method,
                site_login=f"{('ann', 'Bob', 'zed', 'Yuri', 'ann')[i % 5]}.payee.{i % 7}",
                request_fields={"card_holder": HOLDERS[0 if i % 3 else 2]},
            )
        )
        if i % 3:
            petrov.append((method, record_id))
    try:
        yield store, statements, [record_id for _, record_id in sorted(petrov, reverse=True)]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("sort", "descending"),
    [(SortKey.METHOD, True), (SortKey.SITE_LOGIN, False), (SortKey.SITE_LOGIN, True)],
)
def test_far_down_a_recipients_sort_reads_only_the_matches_its_sample_bounds(
    methods_history: tuple[SqliteHistoryStore, list[str], list[int]],
    sort: SortKey,
    descending: bool,
) -> None:
    """The sample places the rows wanted within a bound on the sort's first term (with a
    margin; A-Z, past every value a sampled prefix starts), so the sort reads only the
    matches within it, once: at 5M payouts "petrov" by login Z-A, 118,000 matches, sorts
    13,000 (95 ms, not 110)."""
    store, statements, by_method = methods_history
    everything = store.page(HistoryFilter(), sort, descending, 0, 1_000)
    expected = [row.id for row in everything if row.id in set(by_method)]
    statements.clear()
    page = store.page(HistoryFilter(recipient="petrov"), sort, descending, 6, 4)
    assert [row.id for row in page] == expected[6:10]
    sorts = [sql for sql in statements if sql.startswith("SELECT id FROM") and "ORDER BY" in sql]
    bound = f"COLLATE NOCASE {'>=' if descending else '<='} '"
    assert len(sorts) == 1 and bound in sorts[0], sorts


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize(
    "sort", [SortKey.PROFILE, SortKey.REQUEST_ID, SortKey.SITE_LOGIN, SortKey.INVOICE_ID]
)
def test_a_sampled_bound_keeps_every_row_of_the_page(
    methods_history: tuple[SqliteHistoryStore, list[str], list[int]],
    sort: SortKey,
    descending: bool,
) -> None:
    """Bounds on a value's prefix (request ids, logins, either way), on whole values, and
    none where the sample holds NULLs (no invoice yet): the page is the plain order's."""
    store, _, _ = methods_history
    everything = store.page(HistoryFilter(), sort, descending, 0, 1_000)
    petrov = {row.id for row in store.page(HistoryFilter(recipient="petrov"), limit=1_000)}
    expected = [row.id for row in everything if row.id in petrov]
    page = store.page(HistoryFilter(recipient="petrov"), sort, descending, 6, 4)
    assert [row.id for row in page] == expected[6:10]


def test_a_sampled_bound_that_leaves_too_few_matches_sorts_them_all(
    methods_history: tuple[SqliteHistoryStore, list[str], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sample that misjudged: fewer matches than the page needs meet the bound, which
    says nothing of the rest, so every match is sorted after all: the same rows."""
    store, statements, expected = methods_history
    tight = ("payouts.method COLLATE NOCASE >= ?", "zzz")
    monkeypatch.setattr(store_module, "_sampled_cut", lambda *args: tight)
    statements.clear()
    page = store.page(HistoryFilter(recipient="petrov"), SortKey.METHOD, True, 6, 4)
    assert [row.id for row in page] == expected[6:10]
    sorts = [sql for sql in statements if sql.startswith("SELECT id FROM") and "ORDER BY" in sql]
    assert len(sorts) == 2, sorts
    assert "'zzz'" in sorts[0] and "'zzz'" not in sorts[1], sorts


def test_a_rare_recipient_sorts_its_few_matches_at_once(
    history: SqliteHistoryStore, walks: list[dict[str, Any]]
) -> None:
    page = history.page(HistoryFilter(recipient="0007"), SortKey.AMOUNT, True, 0, 5)
    assert [row.request_id for row in page] == ["po-0007"]
    assert walks == []


def test_an_order_an_index_gives_is_read_a_page_at_a_time(
    history: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An amount range sorted by amount: the amount index's range is the order, so the page
    is read alone (LIMIT and OFFSET of that range), not the first 10,000 rows to keep."""
    reads: list[tuple[int, int]] = []
    select = store_module._select

    def spied(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ids_only"):
            reads.append((args[4], args[5]))
        return select(*args, **kwargs)

    monkeypatch.setattr(store_module, "_select", spied)
    in_range = HistoryFilter(amount_min=1_010, amount_max=1_030)
    page = history.page(in_range, SortKey.AMOUNT, False, 2, 3)
    every = history.page(HistoryFilter(), limit=1_000)
    expected = sorted(
        (row for row in every if 1_010 <= row.amount_minor <= 1_030),
        key=lambda row: (row.amount_minor, row.id),
    )
    assert [row.id for row in page] == [row.id for row in expected[2:5]]
    assert reads == [(2, 3)]


@pytest.mark.parametrize(("few", "walked"), [(10**6, False), (0, True)])
def test_a_date_range_of_few_payouts_sorts_them_without_walking(
    history: SqliteHistoryStore,
    walks: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    few: int,
    walked: bool,
) -> None:
    """Its days' counts say how many payouts it can hold: few are sorted at once, where a
    walk of another order's index would pass over most of the history first."""
    monkeypatch.setattr(store_module, "_DATED_SORT_ROWS", few)
    every = history.page(HistoryFilter(), limit=1_000)
    times = sorted(row.created_at for row in every)
    first = 10 if walked else 12  # another range: an order kept by the other case is not read
    dated = HistoryFilter(created_from=times[first], created_to=times[30])
    expected = sorted(
        (row for row in every if times[first] <= row.created_at < times[30]),
        key=lambda row: (row.amount_minor, row.id),
    )
    page = history.page(dated, SortKey.AMOUNT, False, 0, 5)
    assert [row.id for row in page] == [row.id for row in expected[:5]]
    assert bool(walks) is walked


CURRENCIES = ("USD", "IDR", "RUB", "EUR")


def _states_and_currencies(store: SqliteHistoryStore, holders: tuple[str, ...]) -> None:
    """72 payouts of four currencies ending in three states, to ``holders`` in turn."""
    outcomes = (
        Accepted("INV", 3, "ok"),
        Rejected("no", signature_verified=True),
        RefusedUnverified("no", "unsigned"),
    )
    for i in range(72):
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{i:04d}",
                currency=CURRENCIES[(i * 5) % 4],
                request_fields={"card_holder": holders[i % len(holders)]},
            )
        )
        store.record_outcome(record_id, outcomes[(i * 7) % 3])


@pytest.mark.parametrize("sort", [SortKey.STATE, SortKey.CURRENCY])
@pytest.mark.parametrize("descending", [True, False])
def test_far_down_a_recipient_by_state_or_currency_starts_in_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sort: SortKey, descending: bool
) -> None:
    """The recipient-word sums say which value a deep page starts in and how far inside;
    the value's matches are then read in time order from its nearer end: every page is
    the plain order's, and no page walks the order's index."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 3)
    read: list[object] = []
    by_value = store_module._recipient_by_value

    def spied(*args: Any) -> Any:
        read.append(rows := by_value(*args))
        return rows

    monkeypatch.setattr(store_module, "_recipient_by_value", spied)
    monkeypatch.setattr(store_module, "_walk_or_none", _no_walk)
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        _states_and_currencies(store, HOLDERS)
        everything = store.page(HistoryFilter(), sort, descending, 0, 1_000)
        petrov = {row.id for row in store.page(HistoryFilter(recipient="petrov"), limit=1_000)}
        expected = [row.id for row in everything if row.id in petrov]
        assert len(expected) == 24
        for offset in range(4, 24):
            page = store.page(HistoryFilter(recipient="petrov"), sort, descending, offset, 5)
            assert [row.id for row in page] == expected[offset : offset + 5], offset
        assert len(read) == 20 and all(rows is not None for rows in read)
    finally:
        store.close()


def _no_walk(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("walked the order's index")


def test_a_recipient_several_words_hold_is_paged_without_the_sums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "petrov" lies in "petrov" and "petrova": their sums would count a payout to both
    twice, so the page is read from the order itself, and is the same."""
    monkeypatch.setattr(store_module, "_DEEP_OFFSET", 3)
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        _states_and_currencies(store, ("Ivan Petrov", "Anna Petrova", "Budi Santoso"))
        with store.read_connection() as conn:
            recipient = HistoryFilter(recipient="petrov")
            assert kept_totals.recipient_buckets(conn, recipient, "state", True, True) is None
        everything = store.page(HistoryFilter(), SortKey.STATE, True, 0, 1_000)
        petrov = {row.id for row in store.page(HistoryFilter(recipient="petrov"), limit=1_000)}
        expected = [row.id for row in everything if row.id in petrov]
        assert len(expected) == 48
        for offset in (5, 20, 44):
            page = store.page(HistoryFilter(recipient="petrov"), SortKey.STATE, True, offset, 5)
            assert [row.id for row in page] == expected[offset : offset + 5], offset
    finally:
        store.close()
