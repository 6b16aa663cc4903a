"""The history's fast paths: the trigram text index, the counts table and the page plans."""

from __future__ import annotations

import sqlite3
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite import migrations
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.migrations import MIGRATIONS, migrate
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from tests.payouts.conftest import make_attempt

CURRENCIES = ("USD", "IDR", "VND", "RUB")


def _fill(store: HistoryStore, rows: int = 60) -> list[int]:
    ids = []
    for i in range(rows):
        currency = CURRENCIES[i % 4]
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"po-{i:03d}",
                site_login=f"{('ivan.petrov', 'anna', 'budi')[i % 3]}{i}",
                currency=currency,
                # Amount follows the currency, as it does for real (IDR dwarfs USD).
                amount_minor=(1000 if currency == "USD" else 10**9) + i,
                profile_id=f"p{i % 2}",
            )
        )
        if i % 5 == 0:
            store.record_outcome(
                record_id, Rejected("Insufficient funds on balance", signature_verified=True)
            )
        else:
            store.record_outcome(record_id, Accepted(f"INV-{5000 + i}", 3, "Payout initialized"))
        ids.append(record_id)
    return ids


def _ids(store: HistoryStore, history_filter: HistoryFilter, **sort: object) -> list[int]:
    return [row.id for row in store.page(history_filter, limit=1000, **sort)]  # type: ignore[arg-type]


def test_the_text_index_follows_outcomes(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt(request_id="po-late"))
    assert _ids(store, HistoryFilter(text="INV-424")) == []
    store.record_outcome(record_id, Accepted("INV-4242", 3, "Payout initialized"))
    assert _ids(store, HistoryFilter(text="inv-424")) == [record_id]
    assert _ids(store, HistoryFilter(text="initialized")) == [record_id]
    assert _ids(store, HistoryFilter(text="po-late")) == [record_id]


