"""Payout drafts: validation keyed to the form's fields, the request built from them, masking."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.payouts.draft import (
    PayoutDraft,
    mask_card,
    new_request_id,
    redacted_fields,
    validate_draft,
)
from cactus_desk.payouts.payout import PayoutTarget, build_payout

CARD = "4111 1111 1111 1111"


def build_request(
    draft: PayoutDraft,
    *,
    merchant_id: str,
    site_id: int,
    extensions: list[str] | None = None,
    decimals: dict[str, int] | None = None,
) -> PayoutRequest:
    """What the console sends for ``draft``: the wire model of the payout built from it."""
    target = PayoutTarget("p-test", "Test", "sandbox", merchant_id, site_id)
    payout = build_payout(draft, target, extensions=extensions, decimals=decimals)
    return payout.wire_request()


def card_draft(**changes: object) -> PayoutDraft:
    values: dict[str, object] = {
        "profile_id": "p1",
        "site_login": "alice",
        "currency": "RUB",
        "method": "card",
        "amount_text": "1 500,00",
        "fields": {"card_number": CARD, "card_holder": "Ivan Petrov", "bank_name": "Sber"},
        "request_id": "po-0001",
    }
    values.update(changes)
    return PayoutDraft.model_validate(values)


def test_a_complete_draft_is_valid_and_builds_the_documented_request() -> None:
    draft = card_draft()
    assert validate_draft(draft) == {}
    request = build_request(draft, merchant_id="m_demo", site_id=7)
    assert isinstance(request, PayoutRequest)
    assert request.unsigned_payload() == {
        "merchant_id": "m_demo",
        "site_login": "alice",
        "site_id": 7,
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
    # The signature vector V1 of cactus-api.md: the draft signs exactly as documented.
    assert request.signed_payload("s3cr3t")["signature"] == (
        "1ca4ab61ef8e2f5c0792cbabc4e5bf80d7ae3b94"
    )


def test_cash_booleans_go_as_strings_and_empty_optionals_are_omitted() -> None:
    draft = PayoutDraft(
        profile_id="p1",
        site_login="bob",
        currency="VND",
        method="cash",
        amount_text="1.500.000",
        fields={
            "address": "Main st 1",
            "username": "@bob",
            "messenger": "telegram",
            "verification_code": "123456",
            "asap": True,
            "time": "",
        },
        request_id="cash-42",
    )
    request = build_request(draft, merchant_id="m", site_id=1)
    assert request.amount == 1500000
    assert request.additional_fields == {
        "address": "Main st 1",
        "username": "@bob",
        "messenger": "telegram",
        "verification_code": "123456",
        "asap": "true",
    }


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"site_login": ""}, "site_login", "Enter the user's login"),
        ({"site_login": "   "}, "site_login", "Enter the user's login"),
        ({"site_login": "a" * 129}, "site_login", "at most 128"),
        ({"site_login": "al\nice"}, "site_login", "control"),
        ({"request_id": ""}, "request_id", "Enter a request id"),
        ({"request_id": "po 0001"}, "request_id", "no spaces"),
        ({"request_id": "po/0001"}, "request_id", "letters, digits"),
        ({"request_id": "x" * 65}, "request_id", "at most 64"),
        ({"currency": "KZT"}, "currency", "Choose a currency"),
        ({"currency": ""}, "currency", "Choose a currency"),
        ({"method": "qiwi"}, "method", "Choose a payout method"),
        ({"method": "sbp", "currency": "USD"}, "method", "not offered for USD (only RUB)"),
        ({"amount_text": ""}, "amount", "Enter an amount"),
        ({"amount_text": "0"}, "amount", "more than zero"),
        ({"amount_text": "1,500"}, "amount", "ambiguous"),
        ({"amount_text": "1.001"}, "amount", "ambiguous"),
        ({"fields": {}}, "card_number", "Card number is required"),
        ({"fields": {"card_number": "4111 1111 1111 1112"}}, "card_number", "typo"),
        ({"fields": {"card_number": CARD, "expiry date": "01/20"}}, "expiry date", "expired"),
    ],
)
def test_each_problem_is_keyed_to_its_field(changes: dict, key: str, fragment: str) -> None:
    errors = validate_draft(card_draft(**changes))
    assert key in errors
    assert fragment in errors[key]


def test_all_problems_are_reported_at_once() -> None:
    draft = card_draft(site_login="", request_id="", amount_text="abc", fields={})
    assert set(validate_draft(draft)) == {"site_login", "request_id", "amount", "card_number"}


def test_extension_methods_need_enabling() -> None:
    fields = {"wise_tag": "@examplovich23", "wise_holder": "Petrov Vasya"}
    draft = card_draft(currency="EUR", method="wise", fields=fields)
    assert validate_draft(draft)["method"] == "Wise is not enabled for this profile."
    assert validate_draft(draft, extensions=["wise"]) == {}
    with pytest.raises(ValueError, match="not enabled"):
        build_request(draft, merchant_id="m", site_id=1, extensions=["skrill"])
    request = build_request(draft, merchant_id="m", site_id=1, extensions=["wise"])
    assert request.additional_fields == fields


def test_build_request_refuses_an_invalid_draft_without_leaking_the_card() -> None:
    draft = card_draft(amount_text="-1")
    with pytest.raises(ValueError) as caught:
        build_request(draft, merchant_id="m", site_id=1)
    assert "amount: The amount must be more than zero." in str(caught.value)
    assert "4111" not in str(caught.value)


def test_request_ids_are_dated_and_unique() -> None:
    stamp = datetime(2026, 11, 28, 12, 0)
    ids = {new_request_id(stamp) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"cd-20261128-[0-9a-f]{10}", rid) for rid in ids)
    assert validate_draft(card_draft(request_id=new_request_id())) == {}


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("4111111111111111", "411111******1111"),
        ("4111 1111 1111 1111", "411111******1111"),
        ("4111111111111111111", "411111*********1111"),
        ("411111111111", "411111**1111"),
        ("41111111111", "***********"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_card(number: str, masked: str) -> None:
    assert mask_card(number) == masked


def test_redacted_fields_mask_only_the_card_number() -> None:
    fields = {"card_number": "4111111111111111", "card_holder": "Ivan Petrov", "bank_name": "Sber"}
    redacted = redacted_fields("card", fields)
    assert redacted == {
        "card_number": "411111******1111",
        "card_holder": "Ivan Petrov",
        "bank_name": "Sber",
    }
    assert fields["card_number"] == "4111111111111111"
    phone = {"phone_number": "79999999999", "phone_holder": "Ivan"}
    assert redacted_fields("sbp", phone) == phone
    assert redacted_fields("unknown", fields)["card_number"] == "411111******1111"
