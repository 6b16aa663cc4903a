"""The port of the payout history: every operation the rest of Cactus Desk may ask of it.

Callers depend on these protocols, never on an adapter; the SQLite file
(``history.sqlite.store.SqliteHistoryStore``) is one implementation, and a team store is meant
to be a second one running the same contract tests (``tests/history/contract``). Every
operation raises only ``history.types`` errors (``HistoryError`` and its subclasses), never a
database library's. Reads may be slow on a big history: the GUI calls them on a worker.

Each protocol is as narrow as one kind of caller needs, so a widget typed with
``HistoryReader`` shows it cannot write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cactus_desk.gateway.outcomes import PayoutOutcome
from cactus_desk.history.types import (
    BatchEntry,
    DayTotal,
    DuplicateProbe,
    HistoryFilter,
    HistoryRow,
    InterruptedAttempt,
    MaintenanceReport,
    ManualEvent,
    NewAttempt,
    PayoutDetails,
    PayoutRecord,
    PruneReport,
    ResendAudit,
    ResendStart,
    SortKey,
    TotalRow,
)
from cactus_desk.payouts.states import State

if TYPE_CHECKING:
    from cactus_desk.callbacks.events import Event, EventSource
    from cactus_desk.callbacks.rules import ApplyResult, Reason
    from cactus_desk.history.clerk import LocalZone


@runtime_checkable
class PayoutLedger(Protocol):
    """The send path: each operation is one short write transaction."""

    def now(self) -> int:
        """The store's clock in epoch milliseconds."""
        ...

    def create_attempt(self, attempt: NewAttempt) -> int:
        """Record ``attempt`` as SUBMITTING before anything is sent; its record id.

        Raises ``DuplicateRequestIdError`` when the request id is taken for the merchant/site.
        """
        ...

    def mark_sending(self, record_id: int) -> None:
        """Note durably that the request is about to leave; raises
        ``OutcomeAlreadyRecordedError`` when the record is not waiting to be sent."""
        ...

    def record_outcome(self, record_id: int, outcome: PayoutOutcome) -> None:
        """Give a SUBMITTING attempt its one outcome (an early callback's status is kept)."""
        ...

    def record_not_sent(self, record_id: int, reason: str, *, detail: str = "") -> None:
        """Mark a SUBMITTING attempt NOT_SENT: nothing left this computer."""
        ...

    def interrupted_attempts(self) -> list[InterruptedAttempt]:
        """Attempts still SUBMITTING: recovery settles them at start, under the instance lock."""
        ...

    def begin_resend(self, record_id: int, expected_state: State) -> ResendStart | None:
        """Audit a confirmed resend and put the record back to SUBMITTING; None (nothing
        changed) when it is gone or no longer in ``expected_state``."""
        ...

    def undo_resend(self, before: ResendStart, event: ManualEvent) -> int:
        """A resend that never left: restore ``before`` and append ``event``; its id."""
        ...

    def add_manual_event(self, event: ManualEvent) -> int:
        """Append an operator's event to a payout's audit trail; its id."""
        ...


@runtime_checkable
class StatusLedger(Protocol):
    """Callbacks and states set by hand: read, check and write inside one transaction."""

    def now(self) -> int:
        """The store's clock in epoch milliseconds."""
        ...

    def record_rejected_callback(
        self,
        payload: Mapping[str, Any],
        reason: Reason,
        *,
        source: EventSource = ...,
        request_id: str | None = None,
    ) -> ApplyResult:
        """Store a callback that was not verified (payload already bounded), with why."""
        ...

    def apply_verified_callback(
        self,
        payload: Mapping[str, Any],
        *,
        merchant_id: str | None = None,
        site_id: int | None = None,
        source: EventSource = ...,
    ) -> ApplyResult:
        """Match a verified callback to its payout and apply it: exactly one event."""
        ...

    def set_final_state(
        self, record_id: int, status: int, note: str, *, invoice_id: str | None, who: str
    ) -> int:
        """Settle a payout by hand (audited); the event id. Raises ``ReconcileError``."""
        ...


