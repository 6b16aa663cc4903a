"""Repeats inside a file and against the history, found without keying every row by recipient
and with the history's lookups made while later rows are checked."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from cactus_desk.batch import validate as batch_validate
from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import DuplicateProbe, PayoutRecord
from cactus_desk.payouts import duplicates
from cactus_desk.payouts.duplicates import (
    find_payout_duplicates_many,
    find_recent_duplicates_many,
)
from cactus_desk.payouts.payout import Payout, PayoutTarget
from cactus_desk.payouts.submit import record_attempt, recorded_attempt
from tests.batch.files import CARD, CARD_HEADERS, card_rows, write_csv
from tests.batch.test_validate import checked, profile

OTHER_CARD = "5555555555554444"


def test_a_repeat_in_the_file_is_flagged_and_another_card_with_the_same_amount_is_not(
    tmp_path: Path,
) -> None:
    rows = [
        ["alice", "10.00", "RUB", "card", CARD, "Ivan Petrov"],
        ["ALICE", "10.00", "RUB", "card", OTHER_CARD, "Ivan Petrov"],  # another recipient
        ["Alice", "10.00", "RUB", "card", "4242 4242 4242 4242", "Ivan Petrov"],  # line 2's
        ["alice", "10.00", "RUB", "card", OTHER_CARD, "Ivan  Petrov"],  # line 3's
        ["alice", "10.00", "RUB", "card", CARD, "Petr Ivanov"],  # another holder
        ["alice", "10.01", "RUB", "card", CARD, "Ivan Petrov"],  # another amount
        ["bob", "10.00", "RUB", "card", CARD, "Ivan Petrov"],  # another login
    ]
    batch = checked(write_csv(tmp_path / "r.csv", CARD_HEADERS, rows))
    assert batch.ok
    assert [row.warnings for row in batch.rows] == [
        [],
        [],
        ["Repeats the payout on line 2."],
        ["Repeats the payout on line 3."],
        [],
        [],
        [],
    ]


def _payout(login: str, amount: int, card: str, holder: str = "Ivan Petrov") -> Payout:
    return Payout(
        PayoutTarget.of(profile()),
        f"one-off-{login}-{amount}-{card[-4:]}-{len(holder)}",
        login,
        "card",
        "RUB",
        amount,
        {"card_number": card, "card_holder": holder},
    )


def test_payouts_find_the_same_history_duplicates_as_their_recorded_attempts(
    data_home: Path,
) -> None:
    asked = [
        _payout("user1", 1000, CARD),  # repeats the first record
        _payout("USER1", 1000, CARD),  # a login differing in case is another login
        _payout("user1", 1000, OTHER_CARD),  # same login and amount, another card
        _payout("user1", 1000, CARD, "Ivan  PETROV"),  # the same holder, written otherwise
        _payout("user1", 1000, CARD, "Petr Ivanov"),  # another holder
        _payout("user2", 2500, OTHER_CARD),  # repeats the second record
        _payout("user3", 700, CARD),  # nothing like it
    ]
    with open_history(data_home) as store:
        record_attempt(store, _payout("user1", 1000, CARD))
        record_attempt(store, _payout("user2", 2500, OTHER_CARD))
        by_payout = find_payout_duplicates_many(store, asked)
        by_attempt = find_recent_duplicates_many(
            store, [recorded_attempt(payout) for payout in asked]
        )
    assert [[r.request_id for r in found] for found in by_payout] == [
        [r.request_id for r in found] for found in by_attempt
    ]
    assert [len(found) for found in by_payout] == [1, 0, 0, 1, 0, 1, 0]


def test_with_the_days_amounts_only_payouts_of_those_amounts_are_looked_up(
    data_home: Path,
) -> None:
    asked = [
        _payout("user1", 1000, CARD),  # repeats the first record
        _payout("user1", 1001, CARD),  # an amount nobody was paid today
        _payout("user2", 2500, OTHER_CARD),  # repeats the second record
        _payout("user9", 2500, CARD),  # an amount of the day, another login
        _payout("user3", 700, CARD),
    ]
    with open_history(data_home) as store:
        record_attempt(store, _payout("user1", 1000, CARD))
        record_attempt(store, _payout("user2", 2500, OTHER_CARD))
        window = duplicates.recent_amounts(store, "sandbox")
        watched = _Watched(store)
        filtered = find_payout_duplicates_many(watched, asked, window=window)  # type: ignore[arg-type]
        unfiltered = find_payout_duplicates_many(store, asked)
        live = duplicates.RecentAmounts("live", frozenset())
        other_environment = find_payout_duplicates_many(watched, asked, window=live)  # type: ignore[arg-type]
    assert window == duplicates.RecentAmounts("sandbox", frozenset({1000, 2500}))
    assert [[r.request_id for r in found] for found in filtered] == [
        [r.request_id for r in found] for found in unfiltered
    ]
    assert [len(found) for found in filtered] == [1, 0, 1, 0, 0]
    # Two lookups: three payouts with the day's amounts, then all five (another environment).
    assert [count for _, count in watched.calls] == [3, 5]
    assert [len(found) for found in other_environment] == [1, 0, 1, 0, 0]


def test_a_day_of_too_many_amounts_gives_no_filter(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duplicates, "AMOUNT_FILTER_LIMIT", 1)
    with open_history(data_home) as store:
        record_attempt(store, _payout("user1", 1000, CARD))
        assert duplicates.recent_amounts(store, "sandbox") is not None
        record_attempt(store, _payout("user2", 2500, CARD))
        assert duplicates.recent_amounts(store, "sandbox") is None


class _Watched:
    """A history whose duplicate lookups say which thread made them and for how many rows."""

    def __init__(self, store: HistoryStore, fail: bool = False) -> None:
        self._store = store
        self.fail = fail
        self.calls: list[tuple[str, int]] = []

    def recent_similar_many(self, probes: Sequence[DuplicateProbe]) -> list[list[PayoutRecord]]:
        self.calls.append((threading.current_thread().name, len(probes)))
        if self.fail:
            raise OSError("the history went away")
        return self._store.recent_similar_many(probes)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_history_repeats_are_looked_up_in_chunks_on_another_thread_and_land_on_their_rows(
    tmp_path: Path, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_validate, "LOOKUP_CHUNK", 3)
    rows = card_rows(8)
    rows[3][4] = "not a card"  # a row without a payout: never looked up
    rows[5][1] = "10.50"  # an amount nobody was paid today: never looked up either
    path = write_csv(tmp_path / "h.csv", CARD_HEADERS, rows)
    with open_history(data_home) as store:
        for index in (0, 4, 7):  # in the first, second and last chunk
            record_attempt(store, _payout(f"user{index:05d}", 1000, CARD))
        watched = _Watched(store)
        batch = checked(path, history=watched)
    assert [bool(row.warnings) for row in batch.rows] == [
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    assert "Repeats a payout of the last 24 hours" in batch.rows[4].warnings[0]
    assert [count for _, count in watched.calls] == [3, 2, 1]
    assert all(name != threading.current_thread().name for name, _ in watched.calls)


def test_a_failed_history_lookup_fails_the_check_rather_than_passing_rows(
    tmp_path: Path, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_validate, "LOOKUP_CHUNK", 2)
    path = write_csv(tmp_path / "f.csv", CARD_HEADERS, card_rows(5))
    with (
        open_history(data_home) as store,
        pytest.raises(OSError, match="the history went away"),
    ):
        checked(path, history=_Watched(store, fail=True))
