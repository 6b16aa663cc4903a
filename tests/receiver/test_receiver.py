"""The receiver under uvicorn over real loopback HTTP: answers, limits, logs and the store."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.gateway.signature import sign
from cactus_desk.history.port import HistoryStore
from cactus_desk.receiver.serve import BackgroundReceiver
from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.receiver.helpers import read_response

OK = {"result": "ok"}


def test_a_signed_callback_is_stored_before_the_ok(
    receiver: BackgroundReceiver, store: HistoryStore, http: httpx.Client
) -> None:
    record_id = accepted_record(store)
    response = http.post(receiver.url, json=callback(4))
    assert (response.status_code, response.json()) == (200, OK)
    assert store.get(record_id).gateway_status == 4
    assert [event.outcome for event in store.events_for(record_id)] == [EventOutcome.APPLIED]


def test_a_forged_callback_gets_400_with_only_a_code_and_changes_nothing(
    receiver: BackgroundReceiver, store: HistoryStore, http: httpx.Client
) -> None:
    record_id = accepted_record(store)
    response = http.post(receiver.url, json=callback(4, salt="forger"))
    assert response.status_code == 400
    assert response.json() == {"result": "error", "code": "bad_signature"}
    assert store.get(record_id).gateway_status == 3
    assert [event.reason for event in store.rejected_events()] == ["bad_signature"]


def test_duplicates_late_ones_and_unknown_request_ids_are_acknowledged(
    receiver: BackgroundReceiver, store: HistoryStore, http: httpx.Client
) -> None:
    record_id = accepted_record(store)
    for body in (callback(4), callback(4), callback(3), callback(4, request_id="po-other")):
        response = http.post(receiver.url, json=body)
        assert (response.status_code, response.json()) == (200, OK)
    assert store.get(record_id).gateway_status == 4
    outcomes = [event.outcome for event in store.events_for(record_id)]
    assert outcomes == [EventOutcome.APPLIED, EventOutcome.DUPLICATE, EventOutcome.STALE]
    assert [event.request_id for event in store.rejected_events()] == ["po-other"]


def test_a_form_encoded_callback_is_verified_over_its_string_values(
    receiver: BackgroundReceiver, store: HistoryStore, http: httpx.Client
) -> None:
    record_id = accepted_record(store)
    fields = {k: str(v) for k, v in callback(4).items() if k not in ("additional_fields",)}
    fields.pop("signature")
    fields["signature"] = sign(fields, SALT)
    response = http.post(
        receiver.url,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.json()) == (200, OK)
    assert store.get(record_id).gateway_status == 4


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"a=1&b", "application/x-www-form-urlencoded"),
        (b"", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
    ],
)
def test_a_body_that_is_not_a_callback_gets_400_bad_body(
    receiver: BackgroundReceiver,
    store: HistoryStore,
    http: httpx.Client,
    content: bytes,
    content_type: str,
) -> None:
    response = http.post(receiver.url, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json() == {"result": "error", "code": "bad_body"}
    assert len(store.rejected_events()) == 1


def test_an_oversized_body_gets_413_and_is_not_stored(
    receiver: BackgroundReceiver, store: HistoryStore, http: httpx.Client
) -> None:
    body = {**callback(4), "padding": "x" * (65 * 1024)}
    response = http.post(receiver.url, content=json.dumps(body))
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert store.rejected_events() == []


def test_other_paths_and_methods_are_refused(
    receiver: BackgroundReceiver, http: httpx.Client
) -> None:
    assert http.get(receiver.url).status_code == 405
    base = receiver.url.rsplit("/", 1)[0]
    assert http.post(base + "/admin", json={}).status_code == 404


def test_a_body_that_never_finishes_is_cut_off_at_the_deadline(
    start_receiver: Callable[..., BackgroundReceiver], store: HistoryStore
) -> None:
    receiver = start_receiver(read_deadline=0.3)
    address = urlsplit(receiver.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as conn:
        conn.sendall(
            b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        answer = read_response(conn)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code": "timeout"' in answer
    assert store.rejected_events() == []


def test_each_callback_is_logged_with_its_request_id_and_never_the_salt(
    receiver: BackgroundReceiver,
    store: HistoryStore,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    accepted_record(store)
    with caplog.at_level(logging.INFO, logger="cactus_desk.receiver"):
        http.post(receiver.url, json=callback(4))
        http.post(receiver.url, json=callback(4, salt="forger"))
    lines = [r.getMessage() for r in caplog.records if "callback request_id" in r.getMessage()]
    assert len(lines) == 2
    assert all("request_id=po-0001" in line for line in lines)
    assert "reason=bad_signature" in lines[1]
    assert SALT not in caplog.text


def test_a_store_that_cannot_write_answers_503_so_the_gateway_retries(
    receiver: BackgroundReceiver, store: HistoryStore, http: httpx.Client
) -> None:
    store.close()
    response = http.post(receiver.url, json=callback(4))
    assert response.status_code == 503
    assert response.json() == {"result": "error", "code": "unavailable"}


def test_stop_releases_the_port(start_receiver: Callable[..., BackgroundReceiver]) -> None:
    receiver = start_receiver()
    port = receiver.port
    receiver.stop()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
