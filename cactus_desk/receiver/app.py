"""The callback receiver as a plain ASGI application (no framework).

``POST /callback`` takes a JSON or form-encoded body, applies it with ``apply_callback`` on a
worker thread and answers ``200 {"result":"ok"}`` only once the event is committed, which
includes duplicates and late callbacks, so the gateway stops retrying them. A forged or
unusable body gets ``400`` with a short code and nothing more. Bodies are capped in size and
must arrive within a deadline. Forged callbacks are stored within a per-client budget, and
lines about refused requests are logged within a budget (``limits``), so a flood can neither
fill the disk nor rotate the log files away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from cactus_desk.callbacks.apply import ApplyResult, Reason, apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.history.port import HistoryStore
from cactus_desk.masking import scrub_card_numbers
from cactus_desk.receiver.limits import ClientBudget, LogBudget

log = logging.getLogger("cactus_desk.receiver")

CALLBACK_PATH = "/callback"
MAX_BODY_BYTES = 64 * 1024
READ_DEADLINE_S = 10.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK = {"result": "ok"}
# Rejections the gateway should hear about; everything else was stored and retrying is useless.
_CLIENT_ERRORS = {
    Reason.BAD_SIGNATURE,
    Reason.BAD_BODY,
    Reason.AMBIGUOUS_VALUE,
    Reason.INCOMPLETE,
}


class _BodyError(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def _error(code: str) -> dict[str, str]:
    return {"result": "error", "code": code}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def parse_body(body: bytes, content_type: str | None) -> Any:
    """The body as a Python value: form fields as a dict of strings, anything else as JSON.

    Raises ValueError when it cannot be read.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8")
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    return json.loads(text)


def _log_id(value: Any) -> str:
    text = str(value)[:80] if isinstance(value, str | int) else "-"
    return scrub_card_numbers("".join(ch if ch.isprintable() else "?" for ch in text))


class CallbackApp:
    """ASGI app for one profile's callbacks, writing to ``store``.

    ``salt`` is held in memory only; it is never logged or put in an answer.
    """

    def __init__(
        self,
        store: HistoryStore,
        salt: str,
        *,
        merchant_id: str | None = None,
        site_id: int | None = None,
        path: str = CALLBACK_PATH,
        max_body_bytes: int = MAX_BODY_BYTES,
        read_deadline: float = READ_DEADLINE_S,
        store_budget: ClientBudget | None = None,
        log_budget: LogBudget | None = None,
    ) -> None:
        if not salt:
            raise ValueError("The receiver needs the profile's salt")
        self._store = store
        self._salt = salt
        self._merchant_id = merchant_id
        self._site_id = site_id
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.read_deadline = read_deadline
        self.store_budget = store_budget or ClientBudget()
        self.log_budget = log_budget or LogBudget()

    def __repr__(self) -> str:
        return f"CallbackApp(path={self.path!r}, site_id={self._site_id!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope.get("path") != self.path:
            await self._answer(send, 404, _error("not_found"))
            return
        if scope.get("method") != "POST":
            await self._answer(send, 405, _error("method_not_allowed"), [(b"allow", b"POST")])
            return
        try:
            body = await self._read_body(scope, receive)
        except _BodyError as exc:
            self._log_refusal(logging.WARNING, "callback refused before reading: %s", exc.code)
            await self._answer(send, exc.status, _error(exc.code))
            return
        await self._handle(scope, body, send)

    def _log_refusal(self, level: int, message: str, *args: object) -> None:
        """Log a line about untrusted traffic, within the log budget."""
        allowed, held = self.log_budget.admit()
        if allowed:
            suffix = f" ({held} similar lines were not logged)" if held else ""
            log.log(level, message + suffix, *args)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_body_bytes:
                    raise _BodyError(413, "too_large")
            except ValueError:
                raise _BodyError(400, "bad_body") from None
        deadline = time.monotonic() + self.read_deadline
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _BodyError(408, "timeout")
            try:
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                raise _BodyError(408, "timeout") from None
            if message["type"] == "http.disconnect":
                raise _BodyError(400, "bad_body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyError(413, "too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _handle(self, scope: Scope, body: bytes, send: Send) -> None:
        try:
            payload: Any = parse_body(body, _header(scope, b"content-type"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = body  # stored as a rejected event with its (masked) start
        client = scope.get("client")
        host = str(client[0]) if client else "-"
        try:
            result = await asyncio.to_thread(self._apply, payload, body, host)
        except Exception as exc:
            # Not stored, so the gateway must retry: a 5xx says so without saying why.
            self._log_refusal(
                logging.ERROR,
                "callback could not be stored: %s",
                scrub_card_numbers(f"{type(exc).__name__}: {exc}"[:300]),
            )
            await self._answer(send, 503, _error("unavailable"))
            return
        request_id = _log_id(payload.get("request_id")) if isinstance(payload, dict) else "-"
        line = "callback request_id=%s status=%s outcome=%s%s event=%s"
        args = (
            request_id,
            result.status if result.status is not None else "-",
            result.outcome,
            f" reason={result.reason}" if result.reason else "",
            result.event_id if result.stored else "not-stored",
        )
        if result.outcome in (EventOutcome.APPLIED, EventOutcome.CONFLICT):
            log.info(line, *args)  # a verified change: always in the audit trail
        else:
            self._log_refusal(logging.INFO, line, *args)
        if result.reason in _CLIENT_ERRORS:
            await self._answer(send, 400, _error(str(result.reason)))
        else:
            await self._answer(send, 200, _OK)

    def _apply(self, payload: Any, body: bytes, host: str) -> ApplyResult:
        return apply_callback(
            self._store,
            payload,
            self._salt,
            merchant_id=self._merchant_id,
            site_id=self._site_id,
            source=EventSource.GATEWAY,
            admit_unverified=lambda: self.store_budget.allow(host),
            raw=body,
        )

    @staticmethod
    async def _answer(
        send: Send,
        status: int,
        answer: dict[str, str],
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = json.dumps(answer).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            *(extra_headers or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
