"""Callbacks and states set by hand, against every history backend."""

from __future__ import annotations

import pytest

from cactus_desk.callbacks.apply import Reason, apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.callbacks.reconcile import ReconcileError, set_final_state
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.states import State
from tests.history.contract.helpers import CARD, SALT, accepted, callback, unknown


def _apply(store: HistoryStore, body: dict[str, object]):
    return apply_callback(store, body, SALT, merchant_id="m_demo", site_id=7)


def test_a_verified_callback_moves_the_payout_and_leaves_one_event(store: HistoryStore) -> None:
    record_id = accepted(store)
    result = _apply(store, callback(4))
    assert (result.outcome, result.record_id, result.status) == (EventOutcome.APPLIED, record_id, 4)
    assert store.get(record_id).gateway_status == 4
    events = store.events_for(record_id)
    assert [event.id for event in events] == [result.event_id]
    assert events[0].source is EventSource.GATEWAY
    assert CARD not in str(events[0].payload)  # stored masked


def test_a_callback_proving_the_invoice_settles_an_unknown_payout(store: HistoryStore) -> None:
    record_id = unknown(store)
    _apply(store, callback(4))
    record = store.get(record_id)
    assert (record.state, record.gateway_status, record.invoice_id) == (
        State.ACCEPTED,
        4,
        "500001",
    )


def test_a_forged_callback_changes_nothing_and_is_kept_as_rejected(store: HistoryStore) -> None:
    record_id = accepted(store)
    forged = callback(4)
    forged["status"] = 5  # signed for 4
    result = _apply(store, forged)
    assert (result.outcome, result.reason) == (EventOutcome.REJECTED, Reason.BAD_SIGNATURE)
    assert store.get(record_id).gateway_status == 3
    assert store.events_for(record_id) == []
    assert [event.id for event in store.rejected_events()] == [result.event_id]


def test_an_unknown_request_is_rejected(store: HistoryStore) -> None:
    accepted(store)
    result = _apply(store, callback(4, request_id="po-nobody"))
    assert (result.outcome, result.reason) == (EventOutcome.REJECTED, Reason.UNKNOWN_REQUEST)


def test_a_stale_callback_does_not_move_a_final_status_back(store: HistoryStore) -> None:
    record_id = accepted(store)
    _apply(store, callback(4))
    result = _apply(store, callback(3))
    assert result.outcome is EventOutcome.STALE
    assert store.get(record_id).gateway_status == 4
    assert _apply(store, callback(4)).outcome is EventOutcome.DUPLICATE


def test_a_conflicting_final_status_is_shown_and_flagged(store: HistoryStore) -> None:
    record_id = accepted(store)
    _apply(store, callback(4))
    result = _apply(store, callback(5))
    assert result.outcome is EventOutcome.CONFLICT
    record = store.get(record_id)
    assert record.gateway_status == 5
    assert record.status_conflict and record.needs_review
    assert "Conflict" in record.review_message


def test_an_unknown_status_is_rejected_and_flags_the_payout(store: HistoryStore) -> None:
    record_id = accepted(store)
    result = _apply(store, callback(42))
    assert (result.outcome, result.reason) == (EventOutcome.REJECTED, Reason.BAD_STATUS)
    record = store.get(record_id)
    assert record.needs_review and record.gateway_status == 3


def test_a_final_state_set_by_hand_is_audited(store: HistoryStore) -> None:
    record_id = unknown(store)
    event_id = set_final_state(store, record_id, 4, "Confirmed on the phone", who="olga")
    record = store.get(record_id)
    assert (record.state, record.gateway_status, record.status_source) == (
        State.SETTLED,
        4,
        "manual",
    )
    (event,) = store.events_for(record_id)
    assert (event.id, event.source, event.who) == (event_id, EventSource.MANUAL, "olga")
    assert event.payload["previous_state"] == "UNKNOWN"
    # The gateway's own word later confirms it.
    assert _apply(store, callback(4)).outcome is EventOutcome.APPLIED
    assert store.get(record_id).status_source == "gateway"


def test_a_final_state_by_hand_is_refused_where_the_rules_say_so(store: HistoryStore) -> None:
    record_id = accepted(store)
    _apply(store, callback(4))
    with pytest.raises(ReconcileError, match="already final"):
        store.set_final_state(record_id, 5, "no", invoice_id=None, who="olga")
    with pytest.raises(ReconcileError) as caught:
        store.set_final_state(999, 4, "note", invoice_id=None, who="olga")
    assert caught.value.field == "record"
    other = accepted(store, request_id="po-2")
    with pytest.raises(ReconcileError) as caught:
        store.set_final_state(other, 4, "note", invoice_id="777", who="olga")
    assert caught.value.field == "invoice_id"
    assert store.events_for(other) == []


def test_old_unverified_callbacks_are_pruned_and_the_prune_audited(
    open_store,
) -> None:
    now = [1_000_000_000_000]
    store = open_store(clock=lambda: now[0])
    accepted(store)
    forged = callback(4)
    forged["signature"] = "0" * 64
    old = _apply(store, forged)
    assert old.reason is Reason.BAD_SIGNATURE
    now[0] += 31 * 86_400_000
    recent = _apply(store, {**forged, "status": 5})
    verified = _apply(store, callback(4))
    report = store.prune_rejected(30 * 86_400_000, "olga")
    assert report.deleted == 1
    ids = [event.id for event in store.events_since(0)]
    assert old.event_id not in ids
    assert {verified.event_id, recent.event_id, report.event_id} <= set(ids)
    (audit,) = [event for event in store.events_since(0) if event.id == report.event_id]
    assert (audit.outcome, audit.who) == (EventOutcome.PRUNED, "olga")
    assert audit.payload["deleted"] == 1
