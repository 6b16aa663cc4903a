"""CactusClient against scripted answers: every way a payout answer can go wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from cactus_desk.gateway.client import NOT_SENT_CONNECT, CactusClient, GatewayError
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    RefusedUnverified,
    Rejected,
    Unknown,
    UnknownKind,
)
from cactus_desk.gateway.signature import sign, verify
from cactus_desk.gateway.urls import InsecureURLError

SALT = "site-salt-7f3a9c"
BASE = "https://gw.example"
REQUEST = PayoutRequest(
    merchant_id="m_demo",
    site_login="alice",
    site_id=21,
    request_id="po-0001",
    amount=900000,
    currency="RUB",
    method="card",
    additional_fields={"card_number": "4111111111111111"},
)

Handler = Callable[[httpx.Request], httpx.Response]


def success_body(**changes: Any) -> dict[str, Any]:
    body = {
        "message": "Payout initialized",
        "request_id": REQUEST.request_id,
        "success": True,
        "status": 3,
        "amount": REQUEST.amount,
        "site_login": REQUEST.site_login,
        "site_id": REQUEST.site_id,
        "invoice_id": "1314",
        "currency": REQUEST.currency,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def signed(body: dict[str, Any], salt: str = SALT) -> dict[str, Any]:
    return {**body, "signature": sign(body, salt)}


def client_for(handler: Handler, **kwargs: Any) -> CactusClient:
    return CactusClient(BASE, transport=httpx.MockTransport(handler), **kwargs)


def answer(body: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def payout_with(handler: Handler) -> Any:
    with client_for(handler) as client:
        return client.payout(REQUEST, SALT)


def raising(exc: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


# -- what is sent ----------------------------------------------------------------------------


def test_payout_posts_the_signed_json_to_the_trailing_slash_endpoint() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=signed(success_body()))

    payout_with(handler)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://gw.example/api/payout/"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body == REQUEST.signed_payload(SALT)
    assert verify(body, SALT)


def test_one_http_client_is_reused_across_payouts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=signed(success_body()))

    with client_for(handler) as client:
        first = client._http
        client.payout(REQUEST, SALT)
        client.payout(REQUEST, SALT)
        assert client._http is first and not first.is_closed
    assert first.is_closed


def test_timeouts_default_and_configurable() -> None:
    client = CactusClient(BASE)
    assert (client.timeout.connect, client.timeout.read) == (10, 180)
    client.close()
    client = CactusClient(BASE, connect_timeout=3, read_timeout=60)
    assert (client.timeout.connect, client.timeout.read) == (3, 60)
    client.close()


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(InsecureURLError):
        CactusClient("http://gw.example")


def test_a_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CA bundle file does not exist"):
        CactusClient(BASE, ca_bundle=tmp_path / "missing.pem")


def test_a_ca_bundle_that_is_not_pem_is_a_clear_error(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not a certificate", encoding="utf-8")
    with pytest.raises(ValueError, match="could not be loaded"):
        CactusClient(BASE, ca_bundle=bundle)


def test_an_empty_salt_sends_nothing() -> None:
    seen: list[httpx.Request] = []
    with (
        client_for(lambda r: seen.append(r) or httpx.Response(200)) as client,
        pytest.raises(ValueError, match="salt is empty"),
    ):
        client.payout(REQUEST, "")
    assert seen == []


# -- accepted --------------------------------------------------------------------------------


def test_signed_echoing_success_is_accepted() -> None:
    outcome = payout_with(answer(signed(success_body())))
    assert outcome == Accepted(
        invoice_id="1314",
        status=3,
        message="Payout initialized",
        response=signed(success_body()),
    )


def test_integer_invoice_id_and_string_site_id_are_accepted() -> None:
    outcome = payout_with(answer(signed(success_body(invoice_id=1314, site_id="21"))))
    assert isinstance(outcome, Accepted)
    assert outcome.invoice_id == "1314"


def test_success_without_site_login_or_site_id_still_checks_the_rest() -> None:
    body = success_body()
    del body["site_login"], body["site_id"]
    assert isinstance(payout_with(answer(signed(body))), Accepted)


# -- rejected --------------------------------------------------------------------------------


def test_a_signed_refusal_echoing_the_request_id_is_rejected_and_verified() -> None:
    body = signed({"success": False, "message": "Insufficient funds", "request_id": "po-0001"})
    outcome = payout_with(answer(body))
    assert outcome == Rejected(
        message="Insufficient funds", response=body, signature_verified=True, http_status=200
    )


@pytest.mark.parametrize(
    ("body", "status", "why"),
    [
        # The documented error shape: no request_id, so nothing ties it to this payout.
        (signed({"success": False, "message": "Insufficient funds"}), 200, "request ID"),
        (
            {"success": False, "message": "Invalid ContentType", "signature": "lfd"},
            200,
            "signature does not match",
        ),
        ({"status": False, "message": "Invalid signature", "request_id": "po-0001"}, 200, "not"),
        (
            {"status": False, "message": "Invalid signature", "signature": False},
            200,
            "not signed",
        ),
        (
            signed({"success": False, "message": "Bad method", "request_id": "po-0001"}),
            400,
            "HTTP 400",
        ),
        (
            signed({"success": False, "message": "No", "request_id": "po-0001", "invoice_id": 7}),
            200,
            "invoice 7",
        ),
        (
            signed({"success": False, "message": "No", "request_id": "po-0001", "status": 5}),
            200,
            "status 5",
        ),
        (
            signed({"success": False, "message": "No", "request_id": "po-9999"}),
            200,
            "'po-9999'",
        ),
        (
            signed({"success": False, "message": "No", "request_id": "po-0001"}, "other-salt"),
            200,
            "signature does not match",
        ),
        (
            signed({"success": False, "message": "No", "request_id": "po-0001", "amount": 1}),
            200,
            "amount",
        ),
    ],
)
def test_a_refusal_that_cannot_be_verified_is_refused_unverified(
    body: dict[str, Any], status: int, why: str
) -> None:
    outcome = payout_with(answer(body, status))
    assert isinstance(outcome, RefusedUnverified)
    assert outcome.message == body["message"]  # the gateway's words are still shown
    assert why in outcome.why
    assert outcome.http_status == status


def test_refusal_without_a_message_says_so() -> None:
    outcome = payout_with(answer({"success": False}))
    assert isinstance(outcome, RefusedUnverified)
    assert "without giving a reason" in outcome.message


# -- unknown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (httpx.ReadTimeout, UnknownKind.TIMEOUT, "did not answer within 180 s"),
        (httpx.WriteTimeout, UnknownKind.TIMEOUT, "Sending the payout stalled"),
        (httpx.ReadError, UnknownKind.NETWORK, "connection broke"),
        (httpx.RemoteProtocolError, UnknownKind.NETWORK, "connection broke"),
    ],
)
def test_transport_failures_are_unknown(
    exc: type[httpx.HTTPError], kind: UnknownKind, words: str
) -> None:
    outcome = payout_with(raising(exc))
    assert isinstance(outcome, Unknown)
    assert outcome.kind is kind
    assert words in outcome.reason
    assert exc.__name__ in outcome.detail


def test_timeout_reason_warns_the_payout_may_exist() -> None:
    outcome = payout_with(raising(httpx.ReadTimeout))
    assert "may have been created" in outcome.reason
    assert "Do not send it again" in outcome.reason


@pytest.mark.parametrize(
    ("exc", "message", "what"),
    [
        (httpx.ConnectError, "[Errno 111] Connection refused", "connection was refused"),
        (httpx.ConnectError, "[Errno -2] Name or service not known", "could not be resolved"),
        (httpx.ConnectTimeout, "timed out", "no connection within 10 s"),
        (httpx.PoolTimeout, "timed out", "no connection within 10 s"),
        (
            httpx.ConnectError,
            "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed",
            "TLS certificate could not be verified",
        ),
    ],
)
def test_no_connection_is_not_sent_with_one_message(
    exc: type[httpx.HTTPError], message: str, what: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(message, request=request)

    outcome = payout_with(handler)
    assert isinstance(outcome, NotSent)
    assert outcome.reason == NOT_SENT_CONNECT.format(
        url=BASE, what=outcome.reason.split("(")[1].split(")")[0]
    )
    assert what in outcome.reason
    assert "never left this computer" in outcome.reason
    assert "may have been created" not in outcome.reason
    assert exc.__name__ in outcome.detail


def test_http_500_html_is_an_http_error() -> None:
    page = "<html><body>Internal Server Error</body></html>"
    outcome = payout_with(lambda r: httpx.Response(500, html=page))
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.HTTP_ERROR
    assert outcome.http_status == 500
    assert "HTTP 500" in outcome.reason
    assert outcome.response_text == page


def test_http_502_even_with_a_refusal_body_is_unknown() -> None:
    outcome = payout_with(answer({"success": False, "message": "upstream"}, 502))
    assert outcome.kind is UnknownKind.HTTP_ERROR
    assert "upstream" in outcome.detail


def test_redirect_is_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    outcome = payout_with(handler)
    assert outcome.kind is UnknownKind.HTTP_ERROR
    assert "elsewhere.example" in outcome.detail
    assert seen == ["https://gw.example/api/payout/"]


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (httpx.Response(200, html="<html>Login</html>"), "web page (HTML)"),
        (httpx.Response(200, text="<!doctype html><p>x</p>"), "web page (HTML)"),
        (httpx.Response(200, text=""), "empty body"),
        (httpx.Response(200, text='{"success": true, "invoice'), "not valid JSON"),
        (httpx.Response(200, json=["success"]), "not an object"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_malformed(
    response: httpx.Response, words: str
) -> None:
    outcome = payout_with(lambda r: response)
    assert outcome.kind is UnknownKind.MALFORMED
    assert words in outcome.reason


def test_success_of_the_wrong_types_is_malformed() -> None:
    outcome = payout_with(answer(signed(success_body(amount="lots", status="three"))))
    assert outcome.kind is UnknownKind.MALFORMED
    assert "wrong type" in outcome.reason


def test_neither_success_nor_failure_is_malformed() -> None:
    body = success_body()
    del body["success"]
    outcome = payout_with(answer(signed(body)))
    assert outcome.kind is UnknownKind.MALFORMED
    assert "neither success nor failure" in outcome.reason


def test_success_true_with_status_false_is_unknown_not_rejected() -> None:
    # A signed "Payout initialized" with an invoice must never read "rejected, nothing paid".
    outcome = payout_with(answer(signed(success_body(status=False))))
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.MALFORMED
    assert "contradicts itself" in outcome.reason
    assert "Do not send it again" in outcome.reason


def test_a_deeply_nested_json_answer_is_malformed_not_raised() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    outcome = payout_with(
        lambda r: httpx.Response(200, content=deep, headers={"Content-Type": "application/json"})
    )
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.MALFORMED


@pytest.mark.parametrize("depth", [300, 500, 700, 900])
def test_a_refusal_with_a_deeply_nested_field_does_not_raise(depth: int) -> None:
    body = b'{"success": false, "message": "no", "x": ' + b"[" * depth + b"]" * depth + b"}"
    outcome = payout_with(
        lambda r: httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    )
    assert isinstance(outcome, Rejected | Unknown)


def test_signed_success_without_invoice_id_is_malformed() -> None:
    outcome = payout_with(answer(signed(success_body(invoice_id=None))))
    assert outcome.kind is UnknownKind.MALFORMED
    assert "invoice_id" in outcome.reason


@pytest.mark.parametrize("status", [True, None])
def test_signed_success_without_an_integer_status_is_malformed(status: object) -> None:
    outcome = payout_with(answer(signed(success_body(status=status))))
    assert outcome.kind is UnknownKind.MALFORMED
    assert "without a status" in outcome.reason


def test_unsigned_success_is_not_trusted() -> None:
    outcome = payout_with(answer(success_body()))
    assert outcome.kind is UnknownKind.BAD_SIGNATURE
    assert "without a signature" in outcome.reason


@pytest.mark.parametrize("bad", ["0" * 40, "", False, "signature_value"])
def test_success_with_a_wrong_signature_is_not_trusted(bad: object) -> None:
    outcome = payout_with(answer({**success_body(), "signature": bad}))
    assert outcome.kind is UnknownKind.BAD_SIGNATURE


def test_success_signed_with_another_salt_is_not_trusted() -> None:
    outcome = payout_with(answer(signed(success_body(), "other-salt")))
    assert outcome.kind is UnknownKind.BAD_SIGNATURE
    assert "does not match" in outcome.reason


def test_a_field_added_after_signing_breaks_the_signature() -> None:
    outcome = payout_with(answer({**signed(success_body()), "amount": 1}))
    assert outcome.kind is UnknownKind.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("change", "expected_detail"),
    [
        ({"request_id": "po-9999"}, "request_id: sent 'po-0001', answer has 'po-9999'"),
        ({"amount": 900001}, "amount: sent 900000, answer has 900001"),
        ({"currency": "USD"}, "currency: sent 'RUB', answer has 'USD'"),
        ({"site_login": "mallory"}, "site_login: sent 'alice', answer has 'mallory'"),
        ({"site_id": 22}, "site_id: sent 21, answer has 22"),
        ({"site_id": "22"}, "site_id: sent 21, answer has '22'"),
        ({"amount": None}, "amount: sent 900000, answer has none"),
        ({"request_id": None}, "request_id: sent 'po-0001', answer has none"),
    ],
)
def test_signed_success_that_does_not_echo_the_request_is_unknown(
    change: dict[str, Any], expected_detail: str
) -> None:
    outcome = payout_with(answer(signed(success_body(**change))))
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.ECHO_MISMATCH
    assert outcome.detail == expected_detail
    assert "may have been created" in outcome.reason


def test_the_salt_never_appears_in_an_outcome() -> None:
    cases: list[Handler] = [
        answer({"success": False, "message": f"salt {SALT} is wrong"}),
        answer({**success_body(message=SALT), "signature": SALT}),
        lambda r: httpx.Response(500, text=f"<html>{SALT}</html>"),
        answer(signed(success_body(request_id=SALT))),
    ]
    for handler in cases:
        outcome = payout_with(handler)
        assert SALT not in repr(outcome)


# -- balance ---------------------------------------------------------------------------------


def balance_body() -> dict[str, Any]:
    return {
        "site_id": 21,
        "balances": [
            {"id": 1, "name": "b", "currency": "RUB", "amount": 10000.0, "available": 9000.5}
        ],
    }


def test_balance_posts_a_signed_request_and_reads_decimals() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == "https://gw.example/api/balance/"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=signed(balance_body()))

    with client_for(handler) as client:
        result = client.balance("m_demo", 21, SALT, currency="RUB")
        client.balance("m_demo", 21, SALT)
    assert seen[0]["currency"] == "RUB" and verify(seen[0], SALT)
    assert "currency" not in seen[1] and verify(seen[1], SALT)
    assert result.balances[0].available == Decimal("9000.5")


def test_unsigned_balance_answer_is_read() -> None:
    with client_for(answer(balance_body())) as client:
        assert client.balance("m_demo", 21, SALT).balances[0].amount == Decimal("10000.0")


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        (answer({**balance_body(), "signature": "0" * 40}), "signature does not match"),
        (answer(signed({"success": False, "message": "Invalid signature"})), "Invalid signature"),
        (answer({"status": False, "message": "Unknown merchant"}), "Unknown merchant"),
        (lambda r: httpx.Response(500, html="<h1>oops</h1>"), "HTTP 500"),
        (answer(balance_body(), 503), "HTTP 503"),
        (answer({"balances": [{"amount": "lots", "available": 1}]}), "unexpected shape"),
        (raising(httpx.ReadTimeout), "did not answer the balance request in time"),
        (raising(httpx.ConnectError), "Could not reach the gateway"),
    ],
)
def test_balance_failures_raise_a_plain_gateway_error(handler: Handler, words: str) -> None:
    with client_for(handler) as client, pytest.raises(GatewayError) as info:
        client.balance("m_demo", 21, SALT)
    assert words in info.value.message
    assert SALT not in info.value.message


def test_balance_with_bad_input_is_a_gateway_error() -> None:
    with client_for(answer(balance_body())) as client, pytest.raises(GatewayError) as info:
        client.balance("", 21, SALT)
    assert "merchant_id" in info.value.message
