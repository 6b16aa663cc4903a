"""Totals by the desk's own days on every backend: any UTC offset (+5:30, +5:45, behind UTC)
and daylight-saving changes, with and without a recipient search, equal a direct sum."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.clerk import LocalZone, local_zone
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import DayTotal, HistoryFilter
from tests.history.contract.helpers import attempt


def _utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


#: Payout times either side of the local midnights of the zones below and of the Berlin and
#: New York daylight-saving changes of 2024 (31 March, 10 March, 27 October, 3 November).
TIMES = sorted(
    [
        _utc(2024, 3, 9, 4, 59, 59),
        _utc(2024, 3, 9, 5, 0, 1),
        _utc(2024, 3, 10, 3, 59, 59),
        _utc(2024, 3, 10, 4, 0, 1),
        _utc(2024, 3, 30, 18, 14, 59),
        _utc(2024, 3, 30, 18, 15, 1),
        _utc(2024, 3, 30, 18, 29, 59),
        _utc(2024, 3, 30, 18, 30, 1),
        _utc(2024, 3, 30, 22, 59, 59),
        _utc(2024, 3, 30, 23, 0, 1),
        _utc(2024, 3, 31, 1, 30),
        _utc(2024, 3, 31, 21, 59, 59),
        _utc(2024, 3, 31, 22, 0, 1),
        _utc(2024, 10, 26, 21, 59, 59),
        _utc(2024, 10, 26, 22, 0, 1),
        _utc(2024, 10, 27, 22, 59, 59),
        _utc(2024, 10, 27, 23, 0, 1),
        _utc(2024, 11, 3, 3, 59, 59),
        _utc(2024, 11, 3, 4, 0, 1),
        _utc(2024, 11, 4, 4, 59, 59),
        _utc(2024, 11, 4, 5, 0, 1),
    ]
)
HOLDERS = ("Ivan Petrov", "Anna Smirnova", "Oleg Petrovich", "Maria O'Neil-Smirnova")
ZONES = ("Europe/Berlin", "Asia/Kathmandu", "Asia/Kolkata", "America/New_York", "UTC")


@pytest.fixture
def in_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process's local time zone set to the parametrised one (TZ), restored after."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def _seed(open_store: Callable[..., HistoryStore]) -> tuple[HistoryStore, list[int]]:
    now = [TIMES[0]]
    store = open_store(lambda: now[0])
    ids = []
    for index, at in enumerate(TIMES[:-4]):
        now[0] = at
        ids.append(_payout(store, index, at))
    while store.run_maintenance(budget_ms=2_000).more:
        pass
    # Written after the background build: the kept sums follow through their triggers.
    for index, at in enumerate(TIMES[-4:], start=len(TIMES) - 4):
        now[0] = at
        ids.append(_payout(store, index, at))
    store.mark_sending(ids[0])  # a payout added up by the build changes state afterwards
    store.record_outcome(ids[0], Accepted("inv-late", 5, "declined late"))
    return store, ids


def _payout(store: HistoryStore, index: int, at: int) -> int:
    holder = HOLDERS[index % len(HOLDERS)]
    record_id = store.create_attempt(
        attempt(
            request_id=f"po-{index:03d}",
            currency="USD" if index % 5 == 4 else "RUB",
            amount_minor=1_000 + 37 * index,
            request_fields={"card_number": f"424242******{index:04d}", "card_holder": holder},
        )
    )
    if index % 3:
        store.mark_sending(record_id)
        store.record_outcome(record_id, Accepted(f"inv-{index}", 3 + index % 3, "ok"))
    return record_id


def _expected(store: HistoryStore, f: HistoryFilter, zone: LocalZone) -> list[DayTotal]:
    found: dict[tuple[int, str], list[int]] = {}
    for r in store.iter_records(f):
        entry = found.setdefault((zone.day_of(r.created_at), r.currency), [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += r.amount_minor
        entry[2] += r.amount_minor if r.gateway_status == 4 else 0
        entry[3] += r.amount_minor if r.gateway_status == 5 or r.state == "REJECTED" else 0
    return [DayTotal(d, c, *v) for (d, c), v in sorted(found.items())]


def _by_day(days: list[DayTotal]) -> list[DayTotal]:
    assert [d.day for d in days] == sorted(d.day for d in days)  # oldest first
    return sorted(days, key=lambda d: (d.day, d.currency))


def _direct_totals(store: HistoryStore, f: HistoryFilter) -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for r in store.iter_records(f):
        entry = found.setdefault((r.currency, str(r.state)), [0, 0])
        entry[0] += 1
        entry[1] += r.amount_minor
    return found


@pytest.mark.parametrize("in_zone", ZONES, indirect=True)
def test_daily_totals_fall_on_the_desk_s_local_days(
    open_store: Callable[..., HistoryStore], in_zone: str
) -> None:
    store, _ids = _seed(open_store)
    zone = local_zone()
    march_31 = int(datetime(2024, 3, 31).timestamp() * 1000)  # local midnight (TZ is set)
    november_3 = int(datetime(2024, 11, 3).timestamp() * 1000)
    filters = [
        HistoryFilter(),
        HistoryFilter(recipient="smirnova"),  # one kept word holds it: kept sums
        HistoryFilter(recipient="petrov"),  # two words hold it (petrov, petrovich)
        HistoryFilter(recipient="Smirn"),
        HistoryFilter(recipient="o'neil"),
        HistoryFilter(recipient="na Sm"),  # across a word break: the payouts are read
        HistoryFilter(recipient="0007"),
        HistoryFilter(currency="RUB", gateway_statuses=frozenset({4, 5})),
        HistoryFilter(recipient="smirnova", created_from=march_31, created_to=november_3),
        HistoryFilter(created_from=march_31 + 3_600_000, created_to=november_3),
        HistoryFilter(recipient="ivan", states=frozenset({"ACCEPTED"})),
    ]
    for f in filters:
        expected = _expected(store, f, zone)
        assert _by_day(store.daily_totals(f, zone=zone)) == expected, f
        assert {(t.currency, t.state): [t.count, t.amount_minor] for t in store.totals(f)} == (
            _direct_totals(store, f)
        ), f
    assert len(_expected(store, HistoryFilter(), zone)) > 10


@pytest.mark.parametrize("in_zone", ["Asia/Kathmandu"], indirect=True)
def test_daily_totals_in_another_zone_than_the_desk_s(
    open_store: Callable[..., HistoryStore], in_zone: str
) -> None:
    """A zone other than the one the kept sums follow is still answered exactly."""
    from zoneinfo import ZoneInfo

    store, _ids = _seed(open_store)
    for other in (local_zone(ZoneInfo("America/New_York")), LocalZone.fixed(-3 * 3_600_000)):
        for f in (HistoryFilter(), HistoryFilter(recipient="smirnova")):
            assert _by_day(store.daily_totals(f, zone=other)) == _expected(store, f, other)
