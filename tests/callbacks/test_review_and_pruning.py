"""Conflicting final statuses, the "Needs review" filter, decline reasons, bounded forged
callbacks and their audited pruning."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cactus_desk import cli
from cactus_desk.callbacks.apply import UNVERIFIED_REASONS, Reason, apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.callbacks.prune import DAY_MS, prune_rejected
from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history import open_history
from cactus_desk.history.export import write_csv
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.migrations import MIGRATIONS, PRUNABLE_REASONS, migrate
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter
from cactus_desk.logs import stop_logging
from tests.callbacks.helpers import ATTEMPT, MERCHANT, SALT, SITE, accepted_record, callback


def apply(store: HistoryStore, payload: object) -> object:
    return apply_callback(store, payload, SALT, merchant_id=MERCHANT, site_id=SITE)


# -- item 3: the latest verified final status wins, flagged ------------------------------------


@pytest.mark.parametrize(("first", "then"), [(5, 4), (4, 5)])
def test_a_later_verified_final_status_wins_the_display_flagged_for_review(
    store: HistoryStore, first: int, then: int
) -> None:
    record_id = accepted_record(store)
    apply(store, callback(first))
    apply(store, callback(then))
    record = store.get(record_id)
    assert record.gateway_status == then
    assert record.status_conflict and record.needs_review
    assert record.message.startswith("Conflict: check")
    (row,) = store.page(HistoryFilter(needs_review=True))
    assert row.id == record_id and row.status_conflict and row.gateway_status == then
    outcomes = [event.outcome for event in store.events_for(record_id)]
    assert outcomes == [EventOutcome.APPLIED, EventOutcome.CONFLICT]
    # Back and forth: each verified word is shown as it arrives, and the flag stays.
    apply(store, callback(first))
    assert store.get(record_id).gateway_status == first
    assert store.get(record_id).status_conflict


def test_the_needs_review_filter_finds_only_flagged_records(store: HistoryStore) -> None:
    calm = accepted_record(store, request_id="po-calm", invoice_id="1")
    odd = accepted_record(store, request_id="po-odd", invoice_id="2")
    apply(store, callback(4, request_id="po-calm", invoice_id=1))
    apply(store, callback(7, request_id="po-odd", invoice_id=2))
    assert store.count(HistoryFilter()) == 2
    assert store.count(HistoryFilter(needs_review=True)) == 1
    assert [row.id for row in store.page(HistoryFilter(needs_review=True))] == [odd]
    both = HistoryFilter(needs_review=True, states=frozenset({"ACCEPTED"}), currency="RUB")
    assert [row.id for row in store.page(both)] == [odd]
    assert calm not in [row.id for row in store.page(HistoryFilter(needs_review=True))]


@pytest.mark.parametrize("status", [12, 0, -1, 2**70])
def test_an_accepted_answer_with_an_unknown_status_is_flagged_for_review(
    store: HistoryStore, status: int
) -> None:
    record_id = store.create_attempt(ATTEMPT)
    store.record_outcome(record_id, Accepted("500001", status, "Payout initialized"))
    record = store.get(record_id)
    assert record.needs_review and "does not know" in record.review_message
    assert [row.id for row in store.page(HistoryFilter(needs_review=True))] == [record_id]


def test_an_accepted_answer_with_a_known_status_is_not_flagged(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    assert not store.get(record_id).needs_review
    assert store.count(HistoryFilter(needs_review=True)) == 0


# -- item 15: a decline's reason -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["description", "message"])
def test_a_declines_reason_reaches_the_message_the_timeline_and_the_csv(
    store: HistoryStore, field: str
) -> None:
    record_id = accepted_record(store)
    changes = {"description": None, field: "Session expired. No success payment"}
    apply(store, callback(5, **changes))
    record = store.get(record_id)
    assert record.message == "Declined by the gateway: Session expired. No success payment"
    (row,) = store.page()
    assert "Session expired" in row.message
    (event,) = store.events_for(record_id)
    assert "Session expired. No success payment" in event.message
    out = io.StringIO()
    write_csv([record], out)
    assert "Declined by the gateway: Session expired. No success payment" in out.getvalue()


# -- item 8: forged callbacks are stored bounded, and pruned with an audit ----------------------


def test_a_forged_60kb_callback_is_stored_as_an_excerpt_and_a_hash(store: HistoryStore) -> None:
    forged = callback(4, salt="forger", description="y" * 60_000)
    before = store.path.stat().st_size
    for _ in range(1000):  # no budget here: every one is stored
        assert apply(store, forged).reason is Reason.BAD_SIGNATURE  # type: ignore[attr-defined]
    with store.read_connection() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes = [len(row[0]) for row in conn.execute("SELECT payload_json FROM events")]
    assert max(sizes) < 600
    assert store.path.stat().st_size - before < 1024 * 1024
    event = store.rejected_events(limit=1)[0]
    assert event.request_id == "po-0001" and len(event.payload["sha256"]) == 64


def test_an_unverified_callback_over_the_budget_is_not_stored(store: HistoryStore) -> None:
    result = apply_callback(store, callback(4, salt="forger"), SALT, admit_unverified=lambda: False)
    assert result.rejected and not result.stored
    assert store.rejected_events() == []


def test_the_prunable_reasons_are_exactly_the_unverified_ones() -> None:
    assert set(PRUNABLE_REASONS) == {str(reason) for reason in UNVERIFIED_REASONS}


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clocked(data_home: Path) -> Iterator[tuple[HistoryStore, _Clock]]:
    data_home.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    with SqliteHistoryStore(data_home / "history.sqlite3", clock=clock) as store:
        yield store, clock


def test_pruning_removes_old_unverified_callbacks_only_and_is_audited(
    clocked: tuple[HistoryStore, _Clock],
) -> None:
    store, clock = clocked
    record_id = accepted_record(store)
    apply(store, callback(4, salt="forger"))  # old and forged: pruned
    apply(store, b"not json")  # old and garbled: pruned
    apply(store, callback(4, request_id="po-nobody"))  # old, verified but unknown: kept
    apply(store, callback(4))  # old, verified, applied: kept
    clock.now += 40 * DAY_MS
    apply(store, callback(4, salt="forger"))  # recent forged: kept

    report = prune_rejected(store, 30, who="olga")

    assert report.deleted == 2
    remaining = store.rejected_events()
    assert sorted(event.reason for event in remaining) == ["bad_signature", "unknown_request"]
    assert [event.outcome for event in store.events_for(record_id)] == [EventOutcome.APPLIED]
    with store.read_connection() as conn:
        row = conn.execute("SELECT * FROM events WHERE outcome = 'pruned'").fetchone()
    assert row["who"] == "olga" and row["source"] == str(EventSource.MANUAL)
    assert json.loads(row["payload_json"])["deleted"] == 2


def test_verified_events_stay_append_only(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    apply(store, callback(4))
    apply(store, callback(4, request_id="po-nobody"))
    for where in (f"record_id = {record_id}", "reason = 'unknown_request'"):
        with (
            pytest.raises(sqlite3.IntegrityError, match="append-only"),
            store.write_transaction() as conn,
        ):
            conn.execute(f"DELETE FROM events WHERE {where}")


def test_the_prune_command_reports_and_audits(
    data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_home.mkdir(parents=True, exist_ok=True)
    with open_history(data_home) as store:
        apply(store, callback(4, salt="forger"))
    try:
        code = cli.main(["callbacks", "prune-rejected", "--older-than", "0"])
        bad = cli.main(["callbacks", "prune-rejected", "--older-than", "-3"])
    finally:
        stop_logging()
    out, err = capsys.readouterr()
    assert code == 0 and "Removed 1 unverified rejected callback " in out
    assert bad == 2 and "--older-than" in err
    with open_history(data_home) as store:
        assert store.rejected_events() == []
        with store.read_connection() as conn:
            (who,) = conn.execute("SELECT who FROM events WHERE outcome = 'pruned'").fetchone()
    assert who


def test_an_older_history_marks_its_past_conflicts_in_the_migration(data_home: Path) -> None:
    data_home.mkdir(parents=True, exist_ok=True)
    path = data_home / "history.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:4])
    conn.execute(
        "INSERT INTO payouts (id, created_at, updated_at, profile_id, profile_name, environment, "
        "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, state, "
        "gateway_status, request_json) VALUES "
        "(1, 1, 1, 'p', 'P', 'sandbox', 'm', 7, 'po-1', 'a', 'card', 'RUB', 100, 'ACCEPTED', 4, "
        "'{}'), (2, 1, 1, 'p', 'P', 'sandbox', 'm', 7, 'po-2', 'a', 'card', 'RUB', 100, "
        "'ACCEPTED', 4, '{}')"
    )
    conn.execute(
        "INSERT INTO events (received_at, record_id, source, outcome, status, payload_json) "
        "VALUES (1, 1, 'gateway', 'conflict', 5, '{}')"
    )
    conn.close()
    with SqliteHistoryStore(path) as store:
        assert store.get(1).status_conflict and not store.get(2).status_conflict
