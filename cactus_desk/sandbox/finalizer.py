"""The sandbox finalizes payouts: after a delay it decides each one and POSTs a signed callback.

The rule is documented and deterministic: an amount whose minor-unit value ends in ``13`` is
declined (status 5); every other one succeeds (status 4). The decision is booked in the sandbox
that made the invoice (``ledger.settle``): success takes the amount off the account, a decline
returns it to the available balance. A callback counts as delivered only on HTTP 200 with
``{"result": "ok"}``; otherwise it is retried with the sister gateway's schedule (45 s, 2, 5,
10 and 30 min, then hourly for 24 h, each wait counted from the failed attempt), compressed by
``time_scale`` in tests. One thread works through a heap of due jobs under a condition
variable, so ``stop()`` is prompt.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from cactus_desk.sandbox.ledger import settle
from cactus_desk.sandbox.rules import STATUS_DECLINE, STATUS_SUCCESS
from cactus_desk.sandbox.signing import SIGNATURE_FIELD, signature_of

log = logging.getLogger("cactus_desk.sandbox.finalizer")

RETRY_SCHEDULE_S: tuple[float, ...] = (45.0, 120.0, 300.0, 600.0, 1800.0, *([3600.0] * 24))
DECLINE_ENDING = 13
DECLINE_DESCRIPTION = "Payout declined by the sandbox: amounts ending in 13 are declined"
POST_TIMEOUT_S = 5.0
_INVOICE_KEYS = ("invoice_id", "request_id", "site_id", "site_login", "amount", "currency")

DeclineRule = Callable[[Mapping[str, Any]], bool]


def declines_amounts_ending_in_13(invoice: Mapping[str, Any]) -> bool:
    """The default rule: decline when the amount in minor units ends in ``13``."""
    return int(invoice["amount"]) % 100 == DECLINE_ENDING


def callback_body(invoice: Mapping[str, Any], status: int, salt: str) -> dict[str, Any]:
    """The signed callback the gateway sends for ``invoice`` reaching ``status``.

    ``additional_fields`` are echoed as the sandbox holds them; the console masks card numbers
    when it stores a callback.
    """
    invoice_id = str(invoice["invoice_id"])
    success = status == STATUS_SUCCESS
    body: dict[str, Any] = {
        "site_id": invoice["site_id"],
        "site_login": invoice["site_login"],
        "status": int(status),
        # The docs' callback example carries the invoice id as a number.
        "invoice_id": int(invoice_id) if invoice_id.isdigit() else invoice_id,
        "request_id": invoice["request_id"],
        "amount": invoice["amount"],
        "received_amount": invoice["amount"] if success else 0,
        "is_payout": True,
        "currency": invoice["currency"],
        "received_currency": invoice["currency"],
        "method": invoice.get("method", ""),
        "description": "" if success else DECLINE_DESCRIPTION,
        "additional_fields": dict(invoice.get("additional_fields") or {}),
    }
    body[SIGNATURE_FIELD] = signature_of(body, salt)
    return body


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    invoice: dict[str, Any] = field(compare=False)
    body: dict[str, Any] | None = field(default=None, compare=False)
    failures: int = field(default=0, compare=False)


class Finalizer:
    """Finalizes the sandbox's accepted payouts and delivers their callbacks to ``callback_url``.

    ``delay`` is in real seconds; the retry waits are ``RETRY_SCHEDULE_S`` times ``time_scale``.
    ``delivered``, ``attempts`` and ``abandoned`` count callbacks for tests and the sandbox log.
    """

    def __init__(
        self,
        salt: str,
        callback_url: str,
        delay: float = 3.0,
        time_scale: float = 1.0,
        decline_rule: DeclineRule = declines_amounts_ending_in_13,
        client: httpx.Client | None = None,
        retry_schedule: tuple[float, ...] = RETRY_SCHEDULE_S,
    ) -> None:
        if not salt:
            raise ValueError("The finalizer needs the sandbox salt to sign callbacks")
        parts = urlsplit(callback_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"The callback URL must be http(s)://host/..., not {callback_url!r}")
        if delay < 0 or time_scale <= 0:
            raise ValueError("The delay must be >= 0 and the time scale > 0")
        self._salt = salt
        self.callback_url = callback_url
        self.delay = delay
        self.time_scale = time_scale
        self._decline_rule = decline_rule
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=POST_TIMEOUT_S)
        self._schedule = tuple(retry_schedule)
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._busy = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._statuses: dict[str, int] = {}
        self.delivered = 0
        self.attempts = 0
        self.abandoned = 0

    # -- control ---------------------------------------------------------------------------

    def schedule(self, invoice: Mapping[str, Any]) -> None:
        """Finalize ``invoice`` (as ``SandboxGateway.invoices`` lists it) after ``delay``."""
        missing = [key for key in _INVOICE_KEYS if invoice.get(key) in (None, "")]
        if missing:
            raise ValueError(f"The invoice lacks {', '.join(missing)}")
        job = _Job(time.monotonic() + self.delay, next(self._seq), copy.deepcopy(dict(invoice)))
        with self._cond:
            heapq.heappush(self._heap, job)
            self._cond.notify_all()

    def start(self) -> Finalizer:
        """Start the delivery thread; return self."""
        with self._cond:
            if self._thread is not None:
                return self
            if self._client.is_closed:
                raise RuntimeError("A stopped finalizer cannot be started again; make a new one")
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="cactus-sandbox-finalizer", daemon=True
            )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly (a POST in progress finishes first); pending callbacks are dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(POST_TIMEOUT_S * 2)
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Finalizer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Callbacks waiting for their first attempt or a retry, plus one being sent."""
        with self._cond:
            return len(self._heap) + self._busy

    def status_of(self, request_id: str) -> int | None:
        """The final status the sandbox gave the payout, once it has been decided."""
        with self._cond:
            return self._statuses.get(request_id)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # -- the delivery thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next_due()
                if job is None:
                    return
                self._busy += 1
            try:
                self._process(job)
            except Exception:  # one bad invoice must not stop the others
                log.exception("sandbox finalizer: a callback could not be prepared")
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _next_due(self) -> _Job | None:
        """Under the lock: wait for the earliest job to fall due; None once stopping."""
        while not self._stopping:
            if not self._heap:
                self._cond.wait()
                continue
            wait = self._heap[0].due - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._heap)
            self._cond.wait(wait)
        return None

    def _process(self, job: _Job) -> None:
        if job.body is None:
            declined = self._decline_rule(job.invoice)
            status = STATUS_DECLINE if declined else STATUS_SUCCESS
            # The sandbox's books follow the decision: a decline gives the amount back.
            settle(str(job.invoice["invoice_id"]), status)
            job.body = callback_body(job.invoice, status, self._salt)
            with self._cond:
                self._statuses[str(job.invoice["request_id"])] = status
        with self._cond:
            self.attempts += 1
        if self._post(job.body):
            with self._cond:
                self.delivered += 1
            return
        if job.failures >= len(self._schedule):
            with self._cond:
                self.abandoned += 1
            log.warning(
                "sandbox finalizer: gave up on the callback for request_id %s",
                job.invoice["request_id"],
            )
            return
        wait = self._schedule[job.failures] * self.time_scale
        job.failures += 1
        job.due = time.monotonic() + wait
        with self._cond:
            heapq.heappush(self._heap, job)

    def _post(self, body: dict[str, Any]) -> bool:
        try:
            response = self._client.post(self.callback_url, json=body)
        except httpx.HTTPError as exc:
            log.info("sandbox finalizer: callback not delivered (%s)", type(exc).__name__)
            return False
        try:
            answer = response.json()
        except ValueError:
            answer = None
        ok = response.status_code == 200 and answer == {"result": "ok"}
        if not ok:
            log.info("sandbox finalizer: callback answered HTTP %s", response.status_code)
        return ok
