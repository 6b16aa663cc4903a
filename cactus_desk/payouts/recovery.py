"""After a crash: settle attempts left in SUBMITTING, and the confirmed "send again".

``submit.send_recorded`` marks a record as sending just before its request leaves. A record
still SUBMITTING when Cactus Desk starts again was interrupted: without the mark, and never
sent before, nothing left (NOT_SENT); otherwise the gateway may have the payout (UNKNOWN).
Nothing is ever resent here; ``resend_unknown`` is a separate action a person confirms, it
reuses the request_id, and only a verified acceptance settles the payout.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.callbacks.reconcile import current_user
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    RefusedUnverified,
    Rejected,
    Unknown,
    UnknownKind,
)
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import (
    ManualEvent,
    OutcomeAlreadyRecordedError,
    PayoutRecord,
    RecordNotFoundError,
    ResendStart,
)
from cactus_desk.payouts.draft import mask_card
from cactus_desk.payouts.submit import (
    PayoutClient,
    SubmitResult,
    record_result,
    send_recorded_outcome,
)

log = logging.getLogger(__name__)

NOT_SENT_REASON = "Not sent: Cactus Desk stopped before the request left."
UNKNOWN_GUIDANCE = (
    "Cactus Desk stopped while sending this payout. The gateway may have created this payout; "
    "wait for its callback or check with Cactus; do not send it again."
)
RESENT_UNKNOWN_GUIDANCE = (
    "Cactus Desk stopped while sending this payout again. An earlier send may already have "
    "created it; wait for its callback or check with Cactus; do not send it again."
)
REPEATED_ID_UNDOCUMENTED = (
    "Cactus does not document how its gateway treats a request ID it has seen before"
)
RESEND_REFUSED_GUIDANCE = (
    "The gateway refused this resend: {message}. " + REPEATED_ID_UNDOCUMENTED + ", so the "
    "refusal does not tell whether the first send created the payout. It stays Unknown: do "
    "not send it again; wait for its callback or check with Cactus, then settle it by hand."
)
RESEND_NOT_SENT = (
    "Not sent again: {cause}, so this resend never left this computer. The payout's first "
    "send is still in doubt and keeps its state: do not send it as a new payout; check it "
    "with Cactus."
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
    rows = store.interrupted_attempts()
    settled: list[int] = []
    for row in rows:
        record_id = row.record_id
        # A resend interrupted before its own mark still had an earlier send that left.
        never_left = row.sending_started_at is None and not row.send_attempts
        resent = row.sending_started_at is None and bool(row.send_attempts)
        try:
            if never_left:
                store.record_not_sent(record_id, NOT_SENT_REASON)
            else:
                store.record_outcome(
                    record_id,
                    Unknown(
                        reason=RESENT_UNKNOWN_GUIDANCE if resent else UNKNOWN_GUIDANCE,
                        kind=UnknownKind.INTERRUPTED,
                        detail="Found still sending when Cactus Desk started again.",
                    ),
                )
        except (OutcomeAlreadyRecordedError, RecordNotFoundError):
            continue  # settled meanwhile (a callback); that answer stands
        log.warning(
            "payout %s: interrupted attempt (history record %d) settled as %s",
            row.request_id,
            record_id,
            "not sent" if never_left else "unknown",
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


def _refusal_event(
    record_id: int,
    request_id: str,
    outcome: EventOutcome,
    message: str,
    answer: Mapping[str, Any],
    http_status: int | None,
) -> ManualEvent:
    return ManualEvent(
        record_id=record_id,
        outcome=outcome,
        payload={"request_id": request_id, "http_status": http_status, "answer": dict(answer)},
        message=message,
        who=current_user(),
    )


def _restore(store: HistoryStore, before: ResendStart, request_id: str, why: str) -> None:
    """A resend that never left: the record gets back what it had, and the attempt an event."""
    store.undo_resend(
        before,
        _refusal_event(before.record_id, request_id, EventOutcome.RESEND_NOT_SENT, why, {}, None),
    )


def _record_refusal(
    store: HistoryStore, record_id: int, request_id: str, outcome: Rejected | RefusedUnverified
) -> Unknown:
    """Any refusal of a resend, in any wording: an event, and the record stays Unknown."""
    unknown = Unknown(
        reason=RESEND_REFUSED_GUIDANCE.format(message=outcome.message.rstrip(". ")),
        kind=UnknownKind.RESEND_REFUSED,
        detail=f"The gateway answered the resend: {outcome.message}",
        http_status=outcome.http_status,
    )
    store.record_outcome(record_id, unknown)
    store.add_manual_event(
        _refusal_event(
            record_id,
            request_id,
            EventOutcome.RESEND_REFUSED,
            f"The gateway refused the resend: {outcome.message}",
            outcome.response,
            outcome.http_status,
        )
    )
    return unknown


def resend_unknown(
    store: HistoryStore,
    client: PayoutClient,
    salt_provider: Callable[[], str],
    record_id: int,
    *,
    reentered_fields: Mapping[str, str] | None = None,
) -> SubmitResult:
    """Send a payout in doubt (UNKNOWN, or refused unverified) again with the SAME request_id.

    Only after a person has explicitly confirmed it; call on a worker. Only a verified
    acceptance settles the record. Cactus does not document what it does with a request_id
    it has seen, so any refusal of the resend, whatever its wording, is stored as an event and
    leaves the record UNKNOWN; a resend that never left this computer leaves the record as it
    was. A card number is stored masked: pass it in ``reentered_fields`` (it must match the
    mask). Each resend appends a row to the ``resends`` audit table and counts in
    ``send_attempts``. Raises ``ResendRefusedError`` (nothing sent, nothing changed) when the
    record is not in doubt, its request cannot be rebuilt or the salt cannot be read.
    """
    record = store.get(record_id)
    if not record.state.in_doubt:
        raise ResendRefusedError(
            f"Only a payout whose outcome is in doubt (Unknown, or Refused, unverified) can be "
            f"sent again; history record {record_id} is {record.state.label}."
        )
    request = _rebuild_request(record, reentered_fields)
    try:
        salt = salt_provider()
    except Exception as exc:
        raise ResendRefusedError(
            f"Not sent again: the site salt could not be read ({exc or type(exc).__name__})."
        ) from None
    if not isinstance(salt, str) or not salt.strip():
        raise ResendRefusedError("Not sent again: no site salt is stored for this profile.")
    before = store.begin_resend(record_id, record.state)
    if before is None:
        raise ResendRefusedError(
            f"History record {record_id} changed meanwhile; it was not sent again."
        )
    log.warning(
        "payout %s: sending again with the same request ID (history record %d), confirmed",
        record.request_id,
        record_id,
    )
    outcome = send_recorded_outcome(store, client, salt, record_id, request)
    if isinstance(outcome, NotSent):
        cause = outcome.cause or outcome.reason.removeprefix("Not sent: ").rstrip(". ")
        why = RESEND_NOT_SENT.format(cause=cause)
        _restore(store, before, record.request_id, why)
        log.warning("payout %s: the resend did not leave; state kept", record.request_id)
        return SubmitResult(record_id, NotSent(why, outcome.detail))
    if isinstance(outcome, Rejected | RefusedUnverified):
        log.warning("payout %s: the gateway refused the resend; still unknown", request.request_id)
        return SubmitResult(
            record_id, _record_refusal(store, record_id, request.request_id, outcome)
        )
    if not isinstance(outcome, Accepted | Unknown):
        outcome = Unknown(
            reason=UNKNOWN_GUIDANCE,
            kind=UnknownKind.MALFORMED,
            detail=f"The client returned {type(outcome).__name__}, not an outcome.",
        )
    return record_result(store, record_id, outcome, request.request_id)


def resend_history(store: HistoryStore, record_id: int) -> list[dict[str, object]]:
    """The audit rows of every confirmed resend of ``record_id``, oldest first."""
    return [dict(vars(audit)) for audit in store.resend_history(record_id)]
