from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Accepted, PayoutOutcome, Rejected, Unknown, UnknownKind
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import (
    DuplicateRequestIdError,
    HistoryFilter,
    HistoryUnavailableError,
)
from cactus_desk.payouts.payout import Payout, PayoutTarget
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import (
    AttemptNotRecordedError,
    NotSent,
    OutcomeNotSavedError,
    recorded_attempt,
    submit_payout,
)
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import SandboxGateway
from tests.payouts.conftest import make_attempt

SALT = "s3cr3t-salt-value"
CARD = "4111111111111111"


def _request(**changes: Any) -> PayoutRequest:
    values: dict[str, Any] = {
        "merchant_id": "m_demo",
        "site_login": "alice",
        "site_id": 7,
        "request_id": "po-0001",
        "amount": 150000,
        "currency": "RUB",
        "method": "card",
        "additional_fields": {"card_number": CARD, "card_holder": "Ivan Petrov"},
    }
    values.update(changes)
    return PayoutRequest(**values)


def _payout(target: PayoutTarget | None = None, **changes: Any) -> Payout:
    values: dict[str, Any] = {
        "target": target or PayoutTarget("p-main", "Main shop", "sandbox", "m_demo", 7),
        "request_id": "po-0001",
        "site_login": "alice",
        "method": "card",
        "currency": "RUB",
        "amount_minor": 150000,
        "fields": {"card_number": CARD, "card_holder": "Ivan Petrov"},
    }
    values.update(changes)
    return Payout(**values)


class FakeClient:
    """Checks, from a second connection, that the attempt is committed before it is sent."""

    def __init__(self, observer: HistoryStore, answer: Callable[[], PayoutOutcome]) -> None:
        self.observer = observer
        self.answer = answer
        self.calls: list[tuple[PayoutRequest, str]] = []

    def payout(self, request: PayoutRequest, salt: str) -> PayoutOutcome:
        rows = self.observer.page(HistoryFilter(text=request.request_id))
        assert [row.state for row in rows] == [State.SUBMITTING]
        self.calls.append((request, salt))
        return self.answer()


@pytest.fixture
def observer(store_factory: Callable[[], HistoryStore]) -> HistoryStore:
    return store_factory()


def _submit(store: HistoryStore, client: Any, salt: Callable[[], str] = lambda: SALT) -> Any:
    return submit_payout(store, client, salt, _payout())


@pytest.mark.parametrize(
    ("outcome", "state", "message"),
    [
        (Accepted("1314", 3, "Payout initialized", {"success": True}), State.ACCEPTED, ""),
        (Rejected("Insufficient funds", {"success": False}, True, 200), State.REJECTED, ""),
        (Unknown("No answer in time", UnknownKind.TIMEOUT), State.UNKNOWN, "No answer in time"),
    ],
)
def test_the_attempt_is_submitting_before_it_is_sent_then_gets_its_outcome(
    store: HistoryStore, observer: HistoryStore, outcome: PayoutOutcome, state: State, message: str
) -> None:
    client = FakeClient(observer, lambda: outcome)
    result = _submit(store, client)
    assert len(client.calls) == 1
    assert client.calls[0] == (_request(), SALT)
    assert result.outcome == outcome and result.state is state
    record = observer.get(result.record_id)
    assert record.state is state
    assert message in record.message


def test_a_salt_that_cannot_be_read_ends_as_not_sent(
    store: HistoryStore, observer: HistoryStore
) -> None:
    def no_keyring() -> str:
        raise RuntimeError("No keyring is available: install gnome-keyring")

    client = FakeClient(observer, lambda: Accepted("1", 3, ""))
    result = _submit(store, client, no_keyring)
    assert client.calls == []
    assert isinstance(result.outcome, NotSent)
    record = store.get(result.record_id)
    assert record.state is State.NOT_SENT
    assert record.message == (
        "The site salt could not be read: No keyring is available: install gnome-keyring"
    )


def test_an_empty_salt_is_not_sent(store: HistoryStore, observer: HistoryStore) -> None:
    client = FakeClient(observer, lambda: Accepted("1", 3, ""))
    result = _submit(store, client, lambda: "")
    assert client.calls == []
    assert store.get(result.record_id).message == "No site salt is stored for this profile."


