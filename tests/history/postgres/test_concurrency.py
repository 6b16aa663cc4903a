"""Several desks on one team history: the database, not luck, decides every race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import DuplicateRequestIdError, HistoryFilter
from tests.history.contract.helpers import SALT, accepted, attempt, callback


def _wait_until_blocked(conn: psycopg.Connection, application: str) -> None:
    """Wait until a session of ``application`` waits for a lock (the race is really on)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock'",
            (application,),
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the second desk never waited for the first")


@pytest.mark.parametrize("first_commits", [True, False])
def test_two_desks_racing_for_one_request_id_exactly_one_wins(
    open_pg: Callable[..., PostgresHistoryStore],
    owner_sql: psycopg.Connection,
    first_commits: bool,
) -> None:
    store = open_pg()
    # Desk one has inserted the attempt and not committed yet.
    with psycopg.connect(
        owner_sql.info.dsn, password=owner_sql.info.password, application_name="desk-one"
    ) as desk_one:
        desk_one.execute(
            "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment,"
            " merchant_id, site_id, request_id, site_login, method, currency, amount_minor,"
            " state, request_json) VALUES (1, 1, 'p', 'P', 'sandbox', 'm_demo', 7, 'po-0001',"
            " 'alice', 'card', 'RUB', 150000, 'SUBMITTING', '{}')"
        )
        result: dict[str, object] = {}

        def desk_two() -> None:
            try:
                result["id"] = store.create_attempt(attempt())
            except DuplicateRequestIdError as exc:
                result["error"] = exc

        thread = threading.Thread(target=desk_two)
        thread.start()
        _wait_until_blocked(owner_sql, "cactus-desk")
        if first_commits:
            desk_one.commit()
        else:
            desk_one.rollback()
        thread.join(30)
    assert store.count() == 1
    (winner,) = store.page()
    if first_commits:
        error = result["error"]
        assert isinstance(error, DuplicateRequestIdError) and error.existing_id == winner.id
        assert "id" not in result
    else:
        assert result == {"id": winner.id}


def test_many_desks_racing_for_the_same_request_ids(
    open_pg: Callable[..., PostgresHistoryStore],
) -> None:
    desks = [open_pg() for _ in range(3)]
    rounds = 15
    wins: list[tuple[int, int]] = []
    losses: list[tuple[int, int | None]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(desks))

    def run(desk: PostgresHistoryStore) -> None:
        start.wait()
        for n in range(rounds):
            try:
                record_id = desk.create_attempt(attempt(request_id=f"po-race-{n}"))
                with lock:
                    wins.append((n, record_id))
            except DuplicateRequestIdError as exc:
                with lock:
                    losses.append((n, exc.existing_id))

    threads = [threading.Thread(target=run, args=(desk,)) for desk in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(n for n, _ in wins) == list(range(rounds))
    winners = dict(wins)
    assert len(losses) == rounds * (len(desks) - 1)
    assert all(existing == winners[n] for n, existing in losses)
    assert desks[0].count() == rounds


def test_callbacks_from_two_processes_on_one_payout_each_leave_one_event(
    open_pg: Callable[..., PostgresHistoryStore],
) -> None:
    desk, receiver = open_pg(), open_pg()
    record_id = accepted(desk)
    start = threading.Barrier(2)
    outcomes = []

    def deliver(store: PostgresHistoryStore, status: int) -> None:
        start.wait()
        outcomes.append(apply_callback(store, callback(status), SALT, site_id=7).outcome)

    threads = [
        threading.Thread(target=deliver, args=(desk, 4)),
        threading.Thread(target=deliver, args=(receiver, 4)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Row locking serialises them: one applies, the other sees a duplicate.
    assert sorted(str(outcome) for outcome in outcomes) == ["applied", "duplicate"]
    assert len(desk.events_for(record_id)) == 2
    assert desk.get(record_id).gateway_status == 4


def test_data_version_changes_when_another_desk_commits_and_not_before(
    open_pg: Callable[..., PostgresHistoryStore], owner_sql: psycopg.Connection
) -> None:
    watcher = open_pg()
    before = watcher.data_version()
    with psycopg.connect(owner_sql.info.dsn, password=owner_sql.info.password) as other:
        other.execute(
            "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment,"
            " merchant_id, site_id, request_id, site_login, method, currency, amount_minor,"
            " state, request_json) VALUES (1, 1, 'p', 'P', 'sandbox', 'm', 7, 'po-x',"
            " 'alice', 'card', 'RUB', 1, 'SUBMITTING', '{}')"
        )
        assert watcher.data_version() == before  # not visible yet: no change announced
        other.commit()
    after = watcher.data_version()
    assert after > before
    accepted(open_pg())
    assert watcher.data_version() > after


def test_a_desk_starting_up_settles_only_its_own_interrupted_attempts(
    open_pg: Callable[..., PostgresHistoryStore], owner_sql: psycopg.Connection
) -> None:
    from cactus_desk.payouts.recovery import recover_interrupted
    from cactus_desk.payouts.states import State

    mine, theirs = open_pg(desk="desk-a"), open_pg(desk="desk-b")
    crashed = mine.create_attempt(attempt(request_id="po-mine"))
    mine.mark_sending(crashed)
    sending = theirs.create_attempt(attempt(request_id="po-theirs"))
    theirs.mark_sending(sending)  # desk b is waiting for the gateway's answer right now

    assert recover_interrupted(mine) == [crashed]
    assert mine.get(crashed).state is State.UNKNOWN
    assert mine.get(sending).state is State.SUBMITTING
    theirs.record_outcome(sending, Accepted("42", 3, "Payout initialized"))
    assert theirs.get(sending).state is State.ACCEPTED
    created_by = owner_sql.execute("SELECT DISTINCT created_by FROM payouts").fetchall()
    assert created_by == [("cactus_owner",)]  # set by the database from the session's login


def test_a_transaction_of_many_rows_moves_the_version_once_and_the_counts_stay_true(
    open_pg: Callable[..., PostgresHistoryStore], owner_sql: psycopg.Connection
) -> None:
    store = open_pg()
    accepted(store, "po-1")
    before = store.data_version()
    with owner_sql.transaction():
        owner_sql.execute("UPDATE payouts SET state = 'UNKNOWN'")
        owner_sql.execute("UPDATE payouts SET state = 'ACCEPTED'")
        owner_sql.execute("UPDATE payouts SET currency = 'USD'")
    assert store.data_version() == before + 1
    assert store.count() == 1
    assert store.count(HistoryFilter(currency="USD")) == 1
    assert store.count(HistoryFilter(currency="RUB")) == 0
