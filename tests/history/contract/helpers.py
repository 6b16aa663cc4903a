"""Attempts and signed callbacks for the contract suite (backend-neutral)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
from cactus_desk.gateway.signature import sign, verify
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import NewAttempt

SALT = "contract-salt-51d0"
MERCHANT = "m_demo"
SITE = 7
CARD = "4111111111111111"

ATTEMPT = NewAttempt(
    profile_id="p-main",
    profile_name="Main shop",
    environment="sandbox",
    merchant_id=MERCHANT,
    site_id=SITE,
    request_id="po-0001",
    site_login="alice",
    method="card",
    currency="RUB",
    amount_minor=150000,
    request_fields={"card_number": "411111******1111", "card_holder": "Ivan Petrov"},
)


def attempt(**changes: Any) -> NewAttempt:
    """The base attempt with some fields changed."""
    return replace(ATTEMPT, **changes)


def accepted(store: HistoryStore, request_id: str = "po-0001", **changes: Any) -> int:
    """A payout the gateway accepted (status 3, invoice 500001 unless changed)."""
    invoice_id = changes.pop("invoice_id", "500001")
    record_id = store.create_attempt(attempt(request_id=request_id, **changes))
    store.mark_sending(record_id)
    store.record_outcome(record_id, Accepted(invoice_id, 3, "Payout initialized"))
    return record_id


def unknown(store: HistoryStore, request_id: str = "po-0001") -> int:
    """A payout whose answer never came."""
    record_id = store.create_attempt(attempt(request_id=request_id))
    store.mark_sending(record_id)
    store.record_outcome(record_id, Unknown("No answer in time.", UnknownKind.TIMEOUT))
    return record_id


def callback(status: int, request_id: str = "po-0001", **changes: Any) -> dict[str, Any]:
    """A callback signed with ``SALT`` as the gateway sends it."""
    body: dict[str, Any] = {
        "site_id": SITE,
        "status": status,
        "invoice_id": 500001,
        "request_id": request_id,
        "amount": 150000,
        "currency": "RUB",
        "is_payout": True,
        "description": "" if status != 5 else "No payment received",
        "additional_fields": {"card_number": CARD},
    }
    body.update(changes)
    body["signature"] = sign(body, SALT)
    assert verify(body, SALT)
    return body
