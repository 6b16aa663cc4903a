"""Item 5 (client side): no value the console sends may contain ';'.

The gateway signs ``key:value;`` pairs joined together, so ``alice;amount:1`` as a site login
reads as two fields. Such a value is refused at its field, and, should one slip through, it
is never signed or sent.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import BalanceRequest, PayoutRequest
from cactus_desk.gateway.outcomes import NotSent
from cactus_desk.gateway.signature import SEPARATOR_MESSAGE, SeparatorError, signing_string
from cactus_desk.payouts.draft import PayoutDraft, validate_draft
from cactus_desk.profiles import Profile
from tests.gateway.loopback import answer_with, serving
from tests.safety.helpers import SALT, card_request


def test_a_semicolon_really_forges_a_field() -> None:
    # Why it matters: two different bodies, one signing string, so one valid signature.
    honest = {"currency": "RUB", "method": "card"}
    forged = {"currency": "RUB;method:card"}
    assert signing_string(forged) == signing_string(honest)


def _draft(**changes: object) -> PayoutDraft:
    values: dict[str, object] = {
        "profile_id": "p1",
        "site_login": "alice",
        "request_id": "po-1",
        "amount_text": "10.00",
        "currency": "RUB",
        "method": "card",
        "fields": {"card_number": "4111111111111111", "card_holder": "Ivan Petrov"},
    }
    values.update(changes)
    return PayoutDraft(**values)  # type: ignore[arg-type]


def test_a_semicolon_in_the_site_login_is_refused_at_the_field() -> None:
    assert validate_draft(_draft()) == {}
    errors = validate_draft(_draft(site_login="alice;amount:1"))
    assert errors == {"site_login": SEPARATOR_MESSAGE}


def test_a_semicolon_in_the_request_id_is_refused_at_the_field() -> None:
    assert "request_id" in validate_draft(_draft(request_id="po-1;amount:1"))


CASES = [
    (method.wire, currency, field.wire)
    for method in load_catalog().methods
    for currency in method.currencies[:1]
    for field in load_catalog().fields_for(method, currency)
    if field.kind != "bool"
]


@pytest.mark.parametrize(("method", "currency", "wire"), CASES)
def test_a_semicolon_in_any_method_field_is_refused_at_that_field(
    method: str, currency: str, wire: str
) -> None:
    spec = load_catalog().method(method)
    fields = {field.wire: field.example for field in load_catalog().fields_for(spec, currency)}
    fields[wire] = f"{fields.get(wire) or 'x'};amount:1"
    errors = load_catalog().validate_fields(method, currency, fields)
    assert errors.get(wire) == SEPARATOR_MESSAGE


def test_a_request_with_a_semicolon_cannot_be_built() -> None:
    with pytest.raises(ValidationError, match="';'"):
        card_request(site_login="alice;amount:1")
    with pytest.raises(ValidationError, match="';'"):
        card_request(additional_fields={"card_holder": "Ivan;amount:1"})
    with pytest.raises(ValidationError, match="';'"):
        card_request(additional_fields={"card;holder": "Ivan"})


def test_a_profile_merchant_id_with_a_semicolon_is_refused() -> None:
    with pytest.raises(ValidationError, match="';'"):
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m;site_id:9", site_id=1)


def test_a_request_that_slipped_past_validation_is_never_signed_or_sent() -> None:
    valid = card_request()
    smuggled = PayoutRequest.model_construct(
        **{**dict(valid), "site_login": "alice;amount:1"}  # skips the validators
    )
    with pytest.raises(SeparatorError):
        smuggled.signed_payload(SALT)
    with serving(answer_with(b"{}")) as server, CactusClient(server.url) as client:
        outcome = client.payout(smuggled, SALT)
    assert isinstance(outcome, NotSent)
    assert "';'" in outcome.reason
    assert server.requests == []  # nothing reached the gateway

    balance = BalanceRequest.model_construct(merchant_id="m;x", site_id=1, currency=None)
    with pytest.raises(SeparatorError):
        balance.signed_payload(SALT)
