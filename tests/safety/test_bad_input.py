"""Whatever arrives (a gateway answer, a callback, a typed field) ends in a clear result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.outcomes import Accepted, RefusedUnverified, Rejected, Unknown
from cactus_desk.gateway.signature import sign, verify
from cactus_desk.history import open_history
from cactus_desk.money import AmountError, currencies, parse_amount
from cactus_desk.payouts.draft import PayoutDraft, validate_draft
from cactus_desk.payouts.states import State
from tests.safety.helpers import MERCHANT, SALT, SITE, attempt, card_request

REQUEST = card_request("po-fuzz")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
# Answers shaped like the gateway's, so the checks past "is it an object" are reached too.
ECHO = {
    "request_id": REQUEST.request_id,
    "amount": REQUEST.amount,
    "currency": REQUEST.currency,
    "site_login": REQUEST.site_login,
    "site_id": REQUEST.site_id,
}
KEYS = st.sampled_from(["success", "status", "invoice_id", "message", *ECHO])
GATEWAYISH = st.dictionaries(KEYS, JSON, max_size=9).map(lambda extra: {**ECHO, **extra})


def _client(status: int, body: bytes, content_type: str) -> CactusClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return CactusClient("https://gateway.test", transport=httpx.MockTransport(handler))


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _check(outcome: object) -> None:
    assert isinstance(outcome, Accepted | Rejected | RefusedUnverified | Unknown)
    if isinstance(outcome, Accepted | Rejected):
        # Only a signed answer echoing the request_id proves anything, either way.
        assert outcome.response["request_id"] == REQUEST.request_id
        assert verify(outcome.response, SALT)
    if isinstance(outcome, Accepted):
        assert outcome.invoice_id
    elif isinstance(outcome, Unknown):
        assert "Cactus" in outcome.reason  # always says whom to check with


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([200, 201, 400, 404, 500, 502]),
    JSON,
    st.sampled_from(["application/json", "text/html", ""]),
)
def test_any_json_answer_is_classified(status: int, answer: Any, content_type: str) -> None:
    with _client(status, _dump(answer), content_type) as client:
        _check(client.payout(REQUEST, SALT))


@settings(max_examples=150, deadline=None)
@given(GATEWAYISH, st.booleans())
def test_gateway_shaped_answers_signed_or_not_are_classified(
    answer: dict[str, Any], signed: bool
) -> None:
    if signed:
        answer = {**answer, "signature": sign(answer, SALT)}
    with _client(200, _dump(answer), "application/json") as client:
        _check(client.payout(REQUEST, SALT))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([200, 500]))
def test_any_bytes_are_classified(body: bytes, status: int) -> None:
    with _client(status, body, "application/json") as client:
        _check(client.payout(REQUEST, SALT))


CALLBACK_KEYS = st.sampled_from(["request_id", "site_id", "status", "invoice_id", "amount"])
CALLBACKISH = st.dictionaries(CALLBACK_KEYS, JSON, max_size=6).map(
    lambda extra: {"request_id": REQUEST.request_id, "site_id": SITE, "status": 4, **extra}
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(JSON, CALLBACKISH), st.booleans())
def test_any_callback_is_applied_or_rejected(data_home: Path, payload: Any, signed: bool) -> None:
    with open_history(data_home) as store:
        if store.count() == 0:
            store.create_attempt(attempt("https://gw.test", REQUEST))
        if signed and isinstance(payload, dict):
            payload = {**payload, "signature": sign(payload, SALT)}
        result = apply_callback(store, payload, SALT, merchant_id=MERCHANT, site_id=SITE)
        assert result.outcome in set(EventOutcome)
        if not signed:
            assert result.rejected  # nothing unsigned is ever applied
        assert store.get(1).state in set(State)


CONTROL = st.text(alphabet="0123456789.,\x00\x07\t\n\r\x1b\u200b\u202e\u2066\ufeff", max_size=20)


@settings(max_examples=200, deadline=None)
@given(CONTROL, st.sampled_from(sorted(currencies())))
def test_amounts_with_control_or_invisible_characters_are_refused(text: str, code: str) -> None:
    try:
        minor = parse_amount(text, code)
    except AmountError as exc:
        assert exc.message
    else:
        assert minor > 0
        assert not any(ch in text for ch in "\x00\x07\x1b\u202e\u2066")


FIELD_NAMES = (
    *("card_number", "card_holder", "phone_number", "phone_holder", "account_number"),
    *("wise_tag", "wise_holder", "address", "time", "asap", "pix_transfer_key"),
)
NASTY = st.one_of(
    st.text(max_size=40),
    CONTROL,
    st.text(min_size=500, max_size=3000),
    st.just("\ud800"),
    st.just("4111 1111 1111 1111\u202e"),
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["card", "sbp", "localbanks", "cash", "wise", "PIX", "nope"]),
    st.sampled_from(["RUB", "USD", "EUR", "XXX", ""]),
    st.dictionaries(
        st.sampled_from(FIELD_NAMES),
        NASTY,
        max_size=6,
    ),
    NASTY,
    NASTY,
    NASTY,
)
def test_any_draft_gets_field_messages_not_an_exception(
    method: str, currency: str, fields: dict[str, str], login: str, amount: str, rid: str
) -> None:
    draft = PayoutDraft(
        profile_id="p1",
        site_login=login,
        currency=currency,
        method=method,
        amount_text=amount,
        fields=fields,
        request_id=rid,
    )
    errors = validate_draft(draft, extensions=["wise", "PIX"])
    assert all(isinstance(key, str) and message for key, message in errors.items())
