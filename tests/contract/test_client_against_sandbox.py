"""Contract tests: the console's real client and submit path against the sandbox gateway.

The sandbox shares no code with the console (tests/test_layers_sandbox.py): its method and
field rules, currency decimals and signing come from the gateway's docs. So every payout the
console builds from its own catalog, money table and signing code must be accepted by it, and
everything it refuses must end as a refusal, over real loopback HTTP, for every method.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.gateway.signature import verify
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.money import currencies, currency
from cactus_desk.payouts.draft import PayoutDraft, new_request_id
from cactus_desk.payouts.payout import PayoutTarget, build_payout
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import SubmitResult, submit_payout
from cactus_desk.profiles import Profile
from cactus_desk.receiver.app import CallbackApp
from cactus_desk.receiver.serve import BackgroundReceiver
from cactus_desk.sandbox import Fault, SandboxGateway
from tests.safety.helpers import as_payout

MERCHANT = "acme"
SITE = 21
SALT = "contract-salt-90e2"
START_MAJOR = 1_000_000  # the sandbox's default: a million of every currency
CATALOG = load_catalog()
PAIRS = [(spec.wire, code) for spec in CATALOG.methods for code in spec.currencies]
# The cash "time" example lies in the past; "as soon as possible" stands in for it.
LEFT_OUT = {("cash", "time")}


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gw:
        yield gw


@pytest.fixture
def client(gateway: SandboxGateway) -> Iterator[CactusClient]:
    with CactusClient(gateway.base_url, read_timeout=5) as c:
        yield c


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    data_home.mkdir(parents=True, exist_ok=True)
    with SqliteHistoryStore(data_home / "history.sqlite3") as history:
        yield history


def profile_for(gateway: SandboxGateway, merchant_id: str = MERCHANT) -> Profile:
    return Profile(
        id="p-contract",
        name="Contract sandbox",
        base_url=gateway.base_url,
        merchant_id=merchant_id,
        site_id=SITE,
        environment="sandbox",
    )


def typed_amount(code: str) -> str:
    """What a clerk types: 12.34, or 1234 in a currency without decimals."""
    return "12.34" if currency(code).exponent else "1234"


def example_fields(method: str, code: str) -> dict[str, str | bool]:
    """Every field of the method filled with the catalog's example, as the form would."""
    fields: dict[str, str | bool] = {
        spec.wire: spec.example
        for spec in CATALOG.fields_for(method, code)
        if (method, spec.wire) not in LEFT_OUT
    }
    if method == "cash":
        fields["asap"] = True
    return fields


def console_request(method: str, code: str, request_id: str | None = None) -> PayoutRequest:
    """The request the console's own draft and catalog code build for a payout."""
    draft = PayoutDraft(
        profile_id="p-contract",
        site_login="alice",
        currency=code,
        method=method,
        amount_text=typed_amount(code),
        fields=example_fields(method, code),
        request_id=request_id or new_request_id(),
    )
    target = PayoutTarget("p-contract", "Contract", "sandbox", MERCHANT, SITE)
    return build_payout(draft, target).wire_request()


def submit(
    store: HistoryStore,
    client: CactusClient,
    gateway: SandboxGateway,
    request: PayoutRequest,
    salt: str = SALT,
) -> SubmitResult:
    profile = profile_for(gateway, request.merchant_id)
    return submit_payout(store, client, lambda: salt, as_payout(profile, request))


def _with(request: PayoutRequest, **changes: Any) -> PayoutRequest:
    return request.model_copy(update=changes)


def available_minor(client: CactusClient, code: str, salt: str = SALT) -> int:
    """The available balance as the console reads it, in its own minor units."""
    (entry,) = client.balance(MERCHANT, SITE, salt, currency=code).balances
    assert entry.currency == code
    return int(entry.available * 10 ** currency(code).exponent)


# -- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "code"), PAIRS, ids=[f"{m}-{c}" for m, c in PAIRS])
def test_every_method_and_currency_the_console_offers_is_accepted(
    store: HistoryStore,
    client: CactusClient,
    gateway: SandboxGateway,
    method: str,
    code: str,
) -> None:
    request = console_request(method, code)
    result = submit(store, client, gateway, request)

    assert isinstance(result.outcome, Accepted), result.outcome
    assert result.outcome.status == 3
    record = store.get(result.record_id)
    assert (record.state, record.invoice_id) == (State.ACCEPTED, result.outcome.invoice_id)
    (invoice,) = gateway.invoices
    assert invoice["invoice_id"] == result.outcome.invoice_id
    assert (invoice["method"], invoice["currency"]) == (method, code)
    sent = dict(request.additional_fields)
    kept = dict(invoice["additional_fields"])
    if "card_number" in sent:  # the sandbox keeps a masked copy
        number, masked = sent.pop("card_number"), kept.pop("card_number")
        assert masked == number[:6] + "*" * (len(number) - 10) + number[-4:]
    assert kept == sent
    # What the clerk typed left the balance, in the gateway's own units.
    start_minor = START_MAJOR * 10 ** currency(code).exponent
    assert available_minor(client, code) == start_minor - request.amount
    assert Decimal(typed_amount(code)) * 10 ** currency(code).exponent == request.amount


