"""The daily backup: never on the open path of a command, one snapshot while writers keep
going, abandoned cleanly, and a standard gzip file that is read back before it counts."""

from __future__ import annotations

import gzip
import sqlite3
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from cactus_desk import cli
from cactus_desk.history import abandon_backups, open_history, take_daily_backup
from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite.backup import (
    BackupAbandoned,
    daily_backup_if_due,
    list_backups,
    make_backup,
)
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.logs import stop_logging
from tests.callbacks.helpers import ATTEMPT

DAY_MS = 24 * 3600 * 1000
T0 = 1_750_000_000_000


def _history(data_home: Path, count: int) -> Path:
    with open_history(data_home) as store:
        for n in range(count):
            store.create_attempt(replace(ATTEMPT, request_id=f"po-{n:05d}"))
    return data_home / HISTORY_FILE


def _files(data_home: Path) -> list[str]:
    folder = data_home / "backups"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def _request_ids(packed: Path, tmp_path: Path) -> list[str]:
    plain = tmp_path / f"{packed.name}.unpacked"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    conn = sqlite3.connect(plain)
    try:
        return [row[0] for row in conn.execute("SELECT request_id FROM payouts ORDER BY id")]
    finally:
        conn.close()


def test_opening_for_a_command_leaves_the_daily_backup_to_the_background(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(data_home, 3)
    assert backup.daily_backup_due(data_home)  # no backup yet: one is due
    taken: list[str] = []
    real = backup.make_backup

    def spy(history: Path, reason: str, **options: object) -> Path:
        taken.append(reason)
        return real(history, reason, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(backup, "make_backup", spy)
    started = time.monotonic()
    with open_history(data_home) as store:
        assert store.count() == 3
    assert time.monotonic() - started < 5
    assert taken == [] and _files(data_home) == []
    # The background takes it: once, then not again the same day.
    made = take_daily_backup(data_home, lambda: False)
    assert made is not None and made.name.endswith("-daily.sqlite3.gz")
    assert take_daily_backup(data_home, lambda: False) is None
    assert taken == ["daily"]


def test_a_daily_backup_is_taken_once_a_day_and_only_of_a_history_with_payouts(
    data_home: Path, tmp_path: Path
) -> None:
    open_history(data_home).close()
    path = data_home / HISTORY_FILE
    assert daily_backup_if_due(path, now_ms=T0) is None  # nothing in it to keep
    _history(data_home, 1)
    first = daily_backup_if_due(path, now_ms=T0)
    assert first is not None
    assert daily_backup_if_due(path, now_ms=T0 + DAY_MS - 1) is None
    second = daily_backup_if_due(path, now_ms=T0 + DAY_MS)
    assert second is not None and list_backups(data_home) == [second, first]
    assert _request_ids(second, tmp_path) == ["po-00000"]


def test_the_copy_is_one_snapshot_and_writers_keep_going_while_it_runs(
    data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, 400)
    monkeypatch.setattr(backup, "_COPY_PAGES", 2)  # many steps, a write between two of them
    written: list[int] = []
    with SqliteHistoryStore(path) as store:

        def write_while_copying() -> bool:
            if len(written) < 5:
                started = time.monotonic()
                written.append(
                    store.create_attempt(replace(ATTEMPT, request_id=f"new-{len(written)}"))
                )
                assert time.monotonic() - started < 2  # the copy held no writer up
            return False

        made = make_backup(path, "daily", should_stop=write_while_copying)
        assert store.count() == 405
    ids = _request_ids(made, tmp_path)
    # The snapshot the copy started from, whole: none of the writes made during it.
    assert ids == [f"po-{n:05d}" for n in range(400)]
    assert len(written) == 5


@pytest.mark.parametrize("stop_at", [1, 2, 5, 9])
def test_an_abandoned_backup_leaves_no_file_and_keeps_the_backups_there_were(
    data_home: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int
) -> None:
    path = _history(data_home, 400)
    kept = make_backup(path, "daily", now_ms=T0)
    monkeypatch.setattr(backup, "_COPY_PAGES", 8)
    monkeypatch.setattr(backup, "_STREAM_CHUNK", 64 * 1024)
    calls: list[int] = []

    def stop() -> bool:  # abandoned in the copy, the compression or the read-back
        calls.append(1)
        return len(calls) >= stop_at

    with pytest.raises(BackupAbandoned):
        make_backup(path, "daily", now_ms=T0 + DAY_MS, should_stop=stop)
    assert _files(data_home) == [kept.name]


def test_abandon_backups_stops_one_in_progress_on_another_thread(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _history(data_home, 200)
    monkeypatch.setattr(backup, "_COPY_PAGES", 1)
    in_copy, abandoned = threading.Event(), threading.Event()
    outcome: list[BaseException | Path] = []

    def hold_until_abandoned() -> bool:
        # Called between the copy's steps: the first call waits for the abandon, so it
        # meets a copy in progress.
        in_copy.set()
        assert abandoned.wait(10)
        return False

    def run() -> None:
        try:
            outcome.append(make_backup(path, "daily", should_stop=hold_until_abandoned))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert in_copy.wait(10)
    started = time.monotonic()
    abandon_backups(data_home)
    abandoned.set()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert isinstance(outcome[0], BackupAbandoned)
    assert _files(data_home) == []
    # Until the history is opened again, a backup that starts stops at once.
    with pytest.raises(BackupAbandoned):
        make_backup(path, "daily")
    open_history(data_home).close()
    assert make_backup(path, "daily").exists()


def test_a_backup_is_a_standard_gzip_file_checked_to_its_end(data_home: Path) -> None:
    path = _history(data_home, 50)
    made = make_backup(path, "daily")
    packed = made.read_bytes()
    plain = gzip.decompress(packed)  # any gzip reader takes it
    assert backup._verify_compressed(made) == len(plain)
    cut = made.with_name("cut.gz")
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(EOFError):
        backup._verify_compressed(cut)
    garbled = made.with_name("garbled.gz")
    middle = len(packed) // 2
    garbled.write_bytes(
        packed[:middle]
        + bytes(b ^ 0xFF for b in packed[middle : middle + 64])
        + packed[middle + 64 :]
    )
    with pytest.raises((zlib.error, EOFError)):
        backup._verify_compressed(garbled)
    trailing = made.with_name("trailing.gz")
    trailing.write_bytes(packed + b"junk")
    with pytest.raises(zlib.error):
        backup._verify_compressed(trailing)


@pytest.mark.parametrize(
    "argv",
    [
        ("history", "export", "--output", "{out}"),
        ("callbacks", "prune-rejected", "--older-than", "30"),
    ],
)
def test_a_command_run_when_the_daily_backup_is_due_returns_without_it(
    data_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    _history(data_home, 3)
    assert backup.daily_backup_due(data_home)

    real = backup._compress

    def slow(*args: object) -> None:
        time.sleep(30)  # what compressing a big history costs: the command must not pay it
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(backup, "_compress", slow)
    started = time.monotonic()
    try:
        code = cli.main([part.format(out=tmp_path / "out.csv") for part in argv])
    finally:
        stop_logging()
    assert code == 0, capsys.readouterr().err
    assert time.monotonic() - started < 10
    assert _files(data_home) == []


def test_two_backups_of_one_folder_at_the_same_moment_both_finish(
    data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two backups taken together (the window's start-up check and its daily timer, or the
    receiver's upkeep in another process) each work on files of their own: both finish,
    the backup is whole, and no partial file is left behind."""
    history = _history(data_home, 50)
    both_copied = threading.Barrier(2, timeout=10)
    real = backup._copy_database

    def copy_then_wait(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        both_copied.wait()  # each has its snapshot before either goes on

    monkeypatch.setattr(backup, "_copy_database", copy_then_wait)
    made: list[Path] = []
    failed: list[BaseException] = []

    def take() -> None:
        try:
            made.append(make_backup(history, "daily", now_ms=T0))
        except BaseException as exc:  # reported below
            failed.append(exc)

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failed == []
    assert len(made) == 2 and all(path.is_file() for path in made)
    assert len(_request_ids(made[0], tmp_path)) == 50
    assert not [name for name in _files(data_home) if name.endswith(".partial")]
