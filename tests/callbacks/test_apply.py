"""Applying callbacks: verification, the forward-only lifecycle, review flags and the timeline."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest

from cactus_desk.callbacks.apply import ApplyResult, Reason, apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
from cactus_desk.gateway.signature import sign
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.payouts.states import State
from tests.callbacks.helpers import (
    ATTEMPT,
    CARD,
    MERCHANT,
    SALT,
    SITE,
    accepted_record,
    callback,
    unknown_record,
)


def apply(store: HistoryStore, payload: Any, salt: str = SALT) -> ApplyResult:
    return apply_callback(store, payload, salt, merchant_id=MERCHANT, site_id=SITE)


def test_a_forged_callback_changes_nothing_and_is_kept_as_rejected(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    before = store.get(record_id)

    result = apply(store, callback(4, salt="guessed-salt"))

    assert result.rejected and result.reason is Reason.BAD_SIGNATURE
    assert result.record_id is None
    assert store.get(record_id) == before
    assert store.events_for(record_id) == []
    (event,) = store.rejected_events()
    assert event.reason == "bad_signature" and event.request_id == "po-0001"
    assert not event.verified


def test_a_field_changed_after_signing_is_rejected(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    tampered = {**callback(4), "received_amount": 999_999}
    assert apply(store, tampered).reason is Reason.BAD_SIGNATURE
    assert store.get(record_id).gateway_status == 3


def test_success_is_applied_with_the_received_fields_and_shows_in_the_timeline(
    store: HistoryStore,
) -> None:
    record_id = accepted_record(store)
    result = apply(store, callback(4, received_amount=149_000, description="Paid"))

    assert result.outcome is EventOutcome.APPLIED and result.record_id == record_id
    record = store.get(record_id)
    assert (record.state, record.gateway_status, record.status_source) == (
        State.ACCEPTED,
        4,
        "gateway",
    )
    assert (record.received_amount, record.received_currency, record.description) == (
        149_000,
        "RUB",
        "Paid",
    )
    assert not record.needs_review
    (event,) = store.events_for(record_id)
    assert event.source is EventSource.GATEWAY and event.verified
    assert event.status == 4 and "Success (4)" in event.summary


def test_fields_the_gateway_adds_are_signed_and_accepted(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    result = apply(store, callback(4, new_field="added without notice", rate=1.5))
    assert result.outcome is EventOutcome.APPLIED
    assert store.get(record_id).gateway_status == 4


def test_card_numbers_in_stored_payloads_are_masked(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    apply(store, callback(4, description=f"paid to {CARD}"))
    (event,) = store.events_for(record_id)
    assert event.payload["additional_fields"]["card_number"] == "411111******1111"
    with store.read_connection() as conn:
        raw = [row[0] for row in conn.execute("SELECT payload_json FROM events")]
    assert CARD not in json.dumps(raw)
    assert CARD not in store.get(record_id).description


def test_a_final_status_never_moves_back_and_a_later_contradiction_wins_flagged(
    store: HistoryStore,
) -> None:
    record_id = accepted_record(store)
    apply(store, callback(4))
    settled = store.get(record_id)

    assert apply(store, callback(4)).outcome is EventOutcome.DUPLICATE
    assert apply(store, callback(3)).outcome is EventOutcome.STALE
    assert apply(store, callback(2)).outcome is EventOutcome.STALE
    assert store.get(record_id) == settled

    conflict = apply(store, callback(5))
    assert conflict.outcome is EventOutcome.CONFLICT
    record = store.get(record_id)
    assert record.gateway_status == 5  # the latest verified status is shown, never the earlier
    assert record.status_conflict
    assert record.needs_review and "Declined (5)" in record.review_message
    assert "Success (4)" in record.review_message
    outcomes = [event.outcome for event in store.events_for(record_id)]
    assert outcomes == [
        EventOutcome.APPLIED,
        EventOutcome.DUPLICATE,
        EventOutcome.STALE,
        EventOutcome.STALE,
        EventOutcome.CONFLICT,
    ]


@pytest.mark.parametrize("status", [6, 7])
def test_error_and_unknown_statuses_mark_the_record_for_review(
    store: HistoryStore, status: int
) -> None:
    record_id = accepted_record(store)
    apply(store, callback(status))
    record = store.get(record_id)
    assert record.gateway_status == status
    assert record.needs_review and "check it by hand" in record.review_message
    apply(store, callback(4))
    assert store.get(record_id).gateway_status == 4


def test_an_unknown_request_id_is_stored_as_rejected_and_applied_to_nothing(
    store: HistoryStore,
) -> None:
    record_id = accepted_record(store)
    result = apply(store, callback(4, request_id="po-never-sent"))
    assert result.reason is Reason.UNKNOWN_REQUEST and result.record_id is None
    assert store.get(record_id).gateway_status == 3
    assert [event.request_id for event in store.rejected_events()] == ["po-never-sent"]


def test_a_callback_for_another_site_is_rejected(store: HistoryStore) -> None:
    accepted_record(store)
    assert apply(store, callback(4, site_id=8)).reason is Reason.SITE_MISMATCH


@pytest.mark.parametrize(
    "payload",
    [["not", "an", "object"], {"signature": "x"}, b"\xff\xfe"],
    ids=["list", "no-fields", "bytes"],
)
def test_something_that_is_not_a_callback_is_rejected(store: HistoryStore, payload: Any) -> None:
    result = apply(store, payload)
    assert result.rejected
    assert result.reason in (Reason.BAD_BODY, Reason.BAD_SIGNATURE)
    assert len(store.rejected_events()) == 1


def test_a_signed_callback_without_a_status_is_incomplete_and_kept_whole(
    store: HistoryStore,
) -> None:
    accepted_record(store)
    body = {"site_id": SITE, "request_id": "po-0001"}
    body["signature"] = sign(body, SALT)
    result = apply(store, body)
    assert result.reason is Reason.INCOMPLETE and result.reason.verified
    (event,) = store.rejected_events()
    assert event.payload["site_id"] == SITE  # verified: stored as sent, and never pruned


def test_an_unrecognised_status_is_rejected_but_flags_the_record(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    result = apply(store, callback(12))
    assert result.reason is Reason.BAD_STATUS and result.record_id == record_id
    record = store.get(record_id)
    assert record.gateway_status == 3 and record.needs_review


def test_a_callback_resolves_an_unknown_record(store: HistoryStore) -> None:
    record_id = unknown_record(store)
    apply(store, callback(3, invoice_id=777))
    record = store.get(record_id)
    assert record.state is State.ACCEPTED
    assert (record.invoice_id, record.gateway_status) == ("777", 3)
    assert record.unknown_kind is None
    assert "No answer in time" in record.detail


def test_an_initial_status_does_not_resolve_an_unknown_record(store: HistoryStore) -> None:
    record_id = unknown_record(store)
    apply(store, callback(1))
    record = store.get(record_id)
    assert record.state is State.UNKNOWN and record.gateway_status == 1


def test_a_different_amount_or_currency_is_applied_but_flagged(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    apply(store, callback(4, amount=140_000, currency="EUR"))
    record = store.get(record_id)
    assert record.gateway_status == 4
    assert record.needs_review
    assert "amount 140000" in record.review_message and "currency EUR" in record.review_message


def test_string_values_from_a_form_body_are_understood(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    body = {key: str(value) for key, value in callback(4).items() if key != "additional_fields"}
    body.pop("signature")
    body["signature"] = sign(body, SALT)
    assert apply(store, body).outcome is EventOutcome.APPLIED
    record = store.get(record_id)
    assert (record.gateway_status, record.received_amount) == (4, 150_000)
    assert not record.needs_review


def test_a_callback_that_overtakes_the_answer_is_not_undone_by_it(store: HistoryStore) -> None:
    record_id = store.create_attempt(ATTEMPT)
    assert apply(store, callback(4)).outcome is EventOutcome.APPLIED
    store.record_outcome(record_id, Accepted("500001", 3, "Payout initialized"))
    record = store.get(record_id)
    assert (record.state, record.gateway_status) == (State.ACCEPTED, 4)


def test_a_callback_before_a_lost_answer_makes_the_payout_accepted(store: HistoryStore) -> None:
    record_id = store.create_attempt(ATTEMPT)
    apply(store, callback(4))
    store.record_outcome(record_id, Unknown("Timed out", UnknownKind.TIMEOUT))
    record = store.get(record_id)
    assert (record.state, record.gateway_status, record.invoice_id) == (
        State.ACCEPTED,
        4,
        "500001",
    )


def test_the_events_table_is_append_only(store: HistoryStore) -> None:
    accepted_record(store)
    apply(store, callback(4))
    for statement in ("UPDATE events SET outcome = 'applied'", "DELETE FROM events"):
        with (
            pytest.raises(sqlite3.IntegrityError, match="append-only"),
            store.write_transaction() as conn,
        ):
            conn.execute(statement)


def _history_of(record_count: int) -> list[dict[str, Any]]:
    """Each record's callbacks in the gateway's order, ending in 4 or 5 (some via 6)."""
    bodies = []
    for index in range(record_count):
        final = 4 if index % 3 else 5
        path = [1, 2, 3, 6, final] if index % 5 == 0 else [1, 2, 3, final]
        bodies.extend(
            callback(status, request_id=f"po-{index:04d}", invoice_id=600_000 + index)
            for status in path
        )
    return bodies


def _final_states(store: HistoryStore, request_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    states = {}
    for record in store.iter_records():
        if record.request_id in request_ids:
            states[record.request_id] = (
                record.state,
                record.gateway_status,
                record.invoice_id,
                record.received_amount,
            )
    return states


def test_a_shuffled_run_of_duplicated_callbacks_ends_like_the_ordered_run(
    store_factory: Callable[[], HistoryStore], tmp_path: Any
) -> None:
    ordered_store = SqliteHistoryStore(tmp_path / "ordered.sqlite3")
    shuffled_store = store_factory()
    try:
        request_ids = [f"po-{index:04d}" for index in range(60)]
        for target in (ordered_store, shuffled_store):
            # Ordering is under test here, not durability: skip the fsync of each commit.
            with target.read_connection() as conn:
                conn.execute("PRAGMA synchronous=OFF")
            for index, request_id in enumerate(request_ids):
                accepted_record(target, request_id=request_id, invoice_id=str(600_000 + index))
        ordered = _history_of(len(request_ids))
        for body in ordered:
            apply(ordered_store, body)

        rng = random.Random(2024)
        shuffled = ordered + [rng.choice(ordered) for _ in range(1000 - len(ordered))]
        rng.shuffle(shuffled)
        results = [apply(shuffled_store, body) for body in shuffled]

        assert len(results) == 1000
        assert _final_states(shuffled_store, request_ids) == _final_states(
            ordered_store, request_ids
        )
        finals = {state[1] for state in _final_states(shuffled_store, request_ids).values()}
        assert finals == {4, 5}
    finally:
        ordered_store.close()


def test_concurrent_receivers_on_one_file_apply_each_status_once(
    store_factory: Callable[[], HistoryStore],
) -> None:
    first = store_factory()
    request_ids = [f"po-{index:03d}" for index in range(20)]
    for request_id in request_ids:
        accepted_record(first, request_id=request_id, invoice_id=request_id[3:])
    bodies = [callback(4, request_id=rid, invoice_id=rid[3:]) for rid in request_ids] * 4
    random.Random(5).shuffle(bodies)
    stores = [first, store_factory(), store_factory(), store_factory()]
    outcomes: list[EventOutcome] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for body in bodies[worker::4]:
            result = apply(stores[worker], body)
            with lock:
                outcomes.append(result.outcome)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count(EventOutcome.APPLIED) == len(request_ids)
    assert outcomes.count(EventOutcome.DUPLICATE) == 3 * len(request_ids)
    assert {record.gateway_status for record in first.iter_records()} == {4}
