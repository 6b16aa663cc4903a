"""The one send path: ``SendService`` against a sandbox gateway over loopback HTTP.

Every way a send can end comes back as a ``SendResult`` with its code; nothing raises.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import PayoutOutcome
from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryUnavailableError
from cactus_desk.payouts import send as send_module
from cactus_desk.payouts.draft import PayoutDraft
from cactus_desk.payouts.payout import Payout
from cactus_desk.payouts.send import (
    ClientPool,
    Prepared,
    SendCode,
    SendResult,
    SendService,
)
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.secrets import KeyringError
from tests.safety.helpers import black_hole

PHONE = {"phone_number": "79990000000", "phone_holder": "Ivan Petrov"}


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(balances={"RUB": 10_000_000}) as sandbox:
        yield sandbox


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    data_home.mkdir(parents=True, exist_ok=True)
    with open_history(data_home) as history:
        yield history


def profile_for(base_url: str, gateway: SandboxGateway) -> Profile:
    return Profile(
        id="p-sbx",
        name="Sandbox shop",
        base_url=base_url,
        merchant_id=gateway.merchant_id,
        site_id=gateway.site_id,
        environment="sandbox",
        read_timeout=5,
    )


def draft(request_id: str = "po-1", **changes: Any) -> PayoutDraft:
    values: dict[str, Any] = {
        "profile_id": "p-sbx",
        "site_login": "alice",
        "currency": "RUB",
        "method": "sbp",
        "amount_text": "1500.00",
        "fields": dict(PHONE),
        "request_id": request_id,
    }
    values.update(changes)
    return PayoutDraft.model_validate(values)


def service(store: HistoryStore | None, salt: str | None) -> SendService:
    return SendService(store, lambda _profile: salt)


def prepared(svc: SendService, profile: Profile, request_id: str = "po-1") -> Payout:
    ready = svc.prepare(draft(request_id), profile)
    assert isinstance(ready, Prepared), ready
    return ready.payout


def test_an_accepted_payout_is_recorded_and_reported_with_its_invoice(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    try:
        ready = svc.prepare(draft(), profile)
        assert isinstance(ready, Prepared)
        assert ready.amount_major == "1 500.00" and ready.decimals == 2
        assert ready.payout.amount_minor == 150_000 and ready.repeats == ()
        result = svc.send(ready.payout, profile)
    finally:
        svc.close()
    assert result.code is SendCode.ACCEPTED and result.accepted
    assert result.state is State.ACCEPTED and result.follow and not result.may_have_left
    record = store.get(result.record_id or 0)
    assert record.invoice_id == result.invoice_id is not None
    assert record.request == ready.payout.recorded_body()
    assert len(gateway.invoices) == 1


def test_an_invalid_draft_names_its_fields_and_records_nothing(store: HistoryStore) -> None:
    profile = Profile(
        id="p-sbx", name="S", base_url="http://127.0.0.1:9", merchant_id="m", site_id=1
    )
    result = service(store, "salt").prepare(
        draft(amount_text="-1", fields={"phone_number": "12"}, site_login="a;b"), profile
    )
    assert isinstance(result, SendResult)
    assert result.code is SendCode.INVALID
    assert {"amount", "phone_holder", "site_login"} <= set(result.errors)
    assert store.count() == 0


def test_a_verified_refusal_is_rejected(data_home: Path, store: HistoryStore) -> None:
    with SandboxGateway(balances={"RUB": 100}) as poor:  # less than the payout
        profile = profile_for(poor.base_url, poor)
        svc = service(store, poor.salt)
        result = svc.send(prepared(svc, profile), profile)
        svc.close()
    assert result.code is SendCode.REJECTED and result.state is State.REJECTED
    assert not result.follow and not result.may_have_left and result.new_id_due


@pytest.mark.parametrize("salt", [None, ""])
def test_no_salt_ends_not_sent_and_nothing_leaves(
    store: HistoryStore, gateway: SandboxGateway, salt: str | None
) -> None:
    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, salt)
    result = svc.send(prepared(svc, profile), profile)
    svc.close()
    assert result.code is SendCode.NOT_SENT and result.state is State.NOT_SENT
    assert store.get(result.record_id or 0).state is State.NOT_SENT  # recorded first
    assert gateway.requests_received == 0


def test_a_keyring_failure_ends_not_sent_without_raising(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    def locked(_profile: Profile) -> str:
        raise KeyringError("the keyring is locked")

    profile = profile_for(gateway.base_url, gateway)
    svc = SendService(store, locked)
    result = svc.send(prepared(svc, profile), profile)
    svc.close()
    assert result.code is SendCode.NOT_SENT
    assert "keyring is locked" in result.message
    assert gateway.requests_received == 0


def test_an_unreachable_gateway_ends_not_sent(store: HistoryStore, gateway: SandboxGateway) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    profile = profile_for(f"http://127.0.0.1:{port}", gateway)
    svc = service(store, gateway.salt)
    result = svc.send(prepared(svc, profile), profile)
    svc.close()
    assert result.code is SendCode.NOT_SENT, result
    assert not result.may_have_left and result.id_used


def test_a_lost_answer_is_unknown_and_may_have_left(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    with black_hole() as url:
        profile = profile_for(url, gateway)
        svc = service(store, gateway.salt)
        result = svc.send(prepared(svc, profile), profile)
        svc.close()
    assert result.code is SendCode.UNKNOWN and result.state is State.UNKNOWN
    assert result.may_have_left and result.follow and not result.new_id_due


def test_a_request_id_already_used_is_refused_before_sending(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    first = svc.send(prepared(svc, profile), profile)
    again = svc.send(prepared(svc, profile), profile)
    svc.close()
    assert first.code is SendCode.ACCEPTED
    assert again.code is SendCode.REQUEST_ID_TAKEN and again.id_used
    assert again.record_id == first.record_id
    assert gateway.requests_received == 1 and store.count() == 1


def test_a_history_that_cannot_record_stops_the_send(
    store: HistoryStore, gateway: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(attempt: object) -> int:
        raise HistoryUnavailableError("database or disk is full")

    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    payout = prepared(svc, profile)
    monkeypatch.setattr(store, "create_attempt", disk_full)
    result = svc.send(payout, profile)
    svc.close()
    assert result.code is SendCode.HISTORY_UNAVAILABLE and not result.id_used
    assert gateway.requests_received == 0
    assert service(None, "s").send(payout, profile).code is SendCode.HISTORY_UNAVAILABLE


def test_an_outcome_that_cannot_be_saved_is_reported_in_doubt(
    store: HistoryStore, gateway: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(record_id: int, outcome: PayoutOutcome) -> None:
        raise HistoryUnavailableError("database or disk is full")

    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    payout = prepared(svc, profile)
    monkeypatch.setattr(store, "record_outcome", disk_full)
    result = svc.send(payout, profile)
    svc.close()
    assert result.code is SendCode.OUTCOME_NOT_SAVED
    assert result.may_have_left and result.invoice_id is not None
    assert store.get(result.record_id or 0).state is State.SUBMITTING


def test_an_unexpected_failure_after_recording_is_failed_not_raised(
    store: HistoryStore, gateway: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(send_module, "send_recorded", broken)
    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    result = svc.send(prepared(svc, profile), profile)
    svc.close()
    assert result.code is SendCode.FAILED and result.may_have_left and result.id_used
    assert result.record_id is not None


def test_a_profile_changed_after_confirming_sends_nothing(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    payout = prepared(svc, profile)
    moved = profile.model_copy(update={"merchant_id": "other"})
    result = svc.send(payout, moved)
    svc.close()
    assert result.code is SendCode.INVALID
    assert store.count() == 0 and gateway.requests_received == 0


def test_a_repeat_of_a_recent_payout_is_found_when_preparing(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    profile = profile_for(gateway.base_url, gateway)
    svc = service(store, gateway.salt)
    first = svc.send(prepared(svc, profile, "po-a"), profile)
    ready = svc.prepare(draft("po-b"), profile)
    svc.close()
    assert isinstance(ready, Prepared)
    assert [record.id for record in ready.repeats] == [first.record_id]


def test_resending_goes_through_the_same_service(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    svc = service(store, gateway.salt)
    with black_hole() as url:
        lost = profile_for(url, gateway)
        first = svc.send(prepared(svc, lost), lost)
    assert first.code is SendCode.UNKNOWN
    profile = profile_for(gateway.base_url, gateway)

    # A payout of a profile no longer set up cannot be sent again.
    refused = svc.resend_target(first.record_id or 0, [])
    assert isinstance(refused, SendResult) and refused.code is SendCode.RESEND_REFUSED

    result = svc.resend(first.record_id or 0, profile)
    assert result.code is SendCode.ACCEPTED and result.resend
    assert store.get(first.record_id or 0).send_attempts == 2

    settled = svc.resend(first.record_id or 0, profile)  # accepted now: nothing to resend
    svc.close()
    assert settled.code is SendCode.RESEND_REFUSED and "is accepted" in settled.message
    assert len(gateway.invoices) == 1


def test_a_resend_that_never_left_stays_in_doubt(
    store: HistoryStore, gateway: SandboxGateway
) -> None:
    svc = service(store, gateway.salt)
    with black_hole() as url:
        lost = profile_for(url, gateway)
        first = svc.send(prepared(svc, lost), lost)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = profile_for(f"http://127.0.0.1:{port}", gateway)
    result = svc.resend(first.record_id or 0, nowhere)
    svc.close()
    assert result.code is SendCode.NOT_SENT
    assert result.may_have_left and not result.new_id_due  # the first send is still in doubt
    assert store.get(first.record_id or 0).state is State.UNKNOWN


def test_a_closed_client_pool_sends_nothing(store: HistoryStore, gateway: SandboxGateway) -> None:
    profile = profile_for(gateway.base_url, gateway)
    pool = ClientPool()
    svc = SendService(store, lambda _profile: gateway.salt, clients=pool)
    payout = prepared(svc, profile)
    svc.close()
    result = svc.send(payout, profile)
    assert result.code is SendCode.NOT_SENT and result.record_id is None
    assert store.count() == 0 and gateway.requests_received == 0
