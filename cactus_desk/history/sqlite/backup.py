"""Keeping the payout history safe on disk: integrity checks, rolling backups and restore.

Backups are taken with SQLite's online backup API (a consistent copy even while another
process writes), before every schema migration and once a day, into ``backups/`` in the data
folder; the newest ``KEEP`` are kept. A history that fails its integrity check is never
overwritten or replaced by an empty one: it is renamed aside and ``CorruptHistoryError``
names the newest backup, which ``restore_backup`` puts in its place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cactus_desk.history.sqlite.migrations import MIGRATIONS, current_version
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.types import (
    BACKUP_NAME,
    BackupError,
    CorruptHistoryError,
    HistoryOpenError,
    MissingHistoryError,
    backup_time_ms,
)
from cactus_desk.paths import ensure_private_dir

BACKUP_DIR = "backups"
# Beside the history: says that a history was created in this folder, and which one. With it
# (or a file set aside, or a backup) a missing history is a loss to restore, not a first start.
HISTORY_MARKER = "history.id"
_SET_ASIDE = re.compile(rf"^{re.escape(HISTORY_FILE)}\.(corrupt|replaced)-\d{{8}}T\d{{9}}Z$")
KEEP = 7
DAY_MS = 24 * 3600 * 1000
# integrity_check also cross-checks every index: 13-17 s at a million payouts (877 MB),
# against 2 s for quick_check, which still reads every page and record. Above this size the
# start-up check is the quick one, so opening a large history does not stall.
FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024
_NAME = BACKUP_NAME
# SQLite's result codes for a damaged file, as opposed to one that is busy or unreadable.
_DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def _stamp(now_ms: int) -> str:
    moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{now_ms % 1000:03d}Z"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def backup_dir(data_dir: Path) -> Path:
    """The folder the backups of ``data_dir``'s history are kept in."""
    return Path(data_dir) / BACKUP_DIR


def list_backups(data_dir: Path) -> list[Path]:
    """The backups in ``data_dir``, newest first."""
    folder = backup_dir(data_dir)
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if _NAME.match(path.name) and path.is_file()]
    return sorted(found, key=lambda path: path.name, reverse=True)


def newest_backup(data_dir: Path) -> Path | None:
    """The newest backup in ``data_dir``, or None."""
    backups = list_backups(data_dir)
    return backups[0] if backups else None


def _create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _copy_database(source: sqlite3.Connection, target: Path) -> None:
    """Copy ``source`` into the new file ``target`` (0600) as a self-contained database."""
    _create_private(target)
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        source.backup(copy)
        # The copy inherits WAL mode; a rollback journal keeps it one file on its own.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


def make_backup(history: Path, reason: str, *, now_ms: int | None = None) -> Path:
    """Back up the history file ``history`` now; return the new backup's path.

    ``reason`` is a short tag for the name (``daily``, ``before-v3``). Older backups beyond
    ``KEEP`` are deleted. Raises ``BackupError``.
    """
    history = Path(history)
    folder = backup_dir(history.parent)
    try:
        ensure_private_dir(folder)
    except OSError as exc:
        raise BackupError(f"The payout history could not be backed up to {folder}: {exc}") from exc
    stamp_ms = _now_ms() if now_ms is None else now_ms
    while True:
        target = folder / f"history-{_stamp(stamp_ms)}-{reason}.sqlite3"
        if not target.exists():
            break
        stamp_ms += 1  # two backups in one millisecond: never overwrite one
    partial = folder / f".{target.name}.partial"
    source = sqlite3.connect(history, timeout=10.0)
    try:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        _copy_database(source, partial)
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise BackupError(f"The payout history could not be backed up to {folder}: {exc}") from exc
    finally:
        source.close()
    prune_backups(history.parent)
    return target


def prune_backups(data_dir: Path, keep: int = KEEP) -> list[Path]:
    """Delete all but the newest ``keep`` backups; return the deleted paths."""
    removed = list_backups(data_dir)[keep:]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return removed


