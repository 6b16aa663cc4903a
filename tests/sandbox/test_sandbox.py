"""The sandbox gateway over real loopback HTTP, spoken to with raw httpx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cactus_desk.gateway.signature import sign, verify
from cactus_desk.sandbox import Fault, SandboxGateway
from cactus_desk.sandbox.faults import FaultPlan

SALT = "sandbox-test-salt"
CARD = "4242424242424242"


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(salt=SALT, balances={"USD": 500_000, "VND": 2_000_000}) as gw:
        yield gw


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # Module-wide: building a client's TLS context takes a tenth of a second.
    with httpx.Client(timeout=5) as client:
        yield client


def payout_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_id": "sandbox",
        "site_login": "alice",
        "site_id": 101,
        "request_id": "po-1",
        "amount": 15050,
        "currency": "USD",
        "method": "card",
        "additional_fields": {"card_number": CARD, "card_holder": "John Wick"},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def signed(body: dict[str, Any], salt: str = SALT) -> dict[str, Any]:
    return {**body, "signature": sign(body, salt)}


def post(http: httpx.Client, gw: SandboxGateway, path: str, body: dict[str, Any]) -> Any:
    response = http.post(gw.base_url + path, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# -- format and field checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"merchant_id": "sandbox"}', "text/plain"),
        (b"merchant_id=sandbox", "application/x-www-form-urlencoded"),
        (b'{"merchant_id": ', "application/json"),
        (b'["not", "an", "object"]', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"", "application/json"),
    ],
)
def test_wrong_content_type_or_bad_json(
    gateway: SandboxGateway, http: httpx.Client, content: bytes, content_type: str
) -> None:
    for path in ("/api/payout/", "/api/balance/"):
        response = http.post(
            gateway.base_url + path, content=content, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is False
        assert body["message"] == "Invalid ContentType or json format"
        # The docs: such an answer carries no usable signature (no site can be matched).
        assert body["signature"] is False
    assert gateway.invoices == []


def test_json_with_a_charset_parameter_is_fine(gateway: SandboxGateway, http: httpx.Client) -> None:
    response = http.post(
        gateway.base_url + "/api/payout/",
        content=json.dumps(signed(payout_body())).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.json()["success"] is True


def test_success_answer_echoes_and_is_signed(gateway: SandboxGateway, http: httpx.Client) -> None:
    body = post(http, gateway, "/api/payout/", signed(payout_body()))
    assert verify(body, SALT)
    assert body["success"] is True
    assert body["status"] == 3
    assert body["message"] == "Payout initialized"
    assert isinstance(body["invoice_id"], str)
    for key in ("request_id", "amount", "currency", "site_login", "site_id"):
        assert body[key] == payout_body()[key]
    (invoice,) = gateway.invoices
    assert invoice["invoice_id"] == body["invoice_id"]
    assert invoice["additional_fields"]["card_number"] == "424242******4242"
    assert invoice["fault"] is None


def test_string_site_id_is_accepted(gateway: SandboxGateway, http: httpx.Client) -> None:
    body = post(http, gateway, "/api/payout/", signed(payout_body(site_id="101")))
    assert body["success"] is True and body["site_id"] == 101


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"site_login": None}, "Missing required field: site_login"),
        ({"additional_fields": None}, "Missing required field: additional_fields"),
        ({"amount": 0}, "Field amount must be greater than zero"),
        ({"amount": 150.5}, "Field amount must be an integer number of minor units"),
        ({"amount": "15050"}, "Field amount must be an integer number of minor units"),
        ({"request_id": " "}, "Field request_id must be a non-empty string"),
        ({"currency": "KZT"}, "Field currency: unsupported currency 'KZT'"),
        ({"currency": "usd"}, "Field currency: unsupported currency 'usd'"),
        ({"method": "qiwi"}, "Field method: unsupported method 'qiwi'"),
        ({"method": "Tbank_card"}, "Field method: unsupported method 'Tbank_card'"),
        (
            {"method": "sbp", "additional_fields": {"phone_number": "79999999999"}},
            "Field additional_fields.phone_holder is required for method sbp",
        ),
        ({"additional_fields": []}, "Field additional_fields must be an object"),
        (
            {"additional_fields": {"card_number": 4242424242424242}},
            "Field additional_fields.card_number must be a string",
        ),
        (
            {"additional_fields": {"card_holder": "John"}},
            "Field additional_fields.card_number is required for method card",
        ),
        (
            {"additional_fields": {"card_number": "  "}},
            "Field additional_fields.card_number is required for method card",
        ),
        (
            {"additional_fields": {"card_number": CARD, "expiry_date": "07/29"}},
            "Field additional_fields.expiry_date is not a field of method card",
        ),
        (
            {"method": "binance", "additional_fields": {"card_number": CARD}},
            "Field additional_fields.card_number is not a field of method binance",
        ),
    ],
)
def test_payout_checks_name_the_field(
    gateway: SandboxGateway, http: httpx.Client, changes: dict[str, Any], message: str
) -> None:
    body = post(http, gateway, "/api/payout/", signed(payout_body(**changes)))
    assert body["success"] is False
    assert body["message"].startswith(message)
    assert verify(body, SALT)
    # A refusal says which request it refuses.
    assert body["request_id"] == payout_body(**changes)["request_id"]
    assert gateway.invoices == []


# Each documented method with its required fields (values from the payout page's examples).
DOCUMENTED = {
    "card": {"card_number": CARD},
    "sbp": {"phone_number": "79999999999", "phone_holder": "John Wick"},
    "WalletM10": {"phone_number": "79999999999"},
    "localbanks": {"account_number": "40702810800070000366"},
    "binance": {},
    "cash": {
        "address": "Pushkin street, Kolotushkin house 5",
        "username": "@test",
        "messenger": "telegram",
        "verification_code": "123456",
    },
    "MTS": {"phone_number": "79999999999"},
    "sbp_qr": {},
    "Emanat": {"phone_number": "79999999999"},
    "skrill": {"skrill_account": "test@mail.com", "skrill_holder": "Potter Vasya"},
    "wise": {"wise_tag": "@examplovich23", "wise_holder": "Petrov Vasya"},
    "papara": {
        "papara_account": "9925125660",
        "papara_holder": "John Wick",
        "phone_number": "79999999999",
    },
    "PIX": {
        "phone_number": "79999999999",
        "account_holder": "John Wick",
        "pix_transfer_key": "123e4567-e89b-12d3-a456-426655440000",
    },
}


@pytest.mark.parametrize("method", list(DOCUMENTED))
def test_every_documented_method_is_accepted_with_its_required_fields_only(
    gateway: SandboxGateway, http: httpx.Client, method: str
) -> None:
    fields = DOCUMENTED[method]
    body = post(
        http,
        gateway,
        "/api/payout/",
        signed(payout_body(method=method, additional_fields=fields)),
    )
    assert body["success"] is True, body["message"]
    assert gateway.invoices[0]["method"] == method
    for name in fields:  # each required field is really required
        fewer = {key: value for key, value in fields.items() if key != name}
        answer = post(
            http,
            gateway,
            "/api/payout/",
            signed(payout_body(method=method, additional_fields=fewer, request_id=f"no-{name}")),
        )
        expected = f"Field additional_fields.{name} is required for method {method}"
        assert answer["message"] == expected


def test_optional_fields_are_taken_and_the_card_number_is_kept_masked(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    fields = {
        "card_number": CARD,
        "card_holder": "John Wick",
        "bank_name": "Morgan",
        "bank_option": "778953337789",
        "expiry date": "07/23",
    }
    body = post(http, gateway, "/api/payout/", signed(payout_body(additional_fields=fields)))
    assert body["success"] is True, body["message"]
    assert gateway.invoices[0]["additional_fields"] == {**fields, "card_number": "424242******4242"}


def test_any_documented_currency_goes_with_any_method(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    # The docs pair no method with particular currencies, so the sandbox does not either.
    sbp = DOCUMENTED["sbp"]
    body = post(
        http, gateway, "/api/payout/", signed(payout_body(method="sbp", additional_fields=sbp))
    )
    assert (body["success"], body["currency"]) == (True, "USD")


def test_unknown_merchant_or_site_is_refused_unsigned(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    for changes in ({"merchant_id": "someone"}, {"site_id": 102}, {"site_id": True}):
        body = post(http, gateway, "/api/payout/", signed(payout_body(**changes)))
        assert body == {
            "success": False,
            "message": "Unknown merchant_id or site_id",
            "request_id": "po-1",
            "signature": False,
        }
    assert gateway.invoices == []


def test_bad_signature_is_refused(gateway: SandboxGateway, http: httpx.Client) -> None:
    body = post(http, gateway, "/api/payout/", signed(payout_body(), "wrong-salt"))
    assert (body["success"], body["message"]) == (False, "Invalid signature")
    tampered = {**signed(payout_body()), "amount": 1}
    assert post(http, gateway, "/api/payout/", tampered)["message"] == "Invalid signature"
    assert gateway.invoices == []


def test_repeated_request_id_is_refused_without_a_second_invoice(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    assert post(http, gateway, "/api/payout/", signed(payout_body()))["success"] is True
    again = post(http, gateway, "/api/payout/", signed(payout_body(amount=100)))
    assert again["success"] is False
    assert again["message"] == "Payout with request_id 'po-1' already exists"
    assert verify(again, SALT) and again["request_id"] == "po-1"
    assert len(gateway.invoices) == 1
    assert gateway.available("USD") == 500_000 - 15050


# -- balances --------------------------------------------------------------------------------


def balance(http: httpx.Client, gw: SandboxGateway, **extra: Any) -> Any:
    return post(
        http, gw, "/api/balance/", signed({"merchant_id": "sandbox", "site_id": 101, **extra})
    )


def test_balance_answers_floats_in_major_units(gateway: SandboxGateway, http: httpx.Client) -> None:
    body = balance(http, gateway)
    assert verify(body, SALT)
    assert body["site_id"] == 101
    by_currency = {entry["currency"]: entry for entry in body["balances"]}
    assert by_currency["USD"]["amount"] == 5000.0
    assert isinstance(by_currency["USD"]["amount"], float)
    assert by_currency["VND"]["available"] == 2_000_000.0  # VND has no minor unit
    assert [e["currency"] for e in balance(http, gateway, currency="VND")["balances"]] == ["VND"]


def test_default_balances_hold_a_million_of_every_currency(http: httpx.Client) -> None:
    with SandboxGateway() as gw:
        body = post(
            http,
            gw,
            "/api/balance/",
            {
                "merchant_id": "sandbox",
                "site_id": 101,
                "signature": sign({"merchant_id": "sandbox", "site_id": 101}, gw.salt),
            },
        )
    amounts = {entry["currency"]: entry["available"] for entry in body["balances"]}
    assert amounts["USD"] == amounts["EUR"] == amounts["VND"] == 1_000_000.0
    assert len(gw.salt) == 32


@pytest.mark.parametrize("currency", ["KZT", ["USD"], {"code": "USD"}, 7])
def test_balance_refuses_a_currency_filter_it_does_not_know(
    gateway: SandboxGateway, http: httpx.Client, currency: Any
) -> None:
    answer = balance(http, gateway, currency=currency)
    assert answer["success"] is False
    assert "unsupported currency" in answer["message"]


def test_balance_refuses_a_bad_signature(gateway: SandboxGateway, http: httpx.Client) -> None:
    body = {"merchant_id": "sandbox", "site_id": 101}
    answer = post(http, gateway, "/api/balance/", signed(body, "nope"))
    assert (answer["success"], answer["message"]) == (False, "Invalid signature")


def test_payout_above_the_available_balance_is_refused(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    first = post(http, gateway, "/api/payout/", signed(payout_body(amount=400_000)))
    assert first["success"] is True
    second = post(
        http, gateway, "/api/payout/", signed(payout_body(amount=100_001, request_id="po-2"))
    )
    assert second["success"] is False
    assert second["message"] == (
        "Insufficient balance: 1000.00 USD available, 1000.01 USD requested"
    )
    usd = next(e for e in balance(http, gateway)["balances"] if e["currency"] == "USD")
    assert (usd["amount"], usd["available"]) == (5000.0, 1000.0)
    assert len(gateway.invoices) == 1


def test_a_currency_can_be_given_other_decimals(http: httpx.Client) -> None:
    # The docs leave USDT's minor unit open; a run can try six decimals instead of two.
    with SandboxGateway(salt=SALT, exponents={"USDT": 6}, balances={"USDT": 1_500_000}) as gw:
        (usdt,) = balance(http, gw)["balances"]
        assert (usdt["currency"], usdt["available"]) == ("USDT", 1.5)
        refused = post(http, gw, "/api/payout/", signed(payout_body()))
        assert refused["message"].startswith("Field currency: unsupported currency 'USD'")
    with pytest.raises(ValueError, match="decimals of USDT"):
        SandboxGateway(exponents={"USDT": -1})


def test_balances_must_be_minor_unit_integers_of_known_currencies() -> None:
    with pytest.raises(ValueError, match="KZT"):
        SandboxGateway(balances={"KZT": 100})
    with pytest.raises(ValueError, match="whole number"):
        SandboxGateway(balances={"USD": 10.5})  # type: ignore[dict-item]


# -- routes ----------------------------------------------------------------------------------


def test_other_paths_and_methods(gateway: SandboxGateway, http: httpx.Client) -> None:
    assert http.get(gateway.base_url + "/api/payout/").status_code == 405
    missing = http.post(gateway.base_url + "/api/payout", json={})
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    assert gateway.requests_received == 0


# -- faults ----------------------------------------------------------------------------------


def test_fault_for_a_number_of_requests_then_normal(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    gateway.set_fault(Fault.REJECT, message="Declined for the test", times=2)
    for index in range(2):
        body = post(http, gateway, "/api/payout/", signed(payout_body(request_id=f"r{index}")))
        assert (body["success"], body["message"]) == (False, "Declined for the test")
        assert verify(body, SALT)
    assert post(http, gateway, "/api/payout/", signed(payout_body()))["success"] is True
    assert gateway.requests_received == 3
    assert [invoice["request_id"] for invoice in gateway.invoices] == ["po-1"]


def test_fault_until_cleared(gateway: SandboxGateway, http: httpx.Client) -> None:
    gateway.set_fault(Fault.HTTP_500_HTML)
    for index in range(3):
        response = http.post(
            gateway.base_url + "/api/payout/", json=signed(payout_body(request_id=f"r{index}"))
        )
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/html")
    gateway.clear_fault()
    body = post(http, gateway, "/api/payout/", signed(payout_body(request_id="after")))
    assert body["success"] is True
    # The faulted requests still made their payouts: the answer was lost, not the payout.
    assert [i["fault"] for i in gateway.invoices] == ["http_500_html"] * 3 + [None]


def test_faults_leave_the_balance_endpoint_alone(
    gateway: SandboxGateway, http: httpx.Client
) -> None:
    gateway.set_fault(Fault.INVALID_JSON)
    assert "balances" in balance(http, gateway)


def test_fault_options_are_checked() -> None:
    plan = FaultPlan()
    with pytest.raises(ValueError, match="times"):
        plan.arm(Fault.RESET, times=0)
    with pytest.raises(ValueError, match="delay"):
        plan.arm(Fault.LATENCY, delay=-1)
    with pytest.raises(ValueError):
        plan.arm("explode")  # type: ignore[arg-type]
    assert plan.take() is None


@pytest.mark.parametrize("fault", [Fault.NO_ANSWER, Fault.LATENCY])
def test_stop_does_not_hang_on_a_held_handler(fault: Fault) -> None:
    gw = SandboxGateway(salt=SALT).start()
    gw.set_fault(fault, delay=60)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            httpx.post(gw.base_url + "/api/payout/", json=signed(payout_body()), timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: len(gw.invoices) == 1)
    started = time.monotonic()
    gw.stop()
    assert time.monotonic() - started < 2
    sender.join(timeout=5)
    assert not sender.is_alive()
    # The held request never got its answer.
    assert len(errors) == 1
    gw.stop()  # a second stop is harmless


def test_reset_sends_a_tcp_rst(gateway: SandboxGateway) -> None:
    gateway.set_fault(Fault.RESET)
    body = json.dumps(signed(payout_body())).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/payout/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with pytest.raises(ConnectionResetError):
            while sock.recv(4096):
                pass
    assert len(gateway.invoices) == 1


def test_start_on_a_taken_port_fails_clearly(gateway: SandboxGateway) -> None:
    with pytest.raises(OSError):
        SandboxGateway(port=gateway.port).start()
