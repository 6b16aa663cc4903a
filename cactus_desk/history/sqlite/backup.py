"""Keeping the payout history safe on disk: integrity checks, rolling backups and restore.

Backups are taken with SQLite's online backup API (a consistent copy even while another
process writes), before every schema migration and once a day, into ``backups/`` in the data
folder, then gzip-compressed as a stream (a quarter to a fifth of the file) and read back
whole before they count. Retention is by size: the newest backups are kept while all of them
together fit in ``BUDGET_RATIO`` times the history's size (and at most ``KEEP``); the newest
is always kept, and older ones go only after a new one is verified. Plain ``.sqlite3`` backups
of earlier versions are still listed and restored. A history that fails its integrity check is never
overwritten or replaced by an empty one: it is renamed aside and ``CorruptHistoryError``
names the newest backup, which ``restore_backup`` puts in its place.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
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

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"
# Beside the history: says that a history was created in this folder, and which one. With it
# (or a file set aside, or a backup) a missing history is a loss to restore, not a first start.
HISTORY_MARKER = "history.id"
_SET_ASIDE = re.compile(rf"^{re.escape(HISTORY_FILE)}\.(corrupt|replaced)-\d{{8}}T\d{{9}}Z$")
KEEP = 7
# All backups together stay within this many times the history's size (file plus WAL).
BUDGET_RATIO = 2.0
# Fast compression: an SQLite file compresses to about a quarter even at level 1, and level 6
# takes two to four times as long for a few per cent more.
_GZIP_LEVEL = 1
_CHUNK = 1024 * 1024
# Compressing and verifying read the file in big unbuffered chunks; zlib's window bits for the
# gzip wrapper (a standard .gz, as gzip.open reads it).
_STREAM_CHUNK = 8 * 1024 * 1024
_GZIP_WBITS = 31
# Pages copied per step of SQLite's backup API (16 MB at 4 KB pages): between steps a backup
# that is abandoned (the window quits, the receiver stops) stops within a fraction of a second.
_COPY_PAGES = 4096
COMPRESSED_SUFFIX = ".gz"
DAY_MS = 24 * 3600 * 1000
# integrity_check also cross-checks every index: 13-17 s at a million payouts (877 MB),
# against 2 s for quick_check, which still reads every page and record. Above this size the
# start-up check is the quick one, so opening a large history does not stall.
FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024
# The check before a history opens is bounded: the schema and the newest records are read,
# then the check above runs for at most this long. A small history is checked to the end in
# that time; a big one (quick_check takes 2 s at a million payouts, ten at five million) gets
# its complete check later, in the background (``check_integrity(complete=True)``).
STARTUP_CHECK_BUDGET_MS = 300
_NEWEST_ROWS = 200
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


class BackupAbandoned(BackupError):
    """A backup in progress was abandoned (the process is stopping); nothing was kept."""


StopCheck = Callable[[], bool]
_running_lock = threading.Lock()
_running: dict[Path, set[threading.Event]] = {}
# Folders whose backups were abandoned (their window is closing), until a history is opened
# there again: a backup that would start just after the abandon stops at once too.
_abandoned: set[Path] = set()


def abandon_backups(data_dir: Path) -> None:
    """Stop every backup of ``data_dir``'s history in progress in this process, and any that
    starts before the history is opened again (``resume_backups``).

    Each stops at its next step (a fraction of a second), removes its partial files and
    raises ``BackupAbandoned``; the backups already kept are untouched. For shutting down.
    """
    key = backup_dir(data_dir).resolve()
    with _running_lock:
        _abandoned.add(key)
        for event in _running.get(key, ()):
            event.set()


def resume_backups(data_dir: Path) -> None:
    """Let backups of ``data_dir``'s history run again (it is being opened)."""
    with _running_lock:
        _abandoned.discard(backup_dir(data_dir).resolve())


@contextlib.contextmanager
def _registered(folder: Path, should_stop: StopCheck | None) -> Iterator[StopCheck]:
    event = threading.Event()
    key = folder.resolve()
    with _running_lock:
        _running.setdefault(key, set()).add(event)
        if key in _abandoned:
            event.set()
    try:
        yield lambda: event.is_set() or (should_stop is not None and should_stop())
    finally:
        with _running_lock:
            _running[key].discard(event)
            if not _running[key]:
                del _running[key]


