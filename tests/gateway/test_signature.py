"""The signature scheme, pinned to every vector in cactus-api.md §2."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cactus_desk.gateway import signature
from cactus_desk.gateway.signature import sign, signing_string, verify

D1 = (
    {
        "merchant_id": "test_api_v2",
        "request_id": "test20240430132039",
        "site_id": "101",
        "update_type": "delete",
    },
    "test_api_v2",
    "merchant_id:test_api_v2;request_id:test20240430132039;site_id:101;update_type:delete;",
    "7b71ef53367785053e8e3bb3300ac4458884428f",
)
D2 = (
    {
        "amount": 10000000,
        "currency": "RUB",
        "invoice_id": 23249,
        "request_id": "test20240430132039",
        "site_id": 101,
        "site_login": "user_4",
        "success": True,
    },
    "test_api_v2",
    "amount:10000000;currency:RUB;invoice_id:23249;request_id:test20240430132039;site_id:101;"
    "site_login:user_4;success:True;",
    "5520cc4d1ec1433f8ff01470f0d95c3b9a363000",
)
D3 = (
    {
        "site_id": "1",
        "site_login": "test_login",
        "merchant_id": "merch_id",
        "customer_ip": "1.2.3.4",
        "currency": "USD",
        "additional_fields": {
            "bank_name": "Citibank",
            "card_holder": "John Wick",
            "card_number": "0000000000000",
        },
    },
    "test_salt",
    "additional_fields:bank_name:Citibank;card_holder:John Wick;card_number:0000000000000;"
    "currency:USD;customer_ip:1.2.3.4;merchant_id:merch_id;site_id:1;site_login:test_login;",
    "ef326e97eb904bad472cdb46e6c907a2baff66f3",
)
V1 = (
    {
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
    },
    "s3cr3t",
    "additional_fields:bank_name:Sber;card_holder:Ivan Petrov;card_number:4111111111111111;"
    "amount:150000;currency:RUB;merchant_id:m_demo;method:card;request_id:po-0001;site_id:7;"
    "site_login:alice;",
    "1ca4ab61ef8e2f5c0792cbabc4e5bf80d7ae3b94",
)
V2 = (
    {
        "merchant_id": "m_demo",
        "site_id": "7",
        "request_id": "cash-42",
        "update_type": "edit",
        "asap": True,
        "time": "",
        "address": "Main st 1",
        "messenger": "   ",
        "tags": ["b", "a", "c"],
        "signature": "ignored",
    },
    "s3cr3t",
    "address:Main st 1;asap:True;merchant_id:m_demo;request_id:cash-42;site_id:7;tags:a;b;c;"
    "update_type:edit;",
    "c09d6d529985a955308c42da114f427a6ccb4f42",
)
V3 = (
    {
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
    },
    "another-salt",
    "additional_fields:phone_holder:Иван Петров;phone_number:79990000000;amount:8000;"
    "currency:RUB;invoice_id:905910;is_payout:False;method:sbp;received_amount:8000;"
    "received_currency:RUB;request_id:po-0002;site_id:21;site_login:user_9;status:4;",
    "4b528da5e2a952a768bec7b4f2aa348e3e597c3e",
)
VECTORS = {"D1": D1, "D2": D2, "D3": D3, "V1": V1, "V2": V2, "V3": V3}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_signing_string_and_digest(name: str) -> None:
    payload, salt, expected_string, expected_digest = VECTORS[name]
    assert signing_string(payload) == expected_string
    assert sign(payload, salt) == expected_digest


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_survives_a_json_round_trip(name: str) -> None:
    # The gateway signs the parsed JSON body; a trip through JSON must not change the digest.
    payload, salt, _, expected_digest = VECTORS[name]
    assert sign(json.loads(json.dumps(payload, ensure_ascii=False)), salt) == expected_digest


def test_published_request_and_response_signatures_verify() -> None:
    for payload, salt, _, digest in (D1, D2):
        assert verify({**payload, "signature": digest}, salt)


def test_edge_case_string() -> None:
    payload = {
        "Zeta": "z",
        "alpha": "a",
        "a": None,
        "b": 0,
        "c": False,
        "d": {},
        "e": [],
        "f": {"x": ""},
        "g": 1000.0,
    }
    assert signing_string(payload) == "zeta:z;a:None;alpha:a;b:0;c:False;f:x:;g:1000.0;"


def test_v2_with_signature_wrongly_included_gives_the_documented_wrong_digest() -> None:
    payload, salt, _, correct = V2
    wrong_string = "address:Main st 1;asap:True;merchant_id:m_demo;request_id:cash-42;"
    wrong_string += "signature:ignored;site_id:7;tags:a;b;c;update_type:edit;"
    wrong = hashlib.sha1((wrong_string + salt).encode()).hexdigest()
    assert wrong == "c7a593c67dd602f2b55d7385967a066f202cbda4"
    assert sign(payload, salt) == correct != wrong


def test_salt_follows_exactly_one_separator() -> None:
    payload, salt, expected_string, digest = D1
    assert hashlib.sha1((expected_string + salt).encode()).hexdigest() == digest
    assert sign(payload, salt) != hashlib.sha1((expected_string + ";" + salt).encode()).hexdigest()


def test_verify_accepts_the_right_signature_and_refuses_others() -> None:
    payload, salt, _, digest = V1
    assert verify({**payload, "signature": digest}, salt) is True
    assert verify({**payload, "signature": digest.upper()}, salt) is True
    assert verify({**payload, "signature": digest}, "other-salt") is False
    assert verify({**payload, "signature": "0" * 40}, salt) is False
    assert verify(payload, salt) is False
    assert verify({**payload, "signature": ""}, salt) is False
    assert verify({**payload, "signature": False}, salt) is False


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(amount=150001),
        lambda p: p.update(site_login="mallory"),
        lambda p: p["additional_fields"].update(card_number="4000000000000002"),
        lambda p: p.update(extra="added"),
        lambda p: p.pop("currency"),
    ],
    ids=["amount", "site_login", "nested", "added-field", "removed-field"],
)
def test_tampering_breaks_verification(tamper: Any) -> None:
    payload, salt, _, digest = V1
    signed = json.loads(json.dumps({**payload, "signature": digest}))
    tamper(signed)
    assert verify(signed, salt) is False


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", spy)
    payload, salt, _, digest = V1
    assert verify({**payload, "signature": digest}, salt)
    assert calls == [(digest, digest)]


keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda key: key != "signature"
)
scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.dictionaries(keys, st.text(max_size=10), max_size=4),
    st.lists(st.text(max_size=8), max_size=4),
)
payloads = st.dictionaries(keys, values, max_size=8)
salts = st.text(min_size=1, max_size=40)


@given(payloads, salts)
def test_round_trip_sign_then_verify(payload: dict[str, Any], salt: str) -> None:
    signed = {**payload, "signature": sign(payload, salt)}
    assert verify(signed, salt)
    assert verify(json.loads(json.dumps(signed)), salt)


@given(payloads, salts, st.randoms(use_true_random=False))
def test_key_order_does_not_matter(payload: dict[str, Any], salt: str, rnd: Any) -> None:
    items = list(payload.items())
    rnd.shuffle(items)
    assert sign(dict(items), salt) == sign(payload, salt)


@given(st.dictionaries(keys, st.text(max_size=10), min_size=1, max_size=6), salts, st.randoms())
def test_nested_values_sign_independently_of_their_order(
    nested: dict[str, str], salt: str, rnd: Any
) -> None:
    items = list(nested.items())
    rnd.shuffle(items)
    base = {"merchant_id": "m", "additional_fields": nested}
    assert sign({**base, "additional_fields": dict(items)}, salt) == sign(base, salt)
    signed = {**base, "signature": sign(base, salt)}
    assert verify(signed, salt)
    changed = {**nested, next(iter(nested)): nested[next(iter(nested))] + "x"}
    assert not verify({**signed, "additional_fields": changed}, salt)
