"""What maintenance means for a team history: checks, desk-side snapshots, no trigram index."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

import psycopg
import pytest

from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.history.postgres.migrations import SEARCH_INDEX
from cactus_desk.history.postgres.store import KEEP_SNAPSHOTS, PostgresHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryUnavailableError
from tests.history.contract.helpers import CARD, SALT, accepted, callback
from tests.pg_databases import PgDatabases


def test_the_integrity_check_answers_and_takes_no_backup(
    open_pg: Callable[..., PostgresHistoryStore],
) -> None:
    store = open_pg()
    accepted(store)
    assert store.check_integrity() is None
    assert not store.location.exists()  # the server keeps the backups, not a desk


def test_the_integrity_check_of_a_store_that_is_gone_raises(
    open_pg: Callable[..., PostgresHistoryStore], pg_databases: PgDatabases, database: str
) -> None:
    store = open_pg(connect_timeout=2)
    pg_databases.drop(database)
    with pytest.raises(HistoryUnavailableError) as caught:
        store.check_integrity()
    assert pg_databases.cluster.password not in str(caught.value)


def test_a_snapshot_holds_every_table_from_one_moment_privately(
    open_pg: Callable[..., PostgresHistoryStore],
) -> None:
    store = open_pg()
    record_id = accepted(store)
    apply_callback(store, callback(4), SALT, merchant_id="m_demo", site_id=7)
    path = store.back_up("manual")
    assert path.parent == store.location and path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    tables = [line["table"] for line in lines]
    assert tables == ["payouts", "events"]
    assert lines[0]["row"]["id"] == record_id and lines[0]["row"]["gateway_status"] == 4
    assert CARD not in path.read_bytes().decode("latin-1")
    for _ in range(KEEP_SNAPSHOTS + 2):
        store.back_up("manual")
    assert len(list(store.location.glob("team-history-*.jsonl.gz"))) == KEEP_SNAPSHOTS


def test_without_the_trigram_index_the_search_still_finds_everything(
    open_pg: Callable[..., PostgresHistoryStore], owner_sql: psycopg.Connection
) -> None:
    owner_sql.execute(f"DROP INDEX {SEARCH_INDEX}")  # as on a server without pg_trgm
    store = open_pg()
    assert not store.text_index
    accepted(store, "po-needle-1")
    accepted(store, "po-hay-2", invoice_id="500002")
    assert [row.request_id for row in store.page(HistoryFilter(text="NEEDLE"))] == ["po-needle-1"]
    assert store.count(HistoryFilter(text="po-")) == 2
