"""The path of one payout: record it, read the salt, send it, record what came back.

Runs on a worker thread. The attempt is in the history as SUBMITTING before the salt is read
or any byte leaves, and whatever happens next ends in exactly one recorded outcome; nothing
here ever turns an unexplained failure into a success or sends twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    PayoutOutcome,
    RefusedUnverified,
    Rejected,
    Unknown,
    UnknownKind,
)
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryUnavailableError, NewAttempt
from cactus_desk.payouts.payout import Payout
from cactus_desk.payouts.states import State

log = logging.getLogger(__name__)


class PayoutClient(Protocol):
    """What ``submit_payout`` needs from a gateway client (``CactusClient`` fits)."""

    def payout(self, request: PayoutRequest, salt: str) -> PayoutOutcome:
        """Send one payout and classify the answer."""
        ...


SubmitOutcome = PayoutOutcome  # NotSent included: stopped before any byte left


@dataclass(frozen=True)
class SubmitResult:
    """The history record of the attempt and how it ended."""

    record_id: int
    outcome: SubmitOutcome

    @property
    def state(self) -> State:
        """The state the attempt was recorded with."""
        if isinstance(self.outcome, Accepted):
            return State.ACCEPTED
        if isinstance(self.outcome, Rejected) and self.outcome.signature_verified:
            return State.REJECTED
        if isinstance(self.outcome, Rejected | RefusedUnverified):
            return State.REFUSED_UNVERIFIED
        if isinstance(self.outcome, Unknown):
            return State.UNKNOWN
        return State.NOT_SENT


class AttemptNotRecordedError(OSError):
    """The history could not record the attempt (disk full, locked, damaged): nothing was sent."""


class OutcomeNotSavedError(Exception):
    """The attempt ended, but its outcome could not be written to the history.

    The record stays SUBMITTING (in doubt); ``outcome`` is what really happened, so the
    person can still be told.
    """

    def __init__(self, record_id: int, outcome: SubmitOutcome, cause: BaseException) -> None:
        self.record_id = record_id
        self.outcome = outcome
        super().__init__(
            f"History record {record_id} could not be updated ({type(cause).__name__}: {cause}); "
            f"it stays 'Submitting'. What happened: {_describe(outcome)}"
        )


_SENT_MAYBE = (
    "Cactus Desk failed while sending this payout, so it may or may not have reached the "
    "gateway. Do not send it again; check it with Cactus (merchant cabinet, callbacks or "
    "support) first."
)


def _describe(outcome: SubmitOutcome) -> str:
    if isinstance(outcome, Accepted):
        return f"the gateway accepted it as invoice {outcome.invoice_id}."
    if isinstance(outcome, Rejected):
        return f"the gateway rejected it: {outcome.message}"
    if isinstance(outcome, RefusedUnverified):
        return f"the gateway refused it, unverified ({outcome.why}): {outcome.message}"
    if isinstance(outcome, Unknown):
        return f"the outcome is unknown: {outcome.reason}"
    return f"it was not sent: {outcome.reason}"


def recorded_attempt(payout: Payout) -> NewAttempt:
    """What the history keeps of ``payout``: derived from it, card numbers masked."""
    target = payout.target
    return NewAttempt(
        profile_id=target.profile_id,
        profile_name=target.profile_name,
        environment=target.environment,
        merchant_id=target.merchant_id,
        site_id=target.site_id,
        request_id=payout.request_id,
        site_login=payout.site_login,
        method=payout.method,
        currency=payout.currency,
        amount_minor=payout.amount_minor,
        request_fields=payout.masked_fields(),
    )


def _scrub(text: str, salt: str) -> str:
    return text.replace(salt, "[salt]") if salt else text


def record_result(
    store: HistoryStore, record_id: int, outcome: SubmitOutcome, request_id: str
) -> SubmitResult:
    """Write ``outcome`` as the SUBMITTING record's outcome; raises ``OutcomeNotSavedError``."""
    log.info("payout %s: %s", request_id, _describe(outcome))
    try:
        if isinstance(outcome, NotSent):
            store.record_not_sent(record_id, outcome.reason, detail=outcome.detail)
        else:
            store.record_outcome(record_id, outcome)
    except Exception as exc:
        raise OutcomeNotSavedError(record_id, outcome, exc) from None
    return SubmitResult(record_id, outcome)


