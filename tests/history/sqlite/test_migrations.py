from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cactus_desk.history import open_history
from cactus_desk.history.sqlite import store as store_module
from cactus_desk.history.sqlite.migrations import (
    MIGRATIONS,
    SORT_TERMS_INDEXES,
    SchemaTooNewError,
    current_version,
    migrate,
)
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from cactus_desk.payouts.states import State
from tests.payouts.conftest import make_attempt


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_an_empty_file_gets_every_migration_and_its_version_recorded(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "h.sqlite3")
    assert current_version(conn) == 0
    assert migrate(conn) == len(MIGRATIONS)
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    columns = {row[1] for row in conn.execute("PRAGMA table_info(payouts)")}
    assert {"request_id", "amount_minor", "state", "request_json", "unknown_kind"} <= columns
    conn.close()


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "h.sqlite3")
    migrate(conn)
    migrate(conn)
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE callbacks (id INTEGER PRIMARY KEY)")
        raise RuntimeError("disk gave up")

    conn = _connect(tmp_path / "h.sqlite3")
    with pytest.raises(RuntimeError, match="disk gave up"):
        migrate(conn, [*MIGRATIONS, broken])
    assert current_version(conn) == len(MIGRATIONS)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "callbacks" not in tables
    assert not conn.in_transaction
    conn.close()


