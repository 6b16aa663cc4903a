"""What an outsider can send to the receiver: idle and slow connections, floods, odd bodies.

Real loopback HTTP against uvicorn; raw sockets where a client misbehaves on purpose.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.gateway.signature import sign
from cactus_desk.history.port import HistoryStore
from cactus_desk.receiver.limits import LOG_BURST, LOG_RATE, ClientBudget, LogBudget
from cactus_desk.receiver.serve import BackgroundReceiver
from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.receiver.helpers import read_response, status_of

OK = {"result": "ok"}


def _address(receiver: BackgroundReceiver) -> tuple[str, int]:
    parts = urlsplit(receiver.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


@contextlib.contextmanager
def _idle_sockets(
    receiver: BackgroundReceiver, count: int, source: str = "127.0.0.1"
) -> Iterator[list[socket.socket]]:
    """``count`` connections that never finish a request: half silent, half mid-head."""
    opened: list[socket.socket] = []
    try:
        for index in range(count):
            sock = socket.create_connection(
                _address(receiver), timeout=5, source_address=(source, 0)
            )
            if index % 2:
                sock.sendall(b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Le")
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


# -- item 7: idle and slow-header connections ---------------------------------------------------


def test_200_idle_connections_do_not_shut_a_signed_callback_out(
    receiver: BackgroundReceiver, store: HistoryStore
) -> None:
    record_id = accepted_record(store)
    with _idle_sockets(receiver, 200):
        started = time.monotonic()
        with httpx.Client(timeout=5) as client:
            response = client.post(receiver.url, json=callback(4))
        elapsed = time.monotonic() - started
    assert (response.status_code, response.json()) == (200, OK)
    assert elapsed < 1.0
    assert store.get(record_id).gateway_status == 4


def test_one_client_cannot_hold_more_than_its_share_of_connections(
    start_receiver: Callable[..., BackgroundReceiver], store: HistoryStore
) -> None:
    receiver = start_receiver(guard={"per_client": 16, "total": 64})
    record_id = accepted_record(store)
    with _idle_sockets(receiver, 100, source="127.0.0.2") as flood:
        # The oldest idle ones were pushed out to keep the client at its cap.
        assert _closed_by_server(flood[0], within=2.0)
        response = httpx.post(receiver.url, json=callback(4), timeout=5)
        assert (response.status_code, response.json()) == (200, OK)
        assert receiver.connection_guard.open_connections <= 16 + 1
    assert store.get(record_id).gateway_status == 4


def test_a_request_head_that_never_ends_is_cut_off(
    start_receiver: Callable[..., BackgroundReceiver],
) -> None:
    receiver = start_receiver(guard={"head_timeout": 0.3})
    with _idle_sockets(receiver, 2) as (silent, slow):
        slow.sendall(b"ngth: 10\r\n")  # a trickle does not reset the deadline
        assert _closed_by_server(silent, within=3.0)
        assert _closed_by_server(slow, within=3.0)


def test_a_kept_alive_connection_gets_a_new_head_deadline(
    start_receiver: Callable[..., BackgroundReceiver], store: HistoryStore
) -> None:
    receiver = start_receiver(guard={"head_timeout": 0.3})
    accepted_record(store)
    body = json.dumps(callback(4)).encode()
    with socket.create_connection(_address(receiver), timeout=5) as sock:
        sock.sendall(
            b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        assert status_of(read_response(sock)) == 200
        sock.sendall(b"POST /callback HTTP/1.1\r\nHo")
        assert _closed_by_server(sock, within=3.0)


# -- items 8 and 9: floods cannot fill the disk or the log --------------------------------------


def _store_bytes(path: Path) -> int:
    return sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def test_10000_forged_60kb_posts_grow_the_store_by_at_most_a_few_mb(
    receiver: BackgroundReceiver, store: HistoryStore
) -> None:
    record_id = accepted_record(store)
    before = _store_bytes(store.path)
    forged = json.dumps(callback(4, salt="forger", description="x" * 60_000)).encode()
    request = (
        b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(forged)).encode() + b"\r\n\r\n" + forged
    )
    codes: set[int] = set()
    with socket.create_connection(_address(receiver), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(10_000):  # one keep-alive connection, as a flooding client would use
            sock.sendall(request)
            codes.add(status_of(read_response(sock)))
    assert codes == {400}
    growth = _store_bytes(store.path) - before
    assert growth < 3 * 1024 * 1024, growth
    stored = store.rejected_events(limit=20_000)
    assert 0 < len(stored) < 10_000  # the per-client budget held most of them back
    assert all(len(json.dumps(event.payload)) < 1024 for event in stored)
    assert stored[0].payload["sha256"] and stored[0].payload["bytes"] == len(forged)
    # A real callback from the same client still goes through at once.
    assert httpx.post(receiver.url, json=callback(4), timeout=5).json() == OK
    assert store.get(record_id).gateway_status == 4


def test_a_flood_of_refused_requests_logs_a_bounded_number_of_lines(
    start_receiver: Callable[..., BackgroundReceiver],
    store: HistoryStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = start_receiver(
        log_budget=LogBudget(burst=10, rate=0.001),
        store_budget=ClientBudget(burst=5, rate=0.0001),
    )
    accepted_record(store)
    with caplog.at_level(logging.INFO, logger="cactus_desk.receiver"), httpx.Client() as client:
        for _ in range(300):
            client.post(receiver.url, json=callback(4, salt="forger"))
        client.post(receiver.url, json=callback(4))
    lines = [r.getMessage() for r in caplog.records if r.name == "cactus_desk.receiver"]
    forged = [line for line in lines if "reason=bad_signature" in line]
    assert len(forged) <= 10
    assert any("outcome=applied" in line for line in lines)  # verified: always logged
    assert len(store.rejected_events()) == 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"[" * 30_000 + b"]" * 30_000, "bad_body", id="deep-list"),
        pytest.param(
            b'{"request_id": "po-0001", "x": ' + b"[" * 900 + b"]" * 900 + b"}",
            "bad_body",
            id="deep-under-the-recursion-limit",
        ),
        pytest.param(b'{"a":' * 9000 + b"1" + b"}" * 9000, "bad_body", id="deep-object"),
        pytest.param(
            json.dumps({**callback(4), "signature": "é" * 40}).encode(),
            "bad_signature",
            id="non-ascii-signature",
        ),
        pytest.param(
            json.dumps({**callback(4), "signature": 12345}).encode(),
            "bad_signature",
            id="int-signature",
        ),
        pytest.param(
            json.dumps({**callback(4), "signature": ["a"]}).encode(),
            "bad_signature",
            id="list-signature",
        ),
        pytest.param(json.dumps(callback(2**70)).encode(), "bad_body", id="status-beyond-64-bits"),
        pytest.param(
            json.dumps(callback(4, received_amount=2**80)).encode(), "bad_body", id="big-amount"
        ),
        pytest.param(json.dumps(callback(4, site_id=2**64)).encode(), "bad_body", id="big-site-id"),
        pytest.param(
            json.dumps(callback(4, amount="9" * 40)).encode(), "bad_body", id="big-digit-string"
        ),
    ],
)
def test_hostile_bodies_get_400_and_one_log_line_never_503(
    receiver: BackgroundReceiver,
    store: HistoryStore,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    code: str,
) -> None:
    record_id = accepted_record(store)
    with caplog.at_level(logging.INFO):
        response = httpx.post(
            receiver.url, content=body, headers={"Content-Type": "application/json"}, timeout=10
        )
    assert (response.status_code, response.json()) == (400, {"result": "error", "code": code})
    ours = [r for r in caplog.records if r.name.startswith("cactus_desk")]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    assert not any(r.exc_info or r.levelno >= logging.ERROR for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert store.get(record_id).gateway_status == 3
    assert len(store.rejected_events()) == 1


# -- item 5: values that could re-split the signing string, and deposits ------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "x;status:4"},
        {"site_login": "alice;amount:1"},
        {"additional_fields": {"card_holder": "Ivan;card_number:1"}},
        {"odd;key": "1"},
    ],
    ids=["description", "site-login", "nested", "key"],
)
def test_a_signed_callback_with_a_semicolon_is_refused_as_ambiguous(
    receiver: BackgroundReceiver, store: HistoryStore, changes: dict[str, object]
) -> None:
    record_id = accepted_record(store)
    body = callback(4, **changes)  # validly signed: the signature cannot tell the fields apart
    response = httpx.post(receiver.url, json=body, timeout=5)
    assert (response.status_code, response.json()) == (
        400,
        {"result": "error", "code": "ambiguous_value"},
    )
    assert store.get(record_id).gateway_status == 3
    (event,) = store.rejected_events()
    assert event.reason == "ambiguous_value" and event.request_id == "po-0001"


def test_a_callback_that_is_not_for_a_payout_never_changes_one(
    receiver: BackgroundReceiver, store: HistoryStore
) -> None:
    record_id = accepted_record(store)
    for flag in (False, "false", "0"):
        body = {key: value for key, value in callback(4).items() if key != "signature"}
        body["is_payout"] = flag
        body["signature"] = sign(body, SALT)
        response = httpx.post(receiver.url, json=body, timeout=5)
        assert (response.status_code, response.json()) == (200, OK)  # signed: no retry needed
    assert store.get(record_id).gateway_status == 3
    assert store.events_for(record_id) == []
    assert {event.reason for event in store.rejected_events()} == {"not_payout"}
    assert all(event.outcome is EventOutcome.REJECTED for event in store.rejected_events())


def test_garbage_http_cannot_flood_the_log_through_uvicorn(
    receiver: BackgroundReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        for _ in range(200):
            with socket.create_connection(_address(receiver), timeout=5) as sock:
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                assert status_of(read_response(sock)) in (0, 400)
    elapsed = time.monotonic() - started
    invalid = [r for r in caplog.records if "Invalid HTTP request" in r.getMessage()]
    assert len(invalid) <= LOG_BURST + LOG_RATE * elapsed + 1
