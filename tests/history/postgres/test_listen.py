"""The team history's change listener: notices at commit, batches, reconnection and catch-up."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.history.postgres.listen import (
    APPLICATION_NAME,
    CONNECTED,
    RECONNECTED,
    UNREACHABLE,
    ChangeBatch,
    ChangeListener,
    parse_notices,
)
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import ManualEvent
from tests.callbacks.helpers import accepted_record
from tests.pg_databases import PgDatabases

WAIT_S = 10.0


class Heard:
    """What a listener delivered, in order, across threads."""

    def __init__(self) -> None:
        self.batches: queue.Queue[ChangeBatch] = queue.Queue()
        self.states: queue.Queue[str] = queue.Queue()

    def batch(self, where: Callable[[ChangeBatch], bool]) -> ChangeBatch:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                found = self.batches.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if where(found):
                return found
        raise AssertionError("no such change batch arrived")

    def state(self, expected: str) -> None:
        assert self.states.get(timeout=WAIT_S) == expected


@pytest.fixture
def listening(
    open_pg: Callable[..., PostgresHistoryStore],
) -> Iterator[tuple[PostgresHistoryStore, ChangeListener, Heard]]:
    store = open_pg()
    heard = Heard()
    listener = store.change_listener(
        heard.batches.put, lambda state, _message: heard.states.put(state)
    )
    listener.start()
    heard.state(CONNECTED)
    yield store, listener, heard
    listener.stop()


def test_payload_parsing_takes_ids_and_ignores_garbage() -> None:
    ids, newest = parse_notices(["p:7", "e:12:7", "e:13:0", "p:x", "zz", "e:5:9"])
    assert ids == {7, 9} and newest == 13


def test_a_committed_payout_change_and_its_event_reach_the_listener(
    listening: tuple[PostgresHistoryStore, ChangeListener, Heard],
    open_pg: Callable[..., PostgresHistoryStore],
) -> None:
    _store, listener, heard = listening
    other_desk = open_pg()
    record_id = accepted_record(other_desk)
    heard.batch(lambda batch: record_id in batch.record_ids)
    event_id = other_desk.add_manual_event(
        ManualEvent(record_id, EventOutcome.APPLIED, {}, "called the bank", "olga")
    )
    heard.batch(lambda batch: batch.newest_event_id >= event_id)
    assert listener.last_event_id >= event_id


def test_nothing_is_announced_before_commit(
    listening: tuple[PostgresHistoryStore, ChangeListener, Heard],
    pg_databases: PgDatabases,
    database: str,
) -> None:
    _store, _listener, heard = listening
    with psycopg.connect(
        pg_databases.url(database), password=pg_databases.cluster.password, autocommit=True
    ) as conn:
        with conn.transaction():
            conn.execute("UPDATE payouts SET message = message")  # no rows yet: no notice
            conn.execute("SELECT pg_notify('cactus_desk_changes', 'p:424242')")
            time.sleep(0.5)
            assert heard.batches.empty()  # held until the transaction commits
        heard.batch(lambda batch: 424242 in batch.record_ids)


def test_a_lost_connection_reconnects_and_catches_up_on_what_it_missed(
    listening: tuple[PostgresHistoryStore, ChangeListener, Heard],
    open_pg: Callable[..., PostgresHistoryStore],
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
) -> None:
    _store, listener, heard = listening
    other_desk = open_pg()
    record_id = accepted_record(other_desk)  # its pool holds a connection from now on
    heard.batch(lambda batch: record_id in batch.record_ids)
    with psycopg.connect(pg_databases.cluster.url(), autocommit=True) as admin:
        # The listener's connection is cut, and it cannot come back until allowed again.
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                (database, APPLICATION_NAME),
            )
            heard.state(UNREACHABLE)
            # While it is away, a callback is recorded on the other desk's open connection.
            missed = other_desk.add_manual_event(
                ManualEvent(record_id, EventOutcome.APPLIED, {}, "while away", "olga")
            )
            time.sleep(0.5)
            assert all(not batch.catch_up for batch in list(heard.batches.queue))
        finally:
            admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
    caught = heard.batch(lambda batch: batch.catch_up)
    assert record_id in caught.record_ids and caught.newest_event_id >= missed
    heard.state(RECONNECTED)
    assert listener.last_event_id >= missed
