"""The send path's operations, against every history backend."""

from __future__ import annotations

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.port import HistoryStore, PayoutLedger
from cactus_desk.history.types import (
    DuplicateRequestIdError,
    HistoryError,
    HistoryUnavailableError,
    OutcomeAlreadyRecordedError,
    RecordNotFoundError,
)
from cactus_desk.payouts.states import State
from tests.history.contract.helpers import CARD, accepted, attempt


def test_the_store_implements_the_whole_port(store: HistoryStore) -> None:
    assert isinstance(store, HistoryStore)
    assert isinstance(store, PayoutLedger)


def test_an_attempt_is_recorded_submitting_before_it_is_sent(store: HistoryStore) -> None:
    record_id = store.create_attempt(attempt())
    record = store.get(record_id)
    assert record.state is State.SUBMITTING
    assert record.sending_started_at is None and record.send_attempts == 0
    assert record.request["amount"] == 150000
    assert record.request["additional_fields"]["card_number"] == "411111******1111"

    store.mark_sending(record_id)
    record = store.get(record_id)
    assert record.sending_started_at is not None and record.send_attempts == 1


def test_a_full_card_number_never_reaches_the_store(store: HistoryStore) -> None:
    record_id = store.create_attempt(attempt(site_login=f"card {CARD}"))
    record = store.get(record_id)
    assert CARD not in record.site_login and CARD not in str(record.request)


def test_each_outcome_is_recorded_once(store: HistoryStore) -> None:
    first = store.create_attempt(attempt(request_id="po-a"))
    store.mark_sending(first)
    store.record_outcome(first, Accepted("900", 3, "Payout initialized"))
    record = store.get(first)
    assert (record.state, record.invoice_id, record.gateway_status) == (State.ACCEPTED, "900", 3)
    with pytest.raises(OutcomeAlreadyRecordedError):
        store.record_outcome(first, Unknown("late", UnknownKind.TIMEOUT))
    with pytest.raises(OutcomeAlreadyRecordedError):
        store.mark_sending(first)  # not waiting to be sent any more

    second = store.create_attempt(attempt(request_id="po-b"))
    store.mark_sending(second)
    store.record_outcome(second, Rejected("Not enough money", {"x": 1}, True, 200))
    assert store.get(second).state is State.REJECTED

    third = store.create_attempt(attempt(request_id="po-c"))
    store.mark_sending(third)
    store.record_outcome(third, Unknown("No answer in time.", UnknownKind.TIMEOUT))
    assert store.get(third).state is State.UNKNOWN

    fourth = store.create_attempt(attempt(request_id="po-d"))
    store.record_not_sent(fourth, "Not sent: no connection", detail="refused")
    record = store.get(fourth)
    assert (record.state, record.message, record.detail) == (
        State.NOT_SENT,
        "Not sent: no connection",
        "refused",
    )
    with pytest.raises(OutcomeAlreadyRecordedError):
        store.record_not_sent(fourth, "again")


def test_a_request_id_is_refused_twice_for_the_same_merchant_and_site(
    store: HistoryStore,
) -> None:
    first = store.create_attempt(attempt())
    with pytest.raises(DuplicateRequestIdError) as caught:
        store.create_attempt(attempt(amount_minor=1))
    assert caught.value.existing_id == first
    assert store.count() == 1
    # Another site may use the same request id.
    store.create_attempt(attempt(site_id=8))
    assert store.count() == 2


def test_an_unknown_record_is_a_lookup_error(store: HistoryStore) -> None:
    with pytest.raises(RecordNotFoundError):
        store.get(12345)
    with pytest.raises(RecordNotFoundError):
        store.record_outcome(12345, Accepted("1", 3, ""))
    with pytest.raises(RecordNotFoundError):
        store.details(12345)


def test_a_closed_store_raises_a_port_error_not_a_backend_one(store: HistoryStore) -> None:
    accepted(store)
    store.close()
    with pytest.raises(HistoryUnavailableError):
        store.get(1)
    with pytest.raises(HistoryError):
        store.create_attempt(attempt(request_id="po-late"))
    with pytest.raises(HistoryUnavailableError):
        store.data_version()


def test_an_outcome_after_an_early_callback_keeps_the_later_status(store: HistoryStore) -> None:
    from cactus_desk.callbacks.apply import apply_callback
    from tests.history.contract.helpers import SALT, callback

    record_id = store.create_attempt(attempt())
    store.mark_sending(record_id)
    apply_callback(store, callback(4), SALT, merchant_id="m_demo", site_id=7)
    store.record_outcome(record_id, Accepted("500001", 3, "Payout initialized"))
    record = store.get(record_id)
    assert (record.state, record.gateway_status) == (State.ACCEPTED, 4)
