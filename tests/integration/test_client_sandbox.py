"""CactusClient against the real sandbox over loopback HTTP: success and every fault."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from cactus_desk.gateway.client import CactusClient, GatewayError
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    RefusedUnverified,
    Rejected,
    Unknown,
    UnknownKind,
)
from cactus_desk.sandbox import Fault, SandboxGateway

SHORT_READ_TIMEOUT = 0.5


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(merchant_id="acme", site_id=21, balances={"RUB": 1_000_000}) as gw:
        yield gw


@pytest.fixture
def client(gateway: SandboxGateway) -> Iterator[CactusClient]:
    with CactusClient(gateway.base_url, read_timeout=SHORT_READ_TIMEOUT) as c:
        yield c


def request(request_id: str = "po-1", amount: int = 150_000) -> PayoutRequest:
    return PayoutRequest(
        merchant_id="acme",
        site_login="alice",
        site_id=21,
        request_id=request_id,
        amount=amount,
        currency="RUB",
        method="sbp",
        additional_fields={"phone_number": "79990000000", "phone_holder": "Иван Петров"},
    )


def test_success_is_accepted_and_creates_one_invoice(
    gateway: SandboxGateway, client: CactusClient
) -> None:
    outcome = client.payout(request(), gateway.salt)
    assert isinstance(outcome, Accepted)
    assert outcome.status == 3
    assert outcome.message == "Payout initialized"
    (invoice,) = gateway.invoices
    assert invoice["invoice_id"] == outcome.invoice_id
    assert invoice["additional_fields"]["phone_holder"] == "Иван Петров"


# Every fault but REJECT books the payout first: the answer is what goes wrong.
FAULTS = [
    (Fault.LATENCY, UnknownKind.TIMEOUT),
    (Fault.NO_ANSWER, UnknownKind.TIMEOUT),
    (Fault.RESET, UnknownKind.NETWORK),
    (Fault.HTTP_500_HTML, UnknownKind.HTTP_ERROR),
    (Fault.INVALID_JSON, UnknownKind.MALFORMED),
    (Fault.BAD_SIGNATURE, UnknownKind.BAD_SIGNATURE),
    (Fault.ECHO_MISMATCH, UnknownKind.ECHO_MISMATCH),
]


@pytest.mark.parametrize(("fault", "kind"), FAULTS, ids=[f.value for f, _ in FAULTS])
def test_fault_gives_unknown_while_the_payout_exists(
    gateway: SandboxGateway, client: CactusClient, fault: Fault, kind: UnknownKind
) -> None:
    gateway.set_fault(fault, delay=2 * SHORT_READ_TIMEOUT, times=1)
    outcome = client.payout(request(), gateway.salt)
    assert isinstance(outcome, Unknown)
    assert outcome.kind is kind
    assert "may have been created" in outcome.reason
    assert gateway.salt not in repr(outcome)
    (invoice,) = gateway.invoices
    assert invoice["request_id"] == "po-1" and invoice["fault"] == fault.value
    # The fault was for one request: the next payout is answered normally.
    assert isinstance(client.payout(request("po-2"), gateway.salt), Accepted)


def test_echo_mismatch_names_the_field(gateway: SandboxGateway, client: CactusClient) -> None:
    gateway.set_fault(Fault.ECHO_MISMATCH)
    outcome = client.payout(request(amount=150_000), gateway.salt)
    assert outcome.detail == "amount: sent 150000, answer has 150001"


def test_latency_within_the_read_timeout_is_accepted(
    gateway: SandboxGateway, client: CactusClient
) -> None:
    gateway.set_fault(Fault.LATENCY, delay=SHORT_READ_TIMEOUT / 5)
    assert isinstance(client.payout(request(), gateway.salt), Accepted)


def test_reject_fault_is_a_verified_rejection_without_invoice(
    gateway: SandboxGateway, client: CactusClient
) -> None:
    # The sandbox signs its refusals and echoes the request_id, so this one proves nothing paid.
    gateway.set_fault(Fault.REJECT, message="Recipient bank unavailable")
    outcome = client.payout(request(), gateway.salt)
    assert isinstance(outcome, Rejected)
    assert outcome.message == "Recipient bank unavailable"
    assert outcome.signature_verified is True
    assert outcome.response["request_id"] == "po-1"
    assert gateway.invoices == []


def test_connection_refused_is_not_sent() -> None:
    with SandboxGateway() as gw:
        base_url = gw.base_url
    with CactusClient(base_url, connect_timeout=2) as c:
        outcome = c.payout(request(), "salt-that-does-not-matter")
    assert isinstance(outcome, NotSent)
    assert "never left this computer" in outcome.reason
    assert "may have been created" not in outcome.reason


def test_wrongly_signed_request_is_refused_and_books_nothing(
    gateway: SandboxGateway, client: CactusClient
) -> None:
    outcome = client.payout(request(), "not-the-site-salt")
    assert isinstance(outcome, RefusedUnverified)
    assert outcome.message == "Invalid signature"
    # Signed with the site salt, which the client does not have.
    assert "signature does not match" in outcome.why
    assert gateway.invoices == []
    assert gateway.requests_received == 1


def test_repeated_request_id_is_refused_and_books_nothing_more(
    gateway: SandboxGateway, client: CactusClient
) -> None:
    assert isinstance(client.payout(request(), gateway.salt), Accepted)
    outcome = client.payout(request(amount=1_000), gateway.salt)
    assert isinstance(outcome, Rejected)
    assert outcome.message == "Payout with request_id 'po-1' already exists"
    assert outcome.signature_verified
    assert len(gateway.invoices) == 1


def test_balance_and_a_payout_above_it(gateway: SandboxGateway, client: CactusClient) -> None:
    (rub,) = client.balance("acme", 21, gateway.salt, currency="RUB").balances
    assert (rub.amount, rub.available) == (Decimal("10000.0"), Decimal("10000.0"))

    assert isinstance(client.payout(request(amount=600_000), gateway.salt), Accepted)
    (rub,) = client.balance("acme", 21, gateway.salt, currency="RUB").balances
    assert rub.available == Decimal("4000.0")

    refused = client.payout(request("po-2", amount=400_001), gateway.salt)
    assert isinstance(refused, Rejected)
    assert refused.message.startswith("Insufficient balance")
    assert len(gateway.invoices) == 1


def test_balance_with_a_wrong_salt_is_a_gateway_error(
    gateway: SandboxGateway, client: CactusClient
) -> None:
    with pytest.raises(GatewayError, match="Invalid signature"):
        client.balance("acme", 21, "wrong-salt")
    with pytest.raises(GatewayError, match="Unknown merchant_id"):
        client.balance("someone-else", 21, gateway.salt)
