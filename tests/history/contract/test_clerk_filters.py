"""The clerk's filters on every backend: recipient, amount and date ranges, the gateway's
status and aging each select exactly the right payouts, in counts, pages and exports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryFilter
from tests.history.contract.helpers import attempt


def _sent(store: HistoryStore, request_id: str, status: int = 3, **changes: object) -> int:
    record_id = store.create_attempt(attempt(request_id=request_id, **changes))
    store.mark_sending(record_id)
    store.record_outcome(record_id, Accepted(f"inv-{request_id}", status, "ok"))
    return record_id


@pytest.fixture
def seeded(store: HistoryStore) -> HistoryStore:
    """Six payouts: cards, SBP phones and a bank account, in RUB and USD, each status."""
    _sent(
        store,
        "po-card-a",
        4,
        request_fields={"card_number": "424242******4242", "card_holder": "Ivan Petrov"},
    )
    _sent(
        store,
        "po-card-b",
        5,
        amount_minor=2_500,
        request_fields={"card_number": "555555******4444", "card_holder": "Anna Smirnova"},
    )
    _sent(
        store,
        "po-sbp",
        3,
        method="sbp",
        amount_minor=99_900,
        request_fields={"phone_number": "79990001122", "phone_holder": "Oleg Petrov"},
    )
    _sent(
        store,
        "po-usd",
        4,
        currency="USD",
        amount_minor=10_000,
        request_fields={"card_number": "411111******1111", "card_holder": "John Wick"},
    )
    _sent(
        store,
        "po-bank",
        3,
        method="localbanks",
        amount_minor=700_000,
        request_fields={
            "account_number": "40817810099910004312",
            "account_holder": "Maria Ivanova",
        },
    )
    store.create_attempt(
        attempt(
            request_id="po-stuck",
            amount_minor=1_000,
            request_fields={"card_number": "220000******0001", "card_holder": "Pavel Orlov"},
        )
    )
    return store


def _ids(store: HistoryStore, history_filter: HistoryFilter) -> list[str]:
    shown = [row.request_id for row in store.page(history_filter, limit=100)]
    assert store.count(history_filter) == len(shown)
    assert store.count(history_filter, cap=1) == min(1, len(shown))
    exported = [r.request_id for r in store.iter_records(history_filter)]
    assert exported == shown
    return sorted(shown)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("petrov", ["po-card-a", "po-sbp"]),
        ("4242", ["po-card-a"]),
        ("4444", ["po-card-b"]),
        ("0001122", ["po-sbp"]),
        ("4312", ["po-bank"]),
        ("Maria", ["po-bank"]),
        ("Wi", ["po-usd"]),  # shorter than the trigram index reads: still found
        ("nobody", []),
    ],
)
def test_the_recipient_filter_finds_names_phones_accounts_and_card_last_four(
    seeded: HistoryStore, text: str, expected: list[str]
) -> None:
    assert _ids(seeded, HistoryFilter(recipient=text)) == expected


def test_a_full_card_number_is_never_found_for_it_is_never_stored(seeded: HistoryStore) -> None:
    assert _ids(seeded, HistoryFilter(recipient="4242424242424242")) == []


def test_an_amount_range_within_a_currency(seeded: HistoryStore) -> None:
    rub = HistoryFilter(currency="RUB", amount_min=2_500, amount_max=150_000)
    assert _ids(seeded, rub) == ["po-card-a", "po-card-b", "po-sbp"]
    assert _ids(seeded, HistoryFilter(amount_min=700_000)) == ["po-bank"]
    assert _ids(seeded, HistoryFilter(currency="USD", amount_max=9_999)) == []


def test_a_created_date_range_is_from_inclusive_to_exclusive(seeded: HistoryStore) -> None:
    rows = seeded.page(HistoryFilter(), descending=False, limit=100)
    second, fourth = rows[1].created_at, rows[3].created_at
    window = HistoryFilter(created_from=second, created_to=fourth)
    assert _ids(seeded, window) == sorted([rows[1].request_id, rows[2].request_id])


def test_the_gateway_status_filter(seeded: HistoryStore) -> None:
    assert _ids(seeded, HistoryFilter(gateway_statuses=frozenset({5}))) == ["po-card-b"]
    assert _ids(seeded, HistoryFilter(gateway_statuses=frozenset({3}))) == ["po-bank", "po-sbp"]
    both = HistoryFilter(gateway_statuses=frozenset({4, 5}), currency="RUB")
    assert _ids(seeded, both) == ["po-card-a", "po-card-b"]


def test_the_aging_filter_takes_open_payouts_created_before_the_limit(
    seeded: HistoryStore,
) -> None:
    newest = seeded.page(HistoryFilter(), limit=1)[0].created_at
    everything_open = HistoryFilter(aged_before=newest + 1)
    assert _ids(seeded, everything_open) == ["po-bank", "po-sbp", "po-stuck"]
    assert _ids(seeded, HistoryFilter(aged_before=newest)) == ["po-bank", "po-sbp"]


def test_filters_combine_with_the_search_and_the_state(
    seeded: HistoryStore, open_store: Callable[..., HistoryStore]
) -> None:
    both = HistoryFilter(text="po-card", recipient="petrov")
    assert _ids(seeded, both) == ["po-card-a"]
    assert _ids(seeded, HistoryFilter(states=frozenset({"SUBMITTING"}), amount_max=1_000)) == [
        "po-stuck"
    ]


@pytest.mark.parametrize(
    "history_filter",
    [
        HistoryFilter(),
        HistoryFilter(currency="RUB"),
        HistoryFilter(recipient="petrov"),
        HistoryFilter(gateway_statuses=frozenset({4, 5})),
        HistoryFilter(amount_min=2_500, amount_max=150_000),
    ],
    ids=["all", "rub", "recipient", "final", "amount"],
)
def test_totals_match_a_direct_sum_of_the_selected_payouts(
    seeded: HistoryStore, history_filter: HistoryFilter
) -> None:
    records = list(seeded.iter_records(history_filter))
    expected: dict[tuple[str, str], list[int]] = {}
    for record in records:
        entry = expected.setdefault((record.currency, str(record.state)), [0, 0])
        entry[0] += 1
        entry[1] += record.amount_minor
    totals = {
        (t.currency, t.state): [t.count, t.amount_minor] for t in seeded.totals(history_filter)
    }
    assert totals == expected
    days = seeded.daily_totals(history_filter)
    assert sum(d.sent_minor for d in days) == sum(r.amount_minor for r in records)
    assert sum(d.count for d in days) == len(records)
    paid = sum(r.amount_minor for r in records if r.gateway_status == 4)
    declined = sum(
        r.amount_minor for r in records if r.gateway_status == 5 or r.state == "REJECTED"
    )
    assert sum(d.paid_minor for d in days) == paid
    assert sum(d.declined_minor for d in days) == declined


def test_daily_totals_fall_on_the_desk_s_day(seeded: HistoryStore) -> None:
    [row] = seeded.page(HistoryFilter(recipient="4444"), limit=1)
    offset = 86_400_000 - row.created_at % 86_400_000  # shifts this payout to the next day
    [day] = seeded.daily_totals(HistoryFilter(recipient="4444"), offset_ms=offset)
    assert day.day == row.created_at // 86_400_000 + 1
    assert (day.currency, day.count, day.sent_minor, day.declined_minor) == ("RUB", 1, 2_500, 2_500)


def _direct_totals(store: HistoryStore, history_filter: HistoryFilter) -> dict[Any, list[int]]:
    expected: dict[tuple[str, str], list[int]] = {}
    for record in store.iter_records(history_filter):
        entry = expected.setdefault((record.currency, str(record.state)), [0, 0])
        entry[0] += 1
        entry[1] += record.amount_minor
    return expected


_DAY = 86_400_000


@pytest.mark.parametrize(
    "make_filter",
    [
        lambda first, last: HistoryFilter(states=frozenset({"ACCEPTED"})),
        lambda first, last: HistoryFilter(currency="USD"),
        lambda first, last: HistoryFilter(profile_id="nobody"),
        lambda first, last: HistoryFilter(gateway_statuses=frozenset({3, 5})),
        # Whole days inside with ragged ends; only ragged ends; the payouts in a ragged start.
        lambda first, last: HistoryFilter(
            created_from=first - 2 * _DAY - 5, created_to=last + 3 * _DAY + 7
        ),
        lambda first, last: HistoryFilter(created_from=first, created_to=last + 1),
        lambda first, last: HistoryFilter(created_from=first - 1, created_to=first - 1 + 3 * _DAY),
        lambda first, last: HistoryFilter(created_from=first // _DAY * _DAY, created_to=last + 1),
        lambda first, last: HistoryFilter(created_to=first),
        # Whole blocks of days (32) and the days around them.
        lambda first, last: HistoryFilter(
            created_from=first - 100 * _DAY + 3, created_to=last + 70 * _DAY
        ),
        lambda first, last: HistoryFilter(created_from=first - 40 * _DAY, currency="RUB"),
        lambda first, last: HistoryFilter(
            created_from=first - _DAY, currency="RUB", gateway_statuses=frozenset({4})
        ),
    ],
    ids=[
        "state",
        "currency",
        "profile",
        "status",
        "days",
        "short",
        "ragged",
        "day",
        "before",
        "blocks",
        "since",
        "mix",
    ],
)
def test_kept_totals_equal_a_direct_sum_with_each_filter(
    seeded: HistoryStore, make_filter: Callable[[int, int], HistoryFilter]
) -> None:
    """Totals read from kept aggregates equal a sum over the selected payouts, also after a
    payout's state changed and one more was added."""
    stuck = next(r for r in seeded.iter_records(HistoryFilter()) if r.request_id == "po-stuck")
    seeded.mark_sending(stuck.id)
    seeded.record_outcome(stuck.id, Accepted("inv-stuck", 5, "declined"))
    _sent(seeded, "po-late", 4, currency="USD", amount_minor=123)
    created = [r.created_at for r in seeded.iter_records(HistoryFilter())]
    history_filter = make_filter(min(created), max(created))
    totals = {
        (t.currency, t.state): [t.count, t.amount_minor] for t in seeded.totals(history_filter)
    }
    assert totals == _direct_totals(seeded, history_filter)
    days = seeded.daily_totals(history_filter)
    assert sum(d.count for d in days) == sum(n for n, _ in totals.values())
    assert sum(d.sent_minor for d in days) == sum(t for _, t in totals.values())
