"""The history on disk: backups, damage kept aside and restored, one window per folder."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite.backup import (
    KEEP,
    daily_backup_if_due,
    list_backups,
    make_backup,
    prepare_history,
    restore_backup,
)
from cactus_desk.history.sqlite.migrations import MIGRATIONS, migrate
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import (
    BackupError,
    CorruptHistoryError,
    DuplicateRequestIdError,
    HistoryOpenError,
)
from cactus_desk.instance_lock import InstanceLock
from cactus_desk.payouts.states import State
from tests.safety.helpers import attempt, card_request

DAY_MS = 24 * 3600 * 1000
T0 = 1_750_000_000_000


def _add(store: HistoryStore, request_id: str) -> int:
    return store.create_attempt(attempt("https://gw.test", card_request(request_id)))


def _history(data_home: Path, *request_ids: str) -> Path:
    with open_history(data_home) as store:
        for request_id in request_ids:
            _add(store, request_id)
    return data_home / HISTORY_FILE


def _request_ids(path: Path) -> list[str]:
    if path.name.endswith(".gz"):  # a compressed backup: read an unpacked copy
        plain = path.with_name(f"{path.name}.unpacked")
        with gzip.open(path, "rb") as packed, plain.open("wb") as out:
            shutil.copyfileobj(packed, out)
        try:
            return _request_ids(plain)
        finally:
            plain.unlink()
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT request_id FROM payouts ORDER BY id")]
    finally:
        conn.close()


def _damage(path: Path) -> None:
    """Overwrite the middle of the file, where the tables' pages are, with garbage."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\xde\xad\xbe\xef" * 1024)


def test_request_ids_are_unique_per_site_in_the_schema(data_home: Path) -> None:
    with open_history(data_home) as store:
        with store.read_connection() as conn:
            index = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'payouts_request_unique'"
            ).fetchone()
        assert "UNIQUE" in index["sql"] and "request_id" in index["sql"]
        first = _add(store, "po-1")
        with pytest.raises(DuplicateRequestIdError, match="already used") as caught:
            _add(store, "po-1")
        assert caught.value.existing_id == first
        # The index itself refuses, even for a writer that skips the store's checks.
        with pytest.raises(sqlite3.IntegrityError), store.write_transaction() as conn:
            conn.execute(
                "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, "
                "environment, merchant_id, site_id, request_id, site_login, method, currency, "
                "amount_minor, state, request_json) SELECT created_at, updated_at, profile_id, "
                "profile_name, environment, merchant_id, site_id, request_id, site_login, "
                "method, currency, amount_minor, state, request_json FROM payouts"
            )
        assert store.count() == 1


def test_payout_writes_are_durable(data_home: Path) -> None:
    with open_history(data_home) as store, store.read_connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_daily_backup_is_private_timestamped_and_seven_are_kept(data_home: Path) -> None:
    path = _history(data_home, "po-1")
    made = [daily_backup_if_due(path, now_ms=T0 + day * DAY_MS) for day in range(10)]
    assert all(made)
    assert daily_backup_if_due(path, now_ms=T0 + 9 * DAY_MS + 3600_000) is None  # same day
    # Opening the history (as every command does) never takes it, due or not.
    assert prepare_history(path, now_ms=T0 + 11 * DAY_MS) is None

    kept = list_backups(data_home)
    assert kept == sorted(made[-KEEP:], reverse=True)
    assert all(p.parent == data_home / "backups" for p in kept)
    assert kept[0].name.startswith("history-2025") and kept[0].name.endswith("-daily.sqlite3.gz")
    for item in kept:
        assert stat.S_IMODE(item.stat().st_mode) == 0o600
        assert _request_ids(item) == ["po-1"]


def test_a_new_empty_history_is_not_backed_up(data_home: Path) -> None:
    open_history(data_home).close()
    open_history(data_home).close()
    assert list_backups(data_home) == []