def _check_stop(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise BackupAbandoned("The backup was abandoned: Cactus Desk is stopping.")


def _copy_database(
    source: sqlite3.Connection,
    target: Path,
    should_stop: StopCheck | None = None,
    *,
    durable: bool = True,
) -> None:
    """Copy ``source`` into the new file ``target`` (0600) as a self-contained database.

    The copy runs in steps inside one read transaction of ``source``: one snapshot, so writes
    by other connections neither restart it nor wait for it (the history is in WAL mode), and
    an abandoned copy stops between steps. A copy that is not ``durable`` (a snapshot about to
    be compressed, whose compressed form is what gets synced) skips SQLite's syncs. Raises
    ``BackupAbandoned`` when ``should_stop``.
    """
    _create_private(target)
    copy = sqlite3.connect(target, isolation_level=None)
    began = False
    try:
        if not durable:
            copy.execute("PRAGMA synchronous=OFF")
        if not source.in_transaction:
            # Without a transaction of its own, every step would take a new snapshot and any
            # write elsewhere would restart the copy: under steady callbacks, forever.
            source.execute("BEGIN")
            began = True
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()

        def progress(_status: int, _remaining: int, _total: int) -> None:
            _check_stop(should_stop)

        _check_stop(should_stop)
        source.backup(copy, pages=_COPY_PAGES, progress=progress)
        # The copy inherits WAL mode; a rollback journal keeps it one file on its own.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        if began and source.in_transaction:
            source.execute("COMMIT")
        copy.close()


def make_backup(
    history: Path,
    reason: str,
    *,
    now_ms: int | None = None,
    should_stop: StopCheck | None = None,
) -> Path:
    """Back up the history file ``history`` now; return the new backup's path.

    ``reason`` is a short tag for the name (``daily``, ``before-v3``). The copy is compressed
    and read back whole before it counts; only then are older backups pruned to the size
    budget (``prune_backups``). Slow on a big history (most of a minute at a million
    payouts): call on a worker where a person waits. ``should_stop`` (or ``abandon_backups``)
    abandons it within a step: its partial files are removed and ``BackupAbandoned`` raised.
    Raises ``BackupError``.
    """
    history = Path(history)
    folder = backup_dir(history.parent)
    try:
        ensure_private_dir(folder)
    except OSError as exc:
        raise BackupError(f"The payout history could not be backed up to {folder}: {exc}") from exc
    stamp_ms = _now_ms() if now_ms is None else now_ms
    while True:
        name = f"history-{_stamp(stamp_ms)}-{reason}.sqlite3"
        target = folder / f"{name}{COMPRESSED_SUFFIX}"
        if not target.exists() and not (folder / name).exists():
            break
        stamp_ms += 1  # two backups in one millisecond: never overwrite one
    # Partial files of this call alone: another backup of the folder may run meanwhile (the
    # window's start-up check and its daily timer, or the receiver's upkeep in a process of
    # its own), and the same millisecond gives it the same name.
    mine = uuid.uuid4().hex[:12]
    snapshot = folder / f".{name}.{mine}.partial"
    packed = folder / f".{target.name}.{mine}.partial"
    with _registered(folder, should_stop) as stop:
        source = sqlite3.connect(history, timeout=10.0, isolation_level=None)
        try:
            for leftover in (snapshot, packed):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            _copy_database(source, snapshot, stop, durable=False)
            source.close()
            _compress(snapshot, packed, stop)
            _verify_compressed(packed, stop)
            _check_stop(stop)
            os.replace(packed, target)
            _fsync_dir(folder)
        except BackupAbandoned:
            log.info("a %s backup in progress was abandoned", reason)
            raise
        except (sqlite3.Error, OSError, EOFError, zlib.error) as exc:
            raise BackupError(
                f"The payout history could not be backed up to {folder}: {exc}"
            ) from exc
        finally:
            source.close()
            for leftover in (snapshot, packed):
                with contextlib.suppress(OSError):
                    leftover.unlink()
    prune_backups(history.parent)
    return target


def _compress(source: Path, target: Path, should_stop: StopCheck | None = None) -> None:
    """Stream ``source`` into the new private gzip file ``target``, synced to disk.

    zlib itself writes the gzip wrapper and its CRC (``wbits`` 31), fed big unbuffered
    chunks: about a third faster than ``gzip.GzipFile``'s buffered writes, the same format.
    """
    _create_private(target)
    packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS, 9)
    with open(source, "rb", buffering=0) as raw, open(target, "r+b", buffering=0) as out:
        while chunk := raw.read(_STREAM_CHUNK):
            _check_stop(should_stop)
            _write_all(out, packer.compress(chunk))
        _write_all(out, packer.flush())
        os.fsync(out.fileno())