def test_without_trigram_support_the_text_filter_still_works(
    store_factory: Callable[[], HistoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "trigram_supported", lambda conn: False)
    store = store_factory()
    ids = _fill(store, 30)
    with sqlite3.connect(store.path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert migrations.SEARCH_TABLE not in tables
    assert _ids(store, HistoryFilter(text="PETROV")) == [
        i for i in reversed(ids) if ids.index(i) % 3 == 0
    ]
    assert store.count(HistoryFilter(text="insufficient")) == 6


@pytest.mark.parametrize("text", ["petrov", "PO-01", "nsufficient", "INV-50", "an", "%"])
def test_the_index_and_the_scan_agree(
    store_factory: Callable[[], HistoryStore], monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    indexed = store_factory()
    _fill(indexed)
    monkeypatch.setattr(store_module, "_WALK_BUDGET", 1)  # never walk: the index decides
    expected = sorted(
        row.id
        for row in indexed.page(limit=1000)
        if any(
            text.casefold() in (value or "").casefold()
            for value in (row.request_id, row.invoice_id, row.site_login, row.message)
        )
    )
    assert sorted(_ids(indexed, HistoryFilter(text=text))) == expected
    assert indexed.count(HistoryFilter(text=text)) == len(expected)


def test_a_capped_count_stops_at_the_cap(store: HistoryStore) -> None:
    _fill(store)
    assert store.count(HistoryFilter(text="po-")) == 60
    assert store.count(HistoryFilter(text="po-"), cap=25) == 25
    assert store.count(HistoryFilter(text="po-", currency="USD"), cap=10) == 10
    assert store.count(HistoryFilter(currency="USD"), cap=100) == 15


def test_counts_follow_states_currencies_and_profiles(store: HistoryStore) -> None:
    _fill(store)
    assert store.count() == 60
    assert store.count(HistoryFilter(states=frozenset({"REJECTED"}))) == 12
    assert store.count(HistoryFilter(states=frozenset({"ACCEPTED"}), currency="IDR")) == 12
    assert store.count(HistoryFilter(profile_id="p1", currency="USD")) == 0
    assert store.count(HistoryFilter(profile_id="p0", currency="USD")) == 15


@pytest.mark.parametrize("key", [SortKey.CREATED_AT, SortKey.AMOUNT, SortKey.SITE_LOGIN])
def test_pages_near_the_end_match_the_order_from_the_start(
    store: HistoryStore, key: SortKey
) -> None:
    _fill(store)
    history_filter = HistoryFilter(states=frozenset({"ACCEPTED"}))
    every = _ids(store, history_filter, sort=key)
    tail = [row.id for row in store.page(history_filter, key, True, 40, 10)]
    assert len(every) == 48 and tail == every[40:48]
    assert (
        store.page(history_filter, key, True, 45, 10)
        == store.page(history_filter, key, True, 0, 100)[45:]
    )
    assert store.page(history_filter, key, True, 48, 10) == []


def test_a_walk_that_runs_long_gives_way_to_a_sort(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(store)
    # USD sits below every IDR, VND and RUB amount: walking the amount index from the top
    # would read nearly all rows before the first USD one.
    history_filter = HistoryFilter(states=frozenset({"ACCEPTED"}), currency="USD")
    expected = [
        row.id
        for row in store.page(sort=SortKey.AMOUNT, limit=1000)
        if row.currency == "USD" and row.state == "ACCEPTED"
    ]
    monkeypatch.setattr(store_module, "_WALK_BUDGET", 10**9)  # the estimate says walk
    monkeypatch.setattr(store_module, "_WALK_STEPS", 50)  # and the walk is cut short
    assert _ids(store, history_filter, sort=SortKey.AMOUNT) == expected
    assert len(expected) == 12


def test_an_older_history_gets_its_index_and_counts_on_upgrade(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:3])
    conn.close()
    with sqlite3.connect(path) as conn:  # a row an older version wrote
        conn.execute(
            "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment,"
            " merchant_id, site_id, request_id, site_login, method, currency, amount_minor,"
            " state, message, request_json) VALUES (1, 1, 'p', 'P', 'live', 'm', 1,"
            " 'old-request', 'login', 'card', 'EUR', 500, 'REJECTED', 'Blocked card', '{}')"
        )
    with SqliteHistoryStore(path) as store:
        assert [row.request_id for row in store.page(HistoryFilter(text="blocked"))] == [
            "old-request"
        ]
        # An old refusal with no answer kept proves nothing: the upgrade says so (v5).
        unverified = frozenset({"REFUSED_UNVERIFIED"})
        assert store.count(HistoryFilter(states=unverified, currency="EUR")) == 1


def _served_sets(monkeypatch: pytest.MonkeyPatch, *, many: bool) -> list[int | None]:
    """What each page's ``_short_matches`` answered (None: the text walks by LIKE);
    ``many``: no set is small enough."""
    served: list[int | None] = []
    short_matches = store_module._short_matches

    def spied(*args: object) -> int | None:
        served.append(short_matches(*args))  # type: ignore[arg-type]
        return served[-1]

    monkeypatch.setattr(store_module, "_short_matches", spied)
    if many:
        monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 0)
    return served


TWO_CHARACTER_VALUES = [
    # (site_login, message): inside a value, at its start or end, the whole value, any case.
    ("yu", "Payout initialized"),
    ("kyu", "OK"),
    ("Yuri", "Declined: card"),
    ("maria.YU", "ok, paid"),
    ("budi", "Отказ: ЮР"),
    ("anna", 'quote "y'),
    ("ivan", "rate 5%"),
]


@pytest.mark.parametrize("text", ["yu", "YU", "ok", "юр", '"y', "5%", "zq", "d:"])
@pytest.mark.parametrize("many", [False, True])
def test_a_two_character_search_finds_every_value_that_holds_it(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, text: str, many: bool
) -> None:
    """Read through the trigram index's terms and the values' endings (or, when they are
    many, by LIKE): wherever the two characters sit in a value, as that value or at its
    end, in any case (LIKE folds ASCII only, so its Cyrillic case must match)."""
    served = _served_sets(monkeypatch, many=many)
    ids = []
    for i, (login, message) in enumerate(TWO_CHARACTER_VALUES * 2):
        record_id = store.create_attempt(
            make_attempt(request_id=f"r-{i:02d}", site_login=login, currency=CURRENCIES[i % 2])
        )
        store.record_outcome(record_id, Rejected(message, signature_verified=True))
        ids.append(record_id)
    rows = store.page(limit=1000)
    ascii_lower = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

    def fold(value: str) -> str:
        return value.translate(ascii_lower) if many else value.casefold()

    def holds(value: str | None) -> bool:
        return fold(text) in fold(value or "")

    expected = sorted(row.id for row in rows if any(map(holds, (row.site_login, row.message))))
    if not many:
        assert text != "zq" or expected == []
    assert sorted(_ids(store, HistoryFilter(text=text))) == expected
    assert store.count(HistoryFilter(text=text)) == len(expected)
    usd = sorted(i for i in expected if store.get(i).currency == "USD")
    in_usd = HistoryFilter(text=text, currency="USD")
    assert sorted(_ids(store, in_usd, sort=SortKey.AMOUNT)) == usd
    assert store.count(in_usd) == len(usd)
    assert served and all((found is None) is many for found in served)


@pytest.mark.parametrize(("text", "walked"), [("yu", True), ("юр", False)])
def test_the_newest_matches_of_two_ascii_characters_are_walked_to_first(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, text: str, walked: bool
) -> None:
    """Near the top of the time order a brief LIKE walk comes before the set's count; text
    beyond ASCII reads its set at once, as LIKE would not fold its case as the index does."""
    budgets: list[float | None] = []
    walk = store_module._walk_or_none

    def spied(*args: object, **kwargs: object) -> object:
        budgets.append(kwargs.get("seconds"))  # type: ignore[arg-type]
        return walk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "_walk_or_none", spied)
    for i, (login, message) in enumerate(TWO_CHARACTER_VALUES):
        record_id = store.create_attempt(make_attempt(request_id=f"r-{i:02d}", site_login=login))
        store.record_outcome(record_id, Rejected(message, signature_verified=True))
    rows = store.page(limit=1000)
    expected = [
        row.id
        for row in rows  # newest first
        if any(text.casefold() in (v or "").casefold() for v in (row.site_login, row.message))
    ]
    assert _ids(store, HistoryFilter(text=text)) == expected
    assert (budgets[:1] == [store_module._SHORT_FIRST_WALK_S]) is walked


ONE_CHARACTER_VALUES = [
    # (site_login, message): a character at a value's start, inside it, second to last,
    # last, as the whole value, in either case.
    ("q", "Payout initialized"),
    ("aq", "OK"),
    ("qa", "Declined: card"),
    ("maria.Qx", "ok, paid"),
    ("budi", "Отказ: Ю"),
    ("anna", "rate 5%"),
    ("ivan", "quota reached"),
    ("kuznetsova", "limit"),
]


@pytest.mark.parametrize("text", ["q", "Q", "ю", "%", "z"])
@pytest.mark.parametrize("many", [False, True])
def test_a_rare_character_in_another_order_reads_every_value_that_holds_it(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, text: str, many: bool
) -> None:
    """A single character seen rarely in the newest payouts is read as a set, in an order
    other than time: the trigram index's terms that start with it and the values' endings
    that start or end with it, in any case (wherever it sits in a value). A common one
    (``many``) walks testing LIKE, which folds ASCII only."""
    served = _served_sets(monkeypatch, many=many)
    for i, (login, message) in enumerate(ONE_CHARACTER_VALUES * 2):
        record_id = store.create_attempt(
            make_attempt(request_id=f"r-{i:02d}", site_login=login, amount_minor=100 + i)
        )
        store.record_outcome(record_id, Rejected(message, signature_verified=True))
    rows = store.page(limit=1000)
    ascii_lower = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

    def fold(value: str) -> str:
        return value.translate(ascii_lower) if many else value.casefold()

    def holds(row: object) -> bool:
        values = (row.request_id, row.site_login, row.message)  # type: ignore[attr-defined]
        return any(fold(text) in fold(value or "") for value in values)

    expected = [row.id for row in sorted(rows, key=lambda row: row.amount_minor) if holds(row)]
    assert _ids(store, HistoryFilter(text=text), sort=SortKey.AMOUNT, descending=False) == (
        expected
    )
    assert served if not many else served == []
    assert all(found is not None for found in served)


def test_a_characters_rarity_is_judged_on_the_newest_payouts(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A character in every newest payout is common; one in a tenth of them is rare when a
    tenth of the history is fewer payouts than a set may hold, and common when it is not."""
    for i in range(20):
        store.create_attempt(make_attempt(request_id=f"pay-{i:02d}", site_login=f"u{i % 10}"))
    monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 3)
    with store.read_connection() as conn:  # type: ignore[attr-defined]
        assert not store_module._rare_character(conn, "a")  # "pay-..." in all 20
        assert store_module._rare_character(conn, "7")  # in 2 of 20 (pay-07, pay-17)
        monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 2)
        assert not store_module._rare_character(conn, "7")
