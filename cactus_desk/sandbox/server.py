"""The embedded sandbox gateway: a real HTTP server on loopback that acts like Cactus."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cactus_desk.sandbox.faults import DEFAULT_REJECT_MESSAGE, Fault, FaultPlan, FaultSetting
from cactus_desk.sandbox.ledger import Ledger
from cactus_desk.sandbox.signing import SIGNATURE_FIELD, signature_of

if TYPE_CHECKING:
    from cactus_desk.sandbox.finalizer import Finalizer

log = logging.getLogger("cactus_desk.sandbox")

PAYOUT_PATH = "/api/payout/"
BALANCE_PATH = "/api/balance/"
MAX_BODY_BYTES = 1 << 20
POLL_SECONDS = 0.05
HANDLER_SOCKET_TIMEOUT = 30.0
TRUNCATED_JSON = b'{"message": "Payout initialized", "success": true, "invoice_id": "1'
HTML = "text/html; charset=utf-8"
ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1><p>The sandbox was told to fail.</p></body></html>"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    gateway: SandboxGateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a dropped connection is routine here.
        log.debug("sandbox: connection from %s ended with an error", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = HANDLER_SOCKET_TIMEOUT
    server_version = "CactusSandbox/1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: %s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        gateway = self.server.gateway
        if path == PAYOUT_PATH:
            gateway._serve_payout(self)
        elif path == BALANCE_PATH:
            gateway._serve_balance(self)
        else:
            self.send_json({"success": False, "message": "Not found"}, HTTPStatus.NOT_FOUND)

    def _not_allowed(self) -> None:
        path = urlsplit(self.path).path
        if path in (PAYOUT_PATH, BALANCE_PATH):
            self.send_json(
                {"success": False, "message": "Method not allowed: use POST"},
                HTTPStatus.METHOD_NOT_ALLOWED,
            )
        else:
            self.send_json({"success": False, "message": "Not found"}, HTTPStatus.NOT_FOUND)

    def read_json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None for a wrong content type or bad JSON."""
        content_type = self.headers.get("Content-Type", "")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        raw = self.rfile.read(length) if length else b""
        if content_type.split(";")[0].strip().lower() != "application/json":
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def send_body(self, body: bytes, content_type: str, status: int = HTTPStatus.OK) -> None:
        """Write one complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, answer: Mapping[str, Any], status: int = HTTPStatus.OK) -> None:
        """Write ``answer`` as a JSON response."""
        body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        self.send_body(body, "application/json", status)

    def reset(self) -> None:
        """Abort the connection with a TCP RST instead of answering."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class SandboxGateway:
    """A loopback gateway for one merchant site; balances are given in minor units.

    ``exponents`` (currency code to decimal places) replaces the sandbox's own currency list,
    e.g. to try another convention for a currency the docs leave open.

    Use as a context manager, or ``start()`` / ``stop()``. ``stop()`` returns promptly even
    while a handler is held by a fault.
    """

    def __init__(
        self,
        merchant_id: str = "sandbox",
        site_id: int = 101,
        salt: str | None = None,
        balances: Mapping[str, int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_accept: Callable[[dict[str, Any]], None] | None = None,
        exponents: Mapping[str, int] | None = None,
    ) -> None:
        if not merchant_id:
            raise ValueError("The sandbox needs a merchant_id")
        if isinstance(site_id, bool) or not isinstance(site_id, int) or site_id <= 0:
            raise ValueError("The sandbox site_id must be a positive whole number")
        if salt is not None and not salt:
            raise ValueError("The sandbox salt must not be empty")
        self.merchant_id = merchant_id
        self.site_id = site_id
        self.salt = salt if salt is not None else secrets.token_hex(16)
        self.host = host
        self._port = port
        self._ledger = Ledger(merchant_id, site_id, self.salt, balances, exponents)
        self._faults = FaultPlan()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests_received = 0
        self._request_ids: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Called on the handler thread with each invoice the sandbox creates; keep it quick.
        self.on_accept = on_accept
        self._finalizer: Finalizer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SandboxGateway:
        """Bind and start serving on a background thread; return self."""
        if self._server is not None:
            return self
        server_class = _Server6 if ":" in self.host else _Server
        server = server_class((self.host, self._port), _Handler)
        server.gateway = self
        server.timeout = POLL_SECONDS
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server,), name="cactus-sandbox", daemon=True
        )
        self._thread.start()
        log.info(
            "sandbox gateway listening on %s (merchant %s, site %s)",
            self.base_url,
            self.merchant_id,
            self.site_id,
        )
        return self

    def _serve(self, server: _Server) -> None:
        # handle_request() in a loop rather than serve_forever(): shutdown() deadlocks when
        # it is called before serve_forever() gets going, and stop() must never hang.
        while not self._stopping.is_set():
            try:
                server.handle_request()
            except OSError:
                if not self._stopping.is_set():
                    log.exception("sandbox: the listening socket failed")
                return

    def stop(self) -> None:
        """Stop serving and release every handler held by a fault; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        self._server = None
        self._thread = None
        if self._finalizer is not None:
            self._finalizer.stop()
            self._finalizer = None
        log.info("sandbox gateway stopped")

    def __enter__(self) -> SandboxGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with ``port=0``)."""
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port`` to give a ``CactusClient``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- inspection and faults -------------------------------------------------------------

    @property
    def invoices(self) -> list[dict[str, Any]]:
        """Copies of the invoices created so far, oldest first (card numbers masked)."""
        return self._ledger.invoices

    @property
    def requests_received(self) -> int:
        """How many payout POSTs reached the handler."""
        with self._lock:
            return self._requests_received

    @property
    def request_ids_received(self) -> dict[str, int]:
        """How many payout POSTs reached the handler per ``request_id`` their body named
        (refused and repeated ones included): what the gateway saw, whatever it answered."""
        with self._lock:
            return dict(self._request_ids)

    def available(self, currency: str) -> int:
        """The available balance in ``currency``, in minor units."""
        return self._ledger.available(currency)

    def total(self, currency: str) -> int:
        """The money on the account in ``currency`` (payouts in progress included), minor units."""
        return self._ledger.total(currency)

    def set_fault(
        self,
        fault: Fault,
        *,
        delay: float = 0.0,
        message: str = DEFAULT_REJECT_MESSAGE,
        times: int | None = None,
    ) -> None:
        """Make payout answers misbehave: until cleared, or for the next ``times`` payouts."""
        self._faults.arm(fault, delay=delay, message=message, times=times)

    def clear_fault(self) -> None:
        """Answer payouts normally again."""
        self._faults.clear()

    # -- finalizing ------------------------------------------------------------------------

    @property
    def finalizer(self) -> Finalizer | None:
        """The finalizer started by ``enable_finalizer``, if any."""
        return self._finalizer

    def enable_finalizer(
        self, callback_url: str, *, delay: float = 5.0, time_scale: float = 1.0
    ) -> Finalizer:
        """Finalize every payout accepted from now on and POST its callback to ``callback_url``.

        After ``delay`` seconds a payout becomes success (4), or declined (5) when its amount in
        minor units ends in 13; undelivered callbacks are retried on the gateway's schedule,
        compressed by ``time_scale``. ``stop()`` stops the finalizer too. Raises ValueError for
        a bad URL, delay or scale.
        """
        from cactus_desk.sandbox.finalizer import Finalizer

        if self._finalizer is not None:
            raise RuntimeError("The sandbox already has a finalizer")
        finalizer = Finalizer(self.salt, callback_url, delay=delay, time_scale=time_scale)
        self._finalizer = finalizer.start()
        self.on_accept = finalizer.schedule
        return finalizer

    # -- request handling (handler threads) ------------------------------------------------

    def _serve_balance(self, handler: _Handler) -> None:
        body = handler.read_json_object()
        answer = self._ledger.bad_format() if body is None else self._ledger.balance(body)
        handler.send_json(answer)

    def _serve_payout(self, handler: _Handler) -> None:
        with self._lock:
            self._requests_received += 1
        setting = self._faults.take()
        body = handler.read_json_object()
        if body is not None and isinstance(body.get("request_id"), str):
            with self._lock:
                self._request_ids[body["request_id"]] += 1
        if setting is not None and setting.fault in (Fault.REJECT, Fault.REFUSE_WITHOUT_ID):
            log.info("sandbox: fault %s", setting.fault)
            echo = body is not None and setting.fault is Fault.REJECT
            request_id = body.get("request_id") if echo and body is not None else None
            handler.send_json(self._ledger.failure(setting.message, request_id=request_id))
            return
        fault_name = setting.fault.value if setting is not None else None
        if body is None:
            answer = self._ledger.bad_format()
        else:
            answer = self._ledger.payout(body, fault=fault_name)
            self._notify_accept(answer)
        if setting is None:
            handler.send_json(answer)
            return
        log.info("sandbox: fault %s", setting.fault)
        self._misbehave(handler, setting, answer)

    def _notify_accept(self, answer: Mapping[str, Any]) -> None:
        # Even when a fault then loses the answer: the invoice exists and will be finalized.
        hook = self.on_accept
        if hook is None or answer.get("success") is not True:
            return
        invoice = self._ledger.invoice(str(answer.get("invoice_id")))
        if invoice is None:
            return
        try:
            hook(invoice)
        except Exception:  # the payout's answer must not depend on the hook
            log.exception("sandbox: the on_accept hook failed")

    def _misbehave(self, handler: _Handler, setting: FaultSetting, answer: dict[str, Any]) -> None:
        fault = setting.fault
        if fault is Fault.LATENCY:
            if not self._stopping.wait(setting.delay):
                handler.send_json(answer)
        elif fault is Fault.NO_ANSWER:
            self._stopping.wait()
            handler.close_connection = True
        elif fault is Fault.RESET:
            handler.reset()
        elif fault is Fault.HTTP_500_HTML:
            handler.send_body(
                ERROR_PAGE, "text/html; charset=utf-8", HTTPStatus.INTERNAL_SERVER_ERROR
            )
        elif fault is Fault.INVALID_JSON:
            handler.send_body(TRUNCATED_JSON, "application/json")
        elif fault is Fault.BAD_SIGNATURE:
            unsigned = {key: value for key, value in answer.items() if key != SIGNATURE_FIELD}
            forged = signature_of(unsigned, "not-" + self.salt)
            handler.send_json({**unsigned, SIGNATURE_FIELD: forged})
        elif fault is Fault.ECHO_MISMATCH:
            if answer.get("success") is True:
                answer = self._ledger.signed({**answer, "amount": answer["amount"] + 1})
            handler.send_json(answer)
