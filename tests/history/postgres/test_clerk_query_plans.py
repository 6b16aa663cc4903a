"""EXPLAIN on the team history: each clerk's filter reads through an index (the recipient's
trigram index, the amount, time and status indexes), never a sequential scan of payouts.
(On an empty table the planner may pick either of two indexes that serve a filter.)"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from cactus_desk.history.postgres import queries
from cactus_desk.history.postgres.migrations import RECIPIENT_INDEX
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey

START = 1_714_558_953_123


def _plan(conn: psycopg.Connection, history_filter: HistoryFilter) -> str:
    clause, params = queries.where(history_filter)
    sql = (
        f"SELECT {queries.ROW_COLUMNS} FROM payouts{clause}"
        f"{queries.order_by(SortKey.CREATED_AT, True)} LIMIT 100"
    )
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.execute(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("history_filter", "index"),
    [
        (HistoryFilter(recipient="petrov"), (RECIPIENT_INDEX,)),
        (HistoryFilter(recipient="4242"), (RECIPIENT_INDEX,)),
        (
            HistoryFilter(currency="USD", amount_min=100, amount_max=900),
            ("payouts_currency_amount", "payouts_currency_time"),
        ),
        (HistoryFilter(created_from=START, created_to=START + 86_400_000), ("payouts_by_created",)),
        (HistoryFilter(gateway_statuses=frozenset({5})), ("payouts_status_time",)),
    ],
    ids=["recipient-name", "recipient-card", "amount", "dates", "status"],
)
def test_each_clerk_filter_is_served_by_an_index(
    open_pg: Callable[..., PostgresHistoryStore],
    owner_sql: psycopg.Connection,
    history_filter: HistoryFilter,
    index: tuple[str, ...],
) -> None:
    open_pg().close()  # migrated
    plan = _plan(owner_sql, history_filter)
    assert "Seq Scan on payouts" not in plan, plan
    assert any(name in plan for name in index), plan