def test_a_backup_is_taken_before_a_migration(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    path = data_home / HISTORY_FILE
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:1])  # a history written by the first release
    conn.execute(
        "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment, "
        "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, state, "
        "request_json) VALUES (1, 1, 'p', 'P', 'sandbox', 'm', 1, 'old-1', 'bob', 'card', "
        "'RUB', 100, 'SUBMITTING', '{}')"
    )
    conn.close()

    with open_history(data_home) as store:
        record = store.get(1)
    (taken,) = list_backups(data_home)
    assert taken.name.endswith(f"-before-v{len(MIGRATIONS)}.sqlite3.gz")
    assert _request_ids(taken) == ["old-1"]
    restore_backup(data_home / "elsewhere", taken)
    old = sqlite3.connect(data_home / "elsewhere" / HISTORY_FILE)
    assert old.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    old.close()
    # An old in-doubt attempt may have been sent: recovery must call it UNKNOWN, not NOT_SENT.
    assert record.state is State.SUBMITTING and record.sending_started_at is not None


def test_a_failed_backup_before_a_migration_stops_the_migration(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_home.mkdir(parents=True)
    conn = sqlite3.connect(data_home / HISTORY_FILE, isolation_level=None)
    migrate(conn, MIGRATIONS[:1])
    conn.close()
    (data_home / "backups").write_text("a file where the backup folder should be")
    with pytest.raises(BackupError, match="could not be backed up"):
        open_history(data_home)
    conn = sqlite3.connect(data_home / HISTORY_FILE)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_a_damaged_history_is_kept_aside_and_the_backup_restores(data_home: Path) -> None:
    path = _history(data_home, *(f"po-{n}" for n in range(300)))
    good = make_backup(path, "daily")
    with open_history(data_home) as store:
        _add(store, "po-after-backup")
    _damage(path)
    damaged_bytes = path.read_bytes()

    with pytest.raises(CorruptHistoryError) as caught:
        open_history(data_home)
    error = caught.value
    assert isinstance(error, HistoryOpenError)  # the window's existing handling applies
    assert not path.exists()  # never silently replaced by an empty history
    assert error.kept_path.name.startswith("history.sqlite3.corrupt-")
    assert error.kept_path.read_bytes() == damaged_bytes  # kept, not overwritten
    assert error.backup_path == good
    assert good.name in str(error) and "restore it" in str(error)

    assert restore_backup(data_home, error.backup_path) == path
    with open_history(data_home) as store:
        assert store.count() == 300
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert error.kept_path.read_bytes() == damaged_bytes


def test_a_file_that_is_not_a_database_is_kept_aside_with_no_backup_offered(
    data_home: Path,
) -> None:
    data_home.mkdir(parents=True)
    path = data_home / HISTORY_FILE
    path.write_bytes(b"not a database at all " * 200)
    with pytest.raises(CorruptHistoryError, match="no backup to restore") as caught:
        open_history(data_home)
    assert caught.value.backup_path is None
    assert caught.value.kept_path.read_bytes() == b"not a database at all " * 200
    assert not path.exists()


def test_restoring_keeps_the_history_in_place_aside(data_home: Path) -> None:
    path = _history(data_home, "po-1")
    saved = make_backup(path, "daily")
    with open_history(data_home) as store:
        _add(store, "po-2")
    restore_backup(data_home, saved)
    assert _request_ids(path) == ["po-1"]
    (replaced,) = data_home.glob("history.sqlite3.replaced-*")
    assert _request_ids(replaced) == ["po-1", "po-2"]


def _plain_backup(path: Path, name: str = "history-20250101T000000000Z-daily.sqlite3") -> Path:
    """A backup in the plain format of earlier versions (an uncompressed SQLite copy)."""
    target = path.parent / "backups" / name
    target.parent.mkdir(exist_ok=True)
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    source.backup(copy)
    copy.execute("PRAGMA journal_mode=DELETE")
    source.close()
    copy.close()
    return target


def test_a_damaged_or_foreign_backup_is_not_restored(data_home: Path, tmp_path: Path) -> None:
    path = _history(data_home, *(f"po-{n}" for n in range(300)))
    broken = _plain_backup(path)
    _damage(broken)
    with pytest.raises(BackupError, match="damaged too"):
        restore_backup(data_home, broken)
    foreign = tmp_path / "other.sqlite3"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BackupError, match="not a Cactus Desk payout history"):
        restore_backup(data_home, foreign)
    with pytest.raises(BackupError, match="does not exist"):
        restore_backup(data_home, tmp_path / "missing.sqlite3")
    assert _request_ids(path)[:2] == ["po-0", "po-1"]  # the history was not touched


