"""Sending payouts off the GUI thread: one at a time per profile, one HTTP client per profile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import NewAttempt, PayoutRecord
from cactus_desk.profiles import Profile
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.gateway.client import CactusClient

log = logging.getLogger(__name__)

SaltProvider = Callable[[], "str | None"]


@dataclass(frozen=True)
class SendJob:
    """One confirmed payout: what is sent, what the history keeps, and when it started."""

    profile: Profile
    request: PayoutRequest
    attempt: NewAttempt
    started: float

    @property
    def request_id(self) -> str:
        """The payout's request id."""
        return self.request.request_id

    def elapsed(self) -> int:
        """Seconds since the person confirmed, to the nearest whole one.

        Rounded, not truncated: a coarse 1 s timer may tick a little early.
        """
        return round(time.monotonic() - self.started)


class SendController(QObject):
    """Runs ``submit_payout`` on the worker pool and reports back on the GUI thread.

    ``finished`` carries ``(SendJob, SubmitResult)``. ``failed`` carries ``(SendJob, message,
    id_used)`` when the payout could not be recorded or its outcome could not be saved;
    ``id_used`` is True when the history may hold the request id, so it must not be reused.
    """

    started = Signal(object)  # SendJob
    finished = Signal(object, object)  # SendJob, SubmitResult
    failed = Signal(object, str, bool)  # SendJob, message, id_used

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
        self._read_timeout_for = read_timeout_for or (lambda profile: profile.read_timeout)
        self._runner = Runner(self)
        self._jobs: dict[str, SendJob] = {}  # profile id -> its job in flight
        self._clients: dict[str, tuple[tuple[object, ...], CactusClient]] = {}
        self._clients_lock = threading.Lock()
        self._closed = False

    # -- GUI thread -----------------------------------------------------------------------

    def is_sending(self, profile_id: str | None = None) -> bool:
        """True while a payout (for ``profile_id``, if given) is in flight."""
        if profile_id is None:
            return bool(self._jobs)
        return profile_id in self._jobs

    def job(self, profile_id: str) -> SendJob | None:
        """The payout in flight for ``profile_id``, if any."""
        return self._jobs.get(profile_id)

    def jobs(self) -> list[SendJob]:
        """Every payout in flight."""
        return list(self._jobs.values())

    def send(self, profile: Profile, request: PayoutRequest, attempt: NewAttempt) -> bool:
        """Start sending; False (and nothing sent) when this profile already has one in flight."""
        history = self._history
        if self._closed or history is None or profile.id in self._jobs:
            return False
        job = SendJob(profile, request, attempt, time.monotonic())
        self._jobs[profile.id] = job
        salt_provider = self._salt_provider_for(profile)

        def work() -> object:  # worker thread
            from cactus_desk.payouts.submit import submit_payout

            client = self._client(profile)
            return submit_payout(history, client, salt_provider, attempt, request)

        self.started.emit(job)
        self._runner.run(
            work,
            lambda result: self._done(job, result),
            lambda error: self._error(job, error),
        )
        return True

    @property
    def history(self) -> HistoryStore | None:
        """The history the sends are recorded in (None while none is open)."""
        return self._history

    def set_history(self, history: HistoryStore | None) -> None:
        """Record the next sends in ``history`` (None: no history open, nothing is sent)."""
        self._history = history

    def recent_duplicates(self, attempt: NewAttempt) -> list[PayoutRecord]:
        """Payouts of the last 24 hours that ``attempt`` would repeat; one indexed query."""
        from cactus_desk.payouts.duplicates import find_recent_duplicates

        if self._history is None:
            return []
        return find_recent_duplicates(self._history, attempt)

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Block until no send is running (for shutdown and tests)."""
        return self._runner.wait_idle(msecs)

    def close(self) -> None:
        """Stop taking sends and close the HTTP clients (call after ``wait_idle``)."""
        self._closed = True
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for _, client in clients:
            client.close()

    def _done(self, job: SendJob, result: object) -> None:
        self._jobs.pop(job.profile.id, None)
        self.finished.emit(job, result)

    def _error(self, job: SendJob, error: BaseException) -> None:
        self._jobs.pop(job.profile.id, None)
        from cactus_desk.history.types import DuplicateRequestIdError
        from cactus_desk.payouts.submit import OutcomeNotSavedError

        id_used = True
        if isinstance(error, DuplicateRequestIdError | OutcomeNotSavedError):
            message = str(error)
        elif isinstance(error, ValueError):
            message = f"The payout was not sent: {error}"
            id_used = False
        elif isinstance(error, OSError):
            message = f"The payout was not sent: the history could not be written ({error})."
            id_used = False
        else:
            log.error("sending failed", exc_info=error)
            message = (
                f"Cactus Desk failed while sending ({type(error).__name__}). The payout may or "
                "may not have reached the gateway: check the history before sending it again."
            )
        self.failed.emit(job, message, id_used)

    # -- worker thread --------------------------------------------------------------------

    def _client(self, profile: Profile) -> CactusClient:
        """The profile's client, made on first use; a changed profile gets a new one."""
        from cactus_desk.gateway.client import CactusClient

        key = (profile.base_url, profile.ca_bundle, self._read_timeout_for(profile))
        with self._clients_lock:
            if self._closed:
                raise RuntimeError("Cactus Desk is closing; the payout was not sent.")
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
