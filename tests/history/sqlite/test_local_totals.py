"""The local-day and recipient-word sums (``payouts_local_day_totals``, ``payouts_word_totals``)
are built in the background upkeep a batch at a time, follow every write, are rebuilt when the
desk's time zone changes, and then answer totals without reading the payouts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.clerk import LocalZone
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite import totals as kept
from cactus_desk.history.sqlite.migrations import local_totals_state
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, TotalRow, TotalsTooBroadError
from tests.payouts.conftest import make_attempt

NEPAL = LocalZone.fixed(5 * 3_600_000 + 45 * 60_000)
NEW_YORK_WINTER = LocalZone.fixed(-5 * 3_600_000)
START = 1_714_558_953_123
HOLDERS = ("Ivan Petrov", "Anna Smirnova", "Oleg Petrovich")


def _write(store: SqliteHistoryStore, rows: int, prefix: str) -> None:
    for n in range(rows):
        record_id = store.create_attempt(
            make_attempt(
                request_id=f"{prefix}-{n}",
                amount_minor=100 + n,
                request_fields={
                    "card_number": f"411111******{n:04d}",
                    "card_holder": HOLDERS[n % len(HOLDERS)],
                },
            )
        )
        if n % 2:
            store.mark_sending(record_id)
            store.record_outcome(record_id, Accepted(f"inv-{prefix}-{n}", 4 + n % 4 // 2, "ok"))


def _open(path: Path, zone: LocalZone, clock: list[int]) -> SqliteHistoryStore:
    def tick() -> int:
        clock[0] += 3_000_000  # 50 minutes a reading: the payouts span many local days
        return clock[0]

    return SqliteHistoryStore(path, clock=tick, zone=zone)


def _direct(store: SqliteHistoryStore, f: HistoryFilter) -> list[TotalRow]:
    found: dict[tuple[str, str], list[int]] = {}
    for r in store.iter_records(f):
        entry = found.setdefault((r.currency, str(r.state)), [0, 0])
        entry[0] += 1
        entry[1] += r.amount_minor
    return [TotalRow(c, s, n, t) for (c, s), (n, t) in sorted(found.items())]


def test_kept_sums_are_built_in_budgets_and_answer_recipient_totals(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(store_module, "_LOCAL_BATCH", 7)
    monkeypatch.setattr(store_module, "_LOCAL_BATCH_MAX", 7)
    step = SqliteHistoryStore._local_step

    def slow_step(self: SqliteHistoryStore, conn: sqlite3.Connection) -> bool:
        left = step(self, conn)
        time.sleep(0.002)  # outlasts the 1 ms budget: one batch a pass, however fast the machine
        return left

    monkeypatch.setattr(SqliteHistoryStore, "_local_step", slow_step)
    path, clock = tmp_path / "history.sqlite3", [START]
    store = _open(path, NEPAL, clock)
    _write(store, 40, "before")
    smirnova = HistoryFilter(recipient="smirnova")
    with store.read_connection() as conn:
        assert local_totals_state(conn)[0] == ""  # not yet kept in the desk's zone
        assert not store._local_kept(conn, NEPAL)
    assert store.totals(smirnova) == _direct(store, smirnova)  # read from the payouts
    passes = 0
    while store.run_maintenance(budget_ms=1).more or not store._local_ready:
        passes += 1
        if passes == 2:
            _write(store, 9, "during")  # writes during the build are counted once
    assert passes > 3  # a batch at a time
    _write(store, 5, "after")
    for f, charted in (
        (smirnova, True),
        (HistoryFilter(recipient="SMIRN", gateway_statuses=frozenset({4})), False),
        (HistoryFilter(recipient="ivan", currency="RUB"), True),
    ):
        with store.read_connection() as conn:
            answer = kept.local_totals(conn, f, NEPAL, search=True)
            days = kept.local_daily(conn, f, NEPAL, search=True, limit=1000)
        assert answer is not None  # the kept sums answer, exactly:
        assert answer == _direct(store, f) == store.totals(f)
        # The chart's word sums are per currency: a status filter reads the payouts.
        assert (days is not None) == charted
        shown = store.daily_totals(f, zone=NEPAL)
        assert days is None or days[::-1] == shown
        assert sum(d.count for d in shown) == sum(t.count for t in answer)
    for f in (HistoryFilter(), HistoryFilter(currency="RUB")):
        with store.read_connection() as conn:  # the chart of every payout: the word ''
            days = kept.local_daily(conn, f, NEPAL, search=True, limit=1000)
        assert days is not None
        assert sum(d.sent_minor for d in days) == sum(t.amount_minor for t in _direct(store, f))
    with store.read_connection() as conn:
        # Two kept words hold "petrov" (petrov, petrovich), a break is inside "na sm", digits
        # are breaks: the payouts are read instead, never a sum that counts one twice.
        for text in ("petrov", "na sm", "0001"):
            assert kept.local_totals(conn, HistoryFilter(recipient=text), NEPAL, True) is None
        assert kept.local_totals(conn, HistoryFilter(recipient="nobody"), NEPAL, True) == []
    for text in ("petrov", "na sm", "0001"):
        assert store.totals(HistoryFilter(recipient=text)) == _direct(
            store, HistoryFilter(recipient=text)
        )
    store.close()

    moved = _open(path, NEW_YORK_WINTER, clock)  # the desk's zone changed: built again
    with moved.read_connection() as conn:
        assert kept.local_daily(conn, smirnova, NEW_YORK_WINTER, True, 1000) is not None
        assert not moved._local_kept(conn, NEW_YORK_WINTER)
    while moved.run_maintenance(budget_ms=50).more or not moved._local_ready:
        pass
    with moved.read_connection() as conn:
        assert local_totals_state(conn)[0] == NEW_YORK_WINTER.key
    days = moved.daily_totals(smirnova, zone=NEW_YORK_WINTER)
    expected: dict[int, int] = {}
    for r in moved.iter_records(smirnova):
        day = NEW_YORK_WINTER.day_of(r.created_at)
        expected[day] = expected.get(day, 0) + r.amount_minor
    assert {d.day: d.sent_minor for d in days} == expected
    assert len(expected) > 2
    moved.close()


def test_totals_the_kept_sums_cannot_answer_are_exact_or_refused_never_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(tmp_path / "history.sqlite3", NEPAL, [START])
    _write(store, 30, "po")
    while store.run_maintenance(budget_ms=50).more or not store._local_ready:
        pass
    # "petrov" lies in two kept words (petrov, petrovich): summed from the payouts, exactly.
    petrov = HistoryFilter(recipient="petrov")
    exact = _direct(store, petrov)
    assert sum(t.count for t in exact) == 20
    assert store.totals(petrov) == exact
    assert sum(d.count for d in store.daily_totals(petrov, zone=NEPAL)) == 20
    # More matching payouts than the bound: no figure at all, with how to narrow the search.
    store.direct_totals_max_rows = 19
    for read in (lambda: store.totals(petrov), lambda: store.daily_totals(petrov, zone=NEPAL)):
        with pytest.raises(TotalsTooBroadError, match="Narrow it"):
            read()
    # A search the kept word sums answer is never bounded; one within the bound is exact.
    smirnova = HistoryFilter(recipient="smirnova")
    assert store.totals(smirnova) == _direct(store, smirnova)
    store.direct_totals_max_rows = 20
    assert store.totals(petrov) == exact
    # Out of time: the work is stopped and refused, not cut short into a smaller sum.
    store.direct_totals_budget_s = -1.0
    monkeypatch.setattr(store_module, "_BUDGET_STEPS", 1)  # the clock looked at every step
    with pytest.raises(TotalsTooBroadError):
        store.totals(HistoryFilter(recipient="0001"))
    store.direct_totals_budget_s = 3.0  # the stopped read left the connection usable
    assert store.totals(petrov) == exact
    store.close()
