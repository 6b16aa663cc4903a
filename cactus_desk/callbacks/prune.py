"""Pruning old unverified callbacks: the one deletion the events table allows, and it is audited.

Forged or garbled callbacks are stored bounded, but a long flood still adds up. An operator
removes those older than a number of days; the removal itself is appended as an event (source
``manual``, the OS user, the cut-off and how many went), and verified events are never touched:
the table's delete trigger refuses them whatever the code asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from cactus_desk.callbacks.events import EventOutcome, EventSource, insert_event
from cactus_desk.callbacks.reconcile import current_user
from cactus_desk.payouts.migrations import PRUNABLE_REASONS
from cactus_desk.payouts.store import HistoryStore, iso_utc

DAY_MS = 86_400_000
MAX_DAYS = 36_500


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed and the event that records it."""

    deleted: int
    cutoff: int
    event_id: int

    def line(self) -> str:
        """One sentence for the command line and the log."""
        noun = "callback" if self.deleted == 1 else "callbacks"
        return (
            f"Removed {self.deleted} unverified rejected {noun} received before "
            f"{iso_utc(self.cutoff)} (audit event {self.event_id})."
        )


def prune_rejected(
    store: HistoryStore, older_than_days: int, who: str | None = None
) -> PruneReport:
    """Delete unverified rejected callbacks older than ``older_than_days`` and audit it."""
    if isinstance(older_than_days, bool) or not 0 <= older_than_days <= MAX_DAYS:
        raise ValueError(f"The age must be a whole number of days from 0 to {MAX_DAYS}.")
    who = who or current_user()
    reasons = ", ".join("?" * len(PRUNABLE_REASONS))
    with store.write_transaction() as conn:
        now = store.now()
        cutoff = now - older_than_days * DAY_MS
        cursor = conn.execute(
            f"DELETE FROM events WHERE outcome = ? AND reason IN ({reasons}) AND received_at < ?",
            (str(EventOutcome.REJECTED), *PRUNABLE_REASONS, cutoff),
        )
        deleted = max(cursor.rowcount, 0)
        event_id = insert_event(
            conn,
            received_at=now,
            source=EventSource.MANUAL,
            outcome=EventOutcome.PRUNED,
            payload={
                "action": "prune_rejected",
                "older_than_days": older_than_days,
                "cutoff": iso_utc(cutoff),
                "deleted": deleted,
                "reasons": list(PRUNABLE_REASONS),
            },
            message=f"Removed {deleted} unverified rejected callbacks older than "
            f"{older_than_days} days",
            who=who,
        )
    return PruneReport(deleted, cutoff, event_id)
