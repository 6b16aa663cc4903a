"""Reading one gateway answer safely: a total deadline, a size cap and a shape check.

httpx's timeouts bound each read, not the whole exchange, and ``response.read()`` keeps
whatever arrives. Here a watchdog ends the exchange at its deadline however slowly bytes
trickle in, the body is streamed and given up past a cap (compressed or not), and a parsed
answer too deep or holding integers past 64 bits is named as such before anything walks it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import socket
import threading
import time
import zlib
from typing import Any

import httpx

# A payout answer is a few hundred bytes; anything near this is not one.
MAX_ANSWER_BYTES = 1024 * 1024
# Deeper than any answer the gateway documents, shallow enough for every walk over it.
MAX_ANSWER_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Watchdog:
    """Ends one request at its total deadline, however slowly the bytes trickle in.

    httpx's timeouts bound each read, not the whole exchange: a gateway (or anything in
    between) sending a byte a second would hold a payout open for ever. The connection's
    socket is learnt from httpx's ``trace`` extension; at the deadline it is shut down, which
    ends any blocked read at once. The socket is never closed here (its owner does that), so
    a descriptor number reused elsewhere is never touched.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._fired = False
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remember the socket of the connection the request uses."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._socket = sock

    def start(self) -> None:
        """Start counting down."""
        self._timer.start()

    def expired(self) -> bool:
        """True once the deadline has passed (whether or not the timer has fired yet)."""
        return self._fired or time.monotonic() >= self.deadline

    def stop(self) -> None:
        """The exchange is over: never touch its socket again."""
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._socket = None

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._fired = True
            sock = self._socket
            if sock is None:
                return
            # The plain socket method: SSLSocket.shutdown would also drop its TLS object
            # under the reading thread.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class TooLargeError(Exception):
    """The answer is larger than the cap; ``status`` is its HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class TooSlowError(Exception):
    """The answer did not arrive whole before the deadline."""


class EncodingError(Exception):
    """The answer is compressed in a way that cannot be read within the cap."""

    def __init__(self, status: int, encoding: str) -> None:
        super().__init__(status, encoding)
        self.status = status
        self.encoding = encoding


@dataclasses.dataclass(frozen=True)
class Answer:
    """A gateway answer read whole (never more than the cap), ready to be classified."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    is_redirect: bool

    @property
    def text(self) -> str:
        """The body as text, undecodable bytes replaced."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` or ``RecursionError``)."""
        return json.loads(self.body)


def read_capped(response: httpx.Response, cap: int, watchdog: Watchdog) -> bytes:
    """The body, decompressed; raises ``TooLargeError`` past ``cap`` and ``TooSlowError``
    past the deadline, so memory stays within about ``cap`` whatever the server sends."""
    status = response.status_code
    if response.is_stream_consumed:  # a transport that answered from memory, already read
        if len(response.content) > cap:
            raise TooLargeError(status)
        return response.content
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding in ("", "identity"):
        decoder = None
    else:
        raise EncodingError(status, encoding)
    length = response.headers.get("content-length", "").strip()
    if decoder is None and length.isdigit() and len(length) < 20 and int(length) > cap:
        raise TooLargeError(status)
    body = bytearray()
    for chunk in response.iter_raw():
        if watchdog.expired():
            raise TooSlowError
        if decoder is not None:
            # max_length keeps a small compressed chunk from expanding without bound.
            chunk = decoder.decompress(chunk, cap + 1 - len(body))
            if decoder.unconsumed_tail:
                raise TooLargeError(status)
        body += chunk
        if len(body) > cap:
            raise TooLargeError(status)
    if watchdog.expired():
        raise TooSlowError
    return bytes(body)


def shape_problem(data: Any) -> str | None:
    """Why a parsed answer cannot be handled safely (too deep, an integer past 64 bits)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_ANSWER_DEPTH:
                return f"nested deeper than {MAX_ANSWER_DEPTH} levels"
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not INT64_MIN <= value <= INT64_MAX:
                return "an integer beyond 64 bits"
        elif isinstance(value, float) and not math.isfinite(value):
            return "a number that is not finite"
    return None
