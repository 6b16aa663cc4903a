"""Opening the SQLite history file: check, back up, migrate, and the file-level recoveries.

This module sits above both ``store`` and ``backup`` (neither imports the other), so the
three no longer form an import circle.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import uuid
from pathlib import Path

from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite.migrations import MIGRATIONS, current_version
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import (
    BackupError,
    CorruptHistoryError,
    HistoryOpenError,
    OpenedHistory,
)
from cactus_desk.paths import ensure_private_dir

log = logging.getLogger(__name__)


def history_path(data_dir: Path) -> Path:
    """Where the history file of ``data_dir`` lives (the folder is created private)."""
    return ensure_private_dir(Path(data_dir)) / HISTORY_FILE


def open_store(data_dir: Path) -> SqliteHistoryStore:
    """Open (creating if needed) ``history.sqlite3`` in the data folder.

    First checks the file's integrity (a damaged one is set aside and
    ``CorruptHistoryError`` raised) and backs it up before a migration. The daily backup is
    left to the background (``backup.daily_backup_if_due``): nobody waits for it here.
    A history missing where one existed raises ``MissingHistoryError``: it is never
    replaced by an empty one.
    """
    path = history_path(data_dir)
    backup.resume_backups(path.parent)
    backup.prepare_history(path)
    store = SqliteHistoryStore(path)
    try:
        backup.remember_history(path.parent)
    except OSError as exc:  # the history itself is fine; only the marker is missing
        log.warning("the history could not be recorded: %s", exc)
    return store


def _schema_is_current(path: Path) -> bool | None:
    """True when ``path`` holds a history at the current schema, None when there is none yet,
    False when it needs the full open (a migration, or SQLite cannot read it)."""
    try:
        if path.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        conn = sqlite3.connect(path, timeout=10.0)
    except sqlite3.Error:
        return False
    try:
        return current_version(conn) == len(MIGRATIONS)
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def open_store_fast(data_dir: Path) -> OpenedHistory:
    """Open the history for the window: a current one without the slow checks (they are then
    due on a worker: ``check_pending``), anything else through ``open_store``."""
    path = history_path(data_dir)
    backup.resume_backups(path.parent)
    current = _schema_is_current(path)
    if current is not True:
        # No history yet (first start, or one gone missing: MissingHistoryError), or one that
        # needs the full open.
        return OpenedHistory(open_store(data_dir), check_pending=False)
    try:
        store = SqliteHistoryStore(path)
    except HistoryOpenError:
        # SQLite could not read it after all: the full open tells damage from a busy file.
        return OpenedHistory(open_store(data_dir), check_pending=False)
    with contextlib.suppress(OSError):  # a history from before the marker existed
        backup.remember_history(path.parent)
    return OpenedHistory(store, check_pending=True)


def set_damaged_aside(path: Path, problem: str) -> CorruptHistoryError:
    """Rename the damaged (and already closed) history aside; return the error to show.

    Raises ``HistoryOpenError`` when the file cannot be moved (it is then left as it is).
    """
    try:
        kept = backup.set_aside(Path(path))
    except OSError as exc:
        raise HistoryOpenError(
            f"The payout history is damaged ({problem}) and could not be moved aside ({exc}). "
            "Cactus Desk did not change it; close other programs using it and start again."
        ) from exc
    log.error("payout history damaged (%s); kept aside as %s", problem, kept.name)
    return CorruptHistoryError(problem, kept, backup.newest_backup(Path(path).parent))


def restore_and_open(data_dir: Path, backup_path: Path) -> SqliteHistoryStore:
    """Put ``backup_path`` in place of the missing history and open it."""
    return SqliteHistoryStore(backup.restore_backup(data_dir, backup_path))


def start_new_history(data_dir: Path) -> SqliteHistoryStore:
    """Start a new, empty history on the person's explicit choice; return it open.

    Only where no history is in place: files set aside and backups stay as they are, and the
    marker records the new history's id. Raises ``BackupError``.
    """
    data_dir = ensure_private_dir(Path(data_dir))
    history = data_dir / HISTORY_FILE
    try:
        in_place = history.stat().st_size > 0
    except FileNotFoundError:
        in_place = False
    if in_place:
        raise BackupError(f"A history is already in place at {history}; it was left as it is.")
    store = SqliteHistoryStore(history)
    try:
        backup._write_marker(data_dir, uuid.uuid4().hex)
    except OSError as exc:
        store.close()
        raise BackupError(f"The new history could not be recorded in {data_dir}: {exc}") from exc
    return store
