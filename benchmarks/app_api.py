"""Every name the benchmarks take from the product, in one place.

When a name of the history package moves, this is the one file to change. The benchmarks
drive the app through these high-level entry points only (the store's named operations, the
main window, the history panel and its widgets), so what they time is what a person using
the app waits for.
"""

from __future__ import annotations

from cactus_desk.history.clerk import local_zone
from cactus_desk.history.maintenance import MaintenanceThread
from cactus_desk.history.sqlite.backup import (
    backup_dir,
    daily_backup_due,
    daily_backup_if_due,
    list_backups,
    make_backup,
    prepare_history,
    prune_backups,
)
from cactus_desk.history.sqlite.migrations import (
    MIGRATIONS,
    build_local_totals,
    rebuild_counts,
    rebuild_search_index,
    reset_local_totals,
)
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.sqlite.store import SqliteHistoryStore as HistoryStore
from cactus_desk.history.types import HistoryFilter, NewAttempt, SortKey

SCHEMA_VERSION = len(MIGRATIONS)

__all__ = [
    "HISTORY_FILE",
    "SCHEMA_VERSION",
    "HistoryFilter",
    "HistoryStore",
    "MaintenanceThread",
    "NewAttempt",
    "SortKey",
    "backup_dir",
    "daily_backup_due",
    "daily_backup_if_due",
    "list_backups",
    "make_backup",
    "prepare_history",
    "prune_backups",
    "rebuild_counts",
    "rebuild_local_totals",
    "rebuild_search_index",
]


def rebuild_local_totals(conn: object) -> None:
    """Add every payout to the local-day and per-word totals in this process's time zone, in
    the caller's transaction (what the app's upkeep does in small steps after an upgrade)."""
    zone = local_zone()
    reset_local_totals(conn, zone.changes, zone.key)  # type: ignore[arg-type]
    while build_local_totals(conn, 100_000):  # type: ignore[arg-type]
        pass


def apply_filter_now(panel: object) -> None:
    """Apply what the history panel's filter widgets say, as its typing-delay timer does.

    The search box waits a short delay after the last key before it searches; the benchmarks
    start their clock where that delay ends, so they call what the timer calls.
    """
    panel._apply_filter()  # type: ignore[attr-defined]
