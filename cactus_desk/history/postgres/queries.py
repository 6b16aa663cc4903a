"""The history panel's reads in PostgreSQL: filters, sorts, counts and pages.

Every filter and sort has an index (``migrations``); text search is ``ILIKE '%text%'`` over
the searched columns, served by the trigram GIN index when pg_trgm is installed (three
characters or more) and a scan otherwise. Counts without text come from the per-filter
counts table, so they are instant at any size.

At millions of rows (the same answers as the SQLite store, by PostgreSQL's means):

- A page of a search walks the sort's index over at most ``WALK`` rows of the order,
  testing the text on each and stopping at the page's last match: a word found often (a
  surname) fills the page after a few thousand rows, and the page is exact (the first
  matches of the order are the first matches in it). A rarer word falls back to the trigram
  index's matches, sorted.
- A page far down in time order (past ``FAR_OFFSET`` rows) finds its UTC day from the
  per-day totals (everything) or the per-day counts (a state, currency or profile), then
  steps over that day's index entries only and reads the page's rows by id.
- A single state is an equality, so (state, currency, amount) and (state, time) indexes
  give their order directly; several states merge one ordered range per state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cactus_desk.history.clerk import range_clauses
from cactus_desk.history.postgres.callbacks import Conn
from cactus_desk.history.postgres.migrations import (
    COUNTS_TABLE,
    DAY_COUNTS_TABLE,
    DAY_MS,
    DAY_TOTALS_TABLE,
    RECIPIENT_EXPR,
    SEARCH_COLUMNS,
)
from cactus_desk.history.types import HistoryFilter, SortKey

ROW_COLUMNS = (
    "id, created_at, updated_at, profile_name, environment, request_id, invoice_id, "
    "site_login, method, currency, amount_minor, state, gateway_status, message, "
    "status_source, needs_review, status_conflict, profile_id"
)
#: A search walks at most this many rows of the sort's index before the trigram index.
WALK = 200_000
#: Past this many rows in time order, a page is found through the per-day counts.
FAR_OFFSET = 1_000

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
    if len(history_filter.states) == 1:  # an equality: the (state, ...) indexes give order
        clauses.append("state = %s")
        params.append(str(next(iter(history_filter.states))))
    elif history_filter.states:
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
    if limit == 0:
        return []
    if history_filter.text.strip():
        return _search_page(conn, history_filter, sort, descending, offset, limit)
    reverse = False
    if not history_filter.narrowed():
        matched = count(conn, history_filter)
        if offset >= matched:
            return []
        if 2 * offset + limit > matched:
            # OFFSET steps over every skipped row: read the reversed (total) order instead.
            reverse = True
            end = min(matched, offset + limit)
            offset, limit = matched - end, end - offset
            descending = not descending
    clause, params = where(history_filter)
    simple = not history_filter.needs_review and not history_filter.narrowed()
    if sort == SortKey.CREATED_AT and offset > FAR_OFFSET and simple:
        # The per-day counts know states, currencies and profiles only.
        clause, params, offset = _day_start(conn, history_filter, descending, offset)
        if len(history_filter.states) <= 1:
            rows = _stepped(conn, clause, params, descending, offset, limit)
            if reverse:
                rows.reverse()
            return rows
    rows = _ordered(conn, history_filter, clause, params, sort, descending, offset, limit)
    if reverse:
        rows.reverse()
    return rows


def _ordered(
    conn: Conn,
    history_filter: HistoryFilter,
    clause: str,
    params: list[Any],
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """The rows of ``clause`` in order; several states merge one ordered range per state."""
    order = order_by(sort, descending)
    states = sorted(str(state) for state in history_filter.states)
    by_index = sort == SortKey.CREATED_AT or (sort == SortKey.AMOUNT and history_filter.currency)
    if len(states) > 1 and by_index:
        # One index range per state, merged (MergeAppend), each cut at offset + limit.
        clause = clause.replace("state = ANY(%s)", "state = %s")
        at = _state_param(history_filter)
        parts, merged = [], []
        for state in states:
            part = list(params)
            part[at] = state
            parts.append(f"(SELECT {ROW_COLUMNS} FROM payouts{clause}{order} LIMIT %s)")
            merged += [*part, offset + limit]
        sql = " UNION ALL ".join(parts)
        return conn.execute(
            f"SELECT * FROM ({sql}) AS merged{order} LIMIT %s OFFSET %s",
            [*merged, limit, offset],
        ).fetchall()
    return conn.execute(
        f"SELECT {ROW_COLUMNS} FROM payouts{clause}{order} LIMIT %s OFFSET %s",
        [*params, limit, offset],
    ).fetchall()


def _state_param(history_filter: HistoryFilter) -> int:
    """Where the states' parameter sits in ``where(history_filter)``'s parameters."""
    return len(SEARCH_COLUMNS) if history_filter.text.strip() else 0


def _day_start(
    conn: Conn, history_filter: HistoryFilter, descending: bool, offset: int
) -> tuple[str, list[Any], int]:
    """The filter narrowed to the day holding row ``offset`` onwards, and the offset in it.

    One statement over one row per day: the per-day totals (kept by triggers) for the whole
    history, the per-day counts summed by day for a state, currency or profile. The rows
    before the day in this order are skipped by the time bound instead of OFFSET.
    """
    clause, params = where(history_filter)
    direction = "DESC" if descending else "ASC"
    if clause:
        days = f"SELECT day, sum(n) AS n FROM {DAY_COUNTS_TABLE}{clause} GROUP BY day"
    else:
        days = f"SELECT day, n FROM {DAY_TOTALS_TABLE}"
    found = conn.execute(
        "SELECT day, before FROM (SELECT day, n, coalesce(sum(n) OVER (ORDER BY day "
        f"{direction} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before "
        f"FROM ({days}) AS per_day WHERE n > 0) AS running WHERE before + n > %s "
        f"ORDER BY day {direction} LIMIT 1",
        [*params, offset],
    ).fetchone()
    if found is None:
        return clause, params, offset  # the counts disagree: plain OFFSET is still right
    day = int(found["day"])
    bound, edge = ("created_at < %s", day + 1) if descending else ("created_at >= %s", day)
    joined = f"{clause} AND {bound}" if clause else f" WHERE {bound}"
    return joined, [*params, edge * DAY_MS], offset - int(found["before"])


def _stepped(
    conn: Conn, clause: str, params: list[Any], descending: bool, offset: int, limit: int
) -> list[dict[str, Any]]:
    """The page in time order after ``offset`` rows of ``clause``: the rows stepped over are
    index entries only (an index-only scan of ids), then the page's rows are read by id."""
    order = order_by(SortKey.CREATED_AT, descending)
    return conn.execute(
        f"SELECT {ROW_COLUMNS} FROM payouts WHERE id IN (SELECT id FROM payouts{clause}"
        f"{order} LIMIT %s OFFSET %s){order}",
        [*params, limit, offset],
    ).fetchall()


def _search_page(
    conn: Conn,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of a text search (see the module's docstring)."""
    text_clause, text_params = where(HistoryFilter(text=history_filter.text))
    rest = dataclasses.replace(history_filter, text="")
    rest_clause, rest_params = where(rest)
    # No outer ORDER BY: a subquery scan hands its rows on in the walk's order, and an outer
    # sort would make the planner plan the walk for full retrieval (for an order that is not
    # the table's own, a scan and sort of the whole walk). Without one, the outer LIMIT
    # reaches the walk's planning: it takes the index and stops at the page's last match.
    rows = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM (SELECT {ROW_COLUMNS} FROM payouts{rest_clause}"
        f"{order_by(sort, descending)} LIMIT %s) AS walked{text_clause} LIMIT %s OFFSET %s",
        [*rest_params, WALK, *text_params, limit, offset],
    ).fetchall()
    if len(rows) == limit or count(conn, rest) <= WALK:
        return rows  # the page was found, or the walk covered every row of the filter
    clause, params = where(history_filter)
    return conn.execute(
        f"SELECT {ROW_COLUMNS} FROM payouts{clause}{order_by(sort, descending)} LIMIT %s OFFSET %s",
        [*params, limit, offset],
    ).fetchall()


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
