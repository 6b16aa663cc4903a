"""Deterministic faults the sandbox can inject into its payout answers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum


class Fault(StrEnum):
    """How the next payout answers misbehave.

    Every fault except ``REJECT`` and ``REFUSE_WITHOUT_ID`` creates the invoice first: the real
    risk is a payout the gateway made whose answer was lost or garbled.
    """

    LATENCY = "latency"  # answer correctly, after ``delay`` seconds
    NO_ANSWER = "no_answer"  # read the request, then never answer (until stop)
    RESET = "reset"  # TCP RST instead of an answer
    HTTP_500_HTML = "http_500_html"  # HTTP 500 with an HTML error page
    INVALID_JSON = "invalid_json"  # HTTP 200 with a truncated JSON body
    BAD_SIGNATURE = "bad_signature"  # a success signed with the wrong salt
    ECHO_MISMATCH = "echo_mismatch"  # a correctly signed success for a different amount
    REJECT = "reject"  # a signed ``success: false`` with ``message`` and the request_id; no invoice
    # The docs' own failure example: signed ``success: false`` naming no request_id. Nothing
    # ties it to the payout, so the console must treat it as possibly paid; no invoice.
    REFUSE_WITHOUT_ID = "refuse_without_id"


DEFAULT_REJECT_MESSAGE = "Payout declined by sandbox"


@dataclass(frozen=True)
class FaultSetting:
    """One armed fault and its options."""

    fault: Fault
    delay: float = 0.0
    message: str = DEFAULT_REJECT_MESSAGE


class FaultPlan:
    """The armed fault, shared by the handler threads; each payout request takes one use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._setting: FaultSetting | None = None
        self._remaining: int | None = None

    def arm(
        self,
        fault: Fault,
        *,
        delay: float = 0.0,
        message: str = DEFAULT_REJECT_MESSAGE,
        times: int | None = None,
    ) -> None:
        """Arm ``fault`` until cleared (``times=None``) or for the next ``times`` payouts."""
        fault = Fault(fault)
        if delay < 0:
            raise ValueError("delay must be zero or more seconds")
        if times is not None and (isinstance(times, bool) or times < 1):
            raise ValueError("times must be None (until cleared) or a positive count")
        with self._lock:
            self._setting = FaultSetting(fault, float(delay), message)
            self._remaining = times

    def clear(self) -> None:
        """Disarm; later payouts are answered normally."""
        with self._lock:
            self._setting = None
            self._remaining = None

    def take(self) -> FaultSetting | None:
        """The fault for one payout request, using up one of its ``times``."""
        with self._lock:
            setting = self._setting
            if setting is not None and self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._setting = None
                    self._remaining = None
            return setting