def test_a_client_that_crashes_records_unknown_and_hides_the_salt(
    store: HistoryStore, observer: HistoryStore
) -> None:
    def crash() -> PayoutOutcome:
        raise ValueError(f"cannot sign with {SALT}")

    result = _submit(store, FakeClient(observer, crash))
    assert isinstance(result.outcome, Unknown)
    record = store.get(result.record_id)
    assert record.state is State.UNKNOWN
    assert "Do not send it again" in record.message
    assert record.detail == "ValueError: cannot sign with [salt]"
    assert SALT not in record.message + record.detail


def test_a_reused_request_id_sends_nothing(store: HistoryStore, observer: HistoryStore) -> None:
    store.create_attempt(make_attempt())
    client = FakeClient(observer, lambda: Accepted("1", 3, ""))
    with pytest.raises(DuplicateRequestIdError):
        _submit(store, client)
    assert client.calls == []
    assert store.count() == 1


def test_an_attempt_the_history_cannot_record_is_not_sent(
    store: HistoryStore, observer: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(attempt: object) -> int:
        raise HistoryUnavailableError("database or disk is full")

    monkeypatch.setattr(store, "create_attempt", disk_full)
    client = FakeClient(observer, lambda: Accepted("1", 3, ""))
    with pytest.raises(AttemptNotRecordedError, match="disk is full"):
        _submit(store, client)
    assert client.calls == [] and store.count() == 0


def test_what_is_sent_and_what_is_recorded_come_from_one_payout(
    store: HistoryStore, observer: HistoryStore
) -> None:
    payout = _payout()
    assert payout.wire_request() == _request()  # the wire: the full card number
    assert recorded_attempt(payout) == make_attempt()  # the history: masked, nothing else
    assert payout.recorded_body() == {
        **payout.wire_body(),
        "additional_fields": {"card_number": "411111******1111", "card_holder": "Ivan Petrov"},
    }
    client = FakeClient(observer, lambda: Accepted("1", 3, ""))
    result = submit_payout(store, client, lambda: SALT, payout)
    ((sent, _salt),) = client.calls
    assert sent.unsigned_payload() == payout.wire_body()
    assert store.get(result.record_id).request == payout.recorded_body()
    assert CARD not in repr(payout)  # a payout in a log line never shows the card


def test_a_payout_refuses_what_the_gateway_could_not_take() -> None:
    with pytest.raises(ValueError, match="amount"):
        _payout(amount_minor=0)
    with pytest.raises(ValueError, match="site_login contains ';'"):
        _payout(site_login="alice;bob")
    with pytest.raises(ValueError, match="card_number") as caught:
        _payout(fields={"card_number": CARD + ";"})
    assert "4111" not in str(caught.value)  # the card never reaches an error message
    with pytest.raises(ValueError, match="Environment"):
        _payout(PayoutTarget("p", "P", "staging", "m", 1))


def test_an_outcome_that_cannot_be_saved_is_still_reported(
    store: HistoryStore, observer: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(record_id: int, outcome: PayoutOutcome) -> None:
        raise HistoryUnavailableError("database or disk is full")

    monkeypatch.setattr(store, "record_outcome", disk_full)
    accepted = Accepted("1314", 3, "Payout initialized")
    with pytest.raises(OutcomeNotSavedError, match=r"disk is full.*invoice 1314") as caught:
        _submit(store, FakeClient(observer, lambda: accepted))
    assert caught.value.outcome == accepted
    assert observer.get(caught.value.record_id).state is State.SUBMITTING


def test_the_recorded_attempt_masks_the_card_and_takes_the_profile() -> None:
    profile = Profile(
        id="p-main",
        name="Main shop",
        base_url="https://cactusgino.com",
        merchant_id="m_demo",
        site_id=7,
        environment="live",
    )
    attempt = recorded_attempt(_payout(PayoutTarget.of(profile)))
    assert attempt == make_attempt(
        environment="live",
        request_fields={"card_number": "411111******1111", "card_holder": "Ivan Petrov"},
    )


def test_a_payout_through_the_sandbox_is_recorded_as_accepted(store: HistoryStore) -> None:
    with SandboxGateway() as gateway, CactusClient(gateway.base_url) as client:
        target = PayoutTarget(
            "p-main", "Main shop", "sandbox", gateway.merchant_id, gateway.site_id
        )
        result = submit_payout(store, client, lambda: gateway.salt, _payout(target))
        assert len(gateway.invoices) == 1
    assert isinstance(result.outcome, Accepted)
    record = store.get(result.record_id)
    assert record.state is State.ACCEPTED
    assert record.invoice_id == result.outcome.invoice_id
    assert record.gateway_status == result.outcome.status
    assert record.response is not None and record.response["request_id"] == "po-0001"
    assert gateway.salt not in repr(record)
