"""The write path does no text-index merge and no checkpoint; the upkeep pass does both."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.maintenance import MaintenanceThread
from cactus_desk.history.sqlite import migrations
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.migrations import (
    RECIPIENT_SEARCH_TABLE,
    SEARCH_TABLE,
    rebuild_search_index,
)
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryClosedError, HistoryFilter
from tests.history.sqlite.tracing import trace_into
from tests.payouts.conftest import make_attempt


def _raw(store: SqliteHistoryStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path)


# Both text indexes a write adds to: the search's and the recipient's.
TEXT_INDEXES = (SEARCH_TABLE, RECIPIENT_SEARCH_TABLE)


def _index_pages(store: SqliteHistoryStore, table: str = SEARCH_TABLE) -> int:
    """Rows of a text index's storage: every segment has at least one."""
    conn = _raw(store)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}_data").fetchone()[0])
    finally:
        conn.close()


def _levels(store: SqliteHistoryStore, table: str) -> list[int]:
    """The segments on each level of a text index, from FTS5's structure record (row 10 of
    its data): a cookie (and a version 2 mark), then varints: levels, segments, a write
    counter; per level its merge and segment counts, then three varints per segment (six in
    version 2)."""
    conn = _raw(store)
    try:
        record = bytes(conn.execute(f"SELECT block FROM {table}_data WHERE id = 10").fetchone()[0])
    finally:
        conn.close()
    version_2 = record[4:8] == b"\xff\x00\x00\x01"
    values = []
    at = 8 if version_2 else 4
    while at < len(record):
        value = 0
        for _ in range(9):
            byte = record[at]
            at += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    level_count, fields = values[0], 6 if version_2 else 3
    levels, at = [], 3
    for _ in range(level_count):
        segments = values[at + 1]
        levels.append(segments)
        at += 2 + segments * fields
    return levels


def _write(store: SqliteHistoryStore, rows: int, prefix: str = "po") -> list[int]:
    ids = []
    for n in range(rows):
        record_id = store.create_attempt(
            make_attempt(request_id=f"{prefix}-{n}", site_login=f"ivan.petrov{n}")
        )
        store.mark_sending(record_id)
        store.record_outcome(record_id, Accepted(f"inv-{prefix}-{n}", 3, "Payout initialized"))
        ids.append(record_id)
    return ids


@pytest.mark.parametrize("table", TEXT_INDEXES)
def test_each_text_index_is_set_to_merge_only_in_upkeep(
    store: SqliteHistoryStore, table: str
) -> None:
    conn = _raw(store)
    settings = dict(conn.execute(f"SELECT k, v FROM {table}_config").fetchall())
    conn.close()
    assert settings["automerge"] == 0
    assert settings["crisismerge"] == store_module._SEARCH_SETTINGS["crisismerge"]


