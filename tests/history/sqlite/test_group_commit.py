"""Concurrent writes share one commit, and each still returns only once it is durable."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import DuplicateRequestIdError, OutcomeAlreadyRecordedError
from cactus_desk.payouts.states import State
from tests.payouts.conftest import make_attempt

WRITERS = 8


def _wait_for_queue(store: SqliteHistoryStore, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(store._pending) < count:
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.005)


def test_writes_queued_meanwhile_go_in_one_commit_and_are_durable_on_return(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    store = SqliteHistoryStore(path)
    reader = SqliteHistoryStore(path)  # another connection pool: sees only committed rows
    store.create_attempt(make_attempt(request_id="taken"))
    commits: list[str] = []
    results: dict[int, object] = {}
    seen_on_return: dict[int, State] = {}
    try:
        # Hold this process's write turn, so every writer queues behind it.
        store._write_lock.acquire()

        def write(n: int) -> None:
            request_id = "taken" if n == 0 else f"group-{n}"
            try:
                record_id = store.create_attempt(make_attempt(request_id=request_id))
            except DuplicateRequestIdError as exc:
                results[n] = exc
                return
            results[n] = record_id
            seen_on_return[n] = reader.get(record_id).state

        threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        _wait_for_queue(store, WRITERS)
        for conn in list(store._all):  # every writer holds one of these: count their COMMITs
            conn.set_trace_callback(commits.append)
        store._write_lock.release()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        store.close()
        reader.close()

    assert isinstance(results[0], DuplicateRequestIdError)  # the one refusal ...
    ids = [results[n] for n in range(1, WRITERS)]
    assert all(isinstance(record_id, int) for record_id in ids)  # ... leaves the others
    assert len(set(ids)) == WRITERS - 1
    # Every writer's record was committed when its call returned.
    assert seen_on_return == {n: State.SUBMITTING for n in range(1, WRITERS)}
    assert [statement for statement in commits if statement == "COMMIT"] == ["COMMIT"]


def test_a_refused_write_in_a_group_changes_nothing_and_raises_its_own_error(
    tmp_path: Path,
) -> None:
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    try:
        first = store.create_attempt(make_attempt(request_id="one"))
        second = store.create_attempt(make_attempt(request_id="two"))
        store.mark_sending(first)
        store.record_outcome(
            first, Accepted(invoice_id="9001", status=3, message="Payout initialized")
        )
        store._write_lock.acquire()
        errors: dict[str, BaseException] = {}

        def finish_first_again() -> None:
            try:
                store.record_outcome(
                    first, Accepted(invoice_id="9002", status=3, message="Payout initialized")
                )
            except OutcomeAlreadyRecordedError as exc:
                errors["first"] = exc

        def mark_second() -> None:
            store.mark_sending(second)

        threads = [
            threading.Thread(target=finish_first_again),
            threading.Thread(target=mark_second),
        ]
        for thread in threads:
            thread.start()
        _wait_for_queue(store, 2)
        store._write_lock.release()
        for thread in threads:
            thread.join(timeout=30)
        assert isinstance(errors.get("first"), OutcomeAlreadyRecordedError)
        assert store.get(first).invoice_id == "9001"  # the refused write left no trace
        assert store.get(second).sending_started_at is not None  # its neighbour committed
    finally:
        store.close()


def test_a_write_whose_caller_could_not_get_a_connection_is_never_committed(
    tmp_path: Path,
) -> None:
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.create_attempt(make_attempt(request_id="late"))
    assert store._pending == []
