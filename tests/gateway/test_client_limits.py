"""Item 11: a total deadline per payout and a cap on the answer's size, over real loopback HTTP.

httpx's own timeouts bound each read; a server that trickles a byte a second never trips
them. These servers trickle and flood for real; the client must end each exchange as UNKNOWN
at its deadline or its cap, with memory flat.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
import zlib

import pytest

from cactus_desk.gateway.client import CactusClient, GatewayError
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Unknown, UnknownKind
from tests.gateway.loopback import http_head, serving

SALT = "site-salt-7f3a9c"
REQUEST = PayoutRequest(
    merchant_id="m_demo",
    site_login="alice",
    site_id=21,
    request_id="po-0001",
    amount=900000,
    currency="RUB",
    method="sbp",
    additional_fields={"phone_number": "79999999999"},
)
DEADLINE = 2.0
# Far above the deadline: only the deadline can end these exchanges in time.
READ_TIMEOUT = 30.0
CAP = 64 * 1024


def _trickle_body(conn: socket.socket, _request: bytes) -> None:
    conn.sendall(http_head(Content_Type="application/json", Content_Length="1000"))
    conn.sendall(b'{"success": true, "message": "')
    while True:  # ends when the client hangs up
        conn.sendall(b"x")
        time.sleep(0.25)


def _trickle_headers(conn: socket.socket, _request: bytes) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"y" * 10_000:
        conn.sendall(bytes([byte]))
        time.sleep(0.25)


@pytest.mark.parametrize("script", [_trickle_body, _trickle_headers], ids=["body", "headers"])
def test_a_trickling_answer_ends_at_the_deadline_as_unknown(script: object) -> None:
    with (
        serving(script) as server,  # type: ignore[arg-type]
        CactusClient(server.url, read_timeout=READ_TIMEOUT, deadline=DEADLINE) as client,
    ):
        started = time.monotonic()
        outcome = client.payout(REQUEST, SALT)
        elapsed = time.monotonic() - started
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.TOO_SLOW
    assert f"within {DEADLINE:g} s" in outcome.reason
    assert "may have been created" in outcome.reason  # bytes did reach the gateway
    assert DEADLINE <= elapsed < DEADLINE + 3  # not READ_TIMEOUT, not for ever


def test_the_default_deadline_is_the_connect_and_read_timeouts() -> None:
    with CactusClient("http://127.0.0.1:9", connect_timeout=3, read_timeout=40) as client:
        assert client.deadline == 43


def _endless_chunks(conn: socket.socket, _request: bytes) -> None:
    conn.sendall(http_head(Content_Type="application/json", Transfer_Encoding="chunked"))
    chunk = b"[" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    for _ in range(4096):  # 256 MB if nobody stops reading
        conn.sendall(frame)


def _stated_huge(conn: socket.socket, _request: bytes) -> None:
    conn.sendall(http_head(Content_Type="application/json", Content_Length=str(10**12)))
    for _ in range(4096):
        conn.sendall(b" " * 65536)


def _make_bomb(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = b"0" * (1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()


_BOMB = _make_bomb(200)  # about 200 KB on the wire, 200 MB unpacked


def _gzip_bomb(conn: socket.socket, _request: bytes) -> None:
    bomb = _BOMB
    conn.sendall(
        http_head(
            Content_Type="application/json",
            Content_Encoding="gzip",
            Content_Length=str(len(bomb)),
        )
        + bomb
    )


@pytest.mark.parametrize(
    "script",
    [_endless_chunks, _stated_huge, _gzip_bomb],
    ids=["endless-chunked", "content-length-1tb", "gzip-bomb"],
)
def test_an_answer_over_the_cap_is_unknown_and_memory_stays_flat(script: object) -> None:
    with (
        serving(script) as server,  # type: ignore[arg-type]
        CactusClient(server.url, read_timeout=READ_TIMEOUT, max_answer_bytes=CAP) as client,
    ):
        tracemalloc.start()
        try:
            outcome = client.payout(REQUEST, SALT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.TOO_LARGE
    assert f"larger than {CAP:,} bytes" in outcome.reason
    assert peak < 8 * 1024 * 1024  # the 200-256 MB answers were never held


def test_an_answer_within_the_cap_and_deadline_is_still_read() -> None:
    from tests.gateway.loopback import answer_with

    body = b'{"success": false, "message": "' + b"n" * (CAP - 100) + b'"}'
    with (
        serving(answer_with(body)) as server,
        CactusClient(server.url, deadline=DEADLINE, max_answer_bytes=CAP) as client,
    ):
        outcome = client.payout(REQUEST, SALT)
    assert not isinstance(outcome, Unknown)
    assert outcome.message.startswith("nnn")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("script", "words"),
    [(_trickle_body, "did not answer the balance request in time"), (_endless_chunks, "too large")],
    ids=["trickle", "endless"],
)
def test_a_balance_request_has_the_same_deadline_and_cap(script: object, words: str) -> None:
    with (
        serving(script) as server,  # type: ignore[arg-type]
        CactusClient(
            server.url, read_timeout=READ_TIMEOUT, deadline=DEADLINE, max_answer_bytes=CAP
        ) as client,
    ):
        started = time.monotonic()
        with pytest.raises(GatewayError, match=words):
            client.balance("m_demo", 21, SALT)
        assert time.monotonic() - started < DEADLINE + 3
