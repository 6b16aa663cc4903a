"""Reading a whole history to copy it elsewhere (``team import-history``), through the port.

A desk's own history is read only with the port's public reads (``iter_records``,
``resend_history``, ``events_since``), whatever adapter holds it, so copying it needs no SQL
of its own. Records come oldest first, each with its resend audit; events (record-less
rejected callbacks too) come in id order, a page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cactus_desk.callbacks.events import Event
from cactus_desk.history.port import HistoryReader
from cactus_desk.history.types import PayoutRecord, ResendAudit, SortKey

EVENT_PAGE = 1000


@dataclass(frozen=True)
class ImportReport:
    """What copying a history did: rows added, and rows found already there (skipped)."""

    payouts_imported: int = 0
    payouts_present: int = 0
    events_imported: int = 0
    events_present: int = 0
    resends_imported: int = 0
    resends_present: int = 0

    @property
    def imported(self) -> int:
        """Rows added, of every kind."""
        return self.payouts_imported + self.events_imported + self.resends_imported

    @property
    def present(self) -> int:
        """Rows that were there already, of every kind."""
        return self.payouts_present + self.events_present + self.resends_present


@dataclass(frozen=True)
class CopiedRecord:
    """One payout as its history holds it, with its confirmed resends."""

    record: PayoutRecord
    resends: tuple[ResendAudit, ...]


def records_with_resends(history: HistoryReader) -> Iterator[CopiedRecord]:
    """Every record of ``history``, oldest first, each with its resend audit."""
    for record in history.iter_records(sort=SortKey.CREATED_AT, descending=False):
        yield CopiedRecord(record, tuple(history.resend_history(record.id)))


def all_events(history: HistoryReader, page: int = EVENT_PAGE) -> Iterator[Event]:
    """Every event of ``history`` in id order (those without a record too)."""
    after = 0
    while True:
        batch = history.events_since(after, page)
        if not batch:
            return
        yield from batch
        after = batch[-1].id