FIRST_CURRENCY = {spec.wire: spec.currencies[0] for spec in CATALOG.methods}


@pytest.mark.parametrize("method", list(FIRST_CURRENCY))
def test_the_accepted_answer_echoes_the_request_and_verifies_with_the_console_salt(
    client: CactusClient, gateway: SandboxGateway, method: str
) -> None:
    code = FIRST_CURRENCY[method]
    request = _with(console_request(method, code), site_login="Иван Петров")
    outcome = client.payout(request, SALT)
    assert isinstance(outcome, Accepted), outcome
    answer = outcome.response
    assert verify(answer, SALT)
    assert answer["success"] is True and answer["message"] == "Payout initialized"
    for name in ("request_id", "amount", "currency", "site_login", "site_id"):
        assert answer[name] == getattr(request, name)
    assert str(answer["invoice_id"]) == outcome.invoice_id == gateway.invoices[0]["invoice_id"]


def test_balances_read_back_to_the_minor_unit_in_every_currency() -> None:
    # Odd amounts in every currency the console knows: a decimals mismatch would show.
    books = {code: 10**9 + 7 * index + 1 for index, code in enumerate(sorted(currencies()))}
    with (
        SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT, balances=books) as gw,
        CactusClient(gw.base_url) as client,
    ):
        answer = client.balance(MERCHANT, SITE, SALT)
        read = {
            entry.currency: int(entry.available * 10 ** currency(entry.currency).exponent)
            for entry in answer.balances
        }
        assert read == books
        for code, minor in books.items():
            assert available_minor(client, code) == minor


# -- refused ----------------------------------------------------------------------------------

REQUIRED = [
    (spec.wire, field.wire, spec.currencies[0])
    for spec in CATALOG.methods
    for field in spec.fields
    if field.required
]


@pytest.mark.parametrize(
    ("method", "missing", "code"), REQUIRED, ids=[f"{m}-{f}" for m, f, _ in REQUIRED]
)
def test_a_payout_without_a_required_field_is_a_verified_refusal(
    store: HistoryStore,
    client: CactusClient,
    gateway: SandboxGateway,
    method: str,
    missing: str,
    code: str,
) -> None:
    # Past the console's own checks on purpose: what does the gateway say to such a request?
    full = console_request(method, code)
    fields = {key: value for key, value in full.additional_fields.items() if key != missing}
    request = full.model_copy(update={"additional_fields": fields})
    result = submit(store, client, gateway, request)

    assert isinstance(result.outcome, Rejected), result.outcome
    assert result.outcome.signature_verified
    assert result.outcome.response["request_id"] == request.request_id
    assert missing in result.outcome.message
    assert store.get(result.record_id).state is State.REJECTED
    assert gateway.invoices == []
    start_minor = START_MAJOR * 10 ** currency(code).exponent
    assert available_minor(client, code) == start_minor