def test_a_backup_is_compressed_and_restores_round_trip(data_home: Path) -> None:
    path = _history(data_home, *(f"po-{n}" for n in range(500)))
    saved = make_backup(path, "manual")
    assert saved.name.endswith("-manual.sqlite3.gz")
    assert saved.read_bytes()[:2] == b"\x1f\x8b"  # gzip, not a plain copy
    assert saved.stat().st_size < path.stat().st_size / 2
    assert list(saved.parent.iterdir()) == [saved]  # no partial file left behind
    with open_history(data_home) as store:
        _add(store, "po-after")
    assert restore_backup(data_home, saved) == path
    assert _request_ids(path) == [f"po-{n}" for n in range(500)]
    with open_history(data_home) as store:  # a working history, writable again
        _add(store, "po-next")
        assert store.count() == 501


def test_a_cut_short_or_garbled_compressed_backup_is_refused(
    data_home: Path, tmp_path: Path
) -> None:
    path = _history(data_home, *(f"po-{n}" for n in range(300)))
    good = make_backup(path, "daily")
    whole = good.read_bytes()
    cut = good.with_name("history-20250101T000000000Z-daily.sqlite3.gz")
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BackupError, match=r"damaged or incomplete.*Choose an older backup"):
        restore_backup(data_home, cut)
    garbled = good.with_name("history-20250102T000000000Z-daily.sqlite3.gz")
    garbled.write_bytes(whole[:100] + bytes(b ^ 0x5A for b in whole[100:400]) + whole[400:])
    with pytest.raises(BackupError, match="damaged or incomplete"):
        restore_backup(data_home, garbled)
    # A whole gzip file around a damaged database is refused by the database check.
    inner = data_home / "inner.sqlite3"
    restore_backup(data_home / "scratch", good)
    shutil.copyfile(data_home / "scratch" / HISTORY_FILE, inner)
    _damage(inner)
    damaged = good.with_name("history-20250103T000000000Z-daily.sqlite3.gz")
    with inner.open("rb") as raw, gzip.open(damaged, "wb") as out:
        shutil.copyfileobj(raw, out)
    with pytest.raises(BackupError, match="damaged too"):
        restore_backup(data_home, damaged)
    renamed = tmp_path / "copied-by-hand.sqlite3"  # a compressed backup known by its bytes
    renamed.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BackupError, match="damaged or incomplete"):
        restore_backup(data_home, renamed)
    assert _request_ids(path)[:2] == ["po-0", "po-1"]  # the history was not touched
    assert not list(data_home.glob(".*restoring*"))


def test_an_old_plain_backup_is_still_listed_and_restored(data_home: Path) -> None:
    path = _history(data_home, "po-1")
    old = _plain_backup(path)
    assert list_backups(data_home) == [old]
    with open_history(data_home) as store:
        _add(store, "po-2")
    restore_backup(data_home, old)
    assert _request_ids(path) == ["po-1"]


def test_backups_of_many_days_stay_within_twice_the_history(data_home: Path) -> None:
    with open_history(data_home) as store:
        for n in range(3000):
            _add(store, f"po-{n}")
    path = data_home / HISTORY_FILE
    _plain_backup(path, "history-20240101T000000000Z-daily.sqlite3")  # an old full copy
    for day in range(30):
        assert daily_backup_if_due(path, now_ms=T0 + day * DAY_MS) is not None
        with SqliteHistoryStore(path) as store:  # the day's work, no start-up step of its own
            for n in range(20):
                _add(store, f"day-{day}-{n}")
        kept = list_backups(data_home)
        total = sum(item.stat().st_size for item in kept)
        assert total <= backup.BUDGET_RATIO * backup.history_size(data_home)
        assert kept[0].name.startswith(f"history-{backup._stamp(T0 + day * DAY_MS)}")
    assert 1 < len(kept) <= KEEP
    assert all(item.name.endswith(".gz") for item in kept)  # the old full copy went


def test_the_newest_backup_is_kept_even_when_it_alone_exceeds_the_budget(
    data_home: Path,
) -> None:
    path = _history(data_home, "po-1")
    first = make_backup(path, "daily")
    second = make_backup(path, "daily")
    assert backup.prune_backups(data_home, budget_bytes=1) == [first]
    assert list_backups(data_home) == [second]


def test_a_backup_that_fails_its_read_back_leaves_the_older_ones(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, "po-1")
    kept = make_backup(path, "daily")

    def cut_short(_path: Path, _should_stop: object = None) -> int:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(backup, "_verify_compressed", cut_short)
    monkeypatch.setattr(backup, "BUDGET_RATIO", 0.0)  # any pruning would delete ``kept``
    with pytest.raises(BackupError, match="could not be backed up"):
        make_backup(path, "daily")
    assert list((data_home / "backups").iterdir()) == [kept]  # nothing half-made left either


