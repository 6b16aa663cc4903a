"""The history panel's reads in PostgreSQL: filters, sorts, counts and pages.

Every filter and sort has an index (``migrations``); text search is ``ILIKE '%text%'`` over
the searched columns, served by the trigram GIN index when pg_trgm is installed (three
characters or more) and a scan otherwise. Counts without text come from the per-filter
counts table, so they are instant at any size.
"""

from __future__ import annotations

from typing import Any

from cactus_desk.history.clerk import range_clauses
from cactus_desk.history.postgres.callbacks import Conn
from cactus_desk.history.postgres.migrations import COUNTS_TABLE, RECIPIENT_EXPR, SEARCH_COLUMNS
from cactus_desk.history.types import HistoryFilter, SortKey

ROW_COLUMNS = (
    "id, created_at, updated_at, profile_name, environment, request_id, invoice_id, "
    "site_login, method, currency, amount_minor, state, gateway_status, message, "
    "status_source, needs_review, status_conflict, profile_id"
)

# (expression, nullable): each matches an index in migrations.py.
_ORDER_TERMS: dict[SortKey, tuple[tuple[str, bool], ...]] = {
    SortKey.CREATED_AT: (("created_at", False),),
    SortKey.PROFILE: (("lower(profile_name)", False),),
    SortKey.REQUEST_ID: (("lower(request_id)", False),),
    SortKey.INVOICE_ID: (("lower(invoice_id)", True),),
    SortKey.SITE_LOGIN: (("lower(site_login)", False),),
    SortKey.METHOD: (("lower(method)", False),),
    SortKey.CURRENCY: (("currency", False), ("created_at", False)),
    SortKey.AMOUNT: (("amount_minor", False),),
    SortKey.STATE: (("state", False), ("created_at", False)),
    SortKey.GATEWAY_STATUS: (("gateway_status", True),),
}


def like_pattern(text: str) -> str:
    """``text`` as a substring pattern, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where(history_filter: HistoryFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of a filter and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    text = history_filter.text.strip()
    if text:
        clauses.append("(" + " OR ".join(f"{c} ILIKE %s" for c in SEARCH_COLUMNS) + ")")
        params.extend([like_pattern(text)] * len(SEARCH_COLUMNS))
    if history_filter.states:
        clauses.append("state = ANY(%s)")
        params.append(sorted(str(state) for state in history_filter.states))
    if history_filter.currency:
        clauses.append("currency = %s")
        params.append(history_filter.currency)
    if history_filter.profile_id:
        clauses.append("profile_id = %s")
        params.append(history_filter.profile_id)
    if history_filter.needs_review:
        clauses.append("needs_review = 1")
    recipient = history_filter.recipient.strip()
    if recipient:
        clauses.append(f"{RECIPIENT_EXPR} ILIKE %s")
        params.append(like_pattern(recipient))
    more, more_params = range_clauses(history_filter, "%s")
    clauses.extend(more)
    params.extend(more_params)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def order_by(sort: SortKey, descending: bool) -> str:
    """ORDER BY for ``sort``, ties broken by id, NULLs where SQLite puts them."""
    direction = " DESC" if descending else ""
    nulls = " NULLS LAST" if descending else " NULLS FIRST"
    terms = [
        term + direction + (nulls if nullable else "")
        for term, nullable in _ORDER_TERMS[SortKey(sort)]
    ]
    return " ORDER BY " + ", ".join([*terms, "id" + direction])


def count(conn: Conn, history_filter: HistoryFilter, cap: int | None = None) -> int:
    """How many rows match, counting no further than ``cap``."""
    exact_only = not history_filter.text.strip() and not history_filter.narrowed()
    if exact_only and not history_filter.needs_review:
        clause, params = where(history_filter)
        row = conn.execute(f"SELECT coalesce(sum(n), 0) AS n FROM {COUNTS_TABLE}{clause}", params)
        found = row.fetchone()
        total = int(found["n"]) if found else 0
        return total if cap is None else min(total, max(0, cap))
    clause, params = where(history_filter)
    limit = None if cap is None else max(0, cap)
    found = conn.execute(
        f"SELECT count(*) AS n FROM (SELECT 1 FROM payouts{clause} LIMIT %s) AS matched",
        [*params, limit],
    ).fetchone()
    return int(found["n"]) if found else 0


def page(
    conn: Conn,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """One page of rows; a page nearer the end is read in reverse order from the end."""
    reverse = False
    if not history_filter.text.strip() and not history_filter.narrowed():
        matched = count(conn, history_filter)
        if offset >= matched or limit == 0:
            return []
        if 2 * offset + limit > matched:
            # OFFSET steps over every skipped row: read the reversed (total) order instead.
            reverse = True
            end = min(matched, offset + limit)
            offset, limit = matched - end, end - offset
            descending = not descending
    clause, params = where(history_filter)
    rows = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM payouts{clause}{order_by(sort, descending)} LIMIT %s OFFSET %s",
        [*params, limit, offset],
    ).fetchall()
    if reverse:
        rows.reverse()
    return rows


def distinct(conn: Conn, column: str) -> list[Any]:
    """The distinct values of an indexed column, one index probe per value (a loose scan)."""
    sql = (
        f"WITH RECURSIVE seen(value) AS (SELECT min({column}) FROM payouts UNION ALL "
        f"SELECT (SELECT min({column}) FROM payouts WHERE {column} > seen.value) "
        "FROM seen WHERE seen.value IS NOT NULL) "
        "SELECT value FROM seen WHERE value IS NOT NULL"
    )
    return [row["value"] for row in conn.execute(sql)]


LATEST_NAME = (
    "SELECT profile_name FROM payouts WHERE profile_id = %s "
    "ORDER BY created_at DESC, id DESC LIMIT 1"
)
