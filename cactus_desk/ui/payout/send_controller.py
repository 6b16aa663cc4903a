"""Sending payouts off the GUI thread: the Qt side of ``payouts.send.SendService``.

One payout (or resend) at a time per profile; every send ends in exactly one ``finished``
signal carrying a ``SendResult``, whose code says what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    # The send service (HTTP client, gateway models, history types) loads with the first
    # send or check: the window's start does not wait for it.
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.types import PayoutRecord
    from cactus_desk.payouts.payout import Payout
    from cactus_desk.payouts.send import SendResult, SendService
    from cactus_desk.profiles import Profile

SaltProvider = Callable[[], "str | None"]


@dataclass(frozen=True)
class SendJob:
    """One confirmed send in flight: the profile, the request id, and when it started."""

    profile: Profile
    request_id: str
    started: float
    payout: Payout | None = None  # a new payout
    resend_of: int | None = None  # the history record sent again

    def elapsed(self) -> int:
        """Seconds since the person confirmed, to the nearest whole one.

        Rounded, not truncated: a coarse 1 s timer may tick a little early.
        """
        return round(time.monotonic() - self.started)


class SendController(QObject):
    """Runs ``SendService`` on the worker pool and reports back on the GUI thread.

    ``started`` carries the ``SendJob``; ``finished`` carries ``(SendJob, SendResult)`` for
    every send and resend that started, whatever happened.
    """

    started = Signal(object)  # SendJob
    finished = Signal(object, object)  # SendJob, SendResult
    # On a team history: the payout was held by a policy and submitted for approval instead.
    submitted = Signal(object, object)  # SendJob, payout_approval.Submitted

    def __init__(
        self,
        history: HistoryStore | None,
        salt_provider_for: Callable[[Profile], SaltProvider],
        *,
        read_timeout_for: Callable[[Profile], float] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._history = history
        self._salt_provider_for = salt_provider_for
        self._read_timeout_for = read_timeout_for
        self._service_made: SendService | None = None
        self._runner = Runner(self)
        self._jobs: dict[str, SendJob] = {}  # profile id -> its job in flight
        self._closed = False
        self._team_store: str | None = None  # a team history's URL: its policies apply
        self._unavailable = ""  # why nothing can be sent right now (e.g. store unreachable)

    @property
    def service(self) -> SendService:
        """The send service every path goes through (made on first use)."""
        return self._service

    @property
    def _service(self) -> SendService:
        if self._service_made is None:
            from cactus_desk.payouts.send import ClientPool, SendService

            salt_provider_for = self._salt_provider_for
            self._service_made = SendService(
                self._history,
                lambda profile: salt_provider_for(profile)(),
                clients=ClientPool(self._read_timeout_for),
            )
        return self._service_made

    def is_sending(self, profile_id: str | None = None) -> bool:
        """True while a payout or resend (for ``profile_id``, if given) is in flight."""
        if profile_id is None:
            return bool(self._jobs)
        return profile_id in self._jobs

    def job(self, profile_id: str) -> SendJob | None:
        """The send in flight for ``profile_id``, if any."""
        return self._jobs.get(profile_id)

    def jobs(self) -> list[SendJob]:
        """Every send in flight."""
        return list(self._jobs.values())

    def send(self, payout: Payout, profile: Profile) -> SendResult | None:
        """Start sending ``payout``; None once started, else why it was not (nothing sent)."""
        refused = self._refusal(profile, payout.request_id)
        if refused is not None:
            return refused
        job = SendJob(profile, payout.request_id, time.monotonic(), payout=payout)
        service, store = self._service, self._team_store
        if store is None:
            self._start(job, lambda: service.send(payout, profile))
        else:
            self._start(job, lambda: _send_or_submit(store, service, payout, profile))
        return None

    @property
    def unavailable_reason(self) -> str:
        """Why nothing can be sent right now, or '' (set by the window)."""
        return self._unavailable

    def set_unavailable_reason(self, reason: str) -> None:
        """Refuse every send with ``reason`` ('' to take sends again)."""
        self._unavailable = reason

    def set_team_store(self, url: str | None) -> None:
        """On a team history (``url``) each new payout is first checked against the team's
        approval policies (on the worker) and submitted for approval when one holds it."""
        self._team_store = url

    def resend(
        self, record: PayoutRecord, profile: Profile, reentered: Mapping[str, str]
    ) -> SendResult | None:
        """Start sending the payout in doubt ``record`` again (confirmed by a person); None
        once started, else why it was not (nothing sent)."""
        refused = self._refusal(profile, record.request_id)
        if refused is not None:
            return refused
        job = SendJob(profile, record.request_id, time.monotonic(), resend_of=record.id)
        service, record_id, fields = self._service, record.id, dict(reentered)
        self._start(job, lambda: service.resend(record_id, profile, fields))
        return None

    @property
    def history(self) -> HistoryStore | None:
        """The history the sends are recorded in (None while none is open)."""
        if self._service_made is None:
            return self._history
        return self._service_made.history

    def set_history(self, history: HistoryStore | None) -> None:
        """Record the next sends in ``history`` (None: no history open, nothing is sent)."""
        self._history = history
        if self._service_made is not None:
            self._service_made.set_history(history)

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Block until no send is running (for shutdown and tests)."""
        return self._runner.wait_idle(msecs)

    def close(self) -> None:
        """Stop taking sends and close the HTTP clients (call after ``wait_idle``)."""
        self._closed = True
        if self._service_made is not None:
            self._service_made.close()

    def _refusal(self, profile: Profile, request_id: str) -> SendResult | None:
        from cactus_desk.payouts.send import SendCode, SendResult

        if self._closed:
            return SendResult(
                SendCode.NOT_SENT, request_id, "Cactus Desk is closing; the payout was not sent."
            )
        if self.history is None:
            return SendResult(
                SendCode.HISTORY_UNAVAILABLE,
                request_id,
                self._unavailable or "The payout was not sent: no history is open to record it in.",
            )
        if profile.id in self._jobs:
            return SendResult(
                SendCode.BUSY,
                request_id,
                f"A payout for {profile.name} is still being sent; wait for its answer.",
            )
        return None

    def _start(self, job: SendJob, work: Callable[[], object]) -> None:
        from cactus_desk.payouts.send import unexpected_failure

        self._jobs[job.profile.id] = job
        self.started.emit(job)
        self._runner.run(
            work,
            lambda result: self._done(job, result),
            # Only a bug in the service itself gets here: it never raises for a send's faults.
            lambda error: self._done(job, unexpected_failure(job.request_id, error)),
        )

    def _done(self, job: SendJob, result: object) -> None:
        from cactus_desk.payouts.send import SendResult, unexpected_failure

        self._jobs.pop(job.profile.id, None)
        if not isinstance(result, SendResult):
            # Only a team's send can be held for approval, and its worker imported the
            # approvals already: a desk's first answer does not import them on this thread.
            from cactus_desk.payout_approval import Submitted

            if isinstance(result, Submitted):
                self.submitted.emit(job, result)
                return
            result = unexpected_failure(job.request_id, TypeError(type(result).__name__))
        self.finished.emit(job, result)


def _send_or_submit(store: str, service: SendService, payout: Payout, profile: Profile) -> object:
    """Worker thread: submit ``payout`` for approval when the team's policy holds it (the
    same core operation as ``payout send``), else send it; a refusal sends nothing."""
    from cactus_desk.history.approvals import ApprovalError
    from cactus_desk.history.types import HistoryError
    from cactus_desk.payout_approval import submit_if_held
    from cactus_desk.payouts.send import SendCode, SendResult

    try:
        submitted = submit_if_held(store, payout)
    except ApprovalError as exc:
        return SendResult(SendCode.NOT_SENT, payout.request_id, str(exc))
    except HistoryError as exc:
        return SendResult(
            SendCode.HISTORY_UNAVAILABLE,
            payout.request_id,
            f"The team's approval policies could not be read ({exc}); nothing was sent.",
        )
    if submitted is not None:
        return submitted
    return service.send(payout, profile)