def _write_all(out: io.RawIOBase, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = out.write(view)
        if not written:
            raise OSError("the backup could not be written")
        view = view[written:]


def _verify_compressed(path: Path, should_stop: StopCheck | None = None) -> int:
    """Read the gzip file ``path`` to its end (zlib checks its CRC and length); its size
    unpacked.

    Raises ``EOFError`` (cut short), ``zlib.error`` (damaged, or bytes after its end) or
    ``BackupAbandoned``.
    """
    unpacker = zlib.decompressobj(_GZIP_WBITS)
    size = 0
    with open(path, "rb", buffering=0) as raw:
        while chunk := raw.read(_CHUNK):
            while chunk:  # bounded pieces: empty pages unpack a thousandfold
                _check_stop(should_stop)
                size += len(unpacker.decompress(chunk, _STREAM_CHUNK))
                chunk = unpacker.unconsumed_tail
    size += len(unpacker.flush())
    if not unpacker.eof:
        raise EOFError("the compressed backup ends before its data does")
    if unpacker.unused_data:
        raise zlib.error("the compressed backup has bytes after its end")
    return size


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def history_size(data_dir: Path) -> int:
    """The size of the history in ``data_dir`` on disk: its file plus its WAL (0 if none)."""
    total = 0
    for name in (HISTORY_FILE, f"{HISTORY_FILE}-wal"):
        with contextlib.suppress(OSError):
            total += (Path(data_dir) / name).stat().st_size
    return total


def prune_backups(
    data_dir: Path, keep: int = KEEP, *, budget_bytes: int | None = None
) -> list[Path]:
    """Keep the newest backups that fit the budget; delete the rest; return the deleted paths.

    Newest first, a backup is kept while the kept ones together take at most
    ``budget_bytes`` (default ``BUDGET_RATIO`` × the history's size) and fewer than ``keep``
    are kept; the first one that does not fit and every older one go. The newest backup is
    always kept, whatever its size.
    """
    if budget_bytes is None:
        budget_bytes = int(BUDGET_RATIO * history_size(data_dir))
    backups = list_backups(data_dir)
    total = 0
    removed: list[Path] = []
    for index, path in enumerate(backups):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
        if index == 0 or (index < keep and total <= budget_bytes):
            continue
        removed = backups[index:]
        break
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


def bounded_problem(
    conn: sqlite3.Connection, *, full: bool, budget_ms: int | None = None
) -> tuple[str | None, bool]:
    """The start-up check: ``(problem, complete)``.

    Reads the schema and the newest payouts (where damage would meet the next send first),
    then runs ``integrity_problem`` until ``budget_ms`` (default ``STARTUP_CHECK_BUDGET_MS``)
    is spent; ``complete`` is False when
    the time ran out first (no problem found so far). Raises ``sqlite3.Error`` as the reads do.
    """
    conn.execute("PRAGMA schema_version").fetchone()
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "payouts" in tables:
        conn.execute("SELECT * FROM payouts ORDER BY id DESC LIMIT ?", (_NEWEST_ROWS,)).fetchall()
    # quick_check does its work inside one VDBE step, where a progress handler is never called;
    # sqlite3_interrupt (safe from another thread) stops it.
    budget = STARTUP_CHECK_BUDGET_MS if budget_ms is None else budget_ms
    timer = threading.Timer(budget / 1000, conn.interrupt)
    timer.start()
    try:
        return integrity_problem(conn, full=full), True
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_INTERRUPT":
            raise
        return None, False
    finally:
        timer.cancel()
        timer.join()


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
    """Check ``history`` before it is opened: integrity first, then the backup a pending
    migration needs.

    Returns the backup made before a migration, or None. The daily backup is never taken
    here (it takes most of a minute on a big history, and commands open the history with a
    person waiting): the window's worker and the receiver's upkeep thread take it
    (``daily_backup_if_due``). Raises
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
        problem, complete = bounded_problem(conn, full=size <= FULL_CHECK_MAX_BYTES)
        version = current_version(conn)
    except sqlite3.Error as exc:
        conn.close()
        if not _is_damage(exc):
            raise HistoryOpenError(f"The payout history cannot be opened: {exc}") from exc
        _raise_corrupt(history, str(exc))
    conn.close()
    if problem is not None:
        _raise_corrupt(history, problem)
    if not complete:
        log.info("the start-up check of the history was bounded; the complete one runs later")
    if version == 0:
        # A database with no history in it where a history existed is a loss, not a start.
        error = _missing_history_error(history)
        if error is not None:
            raise error
    stamp_ms = _now_ms() if now_ms is None else now_ms
    if 0 < version < len(MIGRATIONS):
        return make_backup(history, f"before-v{len(MIGRATIONS)}", now_ms=stamp_ms)
    return None


def daily_backup_due(data_dir: Path, now_ms: int | None = None) -> bool:
    """True when the newest backup of ``data_dir`` is a day old or more (or from the future,
    or there is none). Cheap: it lists the backup folder."""
    stamp_ms = _now_ms() if now_ms is None else now_ms
    newest = newest_backup(data_dir)
    taken = None if newest is None else backup_time_ms(newest)
    return taken is None or stamp_ms - taken >= DAY_MS or taken > stamp_ms


def daily_backup_if_due(
    history: Path, *, now_ms: int | None = None, should_stop: StopCheck | None = None
) -> Path | None:
    """Take the daily backup of ``history`` when one is due and it holds payouts; the new
    backup, or None when none was due.

    Slow on a big history: only on a background thread (the window's worker, the receiver's
    upkeep thread). Raises ``BackupError`` (``BackupAbandoned`` when ``should_stop``).
    """
    history = Path(history)
    stamp_ms = _now_ms() if now_ms is None else now_ms
    if not history.is_file() or not daily_backup_due(history.parent, stamp_ms):
        return None
    try:
        conn = sqlite3.connect(history, timeout=10.0)
        try:
            has_payouts = conn.execute("SELECT 1 FROM payouts LIMIT 1").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"The payout history could not be backed up: {exc}") from exc
    if not has_payouts:
        return None
    return make_backup(history, "daily", now_ms=stamp_ms, should_stop=should_stop)


def restore_backup(data_dir: Path, backup_path: Path) -> Path:
    """Put ``backup_path`` in place as the history of ``data_dir``; return the history path.

    A compressed backup is unpacked first (one cut short or damaged is refused); either kind
    is checked before it is used. A history file already in place is renamed aside
    (``history.sqlite3.replaced-<time>``), never overwritten. Close every ``HistoryStore``
    on the folder before calling. Raises ``BackupError`` with a plain message.
    """
    data_dir = Path(data_dir)
    backup_path = Path(backup_path)
    if not backup_path.is_file():
        raise BackupError(f"The backup {backup_path} does not exist.")
    try:
        ensure_private_dir(data_dir)
    except OSError as exc:
        raise BackupError(f"The backup could not be copied into {data_dir}: {exc}") from exc
    history = data_dir / HISTORY_FILE
    partial = data_dir / f".{HISTORY_FILE}.restoring"
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        if _is_compressed(backup_path):
            _unpack_backup(backup_path, partial)
            _check_backup(partial, backup_path.name)
        else:
            _copy_plain_backup(backup_path, partial)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    if history.exists() or Path(f"{history}-wal").exists():
        set_aside(history, "replaced")
    os.replace(partial, history)
    return history


def _is_compressed(path: Path) -> bool:
    """True for a gzip file (by its first bytes, whatever its name)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise BackupError(f"The backup {path.name} cannot be read: {exc}") from exc


def _unpack_backup(backup_path: Path, target: Path) -> None:
    try:
        _create_private(target)
        with gzip.open(backup_path, "rb") as packed, open(target, "r+b") as out:
            while chunk := packed.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError(
            f"The backup {backup_path.name} is damaged or incomplete ({exc}); it was not "
            "used. Choose an older backup."
        ) from exc
    except OSError as exc:
        raise BackupError(f"The backup {backup_path.name} could not be unpacked: {exc}") from exc


def _check_backup(path: Path, name: str) -> None:
    """Refuse the unpacked backup at ``path`` unless it is a sound Cactus Desk history."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"The backup {name} cannot be opened: {exc}") from exc
    try:
        try:
            problem = integrity_problem(conn)
            version = current_version(conn)
        except sqlite3.Error as exc:
            problem, version = str(exc), 0
    finally:
        conn.close()
    if problem is not None:
        raise BackupError(f"The backup {name} is damaged too ({problem}).")
    if version == 0:
        raise BackupError(f"{name} is not a Cactus Desk payout history.")


def _copy_plain_backup(backup_path: Path, partial: Path) -> None:
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
        try:
            _copy_database(source, partial)
        except (sqlite3.Error, OSError) as exc:
            raise BackupError(
                f"The backup could not be copied into {partial.parent}: {exc}"
            ) from exc
    finally:
        source.close()


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
