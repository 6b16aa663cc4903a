"""The sandbox's own signing code, pinned to the docs' published vectors (cactus-api.md §2).

D1 and D2 are the signatures printed on the gateway's cash-method page; D3 and V1-V3 are what
the published example code gives. The vectors are parsed from JSON text, as the sandbox
receives a request. The sandbox and the console sign independently; the last test checks
that the two agree on any JSON payload, so a bug in either shows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cactus_desk.gateway.signature import sign as console_sign
from cactus_desk.sandbox.signing import signature_matches, signature_of, string_to_sign

VECTORS = {
    "D1": (
        '{"merchant_id":"test_api_v2","request_id":"test20240430132039","site_id":"101",'
        '"update_type":"delete"}',
        "test_api_v2",
        "merchant_id:test_api_v2;request_id:test20240430132039;site_id:101;update_type:delete;",
        "7b71ef53367785053e8e3bb3300ac4458884428f",
    ),
    "D2": (
        '{"amount":10000000,"currency":"RUB","invoice_id":23249,'
        '"request_id":"test20240430132039","site_id":101,"site_login":"user_4","success":true}',
        "test_api_v2",
        "amount:10000000;currency:RUB;invoice_id:23249;request_id:test20240430132039;"
        "site_id:101;site_login:user_4;success:True;",
        "5520cc4d1ec1433f8ff01470f0d95c3b9a363000",
    ),
    "D3": (
        '{"site_id":"1","site_login":"test_login","merchant_id":"merch_id",'
        '"customer_ip":"1.2.3.4","currency":"USD","additional_fields":{"bank_name":"Citibank",'
        '"card_holder":"John Wick","card_number":"0000000000000"}}',
        "test_salt",
        "additional_fields:bank_name:Citibank;card_holder:John Wick;card_number:0000000000000;"
        "currency:USD;customer_ip:1.2.3.4;merchant_id:merch_id;site_id:1;site_login:test_login;",
        "ef326e97eb904bad472cdb46e6c907a2baff66f3",
    ),
    "V1": (
        '{"merchant_id":"m_demo","site_id":7,"site_login":"alice","request_id":"po-0001",'
        '"amount":150000,"currency":"RUB","method":"card","additional_fields":'
        '{"card_number":"4111111111111111","card_holder":"Ivan Petrov","bank_name":"Sber"}}',
        "s3cr3t",
        "additional_fields:bank_name:Sber;card_holder:Ivan Petrov;card_number:4111111111111111;"
        "amount:150000;currency:RUB;merchant_id:m_demo;method:card;request_id:po-0001;"
        "site_id:7;site_login:alice;",
        "1ca4ab61ef8e2f5c0792cbabc4e5bf80d7ae3b94",
    ),
    "V2": (
        '{"merchant_id":"m_demo","site_id":"7","request_id":"cash-42","update_type":"edit",'
        '"asap":true,"time":"","address":"Main st 1","messenger":"   ","tags":["b","a","c"],'
        '"signature":"ignored"}',
        "s3cr3t",
        "address:Main st 1;asap:True;merchant_id:m_demo;request_id:cash-42;site_id:7;"
        "tags:a;b;c;update_type:edit;",
        "c09d6d529985a955308c42da114f427a6ccb4f42",
    ),
    "V3": (
        '{"site_id":21,"site_login":"user_9","status":4,"invoice_id":905910,'
        '"request_id":"po-0002","amount":8000,"received_amount":8000,"is_payout":false,'
        '"currency":"RUB","received_currency":"RUB","method":"sbp","description":"",'
        '"additional_fields":{"phone_holder":"Иван Петров","phone_number":"79990000000"}}',
        "another-salt",
        "additional_fields:phone_holder:Иван Петров;phone_number:79990000000;amount:8000;"
        "currency:RUB;invoice_id:905910;is_payout:False;method:sbp;received_amount:8000;"
        "received_currency:RUB;request_id:po-0002;site_id:21;site_login:user_9;status:4;",
        "4b528da5e2a952a768bec7b4f2aa348e3e597c3e",
    ),
}


@pytest.mark.parametrize("name", list(VECTORS))
def test_the_published_vectors(name: str) -> None:
    text, salt, signed_string, digest = VECTORS[name]
    fields = json.loads(text)
    assert string_to_sign(fields) == signed_string
    assert signature_of(fields, salt) == digest
    assert signature_matches({**fields, "signature": digest}, salt)
    assert not signature_matches({**fields, "signature": digest}, salt + "x")


def test_the_docs_edge_case() -> None:
    fields = {
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
    assert string_to_sign(fields) == "zeta:z;a:None;alpha:a;b:0;c:False;f:x:;g:1000.0;"


@pytest.mark.parametrize(
    "given_signature",
    [
        None,
        False,
        "",
        "7B71EF53367785053E8E3BB3300AC4458884428F",
        " 7b71ef53367785053e8e3bb3300ac4458884428f",
        "7b71ef53367785053e8e3bb3300ac4458884428é",
        "\ud800",
        ["7b71ef53367785053e8e3bb3300ac4458884428f"],
    ],
)
def test_only_the_exact_lowercase_digest_matches(given_signature: Any) -> None:
    fields = json.loads(VECTORS["D1"][0])
    assert not signature_matches({**fields, "signature": given_signature}, "test_api_v2")


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_values = st.one_of(
    _scalars,
    st.dictionaries(st.text(max_size=6), _scalars, max_size=4),
    st.lists(_scalars, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=8), _values, max_size=6), salt=st.text(max_size=8))
def test_the_sandbox_and_the_console_sign_alike(fields: dict[str, Any], salt: str) -> None:
    # Written separately from the same docs: any difference is a bug on one side.
    assert signature_of(fields, salt) == console_sign(fields, salt)
