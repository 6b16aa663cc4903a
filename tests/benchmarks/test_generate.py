"""The benchmark history generator: realistic, complete and usable through the store."""

from __future__ import annotations

import sqlite3
from itertools import pairwise
from pathlib import Path

from benchmarks.app_api import SCHEMA_VERSION, HistoryFilter, HistoryStore, SortKey
from benchmarks.generate import (
    END_MS,
    METHOD_CURRENCIES,
    PROFILES,
    SPAN_MS,
    STATES,
    TIMELINE_EVENTS,
    _parts,
    timeline_ids,
)
from tests.benchmarks.conftest import ROWS


def test_a_generated_history_covers_everything_and_works_with_the_store(
    tiny_history: Path,
) -> None:
    path = tiny_history
    with HistoryStore(path) as store:
        assert store.count() == ROWS
        rows = store.page(sort=SortKey.CREATED_AT, descending=False, limit=ROWS)
        assert [row.id for row in rows] == list(range(1, ROWS + 1))  # ids follow time
        assert {row.state for row in rows} == {state for state, _ in STATES}
        assert {(row.method, row.currency) for row in rows} == {
            (method, currency) for method, currency, _ in METHOD_CURRENCIES
        }
        assert {row.profile_name for row in rows} == {profile.name for profile in PROFILES}
        assert rows[-1].created_at - rows[0].created_at > SPAN_MS * 0.95
        assert rows[-1].created_at < END_MS
        assert len({row.request_id for row in rows}) == ROWS
        # The derived index and counts were rebuilt after the bulk insert.
        login = rows[1234].site_login
        assert rows[1234].id in {row.id for row in store.page(HistoryFilter(text=login))}
        accepted = sum(row.state == "ACCEPTED" for row in rows)
        assert store.count(HistoryFilter(states=frozenset({"ACCEPTED"}))) == accepted
        record = store.get(rows[10].id)
        assert record.request["request_id"] == record.request_id
        if record.method == "card":
            assert "******" in record.request["additional_fields"]["card_number"]


def test_the_history_has_events_and_twenty_event_timelines_at_the_current_schema(
    tiny_history: Path,
) -> None:
    path = tiny_history
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        callbacks = conn.execute(
            "SELECT count(*) FROM events e JOIN payouts p ON p.id = e.record_id "
            "WHERE p.state = 'ACCEPTED' AND p.id % 4 = 0 AND e.outcome = 'applied'"
        ).fetchone()[0]
        accepted = conn.execute(
            "SELECT count(*) FROM payouts WHERE state = 'ACCEPTED' AND id % 4 = 0"
        ).fetchone()[0]
        plan = " ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM events WHERE record_id = 5 ORDER BY id"
            )
        )
    finally:
        conn.close()
    assert version == SCHEMA_VERSION
    assert callbacks >= accepted > 0  # the indexes on events were rebuilt too
    assert "events_by_record" in plan
    with HistoryStore(path) as store:
        for record_id in timeline_ids(ROWS):
            events = store.events_for(record_id)
            assert len(events) >= TIMELINE_EVENTS
            assert {event.record_id for event in events} == {record_id}


def test_the_slices_cover_every_record_once_in_time_order() -> None:
    parts = _parts(1001, 6, 3)
    assert [part.rows for part in parts] == [334, 334, 333]
    assert [part.first_id for part in parts] == [1, 335, 669]
    for earlier, later in pairwise(parts):
        assert earlier.end_ms <= later.start_ms
        # Invoice ranges of the slices never meet (at most 3 per accepted payout).
        assert earlier.invoice_base + 3 * earlier.rows <= later.invoice_base


def test_the_local_day_and_word_totals_are_built_in_this_desks_zone(tiny_history: Path) -> None:
    """A generated history opens with its kept totals complete, as an upgraded one is once its
    upkeep has finished, so the benchmarks time the app's steady state."""
    from cactus_desk.history.clerk import local_zone
    from cactus_desk.history.sqlite.migrations import local_totals_state

    conn = sqlite3.connect(f"file:{tiny_history}?mode=ro", uri=True)
    try:
        assert local_totals_state(conn) == (local_zone().key, True)
    finally:
        conn.close()
