"""Records and signed callbacks for the lifecycle tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
from cactus_desk.gateway.signature import sign
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import NewAttempt

SALT = "callback-salt-9f2c"
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
    request_fields={"card_number": "411111******1111"},
)


def accepted_record(
    store: HistoryStore, request_id: str = "po-0001", invoice_id: str = "500001", **changes: Any
) -> int:
    """A payout the gateway accepted with status 3."""
    record_id = store.create_attempt(replace(ATTEMPT, request_id=request_id, **changes))
    store.record_outcome(record_id, Accepted(invoice_id, 3, "Payout initialized"))
    return record_id


def unknown_record(store: HistoryStore, request_id: str = "po-0001") -> int:
    """A payout whose answer never came."""
    record_id = store.create_attempt(replace(ATTEMPT, request_id=request_id))
    store.record_outcome(
        record_id, Unknown("No answer in time; the payout may exist.", UnknownKind.TIMEOUT)
    )
    return record_id


def callback(
    status: int,
    request_id: str = "po-0001",
    invoice_id: Any = 500001,
    salt: str = SALT,
    **changes: Any,
) -> dict[str, Any]:
    """A signed callback as the gateway sends it (JSON types)."""
    body: dict[str, Any] = {
        "site_id": SITE,
        "site_login": "alice",
        "status": status,
        "invoice_id": invoice_id,
        "request_id": request_id,
        "amount": 150000,
        "received_amount": 150000 if status == 4 else 0,
        "is_payout": True,
        "currency": "RUB",
        "received_currency": "RUB",
        "method": "card",
        "description": "" if status != 5 else "No payment received",
        "additional_fields": {"card_number": CARD, "card_holder": "Ivan Petrov"},
    }
    body.update(changes)
    body = {key: value for key, value in body.items() if value is not None}
    body["signature"] = sign(body, salt)
    return body