REFUSALS = {
    "currency outside the docs' list": (
        {"currency": "KZT"},
        "Field currency: unsupported currency 'KZT'",
    ),
    "method outside the docs' list": (
        {"method": "qiwi", "additional_fields": {}},
        "Field method: unsupported method 'qiwi'",
    ),
    "a field the method does not take": (
        {"additional_fields": {"phone_number": "79990000000", "phone_holder": "A", "x": "1"}},
        "Field additional_fields.x is not a field of method sbp",
    ),
    "more than the balance": (
        {"amount": START_MAJOR * 100 + 1},
        "Insufficient balance: 1000000.00 RUB available, 1000000.01 RUB requested",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_what_the_gateway_refuses_ends_rejected_and_books_nothing(
    store: HistoryStore, client: CactusClient, gateway: SandboxGateway, case: str
) -> None:
    changes, message = REFUSALS[case]
    request = _with(console_request("sbp", "RUB"), **changes)
    result = submit(store, client, gateway, request)

    assert isinstance(result.outcome, Rejected), result.outcome
    assert result.outcome.message.startswith(message)
    assert result.outcome.signature_verified
    assert store.get(result.record_id).state is State.REJECTED
    assert gateway.invoices == []
    assert available_minor(client, "RUB") == START_MAJOR * 100


def test_a_repeated_request_id_is_refused_and_pays_once(
    store: HistoryStore, client: CactusClient, gateway: SandboxGateway
) -> None:
    request = console_request("card", "USD")
    assert isinstance(client.payout(request, SALT), Accepted)
    again = client.payout(request, SALT)
    assert not isinstance(again, Accepted)
    assert len(gateway.invoices) == 1
    assert available_minor(client, "USD") == START_MAJOR * 100 - request.amount


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(FIRST_CURRENCY))
def test_a_request_signed_with_another_salt_is_refused_and_the_refusal_is_not_trusted(
    store: HistoryStore, client: CactusClient, gateway: SandboxGateway, method: str
) -> None:
    request = console_request(method, FIRST_CURRENCY[method])
    result = submit(store, client, gateway, request, salt="not-the-site-salt")

    assert not isinstance(result.outcome, Accepted)
    # The sandbox signs with the site's salt, which this console does not have.
    assert getattr(result.outcome, "signature_verified", False) is False
    assert getattr(result.outcome, "message", "") == "Invalid signature"
    assert store.get(result.record_id).state is not State.ACCEPTED
    assert gateway.invoices == []


def test_an_unknown_merchant_gets_an_unsigned_refusal_that_is_not_trusted(
    store: HistoryStore, client: CactusClient, gateway: SandboxGateway
) -> None:
    request = _with(console_request("card", "EUR"), merchant_id="someone-else")
    result = submit(store, client, gateway, request)

    assert not isinstance(result.outcome, Accepted)
    assert getattr(result.outcome, "signature_verified", False) is False
    assert result.outcome.response["signature"] is False  # type: ignore[union-attr]
    assert store.get(result.record_id).state is not State.ACCEPTED
    assert gateway.invoices == []


ANSWER_FAULTS = [
    (Fault.BAD_SIGNATURE, UnknownKind.BAD_SIGNATURE),
    (Fault.ECHO_MISMATCH, UnknownKind.ECHO_MISMATCH),
    (Fault.INVALID_JSON, UnknownKind.MALFORMED),
    (Fault.HTTP_500_HTML, UnknownKind.HTTP_ERROR),
    (Fault.RESET, UnknownKind.NETWORK),
]


@pytest.mark.parametrize(("fault", "kind"), ANSWER_FAULTS, ids=[f.value for f, _ in ANSWER_FAULTS])
def test_a_payout_made_behind_an_untrustworthy_answer_ends_unknown(
    store: HistoryStore,
    client: CactusClient,
    gateway: SandboxGateway,
    fault: Fault,
    kind: UnknownKind,
) -> None:
    gateway.set_fault(fault, times=1)
    request = console_request("localbanks", "UAH")
    result = submit(store, client, gateway, request)

    assert isinstance(result.outcome, Unknown), result.outcome
    assert result.outcome.kind is kind
    record = store.get(result.record_id)
    assert (record.state, record.invoice_id) == (State.UNKNOWN, None)
    # The gateway did make it: the money is reserved.
    (invoice,) = gateway.invoices
    assert invoice["request_id"] == request.request_id
    assert available_minor(client, "UAH") == START_MAJOR * 100 - request.amount


# -- callbacks --------------------------------------------------------------------------------


def test_the_sandbox_callbacks_settle_payouts_through_the_console_receiver(
    store: HistoryStore,
) -> None:
    with (
        SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gw,
        BackgroundReceiver(CallbackApp(store, SALT, merchant_id=MERCHANT, site_id=SITE)) as rcv,
        CactusClient(gw.base_url) as client,
    ):
        finalizer = gw.enable_finalizer(rcv.url, delay=0)
        paid_request = console_request("card", "USD")
        paid = submit(store, client, gw, paid_request)
        declined_request = _with(console_request("card", "USD"), amount=50_013)
        declined = submit(store, client, gw, declined_request)
        assert finalizer.wait_idle(10)
        assert (finalizer.delivered, finalizer.attempts) == (2, 2)

        assert store.get(paid.record_id).gateway_status == 4
        assert store.get(paid.record_id).received_amount == paid_request.amount
        declined_record = store.get(declined.record_id)
        assert declined_record.gateway_status == 5
        assert declined_record.description
        # The decline gave its 500.13 back; the paid 12.34 left.
        assert available_minor(client, "USD") == START_MAJOR * 100 - 1234
