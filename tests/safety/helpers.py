"""Shared pieces of the safety tests: one sandbox site, a profile for it, a card payout."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.history.types import NewAttempt
from cactus_desk.payouts.payout import Payout, PayoutTarget
from cactus_desk.payouts.submit import recorded_attempt
from cactus_desk.profiles import Profile

MERCHANT = "acme"
SITE = 21
SALT = "pepper-9f8e7d6c5b4a3928"
CARD = "4111111111111111"
MASKED_CARD = "411111******1111"


def profile(base_url: str, **changes: Any) -> Profile:
    """A sandbox profile for the test site at ``base_url``."""
    values: dict[str, Any] = {
        "id": "p-acme",
        "name": "Acme sandbox",
        "base_url": base_url,
        "merchant_id": MERCHANT,
        "site_id": SITE,
        "environment": "sandbox",
    }
    values.update(changes)
    return Profile(**values)


def card_request(request_id: str = "po-1", **changes: Any) -> PayoutRequest:
    """A card payout to the test site; the full card number is in it."""
    values: dict[str, Any] = {
        "merchant_id": MERCHANT,
        "site_login": "alice",
        "site_id": SITE,
        "request_id": request_id,
        "amount": 150_000,
        "currency": "RUB",
        "method": "card",
        "additional_fields": {"card_number": CARD, "card_holder": "Ivan Petrov"},
    }
    values.update(changes)
    return PayoutRequest(**values)


def as_payout(sender: Profile, request: PayoutRequest) -> Payout:
    """The payout ``request`` describes, sent with ``sender``."""
    return Payout(
        target=PayoutTarget.of(sender),
        request_id=request.request_id,
        site_login=request.site_login,
        method=request.method,
        currency=request.currency,
        amount_minor=request.amount,
        fields=request.additional_fields,
    )


def payout(base_url: str, request: PayoutRequest) -> Payout:
    """The payout ``request`` describes, sent with the test profile at ``base_url``."""
    return as_payout(profile(base_url), request)


def attempt(base_url: str, request: PayoutRequest) -> NewAttempt:
    """What the history keeps of ``request`` (card masked)."""
    return recorded_attempt(payout(base_url, request))


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A loopback server that reads each request and hangs up without answering.

    The request does reach a server, so the payout's fate is unknown to the client.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # a closed listener does not wake accept()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                seen = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in seen:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        seen += chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
