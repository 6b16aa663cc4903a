"""Pruning old unverified callbacks: the one deletion the events table allows, and it is audited.

Forged or garbled callbacks are stored bounded, but a long flood still adds up. An operator
removes those older than a number of days; the removal itself is appended as an event (source
``manual``, the OS user, the cut-off and how many went), and verified events are never touched:
the table's delete trigger refuses them whatever the code asks.
"""

from __future__ import annotations

from cactus_desk.callbacks.reconcile import current_user
from cactus_desk.callbacks.rules import DAY_MS
from cactus_desk.history.port import HistoryMaintenance
from cactus_desk.history.types import PruneReport

__all__ = ["DAY_MS", "MAX_DAYS", "PruneReport", "prune_rejected"]

MAX_DAYS = 36_500


def prune_rejected(
    store: HistoryMaintenance, older_than_days: int, who: str | None = None
) -> PruneReport:
    """Delete unverified rejected callbacks older than ``older_than_days`` and audit it."""
    if isinstance(older_than_days, bool) or not 0 <= older_than_days <= MAX_DAYS:
        raise ValueError(f"The age must be a whole number of days from 0 to {MAX_DAYS}.")
    return store.prune_rejected(older_than_days * DAY_MS, who or current_user())
