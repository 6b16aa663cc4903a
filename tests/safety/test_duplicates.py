"""A payout that repeats a recent one is spotted before it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import NewAttempt
from cactus_desk.payouts.duplicates import WINDOW_MS, find_recent_duplicates

NOW = 1_750_000_000_000
HOUR = 3600 * 1000

CARD_ATTEMPT = NewAttempt(
    profile_id="p1",
    profile_name="Shop",
    environment="live",
    merchant_id="m",
    site_id=1,
    request_id="po-1",
    site_login="alice",
    method="card",
    currency="RUB",
    amount_minor=150_000,
    request_fields={"card_number": "411111******1111", "card_holder": "Ivan Petrov"},
)


class Clock:
    """A settable clock, so each record is created at a chosen moment."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(data_home: Path, clock: Clock) -> Iterator[HistoryStore]:
    data_home.mkdir(parents=True)
    with SqliteHistoryStore(data_home / "history.sqlite3", clock=clock) as opened:
        yield opened


_counter = iter(range(10_000))


def _record(
    store: HistoryStore, clock: Clock, at: int, outcome: object = None, **changes: Any
) -> int:
    clock.now = at
    earlier = replace(CARD_ATTEMPT, request_id=f"old-{next(_counter)}", **changes)
    record_id = store.create_attempt(earlier)
    if outcome is not None:
        store.record_outcome(record_id, outcome)  # type: ignore[arg-type]
    return record_id


ACCEPTED = Accepted(invoice_id="9", status=3, message="Payout initialized")


def test_the_same_payout_within_a_day_is_a_duplicate(store: HistoryStore, clock: Clock) -> None:
    older = _record(store, clock, NOW - 20 * HOUR, ACCEPTED)
    newer = _record(store, clock, NOW - HOUR, Unknown("lost", UnknownKind.TIMEOUT))
    _record(store, clock, NOW - WINDOW_MS - 1, ACCEPTED)  # more than a day ago
    found = find_recent_duplicates(store, CARD_ATTEMPT, NOW)
    assert [record.id for record in found] == [newer, older]


def test_an_attempt_still_being_sent_counts(store: HistoryStore, clock: Clock) -> None:
    in_flight = _record(store, clock, NOW - 1000)
    assert [r.id for r in find_recent_duplicates(store, CARD_ATTEMPT, NOW)] == [in_flight]


def test_a_payout_that_moved_no_money_does_not_count(store: HistoryStore, clock: Clock) -> None:
    _record(store, clock, NOW - HOUR, Rejected("Insufficient funds", signature_verified=True))
    not_sent = _record(store, clock, NOW - HOUR)
    store.record_not_sent(not_sent, "No salt")
    assert find_recent_duplicates(store, CARD_ATTEMPT, NOW) == []


@pytest.mark.parametrize(
    "change",
    [
        {"amount_minor": 150_001},
        {"currency": "USD"},
        {"site_login": "bob"},
        {"environment": "sandbox"},
        {"request_fields": {"card_number": "411111******2222", "card_holder": "Ivan Petrov"}},
        {"request_fields": {"card_number": "411111******1111", "card_holder": "Anna Petrova"}},
        {"method": "sbp", "request_fields": {"phone_number": "79990000000"}},
    ],
    ids=["amount", "currency", "login", "environment", "card", "holder", "method"],
)
def test_any_difference_that_matters_is_not_a_duplicate(
    store: HistoryStore, clock: Clock, change: dict[str, Any]
) -> None:
    _record(store, clock, NOW - HOUR, ACCEPTED, **change)
    assert find_recent_duplicates(store, CARD_ATTEMPT, NOW) == []


def test_the_recipient_is_compared_loosely_and_on_identifying_fields_only(
    store: HistoryStore, clock: Clock
) -> None:
    stored = {"card_number": "411111******1111", "card_holder": "IVAN  PETROV", "bank_name": "A"}
    earlier = _record(store, clock, NOW - HOUR, ACCEPTED, request_fields=stored)
    typed = {"card_number": "4111 1111 1111 1111", "card_holder": "ivan petrov", "bank_name": "B"}
    attempt = replace(CARD_ATTEMPT, request_fields=typed)  # a full number compares as masked
    assert [r.id for r in find_recent_duplicates(store, attempt, NOW)] == [earlier]


def test_a_phone_recipient_is_compared_on_the_number(store: HistoryStore, clock: Clock) -> None:
    sbp = {
        "method": "sbp",
        "request_fields": {"phone_number": "+7 999 000-00-00", "phone_holder": "Ann"},
    }
    earlier = _record(store, clock, NOW - HOUR, ACCEPTED, **sbp)
    attempt = replace(
        CARD_ATTEMPT,
        method="sbp",
        request_fields={"phone_number": "+79990000000", "phone_holder": "ann"},
    )
    assert [r.id for r in find_recent_duplicates(store, attempt, NOW)] == [earlier]
    other = replace(attempt, request_fields={"phone_number": "+79990000001", "phone_holder": "ann"})
    assert find_recent_duplicates(store, other, NOW) == []
