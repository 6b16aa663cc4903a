"""Every way the gateway can misbehave ends in a stored record, no success, and advice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.outcomes import NotSent, RefusedUnverified, Rejected, Unknown, UnknownKind
from cactus_desk.gateway.signature import sign
from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import PayoutClient, SubmitResult, submit_payout
from cactus_desk.sandbox import Fault, SandboxGateway
from cactus_desk.ui.payout.result_banner import outcome_text
from tests.safety.helpers import CARD, MERCHANT, SALT, SITE, card_request, payout

READ_TIMEOUT = 0.4
ADVICE = "Do not send it again; check it with Cactus"

# fault -> (options, the stored state, why the outcome is not trusted)
SANDBOX_FAULTS = {
    Fault.LATENCY: ({"delay": 3.0}, State.UNKNOWN, UnknownKind.TIMEOUT),
    Fault.NO_ANSWER: ({}, State.UNKNOWN, UnknownKind.TIMEOUT),
    Fault.RESET: ({}, State.UNKNOWN, UnknownKind.NETWORK),
    Fault.HTTP_500_HTML: ({}, State.UNKNOWN, UnknownKind.HTTP_ERROR),
    Fault.INVALID_JSON: ({}, State.UNKNOWN, UnknownKind.MALFORMED),
    Fault.BAD_SIGNATURE: ({}, State.UNKNOWN, UnknownKind.BAD_SIGNATURE),
    Fault.ECHO_MISMATCH: ({}, State.UNKNOWN, UnknownKind.ECHO_MISMATCH),
    Fault.REJECT: ({"message": "Insufficient funds"}, State.REJECTED, None),
    # The documented error shape names no request_id, so it proves nothing.
    Fault.REFUSE_WITHOUT_ID: ({"message": "Insufficient funds"}, State.REFUSED_UNVERIFIED, None),
}


def test_the_table_covers_every_sandbox_fault() -> None:
    assert set(SANDBOX_FAULTS) == set(Fault)


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gw:
        yield gw


def _send(
    store: HistoryStore, client: PayoutClient, base_url: str, request_id: str
) -> SubmitResult:
    request = card_request(request_id)
    return submit_payout(store, client, lambda: SALT, payout(base_url, request))


@pytest.mark.parametrize("fault", list(SANDBOX_FAULTS), ids=str)
def test_a_gateway_fault_is_stored_with_plain_advice(
    fault: Fault, gateway: SandboxGateway, data_home: Path
) -> None:
    options, state, kind = SANDBOX_FAULTS[fault]
    gateway.set_fault(fault, **options)
    with (
        open_history(data_home) as store,
        CactusClient(gateway.base_url, read_timeout=READ_TIMEOUT) as client,
    ):
        result = _send(store, client, gateway.base_url, f"po-{fault}")
        record = store.get(result.record_id)

    assert gateway.requests_received == 1
    assert record.state is state
    assert record.invoice_id is None  # no success state, whatever the gateway did
    banner = outcome_text(result.outcome, record.request_id)  # what the person reads
    if state is State.REFUSED_UNVERIFIED:
        assert isinstance(result.outcome, RefusedUnverified)
        assert record.message == "Insufficient funds"
        assert "Nothing was paid" not in banner
        assert "Insufficient funds" in banner and "Do not send it again" in banner
    elif state is State.REJECTED:
        assert isinstance(result.outcome, Rejected) and result.outcome.signature_verified
        assert record.message == "Insufficient funds"
        assert "Nothing was paid" in banner and "Insufficient funds" in banner
    else:
        assert isinstance(result.outcome, Unknown)
        assert record.unknown_kind == kind
        assert ADVICE in record.message
        assert "Do not send it again" in banner
    assert CARD not in record.message + record.detail + json.dumps(record.request)


def _mock_client(answer: dict[str, object]) -> CactusClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    return CactusClient("https://gateway.test", transport=httpx.MockTransport(handler))


def _success(request_id: str) -> dict[str, object]:
    return {
        "message": "Payout initialized",
        "request_id": request_id,
        "success": True,
        "status": 3,
        "amount": 150_000,
        "site_login": "alice",
        "site_id": SITE,
        "invoice_id": "77",
        "currency": "RUB",
    }


@pytest.mark.parametrize(
    ("name", "signature"), [("missing", None), ("empty", ""), ("other salt", "other-salt")]
)
def test_a_success_without_a_valid_signature_is_unknown(
    name: str, signature: str | None, data_home: Path
) -> None:
    answer = _success("po-sig")
    if signature is not None:
        answer["signature"] = sign(answer, signature) if signature else ""
    with open_history(data_home) as store, _mock_client(answer) as client:
        result = _send(store, client, "https://gateway.test", "po-sig")
        record = store.get(result.record_id)
    assert record.state is State.UNKNOWN
    assert record.unknown_kind == UnknownKind.BAD_SIGNATURE
    assert "cannot be trusted" in record.message and ADVICE in record.message


def test_a_correctly_signed_success_is_accepted_so_the_mock_is_honest(data_home: Path) -> None:
    answer = _success("po-good")
    answer["signature"] = sign(answer, SALT)
    with open_history(data_home) as store, _mock_client(answer) as client:
        result = _send(store, client, "https://gateway.test", "po-good")
    assert result.state is State.ACCEPTED


def test_an_unreachable_gateway_is_not_sent_with_one_message(data_home: Path) -> None:
    with (
        open_history(data_home) as store,
        CactusClient("http://127.0.0.1:9", connect_timeout=1) as client,
    ):
        result = _send(store, client, "http://127.0.0.1:9", "po-down")
        record = store.get(result.record_id)
    assert record.state is State.NOT_SENT
    assert isinstance(result.outcome, NotSent)
    assert record.message == result.outcome.reason  # the history and the banner agree
    assert "never left this computer" in record.message
    assert "may have been created" not in record.message
    assert "Connection refused" in record.detail