@runtime_checkable
class HistoryReader(Protocol):
    """Reads; any may be slow on a big history, so the GUI calls them on a worker."""

    def get(self, record_id: int) -> PayoutRecord:
        """One record; raises ``RecordNotFoundError``."""
        ...

    def details(self, record_id: int) -> PayoutDetails:
        """One record with its timeline and resend audit, from one snapshot."""
        ...

    def count(self, history_filter: HistoryFilter = ..., *, cap: int | None = None) -> int:
        """How many records match (at most ``cap`` when given)."""
        ...

    def page(
        self,
        history_filter: HistoryFilter = ...,
        sort: SortKey = ...,
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> list[HistoryRow]:
        """One page of matching rows in order; ties broken by id."""
        ...

    def iter_records(
        self, history_filter: HistoryFilter = ..., sort: SortKey = ..., descending: bool = True
    ) -> Iterator[PayoutRecord]:
        """Every matching record in order, streamed from one snapshot (the export stream)."""
        ...

    def rows_by_id(self, ids: Sequence[int]) -> list[HistoryRow]:
        """The list columns of these records (gone ones left out): the change watch."""
        ...

    def newest_record_id(self) -> int:
        """The highest record id, 0 when empty: live views find new rows above it."""
        ...

    def newest_event_id(self, record_id: int) -> int:
        """The id of the record's newest event, 0 when none: is a timeline stale?"""
        ...

    def events_for(self, record_id: int) -> list[Event]:
        """The record's timeline, oldest first."""
        ...

    def events_since(self, after_id: int = 0, limit: int = 1000) -> list[Event]:
        """Events newer than ``after_id``, oldest first."""
        ...

    def last_event_id(self) -> int:
        """The id of the newest event in the history (0 when there is none)."""
        ...

    def rejected_events(self, limit: int = 100) -> list[Event]:
        """The latest rejected callbacks, newest first."""
        ...

    def resend_history(self, record_id: int) -> list[ResendAudit]:
        """Every confirmed resend of the record, oldest first."""
        ...

    def recent_similar(self, probe: DuplicateProbe) -> list[PayoutRecord]:
        """Recent records like ``probe``, newest first: the duplicate guard's candidates."""
        ...

    def recent_similar_many(self, probes: Sequence[DuplicateProbe]) -> list[list[PayoutRecord]]:
        """``recent_similar`` for many probes in one index-backed lookup: the candidates of
        ``probes[i]`` at index ``i``, each newest first (a batch's duplicate check)."""
        ...

    def recent_amounts(
        self, environment: str, since: int, exclude_states: frozenset[State], limit: int
    ) -> frozenset[int] | None:
        """The amounts of ``environment``'s payouts created at or after ``since`` whose state
        is not one of ``exclude_states``; None when there are more than ``limit`` different
        ones. A batch's duplicate check probes only rows whose amount is among them."""
        ...

    def distinct_profiles(self) -> list[tuple[str, str]]:
        """``(profile_id, latest name)`` of every profile in the history."""
        ...

    def distinct_currencies(self) -> list[str]:
        """Every currency in the history, sorted."""
        ...

    def totals(self, history_filter: HistoryFilter) -> list[TotalRow]:
        """Per currency and state: how many payouts ``history_filter`` selects, and their sum;
        TotalsTooBroadError rather than a partial sum when they cannot be added up in time."""
        ...

    def daily_totals(
        self, history_filter: HistoryFilter, offset_ms: int = 0, zone: LocalZone | None = None
    ) -> list[DayTotal]:
        """Per day (``zone``'s local days, or UTC days shifted by ``offset_ms``) and currency:
        sent, paid and declined sums of the selected payouts, oldest first, at most
        ``MAX_CHART_DAYS``."""
        ...

    def data_version(self) -> int:
        """A cheap marker that changes whenever anyone commits (live views poll it)."""
        ...


@runtime_checkable
class HistoryMaintenance(Protocol):
    """Keeping the history healthy: integrity, pruning, closing."""

    @property
    def location(self) -> Path:
        """Where the history is kept (shown to people; the receiver watches it)."""
        ...

    def check_integrity(self, *, complete: bool = False) -> str | None:
        """Check the history; the problem, or None.

        By default the bounded start-up check, then the daily backup when due; ``complete``
        runs the whole check (seconds on a big history: in the background, on a worker).
        """
        ...

    def warm_up(self) -> None:
        """Read ahead what the history's sorts read most, so the first of them after opening
        does not wait on a cold disk (about a second at millions of payouts: on a worker).

        Raises ``HistoryClosedError`` once closed, ``HistoryUnavailableError``.
        """
        ...

    def run_maintenance(self, budget_ms: int = 40) -> MaintenanceReport:
        """Do a little background upkeep (index merges, WAL checkpoint) within ``budget_ms``.

        Writing processes call it about once a second from a worker, never from a GUI
        thread; it keeps that work off the write path. Raises ``HistoryUnavailableError``.
        """
        ...

    def back_up(self, reason: str) -> Path:
        """Take a backup now (older ones beyond the kept number go); where it is.

        ``reason`` is a short tag (``manual``, ``daily``). Raises ``BackupError``.
        """
        ...

    def prune_rejected(self, older_than_ms: int, who: str) -> PruneReport:
        """Delete unverified rejected callbacks older than ``older_than_ms``, audited."""
        ...

    def close(self) -> None:
        """Release the history; it cannot be used afterwards."""
        ...


@runtime_checkable
class BatchLedger(Protocol):
    """Batch files and their membership (the rows are found by their derived request ids)."""

    def record_batch(self, entry: BatchEntry) -> BatchEntry:
        """Keep ``entry`` unless its (merchant, site, batch id) is known; return the stored
        one (its ``created_at`` is the first import's)."""
        ...

    def batches_for_file(self, file_sha256: str) -> list[BatchEntry]:
        """Every batch imported from a file with this SHA-256, oldest first."""
        ...

    def recent_batches(self, limit: int = 100) -> list[BatchEntry]:
        """The ``limit`` most recently imported batches, newest first."""
        ...


class HistoryStore(
    PayoutLedger, StatusLedger, HistoryReader, HistoryMaintenance, BatchLedger, Protocol
):
    """The whole port: what an open history offers."""

    def __enter__(self) -> HistoryStore:
        """Use the store in a ``with`` block; it is closed at the end."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        ...
