"""A batch as one history entry: its file, profile, rows and counts per state, and batches
that stopped before every row was recorded (to resume from the same file)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cactus_desk.batch.store import batch_records
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import BatchEntry, PayoutRecord
from cactus_desk.payouts.states import State

RECENT_BATCHES = 50
IN_DOUBT = frozenset({State.SUBMITTING, State.UNKNOWN})


@dataclass(frozen=True)
class BatchSummary:
    """One batch with the rows the history holds for it, in line order."""

    entry: BatchEntry
    records: tuple[PayoutRecord, ...]

    @property
    def recorded(self) -> int:
        """Rows recorded in the history (each was sent, or settled as never sent)."""
        return len(self.records)

    @property
    def never_sent(self) -> int:
        """Rows of the file never recorded: never sent, so a resume sends them."""
        return max(0, self.entry.row_count - self.recorded)

    @property
    def in_doubt(self) -> int:
        """Rows left submitting or unknown: never resent automatically."""
        return sum(1 for record in self.records if record.state in IN_DOUBT)

    @property
    def interrupted(self) -> bool:
        """True when the batch stopped before every row of its file was recorded."""
        return self.never_sent > 0

    def state_counts(self) -> dict[State, int]:
        """How many of its recorded rows are in each state."""
        return dict(Counter(record.state for record in self.records))

    def totals_text(self) -> str:
        """``12 accepted, 1 unknown, 3 not recorded`` (rows per state)."""
        counts = self.state_counts()
        parts = [
            f"{counts[state]} {state.label.lower()}"
            for state in sorted(counts, key=lambda state: -counts[state])
        ]
        if self.never_sent:
            parts.append(f"{self.never_sent} never sent")
        return ", ".join(parts) or "nothing recorded"


def batch_summaries(history: HistoryStore, limit: int = RECENT_BATCHES) -> list[BatchSummary]:
    """The most recent batches, newest first, with their rows (worker thread)."""
    return [
        BatchSummary(entry, tuple(batch_records(history, entry.batch_id)))
        for entry in history.recent_batches(limit)
    ]


def interrupted_batches(
    history: HistoryStore, limit: int = RECENT_BATCHES, login: str = ""
) -> list[BatchSummary]:
    """Recent batches with rows never recorded (a kill, crash or cancel stopped them).

    ``login``: on a team history, only the batches that login began sending (another
    person's batch may be sending at their desk right now).
    """
    return [
        summary
        for summary in batch_summaries(history, limit)
        if summary.interrupted and (not login or summary.entry.created_by in ("", login))
    ]
