"""After a crash: settle attempts left in SUBMITTING, and the confirmed "send again".

``submit.send_recorded`` marks a record as sending just before its request leaves. A record
still SUBMITTING when Cactus Desk starts again was interrupted: without the mark nothing left
(NOT_SENT); with it the gateway may have the payout (UNKNOWN). Nothing is ever resent here;
``resend_unknown`` is a separate action a person confirms, and it reuses the request_id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import PayoutOutcome, Rejected, Unknown, UnknownKind
from cactus_desk.payouts.draft import mask_card
from cactus_desk.payouts.states import State
from cactus_desk.payouts.store import (
    HistoryStore,
    OutcomeAlreadyRecordedError,
    PayoutRecord,
    RecordNotFoundError,
)
from cactus_desk.payouts.submit import PayoutClient, SubmitResult, send_recorded

log = logging.getLogger(__name__)

NOT_SENT_REASON = "Not sent: Cactus Desk stopped before the request left."
UNKNOWN_GUIDANCE = (
    "Cactus Desk stopped while sending this payout. The gateway may have created this payout; "
    "wait for its callback or check with Cactus; do not send it again."
)
DUPLICATE_GUIDANCE = (
    "The gateway already has a payout with this request ID, so an earlier send did reach it. "
    "Do not send it again; wait for its callback or check its status with Cactus."
)
# A card number kept as first 6 / last 4 (see draft.mask_card and store.scrub_card_numbers).
_MASKED = re.compile(r"\d{6}\*+\d{4}|\*{4,}")


class ResendRefusedError(Exception):
    """The record cannot be sent again; the message says why and what to do instead."""


def recover_interrupted(store: HistoryStore) -> list[int]:
    """Give every attempt left in SUBMITTING its truthful outcome; return the record ids.

    Call once at start, while holding the ``InstanceLock`` and before any send: an attempt
    another live process is sending would otherwise be settled under it.
    """
    with store.read_connection() as conn:
        rows = conn.execute(
            "SELECT id, request_id, sending_started_at FROM payouts WHERE state = ? ORDER BY id",
            (str(State.SUBMITTING),),
        ).fetchall()
    settled: list[int] = []
    for row in rows:
        record_id = int(row["id"])
        try:
            if row["sending_started_at"] is None:
                store.record_not_sent(record_id, NOT_SENT_REASON)
            else:
                store.record_outcome(
                    record_id,
                    Unknown(
                        reason=UNKNOWN_GUIDANCE,
                        kind=UnknownKind.INTERRUPTED,
                        detail="Found still sending when Cactus Desk started again.",
                    ),
                )
        except (OutcomeAlreadyRecordedError, RecordNotFoundError):
            continue  # settled meanwhile (a callback); that answer stands
        log.warning(
            "payout %s: interrupted attempt (history record %d) settled as %s",
            row["request_id"],
            record_id,
            "not sent" if row["sending_started_at"] is None else "unknown",
        )
        settled.append(record_id)
    return settled


def masked_fields(record: PayoutRecord) -> list[str]:
    """The additional fields of ``record`` kept masked, which a resend needs re-entered."""
    fields = record.request.get("additional_fields") or {}
    return sorted(
        key for key, value in fields.items() if isinstance(value, str) and _MASKED.search(value)
    )


def _rebuild_request(record: PayoutRecord, reentered: Mapping[str, str] | None) -> PayoutRequest:
    payload = record.request
    fields = {
        str(key): str(value) for key, value in (payload.get("additional_fields") or {}).items()
    }
    given = dict(reentered or {})
    for key in masked_fields(record):
        value = given.get(key, "").replace(" ", "").replace("-", "")
        if not value:
            raise ResendRefusedError(
                f"The full {key.replace('_', ' ')} is not stored (only {fields[key]}). "
                "Enter it again to send this payout again."
            )
        if mask_card(value) != fields[key]:
            raise ResendRefusedError(
                f"The {key.replace('_', ' ')} entered does not match the one sent "
                f"({fields[key]}); nothing was sent."
            )
        fields[key] = value
    if _MASKED.search(str(payload.get("site_login", ""))):
        raise ResendRefusedError(
            "The site login was stored masked, so the original request cannot be rebuilt; "
            "check this payout with Cactus instead."
        )
    try:
        return PayoutRequest(
            merchant_id=payload["merchant_id"],
            site_login=record.site_login,
            site_id=record.site_id,
            request_id=record.request_id,
            amount=record.amount_minor,
            currency=record.currency,
            method=record.method,
            additional_fields=fields,
        )
    except (KeyError, ValueError) as exc:
        raise ResendRefusedError(
            f"The stored request of history record {record.id} cannot be rebuilt ({exc})."
        ) from None


def _looks_like_duplicate(outcome: Rejected) -> bool:
    text = outcome.message.casefold()
    return "duplicate" in text or ("already" in text and "request" in text)


class _ResendClient:
    """Turns "this request_id was already used" into UNKNOWN: the payout exists somewhere."""

    def __init__(self, client: PayoutClient) -> None:
        self._client = client

    def payout(self, request: PayoutRequest, salt: str) -> PayoutOutcome:
        outcome = self._client.payout(request, salt)
        if isinstance(outcome, Rejected) and _looks_like_duplicate(outcome):
            return Unknown(
                reason=DUPLICATE_GUIDANCE,
                kind=UnknownKind.DUPLICATE_REQUEST,
                detail=f"The gateway answered: {outcome.message}",
                http_status=outcome.http_status,
            )
        return outcome


def resend_unknown(
    store: HistoryStore,
    client: PayoutClient,
    salt_provider: Callable[[], str],
    record_id: int,
    *,
    reentered_fields: Mapping[str, str] | None = None,
) -> SubmitResult:
    """Send an UNKNOWN record's request again with the SAME request_id; call on a worker.

    Only after a person has explicitly confirmed it. The gateway treats the request_id as the
    payout's identity, so if the first send did arrive this one is refused as a duplicate
    (recorded as UNKNOWN with that explanation) instead of paying twice. A card number is
    stored masked: pass it in ``reentered_fields`` (it must match the mask). Each resend
    appends a row to the ``resends`` audit table and counts in ``send_attempts``.
    Raises ``ResendRefusedError`` (nothing sent) when the record is not UNKNOWN or its
    request cannot be rebuilt.
    """
    record = store.get(record_id)
    if record.state is not State.UNKNOWN:
        raise ResendRefusedError(
            f"Only a payout whose outcome is Unknown can be sent again; history record "
            f"{record_id} is {record.state.label}."
        )
    request = _rebuild_request(record, reentered_fields)
    stamp = store.now()
    with store.write_transaction() as conn:
        row = conn.execute(
            "SELECT state, message, detail, send_attempts FROM payouts WHERE id = ?",
            (record_id,),
        ).fetchone()
        if row is None or row["state"] != State.UNKNOWN:
            raise ResendRefusedError(
                f"History record {record_id} changed meanwhile; it was not sent again."
            )
        conn.execute(
            "INSERT INTO resends (record_id, confirmed_at, attempt, previous_state, "
            "previous_message, previous_detail) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record_id,
                stamp,
                row["send_attempts"] + 1,
                row["state"],
                row["message"],
                row["detail"],
            ),
        )
        conn.execute(
            "UPDATE payouts SET state = ?, sending_started_at = NULL, unknown_kind = NULL, "
            "updated_at = ? WHERE id = ?",
            (str(State.SUBMITTING), stamp, record_id),
        )
    log.warning(
        "payout %s: sending again with the same request ID (history record %d), confirmed",
        record.request_id,
        record_id,
    )
    return send_recorded(store, _ResendClient(client), salt_provider, record_id, request)


def resend_history(store: HistoryStore, record_id: int) -> list[dict[str, object]]:
    """The audit rows of every confirmed resend of ``record_id``, oldest first."""
    with store.read_connection() as conn:
        rows = conn.execute(
            "SELECT confirmed_at, attempt, previous_state, previous_message, previous_detail "
            "FROM resends WHERE record_id = ? ORDER BY id",
            (record_id,),
        ).fetchall()
    return [dict(row) for row in rows]