def test_a_large_history_gets_the_quick_check(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, "po-1")
    seen: list[bool] = []
    real = backup.integrity_problem

    def spy(conn: sqlite3.Connection, *, full: bool = True) -> str | None:
        seen.append(full)
        return real(conn, full=full)

    monkeypatch.setattr(backup, "integrity_problem", spy)
    prepare_history(path)
    monkeypatch.setattr(backup, "FULL_CHECK_MAX_BYTES", 1)
    prepare_history(path)
    assert seen == [True, False]


def _endless_check(conn: sqlite3.Connection, *, full: bool = True) -> str | None:
    """A check that never ends on its own (as quick_check seems on a huge file)."""
    endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n"
    conn.execute(endless).fetchone()
    return None


def test_the_start_up_check_is_bounded_and_the_history_still_opens(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, "po-1")
    monkeypatch.setattr(backup, "integrity_problem", _endless_check)
    monkeypatch.setattr(backup, "STARTUP_CHECK_BUDGET_MS", 50)
    conn = sqlite3.connect(path)
    started = time.monotonic()
    assert backup.bounded_problem(conn, full=False, budget_ms=50) == (None, False)
    assert time.monotonic() - started < 10  # stopped by the budget, not by the check's end
    conn.close()
    with open_history(data_home) as store:  # the start-up step did not wait for the end
        assert store.check_integrity() is None
        assert store.get(1).request_id == "po-1"


def test_the_start_up_check_still_sees_a_damaged_schema_or_newest_records(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, *(f"po-{n}" for n in range(300)))
    monkeypatch.setattr(backup, "integrity_problem", _endless_check)
    size = path.stat().st_size
    with path.open("r+b") as handle:  # the last pages: the newest records live there
        handle.seek(size - 8192)
        handle.write(b"\xde\xad\xbe\xef" * 2048)
    with pytest.raises(CorruptHistoryError):
        open_history(data_home)


def test_the_complete_check_finds_what_the_bounded_one_left(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, *(f"po-{n}" for n in range(300)))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    # A leaf of an index the start-up reads never touch (they read the schema and the table).
    (page,) = conn.execute(
        "SELECT pageno FROM dbstat WHERE name = 'payouts_by_amount' AND pagetype = 'leaf' "
        "ORDER BY pageno LIMIT 1"
    ).fetchone()
    conn.close()
    with SqliteHistoryStore(path) as store:
        with path.open("r+b") as handle:
            handle.seek((page - 1) * page_size)
            handle.write(b"\xde\xad\xbe\xef" * (page_size // 4))
        real = backup.integrity_problem
        monkeypatch.setattr(backup, "integrity_problem", _endless_check)
        monkeypatch.setattr(backup, "STARTUP_CHECK_BUDGET_MS", 50)
        assert store.check_integrity() is None  # bounded: ran out of time, found nothing yet
        taken = list_backups(data_home)  # the daily backup of the start-up check
        monkeypatch.setattr(backup, "integrity_problem", real)
        problem = store.check_integrity(complete=True)
    assert problem is not None
    assert list_backups(data_home) == taken  # the complete check takes no backup


# -- one window per data folder -----------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys
    from cactus_desk.instance_lock import InstanceLock
    lock = InstanceLock(sys.argv[1])
    print("held" if lock.acquire() else "refused", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_instance_is_refused_with_the_holders_pid(data_home: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        second = InstanceLock(data_home)
        assert second.acquire() is False
        assert second.holder_pid == holder.pid
        assert f"process {holder.pid}" in second.message
        assert "already running" in second.message
    finally:
        holder.communicate("", timeout=10)
    # The holder is gone, and the OS released its lock with it.
    assert second.acquire() is True
    second.release()


def test_the_lock_is_released_and_can_be_taken_again(data_home: Path) -> None:
    first = InstanceLock(data_home)
    assert first.acquire() and first.held
    assert InstanceLock(data_home).acquire() is False  # also within one process
    first.release()
    with InstanceLock(data_home) as again:
        assert again.held
    assert stat.S_IMODE((data_home / "instance.lock").stat().st_mode) == 0o600
