"""The gateway's messages: what is sent, and how each answer shape is read."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from cactus_desk.gateway.models import (
    BalanceEntry,
    BalanceRequest,
    BalanceResponse,
    Callback,
    PayoutRequest,
    PayoutResponse,
)
from cactus_desk.gateway.signature import sign, verify

V1_FIELDS: dict[str, Any] = {
    "merchant_id": "m_demo",
    "site_id": 7,
    "site_login": "alice",
    "request_id": "po-0001",
    "amount": 150000,
    "currency": "RUB",
    "method": "card",
    "additional_fields": {
        "card_number": "4111111111111111",
        "card_holder": "Ivan Petrov",
        "bank_name": "Sber",
    },
}


def test_payout_request_signs_the_dict_it_sends() -> None:
    request = PayoutRequest(**V1_FIELDS)
    payload = request.signed_payload("s3cr3t")
    # The published vector V1 is exactly this request.
    assert payload["signature"] == "1ca4ab61ef8e2f5c0792cbabc4e5bf80d7ae3b94"
    assert {k: v for k, v in payload.items() if k != "signature"} == request.unsigned_payload()
    assert verify(json.loads(json.dumps(payload)), "s3cr3t")


def test_unsigned_payload_has_every_field_and_no_signature() -> None:
    payload = PayoutRequest(**V1_FIELDS).unsigned_payload()
    assert set(payload) == set(V1_FIELDS)
    assert payload["amount"] == 150000 and isinstance(payload["amount"], int)


def test_signed_payload_does_not_change_the_request() -> None:
    request = PayoutRequest(**V1_FIELDS)
    request.signed_payload("a")["additional_fields"]["card_number"] = "changed"
    assert request.additional_fields["card_number"] == "4111111111111111"
    assert "signature" not in request.unsigned_payload()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 0),
        ("amount", -5),
        ("amount", 10.5),
        ("amount", 100.0),
        ("amount", "100"),
        ("amount", True),
        ("site_id", "7"),
        ("merchant_id", ""),
        ("request_id", ""),
        ("additional_fields", {"card_number": 4111111111111111}),
        ("additional_fields", {"asap": True}),
    ],
)
def test_payout_request_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        PayoutRequest(**{**V1_FIELDS, field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_payout_request_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        PayoutRequest(**V1_FIELDS, signature="x")


def test_success_response_with_string_invoice_id() -> None:
    docs = {
        "message": "Payout initialized",
        "request_id": "request_id123",
        "success": True,
        "status": 3,
        "amount": 900000,
        "site_login": "user_login",
        "site_id": 21,
        "signature": "signature_value",
        "invoice_id": "1314",
        "currency": "KZT",
    }
    response = PayoutResponse.model_validate(docs)
    assert response.is_success and not response.is_failure
    assert response.invoice_id == "1314"
    assert response.status == 3


def test_success_response_with_integer_invoice_id() -> None:
    response = PayoutResponse.model_validate({"success": True, "status": 3, "invoice_id": 1314})
    assert response.invoice_id == "1314"


def test_boolean_invoice_id_is_refused() -> None:
    with pytest.raises(ValidationError):
        PayoutResponse.model_validate({"success": True, "invoice_id": True})


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "message": "Invalid ContentType or json format", "signature": "x"},
        {"status": False, "message": "Invalid signature"},
        {"status": False, "message": "Invalid signature", "signature": False},
    ],
)
def test_failure_shapes(body: dict[str, Any]) -> None:
    response = PayoutResponse.model_validate(body)
    assert response.is_failure and not response.is_success
    assert response.message == body["message"]


def test_success_true_with_status_false_is_neither_success_nor_failure() -> None:
    response = PayoutResponse.model_validate({"success": True, "status": False})
    assert not response.is_success
    assert not response.is_failure


def test_integer_status_is_not_mistaken_for_boolean_false() -> None:
    # Status 0 must not read as "status: false".
    response = PayoutResponse.model_validate({"success": True, "status": 0})
    assert response.status == 0 and response.status is not False
    assert not response.is_failure


def test_response_keeps_unknown_fields() -> None:
    response = PayoutResponse.model_validate({"success": True, "status": 3, "eta": "soon"})
    assert response.model_extra == {"eta": "soon"}


def test_balance_request_payloads() -> None:
    plain = BalanceRequest(merchant_id="m", site_id=101)
    assert plain.unsigned_payload() == {"merchant_id": "m", "site_id": 101}
    filtered = BalanceRequest(merchant_id="m", site_id=101, currency="USD")
    signed = filtered.signed_payload("salt")
    assert signed["currency"] == "USD"
    assert signed["signature"] == sign(
        {"merchant_id": "m", "site_id": 101, "currency": "USD"}, "salt"
    )


DOCS_BALANCE = {
    "site_id": 101,
    "balances": [
        {
            "id": 1,
            "name": "Test_balance_1",
            "currency": "USD",
            "amount": 10000.0,
            "available": 10000.0,
        },
        {"id": 3, "name": "bal_eur_1", "currency": "EUR", "amount": 14600.0, "available": 14600.0},
    ],
}


def test_balance_response_example_from_the_docs() -> None:
    response = BalanceResponse.model_validate(DOCS_BALANCE)
    assert response.site_id == 101
    usd, eur = response.balances
    assert usd.amount == Decimal("10000.0") and type(usd.amount) is Decimal
    assert eur.available == Decimal("14600.0") and type(eur.available) is Decimal
    assert response.for_currency("EUR") == [eur]


def test_balance_response_accepts_the_table_spelling_balance() -> None:
    body = {"site_id": 101, "balance": DOCS_BALANCE["balances"]}
    assert len(BalanceResponse.model_validate(body).balances) == 2


def test_float_amounts_become_the_decimal_they_print_as() -> None:
    # Decimal(0.1) would be 0.1000000000000000055511151231257827...
    entry = BalanceEntry.model_validate({"amount": 0.1, "available": 1234.56})
    assert entry.amount == Decimal("0.1")
    assert entry.available == Decimal("1234.56")
    assert not any(isinstance(v, float) for v in entry.model_dump().values())


def test_integer_and_string_amounts_are_decimals_too() -> None:
    entry = BalanceEntry.model_validate({"amount": 5, "available": "7.25"})
    assert (entry.amount, entry.available) == (Decimal(5), Decimal("7.25"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "lots"])
def test_balance_amount_refuses_non_numbers(bad: object) -> None:
    with pytest.raises(ValidationError):
        BalanceEntry.model_validate({"amount": bad, "available": 1})


V3_CALLBACK: dict[str, Any] = {
    "site_id": 21,
    "site_login": "user_9",
    "status": 4,
    "invoice_id": 905910,
    "request_id": "po-0002",
    "amount": 8000,
    "received_amount": 8000,
    "is_payout": False,
    "currency": "RUB",
    "received_currency": "RUB",
    "method": "sbp",
    "description": "",
    "additional_fields": {"phone_holder": "Иван Петров", "phone_number": "79990000000"},
    "signature": "4b528da5e2a952a768bec7b4f2aa348e3e597c3e",
}


def test_callback_verifies_over_the_fields_as_received() -> None:
    callback = Callback.model_validate(V3_CALLBACK)
    assert callback.invoice_id == "905910"
    assert callback.status == 4 and callback.is_payout is False
    assert callback.verify("another-salt")
    assert not callback.verify("wrong-salt")


def test_callback_keeps_unknown_fields_and_they_count_for_the_signature() -> None:
    body = {**V3_CALLBACK, "operator_note": "checked"}
    callback = Callback.model_validate(body)
    assert callback.model_extra == {"operator_note": "checked"}
    assert callback.raw["operator_note"] == "checked"
    # The gateway signed without that field, so a field added in transit breaks it.
    assert not callback.verify("another-salt")
    resigned = {**body, "signature": sign(body, "another-salt")}
    assert Callback.model_validate(resigned).verify("another-salt")


def test_callback_tampering_is_detected() -> None:
    callback = Callback.model_validate({**V3_CALLBACK, "amount": 9000})
    assert not callback.verify("another-salt")