def submit_payout(
    store: HistoryStore,
    client: PayoutClient,
    salt_provider: Callable[[], str],
    payout: Payout,
) -> SubmitResult:
    """Send one payout and record it; call on a worker thread.

    What the history keeps (recipient fields masked) and what is sent are both derived from
    ``payout``. If the attempt cannot be recorded (``DuplicateRequestIdError``, or
    ``AttemptNotRecordedError`` for a database error), nothing is sent. A salt that cannot be
    read ends as NOT_SENT; anything unexpected while sending ends as UNKNOWN. Raises
    ``OutcomeNotSavedError`` when the outcome itself cannot be written.
    """
    record_id = record_attempt(store, payout)
    return send_recorded(store, client, salt_provider, record_id, payout.wire_request())


def record_attempt(store: HistoryStore, payout: Payout) -> int:
    """Write ``payout`` to the history as SUBMITTING; return its record id.

    Raises ``DuplicateRequestIdError`` when its request id is taken, and
    ``AttemptNotRecordedError`` for a database error: nothing is sent either way.
    """
    try:
        record_id = store.create_attempt(recorded_attempt(payout))
    except HistoryUnavailableError as exc:
        raise AttemptNotRecordedError(str(exc) or type(exc).__name__) from exc
    log.info("payout %s: recorded as history record %d", payout.request_id, record_id)
    return record_id


def send_recorded(
    store: HistoryStore,
    client: PayoutClient,
    salt_provider: Callable[[], str],
    record_id: int,
    request: PayoutRequest,
    no_salt: str = "No site salt is stored for this profile.",
) -> SubmitResult:
    """Send the request of a SUBMITTING history record and record how it ended.

    The salt is read here, on the worker thread, and the record is durably marked as
    sending just before the request leaves, so a crash on either side of that mark is
    recovered truthfully (see ``recovery.recover_interrupted``). ``no_salt`` is the reason
    recorded when there is no salt.
    """
    try:
        salt = salt_provider()
    except Exception as exc:
        reason = f"The site salt could not be read: {exc}" if str(exc) else ""
        reason = reason or f"The site salt could not be read ({type(exc).__name__})."
        return record_result(store, record_id, NotSent(reason), request.request_id)
    if not isinstance(salt, str) or not salt.strip():
        return record_result(
            store,
            record_id,
            NotSent(no_salt),
            request.request_id,
        )

    return record_result(
        store,
        record_id,
        send_recorded_outcome(store, client, salt, record_id, request),
        request.request_id,
    )


def send_recorded_outcome(
    store: HistoryStore,
    client: PayoutClient,
    salt: str,
    record_id: int,
    request: PayoutRequest,
) -> PayoutOutcome:
    """Mark the SUBMITTING record as sending, send, and return the outcome (not recorded)."""
    try:
        store.mark_sending(record_id)
    except Exception as exc:
        return NotSent(
            f"Not sent: the history could not note that the payout was leaving ({exc}). "
            "Check the disk, then send it again."
        )
    log.info("payout %s: sending (history record %d)", request.request_id, record_id)
    try:
        outcome: PayoutOutcome = client.payout(request, salt)
    except Exception as exc:
        outcome = Unknown(
            reason=_SENT_MAYBE,
            kind=UnknownKind.NETWORK,
            detail=_scrub(f"{type(exc).__name__}: {exc}", salt),
        )
    if not isinstance(outcome, Accepted | Rejected | RefusedUnverified | Unknown | NotSent):
        outcome = Unknown(
            reason=_SENT_MAYBE,
            kind=UnknownKind.MALFORMED,
            detail=f"The client returned {type(outcome).__name__}, not an outcome.",
        )
    return outcome
