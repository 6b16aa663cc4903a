"""The one send path: every caller (the window, the resend dialog, the command, the self-test)
sends through ``SendService`` and gets a ``SendResult`` whose ``code`` says what happened.

Synchronous and Qt-free; the caller chooses the thread (the window runs it on a worker).
``send`` and ``resend`` never raise for anything the network, the gateway, the keyring or the
history does: each failure has its code, and the history keeps the guarantees of
``submit`` and ``recovery`` (recorded before sending, NOT_SENT only when nothing left,
UNKNOWN never resent on its own).
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    PayoutOutcome,
    RefusedUnverified,
    Rejected,
)
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import DuplicateRequestIdError, PayoutRecord, RecordNotFoundError
from cactus_desk.money import format_major
from cactus_desk.payouts.describe import outcome_text
from cactus_desk.payouts.draft import PayoutDraft
from cactus_desk.payouts.duplicates import find_recent_duplicates
from cactus_desk.payouts.payout import Payout, PayoutInvalidError, PayoutTarget, payout_for
from cactus_desk.payouts.recovery import ResendRefusedError, resend_unknown
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import (
    AttemptNotRecordedError,
    OutcomeNotSavedError,
    PayoutClient,
    SubmitResult,
    record_attempt,
    recorded_attempt,
    send_recorded,
)
from cactus_desk.profiles import Profile

if TYPE_CHECKING:
    from cactus_desk.gateway.client import CactusClient

log = logging.getLogger(__name__)


class SendCode(StrEnum):
    """How a send (or resend) ended; callers branch on this, never on the message."""

    ACCEPTED = "accepted"  # the gateway accepted it (a callback may still finalise it)
    REJECTED = "rejected"  # the gateway said no, verifiably: no money moved
    REFUSED_UNVERIFIED = "refused_unverified"  # a refusal that could not be verified
    UNKNOWN = "unknown"  # may exist at the gateway; never resend blindly
    NOT_SENT = "not_sent"  # stopped before any byte left (salt, mark failed, unreachable)
    INVALID = "invalid"  # the draft is invalid; nothing recorded
    REQUEST_ID_TAKEN = "request_id_taken"  # the history already has this request id
    HISTORY_UNAVAILABLE = "history_unavailable"  # the attempt could not be recorded
    NEEDS_CONFIRMATION = "needs_confirmation"  # a person must confirm first (command line)
    RESEND_REFUSED = "resend_refused"  # this record cannot be sent again; nothing sent
    BUSY = "busy"  # this profile already has a payout in flight
    OUTCOME_NOT_SAVED = "outcome_not_saved"  # sent, but the outcome could not be written
    FAILED = "failed"  # an unexpected failure after recording: it may have left


# Codes after which the payout may exist at the gateway: never send it as a new one.
MAY_HAVE_LEFT = frozenset(
    {
        SendCode.UNKNOWN,
        SendCode.REFUSED_UNVERIFIED,
        SendCode.OUTCOME_NOT_SAVED,
        SendCode.FAILED,
    }
)

_SENT_MAYBE_FAILED = (
    "Cactus Desk failed while sending ({error}). The payout may or may not have reached the "
    "gateway: check the history before sending it again."
)


@dataclass(frozen=True)
class SendResult:
    """How one send ended. ``message`` is for a person: display it, never parse it."""

    code: SendCode
    request_id: str
    message: str
    record_id: int | None = None
    state: State | None = None  # as recorded in the history
    outcome: PayoutOutcome | None = None  # the gateway's classified answer, when there is one
    invoice_id: str | None = None
    detail: str = ""
    id_used: bool = False  # the history may hold the request id: do not reuse it
    may_have_left: bool = False  # the payout may exist at the gateway
    follow: bool = False  # a callback may still change it
    resend: bool = False  # the result of sending a payout in doubt again
    errors: Mapping[str, str] = field(default_factory=dict)  # INVALID: field -> message

    @property
    def accepted(self) -> bool:
        """True only for a payout the gateway accepted."""
        return self.code is SendCode.ACCEPTED

    @property
    def new_id_due(self) -> bool:
        """True when the payout is settled enough that the form may offer a new request id."""
        return (
            self.code in (SendCode.ACCEPTED, SendCode.REJECTED, SendCode.NOT_SENT)
            and not self.may_have_left
        )


def outcome_code(outcome: PayoutOutcome) -> SendCode:
    """The code of a classified gateway answer."""
    if isinstance(outcome, Accepted):
        return SendCode.ACCEPTED
    if isinstance(outcome, Rejected) and outcome.signature_verified:
        return SendCode.REJECTED
    if isinstance(outcome, Rejected | RefusedUnverified):
        return SendCode.REFUSED_UNVERIFIED
    if isinstance(outcome, NotSent):
        return SendCode.NOT_SENT
    return SendCode.UNKNOWN


def result_of(submitted: SubmitResult, request_id: str, *, resend: bool = False) -> SendResult:
    """The ``SendResult`` of an attempt whose outcome was recorded."""
    outcome = submitted.outcome
    code = outcome_code(outcome)
    # A resend that never left still leaves the first send in doubt.
    in_doubt = code in MAY_HAVE_LEFT or resend
    return SendResult(
        code=code,
        request_id=request_id,
        message=outcome_text(outcome, request_id),
        record_id=submitted.record_id,
        state=submitted.state,
        outcome=outcome,
        invoice_id=outcome.invoice_id if isinstance(outcome, Accepted) else None,
        detail=getattr(outcome, "detail", ""),
        id_used=True,
        may_have_left=in_doubt and code is not SendCode.ACCEPTED,
        follow=code not in (SendCode.REJECTED, SendCode.NOT_SENT),
        resend=resend,
    )


@dataclass(frozen=True)
class Prepared:
    """A valid payout ready for a person to confirm, and what they must see first."""

    payout: Payout
    profile: Profile
    amount_major: str  # e.g. "1500.00", with the profile's decimals
    decimals: int
    confirm_units: bool  # LIVE and this profile's decimals for the currency not yet confirmed
    repeats: tuple[PayoutRecord, ...]  # payouts of the last 24 hours this one would repeat


@dataclass(frozen=True)
class ResendTarget:
    """A record that may be sent again, and the profile it goes through."""

    record: PayoutRecord
    profile: Profile


class ClientFactory(Protocol):
    """Gives the gateway client for a profile (``ClientPool`` fits)."""

    def client_for(self, profile: Profile) -> PayoutClient:
        """The client to send ``profile``'s payouts with."""
        ...

    def close(self) -> None:
        """Close every client made."""
        ...


