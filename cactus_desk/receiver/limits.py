"""Budgets that keep an attacker from filling the disk or rotating the logs away.

Each is a token bucket: ``burst`` at once, then ``rate`` per second. Forged callbacks are stored
within a budget per client and one for all clients together; log lines about refused requests
are written within a budget too, and a summary line says how many were left out. Verified
callbacks are never held back by any of them: the budgets only decide what is recorded about
traffic that could not be trusted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

STORE_BURST_PER_CLIENT = 50
STORE_RATE_PER_CLIENT = 0.2  # per second: 720 an hour
STORE_BURST_TOTAL = 200
STORE_RATE_TOTAL = 1.0
LOG_BURST = 20
LOG_RATE = 0.5
MAX_CLIENTS = 4096

Clock = Callable[[], float]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second. Not thread-safe on its own."""

    def __init__(self, burst: float, rate: float, clock: Clock = time.monotonic) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class ClientBudget:
    """How many unverified callbacks to store, per client and in all; thread-safe."""

    def __init__(
        self,
        burst: float = STORE_BURST_PER_CLIENT,
        rate: float = STORE_RATE_PER_CLIENT,
        total_burst: float = STORE_BURST_TOTAL,
        total_rate: float = STORE_RATE_TOTAL,
        max_clients: int = MAX_CLIENTS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._burst, self._rate, self._clock = burst, rate, clock
        self._max_clients = max_clients
        self._total = TokenBucket(total_burst, total_rate, clock)
        self._clients: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped = 0

    def allow(self, client: str) -> bool:
        """True to store one more unverified callback from ``client``."""
        with self._lock:
            bucket = self._clients.get(client)
            if bucket is None:
                bucket = self._clients[client] = TokenBucket(self._burst, self._rate, self._clock)
                if len(self._clients) > self._max_clients:
                    # Rotating addresses gains a fresh burst at most: the total budget holds.
                    self._clients.popitem(last=False)
            else:
                self._clients.move_to_end(client)
            allowed = bucket.take() and self._total.take()
            if not allowed:
                self.dropped += 1
            return allowed


class LogBudget:
    """Lets ``burst`` lines through, then ``rate`` per second; counts what it held back."""

    def __init__(
        self, burst: float = LOG_BURST, rate: float = LOG_RATE, clock: Clock = time.monotonic
    ) -> None:
        self._bucket = TokenBucket(burst, rate, clock)
        self._lock = threading.Lock()
        self._held_back = 0

    def admit(self) -> tuple[bool, int]:
        """``(write this line?, how many were held back before it)``; the count then resets."""
        with self._lock:
            if not self._bucket.take():
                self._held_back += 1
                return False, 0
            held, self._held_back = self._held_back, 0
            return True, held


class RateLimitFilter(logging.Filter):
    """A logging filter with a ``LogBudget``: a flood of warnings cannot rotate the log away."""

    def __init__(self, budget: LogBudget | None = None) -> None:
        super().__init__()
        self.budget = budget or LogBudget()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # start and stop lines: a handful per run, never per request
        allowed, held = self.budget.admit()
        if allowed and held:
            record.msg = f"{record.getMessage()} ({held} similar lines were not logged)"
            record.args = None
        return allowed


_UVICORN_LOGGER = "uvicorn.error"


def quiet_uvicorn_warnings() -> None:
    """Rate-limit uvicorn's own per-request warnings ("Invalid HTTP request received.")."""
    logger = logging.getLogger(_UVICORN_LOGGER)
    if not any(isinstance(item, RateLimitFilter) for item in logger.filters):
        logger.addFilter(RateLimitFilter())
