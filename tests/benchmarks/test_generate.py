"""The benchmark history generator: realistic, complete and usable through the store."""

from __future__ import annotations

from pathlib import Path

from benchmarks.generate import END_MS, METHOD_CURRENCIES, PROFILES, SPAN_MS, STATES, build
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey

ROWS = 3000


def test_a_generated_history_covers_everything_and_works_with_the_store(tmp_path: Path) -> None:
    path = build(tmp_path / "history.sqlite3", ROWS)
    with SqliteHistoryStore(path) as store:
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