class ClientClosedError(RuntimeError):
    """The pool is closed: Cactus Desk is shutting down."""


class ClientPool:
    """One HTTP client per profile, made on first use; a changed profile gets a new one."""

    def __init__(self, read_timeout_for: Callable[[Profile], float] | None = None) -> None:
        self._read_timeout_for = read_timeout_for or (lambda profile: profile.read_timeout)
        self._clients: dict[str, tuple[tuple[object, ...], CactusClient]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def client_for(self, profile: Profile) -> CactusClient:
        """The profile's client; raises ``ClientClosedError`` once closed."""
        from cactus_desk.gateway.client import CactusClient

        key = (profile.base_url, profile.ca_bundle, self._read_timeout_for(profile))
        with self._lock:
            if self._closed:
                raise ClientClosedError("Cactus Desk is closing; the payout was not sent.")
            known = self._clients.get(profile.id)
            if known is not None and known[0] == key:
                return known[1]
            client = CactusClient(
                profile.base_url, read_timeout=key[2], ca_bundle=profile.ca_bundle
            )
            self._clients[profile.id] = (key, client)
        if known is not None:
            known[1].close()
        return client

    def close(self) -> None:
        """Close every client; later sends get ``ClientClosedError``."""
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
        for _, client in clients:
            client.close()


SaltReader = Callable[[Profile], "str | None"]
"""Reads a profile's site salt (on the sending thread); may raise (keyring errors)."""


def resend_refusal(record: PayoutRecord, profile: Profile | None) -> str | None:
    """Why ``record`` cannot be sent again through ``profile`` (None when it can)."""
    if not record.state.in_doubt:
        return (
            f"Payout #{record.id} is {record.state.label.lower()}: only a payout whose outcome "
            "is unknown or whose refusal could not be verified can be sent again."
        )
    if profile is None:
        return (
            f"The profile {record.profile_name!r} that sent payout #{record.id} is not set up "
            "any more; add it again to send this payout again."
        )
    if (profile.merchant_id, profile.site_id) != (record.merchant_id, record.site_id):
        return (
            f"The profile {profile.name!r} now points at merchant {profile.merchant_id}, site "
            f"{profile.site_id}, but payout #{record.id} was sent for merchant "
            f"{record.merchant_id}, site {record.site_id}; it was not sent again."
        )
    return None


class SendService:
    """Prepares, sends and resends payouts; one instance serves every caller."""

    def __init__(
        self,
        history: HistoryStore | None,
        salt_for: SaltReader,
        *,
        clients: ClientFactory | None = None,
    ) -> None:
        self._history = history
        self._salt_for = salt_for
        self._clients: ClientFactory = clients if clients is not None else ClientPool()

    @property
    def history(self) -> HistoryStore | None:
        """The history sends are recorded in (None: none open, nothing is sent)."""
        return self._history

    def set_history(self, history: HistoryStore | None) -> None:
        """Record the next sends in ``history``."""
        self._history = history

    def close(self) -> None:
        """Close the HTTP clients; later sends end NOT_SENT."""
        self._clients.close()

    # -- preparing --------------------------------------------------------------------------

    def prepare(self, draft: PayoutDraft, profile: Profile) -> Prepared | SendResult:
        """Build the payout from ``draft`` and find what it would repeat.

        Returns an INVALID result (``errors`` by field) or HISTORY_UNAVAILABLE when the
        history cannot be checked for repeats; nothing is recorded either way.
        """
        try:
            payout = payout_for(draft, profile)
        except PayoutInvalidError as exc:
            return SendResult(
                SendCode.INVALID, draft.request_id.strip(), str(exc), errors=exc.errors
            )
        except ValueError as exc:  # the gateway's own model refused a value
            return SendResult(SendCode.INVALID, draft.request_id.strip(), str(exc))
        try:
            repeats = tuple(self.repeats(payout))
        except Exception as exc:
            return SendResult(
                SendCode.HISTORY_UNAVAILABLE,
                payout.request_id,
                f"The history could not be checked for a repeat of this payout ({exc}). "
                "Try again in a moment.",
            )
        cur = profile.currency(payout.currency)
        return Prepared(
            payout=payout,
            profile=profile,
            amount_major=format_major(payout.amount_minor, cur),
            decimals=cur.exponent,
            confirm_units=profile.needs_units_confirmation(cur.code),
            repeats=repeats,
        )

    def repeats(self, payout: Payout) -> list[PayoutRecord]:
        """Payouts of the last 24 hours that ``payout`` would repeat (none without a history)."""

        if self._history is None:
            return []
        return find_recent_duplicates(self._history, recorded_attempt(payout))

    # -- sending ----------------------------------------------------------------------------

    def send(self, payout: Payout, profile: Profile) -> SendResult:
        """Record ``payout``, read the salt, send it through ``profile``, record the outcome."""
        request_id = payout.request_id
        if PayoutTarget.of(profile) != payout.target:
            return SendResult(
                SendCode.INVALID,
                request_id,
                f"The profile {profile.name!r} changed after this payout was confirmed; it was "
                "not sent. Check it and send it again.",
            )
        history = self._history
        if history is None:
            return SendResult(
                SendCode.HISTORY_UNAVAILABLE,
                request_id,
                "The payout was not sent: no history is open to record it in.",
            )
        try:
            client = self._clients.client_for(profile)
        except Exception as exc:
            return SendResult(SendCode.NOT_SENT, request_id, _not_sent_before_recording(exc))
        try:
            record_id = record_attempt(history, payout)
        except Exception as exc:
            return _not_recorded(request_id, exc)
        try:
            submitted = send_recorded(
                history,
                client,
                lambda: self._salt_for(profile) or "",
                record_id,
                payout.wire_request(),
                no_salt=no_salt_message(profile.name),
            )
        except OutcomeNotSavedError as exc:
            return _outcome_not_saved(request_id, exc)
        except Exception as exc:
            return _failed(request_id, record_id, exc)
        return result_of(submitted, request_id)

    def resend_target(
        self, record_id: int, profiles: Iterable[Profile]
    ) -> ResendTarget | SendResult:
        """The record and profile to send ``record_id`` again with, or RESEND_REFUSED saying
        why it cannot be (only a payout in doubt, of a profile still set up)."""

        history = self._history
        if history is None:
            return SendResult(SendCode.HISTORY_UNAVAILABLE, "", "No history is open.")
        try:
            record = history.get(record_id)
        except RecordNotFoundError as exc:
            return SendResult(SendCode.RESEND_REFUSED, "", str(exc) or "No such payout.")
        except Exception as exc:
            return SendResult(
                SendCode.HISTORY_UNAVAILABLE, "", f"The history could not be read ({exc})."
            )
        profile = next((p for p in profiles if p.id == record.profile_id), None)
        refusal = resend_refusal(record, profile)
        if refusal is not None or profile is None:
            return SendResult(SendCode.RESEND_REFUSED, record.request_id, refusal or "")
        return ResendTarget(record, profile)

    def resend(
        self, record_id: int, profile: Profile, reentered: Mapping[str, str] | None = None
    ) -> SendResult:
        """Send the payout in doubt ``record_id`` again with its own request id (a person has
        confirmed it). ``reentered`` holds the full values of fields stored masked."""

        found = self.resend_target(record_id, [profile])
        if isinstance(found, SendResult):
            return found
        history = self._history
        assert history is not None  # resend_target found the record in it
        request_id = found.record.request_id
        try:
            client = self._clients.client_for(profile)
        except Exception as exc:
            return SendResult(SendCode.RESEND_REFUSED, request_id, _not_sent_before_recording(exc))
        try:
            submitted = resend_unknown(
                history,
                client,
                lambda: self._salt_for(profile) or "",
                record_id,
                reentered_fields=dict(reentered or {}),
            )
        except ResendRefusedError as exc:
            return SendResult(
                SendCode.RESEND_REFUSED, request_id, str(exc), record_id=record_id, id_used=True
            )
        except OutcomeNotSavedError as exc:
            return _outcome_not_saved(request_id, exc, resend=True)
        except Exception as exc:
            return _failed(request_id, record_id, exc, resend=True)
        return result_of(submitted, request_id, resend=True)


def no_salt_message(profile_name: str) -> str:
    """Why a payout of ``profile_name`` was not sent from a desk without its salt, and the fix
    (a team profile's salt is kept by each desk, in its own keyring)."""
    name = shlex.quote(profile_name)
    return (
        f"No site salt on this desk for profile {profile_name!r}; this desk can review its "
        f"payouts but not send them. Save the salt with: "
        f"cactus-desk profile set-salt {name} --salt-stdin"
    )


def _not_sent_before_recording(exc: BaseException) -> str:
    if isinstance(exc, ClientClosedError):
        return str(exc)
    return f"The payout was not sent: its gateway client could not be made ({exc})."


def _not_recorded(request_id: str, exc: BaseException) -> SendResult:

    if isinstance(exc, DuplicateRequestIdError):
        return SendResult(
            SendCode.REQUEST_ID_TAKEN,
            request_id,
            str(exc),
            record_id=exc.existing_id,
            id_used=True,
        )
    if not isinstance(exc, AttemptNotRecordedError):
        log.error("recording payout %s failed", request_id, exc_info=exc)
    return SendResult(
        SendCode.HISTORY_UNAVAILABLE,
        request_id,
        f"The payout was not sent: the history could not be written ({exc}).",
        # An unexpected failure might have come after the row was written.
        id_used=not isinstance(exc, AttemptNotRecordedError),
    )


def _outcome_not_saved(
    request_id: str, exc: OutcomeNotSavedError, *, resend: bool = False
) -> SendResult:
    outcome = exc.outcome
    return SendResult(
        SendCode.OUTCOME_NOT_SAVED,
        request_id,
        str(exc),
        record_id=exc.record_id,
        outcome=outcome,
        invoice_id=outcome.invoice_id if isinstance(outcome, Accepted) else None,
        id_used=True,
        may_have_left=True,
        resend=resend,
    )


def _failed(
    request_id: str, record_id: int | None, exc: BaseException, *, resend: bool = False
) -> SendResult:
    log.error("sending payout %s failed", request_id, exc_info=exc)
    return SendResult(
        SendCode.FAILED,
        request_id,
        _SENT_MAYBE_FAILED.format(error=type(exc).__name__),
        record_id=record_id,
        id_used=True,
        may_have_left=True,
        resend=resend,
    )


def unexpected_failure(request_id: str, exc: BaseException) -> SendResult:
    """The result for a failure outside the service (a bug in the caller's plumbing)."""
    return _failed(request_id, None, exc)