def _is_damage(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return any(name.startswith(code) for code in _DAMAGED)
    return not isinstance(exc, sqlite3.OperationalError)


def integrity_problem(conn: sqlite3.Connection, *, full: bool = True) -> str | None:
    """Run ``PRAGMA integrity_check`` (``quick_check`` when not ``full``); return SQLite's
    first complaints, or None when the file is sound."""
    pragma = "integrity_check" if full else "quick_check"
    rows = conn.execute(f"PRAGMA {pragma}(5)").fetchall()
    messages = [str(row[0]) for row in rows]
    if messages == ["ok"]:
        return None
    return "; ".join(messages) or "the integrity check returned nothing"


def set_aside(history: Path, label: str = "corrupt", *, now_ms: int | None = None) -> Path:
    """Rename ``history`` (and its -wal/-shm files) to ``<name>.<label>-<time>``; return it."""
    stamp_ms = _now_ms() if now_ms is None else now_ms
    while True:
        kept = history.with_name(f"{history.name}.{label}-{_stamp(stamp_ms)}")
        if not kept.exists():
            break
        stamp_ms += 1
    # The sidecars first: a main file next to a stranger's WAL would be misread.
    for sidecar in ("-wal", "-shm"):
        side = Path(f"{history}{sidecar}")
        if side.exists():
            os.replace(side, Path(f"{kept}{sidecar}"))
    if history.exists():
        os.replace(history, kept)
    return kept


def _raise_corrupt(history: Path, problem: str) -> None:
    try:
        kept = set_aside(history)
    except OSError as exc:
        raise HistoryOpenError(
            f"The payout history is damaged ({problem}) and could not be moved aside ({exc}). "
            "Cactus Desk did not change it."
        ) from exc
    raise CorruptHistoryError(problem, kept, newest_backup(history.parent))


def prepare_history(history: Path, *, now_ms: int | None = None) -> Path | None:
    """Check ``history`` before it is opened: integrity first, then any backup that is due.

    Returns the backup made (before a pending migration, or the daily one), or None. Raises
    ``CorruptHistoryError`` after setting a damaged file aside, ``HistoryOpenError`` when
    the file cannot be read at all, and ``BackupError`` when a backup before a migration
    fails (the migration must not run without one).
    """
    history = Path(history)
    require_history_or_first_start(history)
    try:
        size = history.stat().st_size
        if size == 0:
            return None  # a brand-new history: nothing to check or keep
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HistoryOpenError(f"The payout history cannot be opened: {exc}") from exc
    try:
        conn = sqlite3.connect(history, timeout=10.0)
    except sqlite3.Error as exc:
        raise HistoryOpenError(f"The payout history cannot be opened: {exc}") from exc
    try:
        problem = integrity_problem(conn, full=size <= FULL_CHECK_MAX_BYTES)
        version = current_version(conn)
        has_payouts = version > 0 and conn.execute("SELECT 1 FROM payouts LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        if not _is_damage(exc):
            raise HistoryOpenError(f"The payout history cannot be opened: {exc}") from exc
        _raise_corrupt(history, str(exc))
    conn.close()
    if problem is not None:
        _raise_corrupt(history, problem)
    if version == 0:
        # A database with no history in it where a history existed is a loss, not a start.
        error = _missing_history_error(history)
        if error is not None:
            raise error
    stamp_ms = _now_ms() if now_ms is None else now_ms
    if 0 < version < len(MIGRATIONS):
        return make_backup(history, f"before-v{len(MIGRATIONS)}", now_ms=stamp_ms)
    if has_payouts and _daily_due(history.parent, stamp_ms):
        try:
            return make_backup(history, "daily", now_ms=stamp_ms)
        except BackupError:
            return None  # a missed daily backup must not keep anyone from their history
    return None


def _daily_due(data_dir: Path, now_ms: int) -> bool:
    newest = newest_backup(data_dir)
    taken = None if newest is None else backup_time_ms(newest)
    return taken is None or now_ms - taken >= DAY_MS or taken > now_ms


def restore_backup(data_dir: Path, backup_path: Path) -> Path:
    """Put ``backup_path`` in place as the history of ``data_dir``; return the history path.

    The backup is checked first. A history file already in place is renamed aside
    (``history.sqlite3.replaced-<time>``), never overwritten. Close every ``HistoryStore``
    on the folder before calling. Raises ``BackupError`` with a plain message.
    """
    data_dir = Path(data_dir)
    backup_path = Path(backup_path)
    if not backup_path.is_file():
        raise BackupError(f"The backup {backup_path} does not exist.")
    try:
        source = sqlite3.connect(f"file:{backup_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"The backup {backup_path.name} cannot be opened: {exc}") from exc
    try:
        try:
            problem = integrity_problem(source)
            version = current_version(source)
        except sqlite3.Error as exc:
            problem, version = str(exc), 0
        if problem is not None:
            raise BackupError(f"The backup {backup_path.name} is damaged too ({problem}).")
        if version == 0:
            raise BackupError(f"{backup_path.name} is not a Cactus Desk payout history.")
        ensure_private_dir(data_dir)
        history = data_dir / HISTORY_FILE
        partial = data_dir / f".{HISTORY_FILE}.restoring"
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        try:
            _copy_database(source, partial)
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise BackupError(f"The backup could not be copied into {data_dir}: {exc}") from exc
    finally:
        source.close()
    if history.exists() or Path(f"{history}-wal").exists():
        set_aside(history, "replaced")
    os.replace(partial, history)
    return history


def marker_path(data_dir: Path) -> Path:
    """The file that records the history created in ``data_dir`` (its id and time)."""
    return Path(data_dir) / HISTORY_MARKER


def read_marker(data_dir: Path) -> dict[str, str] | None:
    """The recorded history (``history_id``, ``created_at``), None when none was recorded.

    A marker that cannot be read still counts: something recorded a history here.
    """
    path = marker_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return {"history_id": f"unreadable ({exc.__class__.__name__})", "created_at": "?"}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {"history_id": "unreadable", "created_at": "?"}
    return {
        "history_id": str(data.get("history_id", "?"))[:64],
        "created_at": str(data.get("created_at", "?"))[:64],
    }


def _write_marker(data_dir: Path, history_id: str) -> None:
    path = marker_path(data_dir)
    document = {
        "history_id": history_id,
        "created_at": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "file": HISTORY_FILE,
    }
    partial = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def remember_history(data_dir: Path) -> None:
    """Record that ``data_dir`` has a history, unless that is recorded already.

    Raises ``OSError`` when the marker cannot be written.
    """
    if not marker_path(data_dir).exists():
        _write_marker(data_dir, uuid.uuid4().hex)


def set_aside_files(data_dir: Path) -> list[Path]:
    """Histories set aside in ``data_dir`` (damaged or replaced ones), newest first."""
    try:
        found = [p for p in Path(data_dir).iterdir() if _SET_ASIDE.match(p.name)]
    except OSError:
        return []
    return sorted(found, key=lambda path: path.name.rsplit("-", 1)[-1], reverse=True)


def history_evidence(data_dir: Path) -> list[str]:
    """What shows that ``data_dir`` had a history: a recorded id, files set aside, backups."""
    evidence = []
    marker = read_marker(data_dir)
    if marker is not None:
        evidence.append(
            f"history {marker['history_id']} was created on {marker['created_at']}, "
            f"as recorded in {HISTORY_MARKER}"
        )
    kept = set_aside_files(data_dir)
    if kept:
        more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
        evidence.append(f"kept aside: {kept[0].name}{more}")
    backups = list_backups(data_dir)
    if backups:
        evidence.append(f"{len(backups)} backup(s) in {BACKUP_DIR}/")
    return evidence


def _missing_history_error(history: Path) -> MissingHistoryError | None:
    evidence = history_evidence(history.parent)
    if not evidence:
        return None
    kept = set_aside_files(history.parent)
    return MissingHistoryError(
        history, evidence, kept[0] if kept else None, newest_backup(history.parent)
    )


def require_history_or_first_start(history: Path) -> None:
    """Raise ``MissingHistoryError`` when ``history`` is absent or empty but one existed before.

    A folder that never had a history (no marker, nothing set aside, no backup) passes: a
    new history may be created there.
    """
    history = Path(history)
    try:
        if history.stat().st_size > 0:
            return
    except FileNotFoundError:
        pass
    error = _missing_history_error(history)
    if error is not None:
        raise error