@pytest.mark.parametrize("table", TEXT_INDEXES)
def test_a_rebuilt_text_index_is_one_segment_above_the_writes_level(
    store: SqliteHistoryStore, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New writes add their small segments to level 0, which the upkeep merges often: the
    rebuild's big segments must not sit there, or each early merge rewrites all of them."""
    _write(store, 10)
    # A buffer this small writes several segments, as 64 MB does at a million payouts.
    monkeypatch.setattr(migrations, "REBUILD_BUFFER", 512)
    conn = _raw(store)
    try:
        rebuild_search_index(conn)
        conn.commit()
    finally:
        conn.close()
    levels = _levels(store, table)
    assert sum(levels) == 1 and levels[0] == 0
    assert store.count(HistoryFilter(text="po-7")) == 1


@pytest.mark.parametrize(("table", "commits"), [(SEARCH_TABLE, 50), (RECIPIENT_SEARCH_TABLE, 25)])
def test_writes_leave_the_merging_to_the_upkeep_pass(
    store: SqliteHistoryStore, table: str, commits: int
) -> None:
    before = _index_pages(store, table)
    ids = _write(store, 25)  # commits that touch the index: below a crisis merge
    grown = _index_pages(store, table)
    # Each committed write leaves its own small segment: nothing was merged on the write path
    # (FTS5's default automerge would have folded them into a handful).
    assert grown - before >= commits
    steps = 0
    for _ in range(200):
        report = store.run_maintenance(budget_ms=1000)
        steps += report.merge_steps
        if report.merge_steps == 0 and not report.more:
            break
    assert steps > 0
    assert _index_pages(store, table) < (grown - before) // 4
    # The merged indexes still find every record: by request id, invoice and recipient.
    assert store.count(HistoryFilter(text="po-17")) == 1
    assert store.count(HistoryFilter(text="inv-po-24")) == 1
    assert store.count(HistoryFilter(text="ivan.petrov")) == len(ids)
    assert store.count(HistoryFilter(recipient="Ivan Petrov")) == len(ids)


def test_the_text_indexes_take_turns_across_passes(
    store: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady writes a pass ends after one step (a writer is waiting by then): each
    index still gets its steps, not only the one listed first."""
    _write(store, 30)
    merged: list[str] = []
    step = store_module._merge_step

    def one_step_then_a_writer(conn: sqlite3.Connection, table: str) -> bool:
        merged.append(table)
        store._writers_waiting = 1
        return step(conn, table)

    monkeypatch.setattr(store_module, "_merge_step", one_step_then_a_writer)
    for _ in range(4):
        store.run_maintenance(budget_ms=1000)
        store._writers_waiting = 0
    assert len(merged) == 4
    assert set(merged) >= set(TEXT_INDEXES)


def test_the_upkeep_pass_checkpoints_the_wal_and_commits_do_not(
    store: SqliteHistoryStore,
) -> None:
    with store.read_connection() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: money is durable
        backstop = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert backstop == store_module._WAL_BACKSTOP_PAGES
    _write(store, 30)
    wal = Path(f"{store.path}-wal")
    assert wal.stat().st_size > 0
    report = store.run_maintenance()
    assert report.wal_frames_left == 0  # every frame copied into the file
    _write(store, 1, prefix="after")  # the next writer starts the WAL over
    assert wal.stat().st_size <= store_module._WAL_KEEP_BYTES


def test_the_upkeep_pass_stops_for_a_waiting_writer(store: SqliteHistoryStore) -> None:
    _write(store, 40)
    store._writers_waiting = 1  # a writer of this process is waiting for its turn
    try:
        report = store.run_maintenance(budget_ms=1000)
    finally:
        store._writers_waiting = 0
    assert report.merge_steps == 0 and report.more


def test_the_upkeep_thread_runs_passes_until_stopped(store: SqliteHistoryStore) -> None:
    _write(store, 10)
    upkeep = MaintenanceThread(store, interval_s=0.01).start()
    deadline = time.monotonic() + 20
    while upkeep.passes < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    upkeep.stop()
    assert upkeep.passes >= 3
    done = upkeep.passes
    _write(store, 1, prefix="later")
    assert upkeep.passes == done  # stopped: no pass after stop() returned


def test_a_closed_history_ends_the_upkeep(store: SqliteHistoryStore) -> None:
    store.close()
    with pytest.raises(HistoryClosedError):
        store.run_maintenance()
    upkeep = MaintenanceThread(store, interval_s=0.01).start()
    upkeep._thread.join(timeout=20)
    assert not upkeep._thread.is_alive() and upkeep.passes == 0


def test_frames_the_first_copy_could_not_take_are_copied_before_the_pass_ends(
    store: SqliteHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady writes the bulk copy never catches up; the pass copies the rest too, so
    the WAL can start over instead of growing without end."""
    _write(store, 5)
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM payouts").fetchone()  # a snapshot the copy must keep
    _write(store, 5, prefix="later")  # frames past that snapshot: the first copy stops short
    real = store_module._checkpoint
    first: list[tuple[int, int, int]] = []

    def copy_then_reader_done(conn: sqlite3.Connection) -> tuple[int, int, int]:
        result = real(conn)
        if not first:
            first.append(result)
            reader.execute("COMMIT")
        return result

    monkeypatch.setattr(store_module, "_checkpoint", copy_then_reader_done)
    try:
        report = store.run_maintenance()
    finally:
        reader.close()
    _busy, frames, copied = first[0]
    assert copied < frames  # the first copy could not take everything
    assert report.wal_frames_left == 0


def test_a_warm_up_reads_the_sort_keys_and_every_sorts_index_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every entry of ``payouts_sort_keys`` and of each ``payouts_by_*`` and ``payouts_id_*``
    index (but NULLs), each as one range in index order (a sequential read of the file's
    stretch, no test on each entry), not an answer from a smaller index as a bare count(*)
    would take."""
    statements: list[str] = []
    trace_into(monkeypatch, statements)
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        _write(store, 12)
        statements.clear()
        store.warm_up()
        reads = [sql for sql in statements if "count(*)" in sql]
        conn = _raw(store)
        try:
            sorts = {
                str(row[0])
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE name GLOB 'payouts_by_*' "
                    "OR name GLOB 'payouts_id_*'"
                )
            }
            plans = []
            for sql in reads:
                plans += [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert conn.execute(reads[0]).fetchone()[0] == 12
        finally:
            conn.close()
        assert len([name for name in sorts if name.startswith("payouts_by_")]) >= 8
        assert len([name for name in sorts if name.startswith("payouts_id_")]) == 9
        expected = ["payouts_sort_keys", *sorted(sorts)]
        assert len(plans) == len(expected)
        for plan, name in zip(plans, expected, strict=True):
            assert plan.startswith(f"SEARCH payouts USING COVERING INDEX {name} ("), plan
            assert plan.endswith(">?)"), plan
    finally:
        store.close()
