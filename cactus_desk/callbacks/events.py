"""The events table: every callback received, applied or not, and every manual change.

Rows are only ever inserted (triggers refuse UPDATE, and DELETE of anything but an unverified
rejected callback, which ``callbacks.prune`` may remove). Payloads are stored with card numbers
masked; the salt is never part of one. A callback that was not verified is stored bounded: its
request_id, a short masked excerpt and the SHA-256 of the whole body.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cactus_desk.masking import scrub_card_numbers
from cactus_desk.payouts.statuses import status_label

PAYLOAD_TEXT_LIMIT = 4000
EXCERPT_LIMIT = 240
_ID_LIMIT = 200

# Identifiers and amounts are long digit runs that are not cards; the signature is hex.
_KEEP_KEYS = frozenset(
    {"request_id", "invoice_id", "merchant_id", "site_id", "amount", "received_amount", "signature"}
)


class EventSource(StrEnum):
    """Where an event came from."""

    GATEWAY = "gateway"  # a callback received over HTTP
    IMPORT = "import"  # a callback read from a file
    MANUAL = "manual"  # an operator set the state by hand

    @property
    def label(self) -> str:
        """The word shown to a person."""
        return {"gateway": "Gateway callback", "import": "Imported callback", "manual": "Manual"}[
            self.value
        ]


class EventOutcome(StrEnum):
    """What the event did to its record."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    PRUNED = "pruned"  # an operator removed old unverified callbacks (the audit of it)
    # A confirmed resend of a payout in doubt (source manual: a person asked for it).
    RESEND_REFUSED = "resend_refused"
    RESEND_NOT_SENT = "resend_not_sent"

    @property
    def label(self) -> str:
        """The word shown to a person."""
        return _OUTCOME_LABELS[self]


_OUTCOME_LABELS = {
    EventOutcome.APPLIED: "Applied",
    EventOutcome.DUPLICATE: "Duplicate (no change)",
    EventOutcome.STALE: "Arrived late (ignored)",
    EventOutcome.CONFLICT: "Conflict: check (contradicts an earlier final status)",
    EventOutcome.REJECTED: "Rejected",
    EventOutcome.PRUNED: "Rejected callbacks pruned",
    EventOutcome.RESEND_REFUSED: "Resend refused (payout still in doubt)",
    EventOutcome.RESEND_NOT_SENT: "Resend not sent (nothing left)",
}


@dataclass(frozen=True)
class Event:
    """One row of the events table, as the record's timeline shows it."""

    id: int
    received_at: int
    record_id: int | None
    source: EventSource
    who: str
    outcome: EventOutcome
    reason: str
    message: str
    request_id: str | None
    invoice_id: str | None
    status: int | None
    payload: dict[str, Any]

    @property
    def verified(self) -> bool:
        """True for a callback whose signature matched (it came from the gateway)."""
        return self.source is not EventSource.MANUAL and self.reason != "bad_signature"

    @property
    def status_text(self) -> str:
        """The status rendered for a person, e.g. ``"Success (4)"``; ``""`` when none."""
        return status_label(self.status)

    @property
    def summary(self) -> str:
        """One line for a timeline: source, status and outcome (and who, for manual ones)."""
        parts = [self.source.label]
        if self.who:
            parts[0] += f" by {self.who}"
        if self.status is not None:
            parts.append(self.status_text)
        parts.append(self.outcome.label)
        line = " · ".join(parts)
        return f"{line}: {self.message}" if self.message else line


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_card_numbers(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        text = str(value)
        masked = scrub_card_numbers(text)
        return value if masked == text else masked
    if isinstance(value, Mapping):
        return {str(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return scrub_card_numbers(str(value))


def masked_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with every card-like number masked (identifier fields are left as they are)."""
    return {
        str(key): value if key in _KEEP_KEYS else _scrub(value) for key, value in payload.items()
    }


def raw_body_payload(body: bytes | str) -> dict[str, Any]:
    """A payload for a body that could not be parsed: its start, as text, masked."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return {"raw_body": scrub_card_numbers(text[:PAYLOAD_TEXT_LIMIT])}


def _serialise(payload: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str).encode(
            "utf-8", "replace"
        )
    except (RecursionError, ValueError, TypeError):
        return b"(not serialisable)"


def bounded_payload(
    payload: Mapping[str, Any] | bytes | str, raw: bytes | None = None
) -> dict[str, Any]:
    """How an unverified callback is stored, whatever its size: a few hundred bytes at most.

    Its request_id and invoice_id (capped), a masked excerpt of the start and the SHA-256 and
    size of the whole (``raw``, the body as received, when known), enough to recognise a
    repeated forgery without keeping its bulk.
    """
    ids: dict[str, str] = {}
    if isinstance(payload, Mapping):
        for key in ("request_id", "invoice_id"):
            value = capped_text(payload.get(key), _ID_LIMIT)
            if value is not None:
                ids[key] = value
    if raw is None:
        if isinstance(payload, Mapping):
            raw = _serialise(payload)
        else:
            raw = payload if isinstance(payload, bytes) else payload.encode("utf-8", "replace")
    # Mask before cutting, so a card number that straddles the cut is still masked.
    head = raw[: EXCERPT_LIMIT + 64].decode("utf-8", "replace")
    return {
        **ids,
        "excerpt": scrub_card_numbers(head)[:EXCERPT_LIMIT],
        "sha256": hashlib.sha256(raw).hexdigest(),
        "bytes": len(raw),
    }


def capped_text(value: Any, limit: int = 200) -> str | None:
    """``value`` as stripped, masked text of at most ``limit`` characters; None when empty."""
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    text = str(value).strip()
    return scrub_card_numbers(text[:limit]) if text else None
