"""Applying one gateway callback to the payout history.

The callback is verified with the profile's salt over every field received except
``signature``, matched to its record by request_id and site_id, and compared with the
record's current status (``lifecycle``). The read, the check and the writes happen in one
``BEGIN IMMEDIATE`` transaction, so receivers in several threads or processes on the same
file never interleave. Every callback ends as exactly one event, applied or not, except an
unverified one over the caller's storage budget (``admit_unverified``).

Checks that need no salt run first and outside the write lock: a body nested deeper than a
callback can be, an integer beyond 64 bits, or a ``;`` in any value or key (the signing string
joins ``key:value;`` pairs, so a ``;`` could forge other fields) is refused before the signature
is even computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cactus_desk.callbacks.events import EventOutcome, EventSource, bounded_payload
from cactus_desk.callbacks.rules import (
    UNVERIFIED_REASONS,
    ApplyResult,
    Reason,
    decline_reason,
    screen,
    str_value,
)
from cactus_desk.gateway.signature import verify
from cactus_desk.history.port import StatusLedger

__all__ = [
    "UNVERIFIED_REASONS",
    "ApplyResult",
    "Reason",
    "apply_callback",
    "decline_reason",
]


def apply_callback(
    store: StatusLedger,
    payload: Any,
    salt: str,
    *,
    merchant_id: str | None = None,
    site_id: int | None = None,
    source: EventSource = EventSource.GATEWAY,
    admit_unverified: Callable[[], bool] | None = None,
    raw: bytes | None = None,
) -> ApplyResult:
    """Verify ``payload`` (the parsed body, native types) with ``salt`` and apply it.

    ``merchant_id`` and ``site_id`` are the profile's: with them, a callback is only matched
    to that merchant's payouts, and one for another site is rejected. ``admit_unverified``
    (the receiver's per-client budget) is asked before a forged or garbled callback is stored;
    when it says no, nothing is written and the result's ``event_id`` is 0. ``raw`` is the body
    as received, hashed for a rejected one. Never raises for what the callback contains;
    ``HistoryError`` propagates (nothing is then stored).
    """
    if not salt:
        raise ValueError("A salt is needed to verify callbacks")
    unverified = _unverified(payload, salt, raw)
    if unverified is not None:
        reason, stored_payload, request_id = unverified
        if admit_unverified is not None and not admit_unverified():
            return ApplyResult(0, EventOutcome.REJECTED, None, reason, request_id=request_id)
        return store.record_rejected_callback(
            stored_payload, reason, source=source, request_id=request_id
        )
    return store.apply_verified_callback(
        payload, merchant_id=merchant_id, site_id=site_id, source=source
    )


def _unverified(
    payload: Any, salt: str, raw: bytes | None
) -> tuple[Reason, dict[str, Any], str | None] | None:
    """The reason, bounded payload and request_id of a callback that is not verified; or None."""
    if not isinstance(payload, Mapping) or not payload:
        if not isinstance(payload, str | bytes | Mapping):
            payload = f"({type(payload).__name__})"  # repr() of a deep list would recurse
        return Reason.BAD_BODY, bounded_payload(payload, raw), None
    payload = {str(key): value for key, value in payload.items()}
    reason = screen(payload)
    request_id = str_value(payload.get("request_id"))
    if request_id is not None:
        request_id = request_id[:200]
    if reason is None and not verify(payload, salt):
        reason = Reason.BAD_SIGNATURE
    if reason is None:
        return None
    return reason, bounded_payload(payload, raw), request_id
