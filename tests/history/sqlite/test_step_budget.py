"""A walk's budget of VM steps holds alike on every run of the same cached statement."""

from __future__ import annotations

import sqlite3

import pytest

from cactus_desk.history.sqlite.store import step_budget

SQL = "SELECT count(*) FROM t WHERE x % 7 = ?"


@pytest.fixture
def conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(20_000)])
    return conn


def _steps(conn: sqlite3.Connection) -> int:
    """How many VM steps one run of SQL takes (a run of its own statement)."""
    counted = 0

    def count() -> bool:
        nonlocal counted
        counted += 1
        return False

    conn.set_progress_handler(count, 1)
    conn.execute(SQL + " ", [3]).fetchall()
    conn.set_progress_handler(None, 0)
    return counted


def _finishes(conn: sqlite3.Connection, steps: int) -> bool:
    conn.set_progress_handler(*step_budget(steps))
    try:
        conn.execute(SQL, [3]).fetchall()
    except sqlite3.OperationalError as exc:
        assert "interrupt" in str(exc)
        return False
    finally:
        conn.set_progress_handler(None, 0)
    return True


def test_a_repeated_statement_gets_its_whole_budget_every_run(conn: sqlite3.Connection) -> None:
    needed = _steps(conn)
    # SQLite counts a statement's steps over all its runs: with the budget as the handler's
    # period, the second run was stopped part way.
    assert all(_finishes(conn, needed * 3 // 2) for _ in range(6))


def test_a_run_past_its_budget_stops_every_time(conn: sqlite3.Connection) -> None:
    needed = _steps(conn)
    assert not any(_finishes(conn, needed // 2) for _ in range(6))
    assert _finishes(conn, needed * 2)