def test_a_later_migration_applies_on_top_of_existing_data(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    with open_history(data_home) as store:
        record_id = store.create_attempt(make_attempt())

    def add_note(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE payouts ADD COLUMN note TEXT NOT NULL DEFAULT ''")

    conn = _connect(data_home / "history.sqlite3")
    assert migrate(conn, [*MIGRATIONS, add_note]) == len(MIGRATIONS) + 1
    row = conn.execute("SELECT request_id, note FROM payouts WHERE id = ?", (record_id,))
    assert row.fetchone() == ("po-0001", "")
    conn.close()


def test_a_history_from_a_newer_version_is_refused_with_a_clear_message(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    conn = _connect(path)
    migrate(conn)
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)")
    conn.close()
    with pytest.raises(SchemaTooNewError, match=r"version 99.*Update Cactus Desk"):
        SqliteHistoryStore(path)


def test_payouts_settled_by_hand_before_acceptance_stop_reading_accepted(
    data_home: Path,
) -> None:
    from cactus_desk.callbacks.reconcile import set_final_state
    from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
    from cactus_desk.history.sqlite import migrations
    from cactus_desk.payouts.states import State

    data_home.mkdir(parents=True)
    with open_history(data_home) as store:
        lost = store.create_attempt(make_attempt(request_id="po-lost"))
        store.record_outcome(lost, Unknown("No answer in time.", UnknownKind.TIMEOUT))
        sent = store.create_attempt(make_attempt(request_id="po-sent"))
        store.record_outcome(sent, Accepted("700", 3, "Payout initialized"))
        set_final_state(store, lost, 4, "Cabinet shows it paid", who="olga")
        set_final_state(store, sent, 4, "Cabinet shows it paid", who="olga")
        path = store.path
    # As an earlier version stored it: the unaccepted payout marked ACCEPTED.
    conn = _connect(path)
    conn.execute("UPDATE payouts SET state = 'ACCEPTED' WHERE id = ?", (lost,))
    with conn:
        migrations._v5_settled_by_hand(conn)
    conn.close()

    with open_history(data_home) as store:
        assert store.get(lost).state is State.SETTLED
        assert store.get(sent).state is State.ACCEPTED


def test_refusals_an_older_version_trusted_without_proof_become_unverified(
    data_home: Path,
) -> None:
    # A history written before v5: refusals were REJECTED whether or not they proved anything.
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    conn = _connect(path)
    migrate(conn, MIGRATIONS[:4])
    verified = {"success": False, "message": "No", "request_id": "po-ok", "signature": "ab"}
    rows = {
        "po-ok": ("", 200, verified),
        "po-unsigned": ("The rejection was not signed.", 200, {"success": False}),
        "po-4xx": ("", 400, {**verified, "request_id": "po-4xx"}),
        "po-no-echo": ("", 200, {"success": False, "signature": "ab"}),
        "po-invoice": ("", 200, {**verified, "request_id": "po-invoice", "invoice_id": "9"}),
        "po-status": ("", 200, {**verified, "request_id": "po-status", "status": 5}),
    }
    for request_id, (detail, http_status, response) in rows.items():
        conn.execute(
            "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment,"
            " merchant_id, site_id, request_id, site_login, method, currency, amount_minor,"
            " state, message, detail, http_status, request_json, response_json) VALUES"
            " (1, 1, 'p', 'P', 'live', 'm', 1, ?, 'alice', 'card', 'RUB', 100, 'REJECTED',"
            " 'No', ?, ?, '{}', ?)",
            (request_id, detail, http_status, json.dumps(response)),
        )
    conn.close()

    with open_history(data_home) as store:
        states = {record.request_id: record.state for record in store.iter_records()}
        assert store.count(HistoryFilter(states=frozenset({"REJECTED"}))) == 1
    assert states.pop("po-ok") is State.REJECTED
    assert set(states.values()) == {State.REFUSED_UNVERIFIED}


def test_an_upgraded_history_finds_two_characters_at_the_end_of_its_old_values(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 15 indexes the last two characters of each text column of the payouts already
    there, and lists the trigram index's terms: a 2-character search reads only what those
    indexes give, and still finds "OK" as a whole message and "yu" at a login's end."""
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    conn = _connect(path)
    migrate(conn, MIGRATIONS[:14])
    conn.execute(  # a row version 14 wrote
        "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment,"
        " merchant_id, site_id, request_id, site_login, method, currency, amount_minor,"
        " state, message, request_json) VALUES (1, 1, 'p', 'P', 'live', 'm', 1,"
        " 'old-request', 'kyu', 'card', 'EUR', 500, 'REJECTED', 'OK', '{}')"
    )
    conn.close()
    monkeypatch.setattr(store_module, "_SHORT_SET_MATCHES", 10)
    with SqliteHistoryStore(path) as store:
        with store.read_connection() as read:
            names = {row[0] for row in read.execute("SELECT name FROM sqlite_master")}
        assert {"payouts_search_terms", "payouts_message_end", "payouts_site_login_end"} <= names
        for text in ("ok", "YU", "ol"):
            assert [row.request_id for row in store.page(HistoryFilter(text=text))] == [
                "old-request"
            ], text
        assert store.page(HistoryFilter(text="zz")) == []


def _old_payout(
    conn: sqlite3.Connection, request_id: str, profile: str, login: str, amount: int, message: str
) -> None:
    """A refused card payout as an older version wrote it, straight into its table."""
    conn.execute(
        "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment,"
        " merchant_id, site_id, request_id, site_login, method, currency, amount_minor,"
        " state, message, request_json) VALUES (1, 1, 'p', ?, 'live', 'm', 1,"
        " ?, ?, 'card', 'EUR', ?, 'REJECTED', ?, '{}')",
        (profile, request_id, login, amount, message),
    )


def test_an_upgraded_history_sorts_its_old_matches_by_their_sort_keys(data_home: Path) -> None:
    """Version 16 indexes every filter and sort column of the payouts already there
    (``payouts_sort_keys``): a search sorted by a column no index gives reads them there and
    lists the old payouts in order."""
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    conn = _connect(path)
    migrate(conn, MIGRATIONS[:15])
    for request_id, profile_name, amount in (("old-b", "Beta", 700), ("old-a", "alpha", 900)):
        _old_payout(conn, request_id, profile_name, "kuznetsova", amount, "No")  # version 15
    conn.close()
    with SqliteHistoryStore(path) as store:
        with store.read_connection() as read:
            entries = read.execute("SELECT count(*) FROM payouts INDEXED BY payouts_sort_keys")
            assert entries.fetchone()[0] == 2
        found = HistoryFilter(text="kuznets")
        by_profile = store.page(found, SortKey.PROFILE, descending=True)
        assert [row.request_id for row in by_profile] == ["old-b", "old-a"]
        by_amount = store.page(found, SortKey.AMOUNT, descending=False)
        assert [row.request_id for row in by_amount] == ["old-b", "old-a"]


def test_an_upgraded_history_sorts_its_old_matches_by_their_own_terms(data_home: Path) -> None:
    """Version 17 adds, per sort, an index of its terms after the id over the payouts
    already there: a search sorted by login or amount reads them there and lists the old
    payouts in order."""
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    conn = _connect(path)
    migrate(conn, MIGRATIONS[:16])
    for request_id, login, amount in (("old-b", "Zoya.kuznetsova", 700), ("old-a", "ann", 900)):
        _old_payout(conn, request_id, "P", login, amount, "kuznets")  # version 16
    conn.close()
    with SqliteHistoryStore(path) as store:
        with store.read_connection() as read:
            indexes = {
                str(row[0]): [
                    str(column[2]) for column in read.execute(f"PRAGMA index_info({row[0]})")
                ]
                for row in read.execute(
                    "SELECT name FROM sqlite_master WHERE name GLOB 'payouts_id_*'"
                )
            }
            entries = read.execute("SELECT count(*) FROM payouts INDEXED BY payouts_id_login")
            assert entries.fetchone()[0] == 2
        assert indexes == {name: ["id", *columns] for name, columns in SORT_TERMS_INDEXES.items()}
        found = HistoryFilter(text="kuznets")
        by_login = store.page(found, SortKey.SITE_LOGIN, descending=True)
        assert [row.request_id for row in by_login] == ["old-b", "old-a"]
        by_amount = store.page(found, SortKey.AMOUNT, descending=False)
        assert [row.request_id for row in by_amount] == ["old-b", "old-a"]


def test_each_sorts_narrow_index_holds_its_terms() -> None:
    """Every order but time has an index of exactly its terms after the id (the profile's
    with the profile's id too), so a sort of matches by id reads them there alone; the
    time order reads the states' index, whose terms end with the time."""
    assert set(store_module._TERMS_INDEX) == set(SortKey)
    for sort, index in store_module._TERMS_INDEX.items():
        terms = [term.split()[0] for term in store_module._ORDER_TERMS[sort]]
        if sort is SortKey.CREATED_AT:
            assert list(SORT_TERMS_INDEXES[index])[-1:] == terms
            continue
        extra = ["profile_id"] if sort is SortKey.PROFILE else []
        assert list(SORT_TERMS_INDEXES[index]) == terms + extra, sort
