"""The payout history: one SQLite file in the data folder, private to the user.

Every attempt is written as ``SUBMITTING`` before it is sent, then given exactly one outcome.
Timestamps are integer epoch milliseconds (UTC), which sort fast; ``iso_utc`` renders them.

Threads: the store keeps a small pool of connections and each call borrows one for its own
duration, so the GUI thread can read a page while a worker writes or exports (WAL gives
readers a consistent snapshot and never makes them wait for a writer's fsync). A separate
connection that never writes answers ``data_version``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from cactus_desk.callbacks.events import Event, EventOutcome, EventSource
from cactus_desk.callbacks.rules import ApplyResult, Reason, prune_audit
from cactus_desk.gateway.outcomes import (
    PayoutOutcome,
)
from cactus_desk.history.clerk import (
    OPEN_STATES,
    LocalZone,
    daily_sql,
    local_zone,
    range_clauses,
    totals_sql,
)
from cactus_desk.history.outcomes import keep_early_callback, outcome_columns
from cactus_desk.history.sqlite import backup
from cactus_desk.history.sqlite import callbacks as callback_rows
from cactus_desk.history.sqlite import events as event_rows
from cactus_desk.history.sqlite import totals as kept_totals
from cactus_desk.history.sqlite.kept_orders import KEPT_ROWS, Keeping, KeptOrders
from cactus_desk.history.sqlite.login_counts import (
    build_login_counts,
    login_bucket,
    login_counts_ready,
    login_kind,
)
from cactus_desk.history.sqlite.match_sets import kept_ids, kept_matches
from cactus_desk.history.sqlite.migrations import (
    AMOUNT_COUNTS_TABLE,
    COUNTS_TABLE,
    DAY_COUNTS_TABLE,
    DAY_MS,
    ENDING_SQL,
    ID_BLOCK_BITS,
    PRUNABLE_REASONS,
    RECIPIENT_SEARCH_TABLE,
    SEARCH_COLUMNS,
    SEARCH_TABLE,
    SEARCH_TERMS_TABLE,
    SORT_BUCKETS,
    SORT_COUNTS_TABLE,
    SORT_KEYS_INDEX,
    SORT_TERMS_INDEXES,
    TIME_BREAKS_TABLE,
    SortBuckets,
    amount_bucket_range,
    build_local_totals,
    build_recipient_index,
    local_totals_state,
    migrate,
    recipient_index_ready,
    reset_local_totals,
)
from cactus_desk.history.types import (
    MAX_CHART_DAYS,
    BackupError,
    BatchEntry,
    DayTotal,
    DuplicateProbe,
    DuplicateRequestIdError,
    HistoryClosedError,
    HistoryFilter,
    HistoryOpenError,
    HistoryRow,
    HistoryUnavailableError,
    InterruptedAttempt,
    MaintenanceReport,
    ManualEvent,
    NewAttempt,
    OutcomeAlreadyRecordedError,
    PayoutDetails,
    PayoutRecord,
    PruneReport,
    RecordNotFoundError,
    ResendAudit,
    ResendStart,
    SortKey,
    TotalRow,
    TotalsTooBroadError,
    batch_entry,
    now_ms,
    probe_groups,
)
from cactus_desk.masking import masked_json, scrub_card_numbers
from cactus_desk.payouts.states import State

_BUSY_TIMEOUT_S = 10.0
_T = TypeVar("_T")
# The write path never merges the text index or checkpoints the WAL in the common case: both
# are the maintenance step's work (``run_maintenance``). FTS5 keeps these in its own config
# table, so they hold for every process on the file: no automatic merge after a commit, and a
# crisis merge (inside a commit) only when a level has this many segments, that is when no
# maintenance has run for a long while.
_SEARCH_SETTINGS = {"automerge": 0, "crisismerge": 200}
# Pages one incremental merge step writes (a few milliseconds), and how many steps one
# maintenance pass may take at most within its time budget.
_MERGE_PAGES = 32
# Payouts read into the recipient index per step of its background build (~30 ms).
_RECIPIENT_BATCH = 1_000
# Payouts counted per step of the login counts' background build (a few milliseconds).
_LOGIN_BATCH = 2_000
# Payouts added to the local-day totals per step of their background build: the first
# step's, then grown or shrunk so that a step (one write transaction) takes about
# _LOCAL_STEP_S, within these bounds.
_LOCAL_BATCH = 500
_LOCAL_BATCH_MAX = 20_000
_LOCAL_STEP_S = 0.05
# A backstop only: in steady state the maintenance step checkpoints long before the WAL
# reaches this (pages of 4 KiB), so a commit never pays for the checkpoint. A process that runs
# no maintenance (a one-off command) still keeps its WAL bounded.
_WAL_BACKSTOP_PAGES = 16384
# After a checkpoint resets the WAL, SQLite truncates the file back to this size.
_WAL_KEEP_BYTES = 16 * 1024 * 1024
# SQLite's result codes for a damaged file, as opposed to one that is busy or unreadable.
_DAMAGED_NAMES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

_EVERYTHING = HistoryFilter()  # the default filter: every record


_ROW_COLUMNS = (
    "id, created_at, updated_at, profile_name, environment, request_id, invoice_id, "
    "site_login, method, currency, amount_minor, state, gateway_status, message, "
    "status_source, needs_review, status_conflict, profile_id"
)


#: The payouts read through ``payouts_sort_keys`` alone: a match's filter and sort columns
#: without its row (a fifth of the table's size, in id order).
KEYS_SOURCE = f"payouts INDEXED BY {SORT_KEYS_INDEX}"

#: Each sort's index of its terms after the id (``SORT_TERMS_INDEXES``); the time order
#: reads the states' index, whose terms end with the time.
_TERMS_INDEX: dict[SortKey, str] = {
    SortKey.CREATED_AT: "payouts_id_state",
    SortKey.PROFILE: "payouts_id_profile",
    SortKey.REQUEST_ID: "payouts_id_request",
    SortKey.INVOICE_ID: "payouts_id_invoice",
    SortKey.SITE_LOGIN: "payouts_id_login",
    SortKey.METHOD: "payouts_id_method",
    SortKey.CURRENCY: "payouts_id_currency",
    SortKey.AMOUNT: "payouts_id_amount",
    SortKey.STATE: "payouts_id_state",
    SortKey.GATEWAY_STATUS: "payouts_id_status",
}


def _terms_source(sort: SortKey) -> str:
    """Where a sort of matches known by id alone reads their sort terms: the narrow index
    by id that holds them (``_TERMS_INDEX``)."""
    return f"payouts INDEXED BY {_TERMS_INDEX[sort]}"


def _payout_record(row: Mapping[str, Any]) -> PayoutRecord:
    values = dict(row)
    values.pop("recipient", None)  # the searchable recipient, computed from the request
    values["state"] = State(values["state"])
    values["needs_review"] = bool(values["needs_review"])
    values["status_conflict"] = bool(values["status_conflict"])
    values["request"] = json.loads(values.pop("request_json"))
    response_json = values.pop("response_json")
    values["response"] = None if response_json is None else json.loads(response_json)
    return PayoutRecord(**values)


def _history_row(row: sqlite3.Row) -> HistoryRow:
    values = dict(row)
    values["state"] = State(values["state"])
    values["needs_review"] = bool(values["needs_review"])
    values["status_conflict"] = bool(values["status_conflict"])
    return HistoryRow(**values)


def _history_rows(rows: list[sqlite3.Row]) -> list[HistoryRow]:
    """A page's rows. Rows with ``HistoryRow``'s columns in its order (every page query's
    shape) are built by position, five times faster than by name: on a worker reading the
    first page while the window builds and paints, that time is the GUI thread's too."""
    if rows and tuple(rows[0].keys()) == _ROW_NAMES:
        return [_history_row_from_values(row) for row in rows]
    return [_history_row(row) for row in rows]


# Each matches an index in migrations.py, so ORDER BY ... LIMIT walks the index.
_ORDER_TERMS: dict[SortKey, tuple[str, ...]] = {
    SortKey.CREATED_AT: ("created_at",),
    SortKey.PROFILE: ("profile_name COLLATE NOCASE",),
    SortKey.REQUEST_ID: ("request_id COLLATE NOCASE",),
    SortKey.INVOICE_ID: ("invoice_id COLLATE NOCASE",),
    SortKey.SITE_LOGIN: ("site_login COLLATE NOCASE",),
    SortKey.METHOD: ("method COLLATE NOCASE",),
    SortKey.CURRENCY: ("currency", "created_at"),
    SortKey.AMOUNT: ("amount_minor",),
    SortKey.STATE: ("state", "created_at"),
    SortKey.GATEWAY_STATUS: ("gateway_status",),
}

_WALK_BUDGET = 20_000  # row lookups a page may spend walking an index
_WALK_STEPS = 30 * _WALK_BUDGET  # about that many rows' worth of SQLite VM steps (~0.1-0.4 s)

_TEXT_COLUMNS = ("request_id", "invoice_id", "site_login", "message")


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_TRIGRAM = 3  # the text index finds substrings of at least this many characters


def _match_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase: every character literal, double quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


def _where(
    history_filter: HistoryFilter,
    *,
    walk: bool = False,
    search: bool = False,
    member: bool = False,
    text_drives: bool = False,
    own: str = "",
    short: bool = False,
    keyed: bool = False,
    members: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause; ``search`` when the trigram index exists, ``walk`` for an index walk.

    A walk checks rows one by one, so its text test is LIKE (exact, ASCII case folding),
    unless ``member``: then each walked id is tested against the trigram index's matches.
    The index folds case for all of Unicode, which only matters for non-ASCII letters.
    ``text_drives``: the trigram index's matches are read and the other filters tested on
    each (``_text_drives``). ``own``: the exact filter whose index the walk reads (no +).
    ``short``: a 2-character text's matches are read through the indexes too (``_text_set``).
    ``keyed`` (a walk): the exact filters, the clerk's ranges and a LIKE text are tested in
    one lookup of the entry in an index by id (``_keyed_index``; a text's in the sort keys;
    read ahead by ``warm_up``), not on its row: a walk passes thousands of entries, whose
    rows from a cold disk cost 0.1-0.4 s a page. ``members``: a table holding the
    recipient's matches (``match_sets``).
    """
    # A unary + keeps SQLite off the filter's own index, so it walks the sort's index instead.
    plus = "+" if walk else ""
    exact = "+" if walk or text_drives else ""
    clauses: list[str] = []
    params: list[Any] = []
    tests: list[str] = [] if keyed else clauses
    test_params: list[Any] = [] if keyed else params
    tested: list[str] = []  # a keyed walk's text test: the last of its tests
    tested_params: list[Any] = []
    text = history_filter.text.strip()
    indexed = len(text) >= _TRIGRAM or (short and len(text) <= _SHORT)
    if text and search and (member or not walk) and indexed:
        # In a walk the unary + keeps the matches a set that each index entry is tested
        # against (the id is in every index), rather than the rows to look up and sort.
        matches, match_params = _text_set(text)
        clauses.append(f"{plus}id IN ({matches})")
        params.extend(match_params)
    elif text:
        pattern = _like_pattern(text)
        like = "(" + " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in _TEXT_COLUMNS) + ")"
        # A walk tests it on the entry's sort keys, after the exact filters: a walk reading
        # rows from a cold disk reached the 5,000th "x" by amount at 5M in 23 s, not 0.5 s.
        (tested if keyed else clauses).append(like)
        (tested_params if keyed else params).extend([pattern] * len(_TEXT_COLUMNS))
    if history_filter.states:
        states = sorted(str(state) for state in history_filter.states)
        tests.append(f"{exact}state IN ({', '.join('?' * len(states))})")
        test_params.extend(states)
    if history_filter.currency and own == "currency":
        clauses.append("currency = ?")  # on the walked index itself
        params.append(history_filter.currency)
    elif history_filter.currency:
        tests.append(f"{exact}currency = ?")
        test_params.append(history_filter.currency)
    if history_filter.profile_id:
        tests.append(f"{exact}profile_id = ?")
        test_params.append(history_filter.profile_id)
    if history_filter.needs_review:
        tests.append(f"{exact}needs_review = 1")
    _clerk_where(history_filter, search, clauses, params, plus=exact, members=members)
    more, more_params = range_clauses(history_filter, "?", plus=exact)
    tests.extend(more)
    test_params.extend(more_params)
    tests.extend(tested)
    test_params.extend(tested_params)
    if keyed and tests:
        index = SORT_KEYS_INDEX if tested else _keyed_index(history_filter, own)
        clauses.append(f"{_KEYED_TESTS} {index} WHERE k.id = payouts.id AND {' AND '.join(tests)})")
        params.extend(test_params)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _keyed_index(history_filter: HistoryFilter, own: str) -> str:
    """The narrowest index by id that holds every column a walk's keyed tests read: an
    amount range alone reads ``payouts_id_amount`` (a lookup a third the cost of one in
    ``payouts_sort_keys``)."""
    f = history_filter
    read = set()
    if f.states:
        read.add("state")
    if f.currency and own != "currency":
        read.add("currency")
    if f.profile_id:
        read.add("profile_id")
    if f.needs_review:
        read.add("needs_review")
    if f.amount_min is not None or f.amount_max is not None:
        read.add("amount_minor")
    if f.created_from is not None or f.created_to is not None:
        read.add("created_at")
    if f.gateway_statuses:
        read.add("gateway_status")
    if f.aged_before is not None:
        read |= {"created_at", "state", "gateway_status"}
    for name, columns in SORT_TERMS_INDEXES.items():
        if read <= set(columns):
            return name
    return SORT_KEYS_INDEX


def _clerk_where(
    history_filter: HistoryFilter,
    search: bool,
    clauses: list[str],
    params: list[Any],
    *,
    plus: str = "",
    members: str | None = None,
) -> None:
    """Add the clerk's recipient (its trigram index, or LIKE); ``_where`` adds the ranges,
    statuses and aging (``range_clauses``). ``members``: a table already holding the
    recipient's matches (``match_sets``)."""
    recipient = history_filter.recipient.strip()
    if recipient and search and len(recipient) >= _TRIGRAM and members is not None:
        clauses.append(f"{plus}id IN (SELECT id FROM {members})")
    elif recipient and search and len(recipient) >= _TRIGRAM:
        # In a walk the matches stay a set each walked entry is tested against.
        clauses.append(f"{plus}id IN ({_recipient_matches()})")
        params.append(_match_phrase(recipient))
    elif recipient:
        clauses.append("recipient LIKE ? ESCAPE '\\'")
        params.append(_like_pattern(recipient))


def _recipient_matches() -> str:
    """The ids of a recipient's matches, given its match phrase."""
    table = RECIPIENT_SEARCH_TABLE
    return f"SELECT rowid FROM {table} WHERE {table} MATCH ?"


def _recipient_source(
    history_filter: HistoryFilter, search: bool, *, narrow: bool = False
) -> tuple[str, str, list[Any]] | None:
    """``(FROM, WHERE, params)`` driven by the recipient's trigram index, or None when the
    filter has no recipient it can serve. The index streams its matches in id order, so a
    capped count or a page in time order stops early instead of collecting every match.
    ``narrow``: each match is tested in the narrowest index by id holding the columns the
    other filters test (only ``payouts.id`` is read): a lookup there costs half as much as
    one in ``payouts_sort_keys``."""
    recipient = history_filter.recipient.strip()
    if not (search and len(recipient) >= _TRIGRAM):
        return None
    table = RECIPIENT_SEARCH_TABLE
    others = replace(history_filter, recipient="")
    rest, params = _where(others, search=search)
    keys = f"payouts INDEXED BY {_keyed_index(others, '')}" if narrow else KEYS_SOURCE
    source = f"{table} CROSS JOIN {keys} ON payouts.id = {table}.rowid"
    where = f" WHERE {table} MATCH ?" + rest.replace(" WHERE ", " AND ", 1)
    return source, where, [_match_phrase(recipient), *params]


def _narrowed_count(
    conn: sqlite3.Connection, history_filter: HistoryFilter, search: bool, cap: int | None
) -> int:
    """A count under the clerk's filters: the matches read through their index, capped."""
    driven = _recipient_source(history_filter, search)
    if driven is not None:
        source, where, params = driven
    else:
        source = "payouts"
        where, params = _where(history_filter, search=search)
    limit = -1 if cap is None else max(0, cap)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {source}{where} LIMIT ?)"
    return int(conn.execute(sql, [*params, limit]).fetchone()[0])


def _from_the_end(total: int, offset: int, limit: int) -> tuple[int, int]:
    """Where rows ``offset`` to ``offset + limit`` of an order of ``total`` rows start in the
    reversed order, and how many of them there are (``offset`` is below ``total``)."""
    return max(0, total - offset - limit), min(limit, total - offset)


def _narrowed_page(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    search: bool,
    keeping: Keeping | None = None,
) -> list[sqlite3.Row]:
    """A page under the clerk's filters. In time order a recipient search reads its index in
    id order (right while no record was created out of time order, as ``_newest_matches``);
    otherwise, or past the walk budget, the filters' own indexes pick the rows."""
    kept = _kept_page(conn, keeping, history_filter, sort, descending, offset, limit, search)
    if kept is not None:
        return kept
    total = _kept_total(keeping, history_filter, search)
    if total is not None and offset < total and 2 * offset + limit > total:
        # Nearer the end than the start: the page is the start of the reversed order (the
        # order is total, ties broken by id), as ``_page`` reads an unfiltered one. The
        # oldest 200 of 5,000 amounts in one profile over 90 days walked the profile's
        # 92,000 payouts of those days newest first (0.13-0.6 s at 5M); oldest first, 4,000.
        start, take = _from_the_end(total, offset, limit)
        reversed_rows = _narrowed_page(
            conn, history_filter, sort, not descending, start, take, search, keeping
        )
        return reversed_rows[::-1]
    if sort in (SortKey.STATE, SortKey.CURRENCY) and offset > _DEEP_OFFSET:
        grouped = _recipient_by_value(
            conn, history_filter, sort, descending, offset, limit, search, keeping
        )
        if grouped is not None:
            return grouped
    driven = _recipient_source(history_filter, search)
    in_order = sort is SortKey.CREATED_AT and _in_time_order(conn)
    if driven is not None and in_order:
        source, where, params = _recipient_source(history_filter, search, narrow=True) or driven
        direction = " DESC" if descending else ""
        sql = (
            f"SELECT payouts.id FROM {source}{where} "
            f"ORDER BY {RECIPIENT_SEARCH_TABLE}.rowid{direction} LIMIT ? OFFSET ?"
        )
        newest = _read_within(conn, sql, [*params, limit, offset], steps=_WALK_STEPS)
        if newest is not None:
            return _rows_in_order(conn, [row[0] for row in newest])
    if driven is None and sort is SortKey.CREATED_AT:
        ids = _amount_in_time_order(conn, history_filter, descending, offset, limit, search)
        if ids is not None:
            return _rows_in_order(conn, ids)
    args = (conn, history_filter, sort, descending, offset, limit)
    triples = _live_triples(conn, history_filter) if _mergeable(history_filter, sort) else None
    if triples is not None and len(triples) <= _MAX_RANGES:
        merged = _merged_triples(*args, triples, search, keeping)
        if merged is not None:
            return _rows_in_order(conn, merged)
        # A walk of the whole index would stop where the merge of its ranges did.
        return _every_match_sorted(*args, search=search, keeping=keeping)
    rows = None
    cut = None
    if driven is not None:
        # A recipient's walk tests each entry of the sort's index against its matches as a
        # set (no row read until one matches), once that set is built: a clock, not a count
        # of steps, bounds it. Fewer matches are sorted at once, and where the filter's own
        # index gives the order (a currency's amounts) it is read in that order. Far down, a
        # walk runs longer, where the matches are dense enough for it to reach the page.
        deep = offset > _DEEP_OFFSET
        estimate = (
            _member_walk(conn, history_filter, sort, descending, offset + limit, search, keeping)
            if deep
            else None
        )
        if estimate is not None:
            found, entries, sampled = estimate
            need = KEPT_ROWS if keeping is not None and offset + limit <= KEPT_ROWS else 0
            cut = _sampled_cut(sort, descending, sampled, max(need, offset + limit))
            weight = _WIDE_WALK_COST if sort is SortKey.SITE_LOGIN else 1
            reachable = entries * weight <= _SAMPLED_WALK_ENTRIES
        else:
            recipient = history_filter.recipient.strip()
            found = _kept_fact(
                keeping,
                ("recipient matches", recipient, _SET_MATCHES),
                lambda: _text_count(conn, recipient, _SET_MATCHES, RECIPIENT_SEARCH_TABLE),
            )
            total = _count(conn, HistoryFilter(), search=search)
            reachable = not deep or (offset + limit) * total <= _DEEP_MEMBER_ENTRIES * found
        if (
            found >= _DENSE_MATCHES
            and reachable
            and not (history_filter.needs_review or _range_in_order(history_filter, sort))
            and _sorts_every_match(
                conn, *_select_query(*args, walk=False, search=search, ids_only=True)
            )
        ):
            seconds = _DEEP_MEMBER_WALK_S if deep else _MEMBER_WALK_S
            members = None
            if keeping is not None and found <= _KEPT_MATCHES:
                phrase = _match_phrase(history_filter.recipient.strip())
                members = kept_matches(conn, keeping.version, _recipient_matches(), [phrase])
            rows = _walk_or_none(*args, search=search, seconds=seconds, members=members)
    else:
        steps = _narrowed_walk_steps(conn, history_filter, sort, offset, limit, search)
        rows = _walk_or_none(*args, search=search, steps=steps) if steps else None
    if rows is not None:
        return rows
    return _every_match_sorted(*args, search=search, keeping=keeping, cut=cut)


def _recipient_by_value(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    search: bool,
    keeping: Keeping | None,
) -> list[sqlite3.Row] | None:
    """A page far down the state or currency order of a recipient's matches, or None when
    the recipient-word sums cannot count them per value.

    The sums say which value the page starts in and how far inside it; inside one value
    the order is the time order of that value's matches, read from whichever end of the
    value is nearer. A walk of the order's index passed every entry before the page,
    testing each against the recipient's matches: 0.15-0.4 s for the 10,000th "petrov"
    at 5M payouts.
    """
    column = "state" if sort is SortKey.STATE else "currency"
    groups = kept_totals.recipient_buckets(conn, history_filter, column, descending, search)
    if groups is None:
        return None
    rows: list[sqlite3.Row] = []
    seen = 0
    for value, n in groups:
        start, want = offset - seen, limit - len(rows)
        seen += n
        if want <= 0:
            break
        if start >= n:
            continue
        start = max(0, start)
        take = min(want, n - start)
        after = n - start - take  # the value's matches past the page
        narrowed = (
            replace(history_filter, states=frozenset({value}))
            if column == "state"
            else replace(history_filter, currency=value)
        )
        args = (conn, narrowed, SortKey.CREATED_AT)
        if after < start:
            part = _page(*args, not descending, after, take, search=search, keeping=keeping)
            part.reverse()
        else:
            part = _page(*args, descending, start, take, search=search, keeping=keeping)
        if len(part) != take:  # the sums disagree with the rows: read the order itself
            return None
        rows += part
    return rows


class _Sample(NamedTuple):
    """A recipient's matches measured from a sample (``_member_walk``)."""

    found: int  # about how many payouts the filter matches
    entries: int  # how many entries of the sort's index a walk passes to reach the page
    values: list[Any]  # the sampled matches' bucket values, in the sort's order


def _sampled_cut(
    sort: SortKey, descending: bool, values: list[Any], need: int
) -> tuple[str, Any] | None:
    """A bound on the sort's bucket value that at least the first ``need`` matches meet,
    from the sample of every ``_SAMPLE_EVERY``-th match, with a margin of three standard
    errors; None when the sample cannot say (too few samples, or the bound is NULL)."""
    buckets = _BUCKETED[sort]
    at = need // _SAMPLE_EVERY
    at += 3 * math.isqrt(at) + 1
    if at >= len(values) or values[at] == _NULL_BUCKET:
        return None
    # On the column itself, as the order compares it (no function called on each match):
    # every value in a bucket at or past the bound's compares past it too.
    column = f"payouts.{buckets.column}"
    term = f"{column} COLLATE NOCASE" if buckets.nocase else column
    bound = values[at]
    if descending:
        return f"{term} >= ?", bound
    if buckets.prefix:  # past every value the bound's prefix starts
        bound = f"{bound}\U0010ffff"
    return f"({term} <= ? OR {column} IS NULL)", bound


def _member_walk(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    reach: int,
    search: bool,
    keeping: Keeping | None = None,
) -> _Sample | None:
    """About how many payouts a recipient's filter matches, how many entries of the sort's
    index a walk passes to reach the ``reach``-th of them, and the sample's bucket values;
    None for a sort without counted buckets.

    Every ``_SAMPLE_EVERY``-th id of the matches is read with its sort terms; the sampled
    match at the reach is placed in the sort's counted buckets. Matches are not spread
    evenly over an order: "petrov" has no SBP payout, so method Z-A passes 690,000 SBP
    entries before its 10,000th match, a walk of 0.2 s that gave up before sorting. With
    ``keeping`` the sampled ids are read once for the filter's pages in every order (reading
    them passes every match: 35 ms for "petrov" at 5M), and their terms once per order,
    while the history is unchanged.
    """
    buckets = _BUCKETED.get(sort)
    driven = _recipient_source(history_filter, search)
    if buckets is None or driven is None:
        return None
    source, where, params = driven
    sampled: list[int] = _kept_fact(
        keeping,
        ("recipient sample ids", history_filter, search, _SAMPLE_EVERY),
        lambda: [
            row[0]
            for row in conn.execute(
                f"SELECT payouts.id FROM {source}{where} "
                f"AND {RECIPIENT_SEARCH_TABLE}.rowid % ? = 0",
                [*params, _SAMPLE_EVERY],
            )
        ],
    )
    value, block = buckets.bucket_sql("payouts")
    column = buckets.column
    sample = (
        f"SELECT payouts.id AS id, payouts.{column} AS {column}, {value} AS v, {block} AS blk "
        f"FROM {KEYS_SOURCE} WHERE payouts.id IN (SELECT value FROM json_each(?))"
    )
    order = _order_by(sort, descending)
    rows: list[Any] = _kept_fact(
        keeping,
        ("recipient sample", history_filter, sort, descending, search, _SAMPLE_EVERY),
        lambda: conn.execute(
            f"SELECT v, blk FROM ({sample}){order}", [json.dumps(sampled)]
        ).fetchall(),
    )
    found = len(rows) * _SAMPLE_EVERY
    at = reach // _SAMPLE_EVERY
    values = [row[0] for row in rows]
    if at >= len(rows):  # the walk reads it all
        return _Sample(found, _count(conn, HistoryFilter(), search=search), values)
    # Every entry before it, whatever its state, currency or profile: the walk tests those
    # on each entry it passes (``_where``'s unary +).
    passed = conn.execute(
        f"SELECT coalesce(sum(n), 0) FROM {SORT_COUNTS_TABLE} WHERE sort = ? "
        f"AND (v, blk) {'>' if descending else '<'} (?, ?)",
        [buckets.key, *rows[at]],
    ).fetchone()[0]
    return _Sample(found, int(passed), values)


_SAMPLE_EVERY = 256  # a recipient's matches sampled for its walk's length (_member_walk)
_NULL_BUCKET = float("-inf")  # the bucket value of NULL (SortBuckets.bucket_sql)
# A walk so measured is tried up to this many entries (0.13-0.24 us each at 5M rows): past
# them the sort of every match, which reads its terms by id from the sort's own narrow
# index (75-110 ms for 118,000 matches), costs less. An entry of the login index, of long
# values, costs twice as much.
_SAMPLED_WALK_ENTRIES = 600_000
_WIDE_WALK_COST = 2
# A recipient's matches few enough to keep in a table for its walks (``match_sets``): 60 ms
# for the 118,000 of "petrov" at 5M payouts, once, where each walk built the set in 45.
_KEPT_MATCHES = 300_000
# A query's matches few enough to keep all of, for its other orders to sort them alone
# (``_kept_page``): their terms read by id, the 71,000 of "yu" in about 0.1 s at 5M
# payouts, where each order's sort read the matches again (0.2 s). A text search's count
# says whether they are so few; other queries keep them when fewer than an order's rows.
_KEPT_SET_ROWS = 100_000


def _order_key(
    history_filter: HistoryFilter, sort: SortKey, descending: bool, search: bool
) -> tuple[HistoryFilter, SortKey, bool, bool]:
    """What a kept order is kept under: the query it is the order of."""
    return (history_filter, sort, descending, search)


def _kept_page(
    conn: sqlite3.Connection,
    keeping: Keeping | None,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    search: bool,
) -> list[sqlite3.Row] | None:
    """The page from an order a page before it sorted and kept, or None (not kept).

    Where another order of the query sorted every match and kept them all (few enough,
    ``_KEPT_SET_ROWS``), this order sorts those ids alone, reading their terms by id, and
    keeps its first rows: the 5,000 amounts of a profile in 90 days at 5M payouts took
    0.13 s in each order read through the amount index, and take about 10 ms so. Not in
    time order for more than an order keeps: the search's pages read that order by id.
    """
    if keeping is None:
        return None
    key = _order_key(history_filter, sort, descending, search)
    ids = keeping.orders.ids(key, keeping.version, offset, limit)
    if ids is not None:
        return _rows_in_order(conn, ids)
    matches = keeping.orders.fact(_set_key(history_filter, search), keeping.version)
    if matches is None:
        return None
    every = cast("array[int]", matches[0])
    if sort is SortKey.CREATED_AT and len(every) > KEPT_ROWS:
        return None
    # In a table of the connection, filled once for the query's orders (``match_sets``).
    table = kept_ids(conn, keeping.version, repr(_set_key(history_filter, search)), lambda: every)
    order = _order_by(sort, descending, indexed=False)
    source = f"{_terms_source(sort)} WHERE id IN (SELECT id FROM {table})"
    if descending and sort is SortKey.REQUEST_ID:  # fed newest first, as ``_select_query``
        source = f"(SELECT id, request_id FROM {source} ORDER BY id DESC LIMIT -1)"
    sql = f"SELECT id FROM {source}{order} LIMIT ?"
    reach = max(KEPT_ROWS, offset + limit)
    ids = [row[0] for row in conn.execute(sql, [reach])]
    keeping.orders.keep(key, keeping.version, ids[:KEPT_ROWS], complete=len(ids) < KEPT_ROWS)
    return _rows_in_order(conn, ids[offset : offset + limit])


def _total_key(history_filter: HistoryFilter, search: bool) -> Hashable:
    """What a clerk's filter's exact count is kept under, once ``count`` read it."""
    return ("match count", history_filter, search)


def _kept_total(keeping: Keeping | None, history_filter: HistoryFilter, search: bool) -> int | None:
    """How many rows match, as a count of this history's current version read it; None
    when none did or it stopped at its cap. The window counts before it asks for a page."""
    if keeping is None:
        return None
    kept = keeping.orders.fact(_total_key(history_filter, search), keeping.version)
    return None if kept is None else cast(int, kept[0])


def _set_key(history_filter: HistoryFilter, search: bool) -> Hashable:
    """What a query's every match is kept under (``_kept_page``)."""
    return ("every match", history_filter, search)


def _kept_fact(keeping: Keeping | None, key: Hashable, read: Callable[[], _T]) -> _T:
    """``read()``, or what it gave an earlier page of this history while it is unchanged."""
    if keeping is None:
        return read()
    kept = keeping.orders.fact(key, keeping.version)
    if kept is not None:
        return cast(_T, kept[0])
    value = read()
    keeping.orders.keep_fact(key, keeping.version, value)
    return value


def _every_match_sorted(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
    keeping: Keeping | None,
    sort_matches: bool = False,
    text_drives: bool = False,
    short: bool = False,
    cut: tuple[str, Any] | None = None,
    every_match: bool = False,
) -> list[sqlite3.Row]:
    """A page read through the filter's own indexes, which may sort every match (then only
    ids and sort terms: narrow rows sort faster). With ``keeping``, such a sort of a page
    within the first ``KEPT_ROWS`` sorts that many and keeps their ids: it costs about the
    same, and the next pages of the query are then read by id (``_kept_page``). Where an
    index already gives the order, only the page is read. ``cut``: a bound on the sort's
    first term that the rows wanted meet (``_sampled_cut``), so that only the matches within
    it are sorted; where fewer than wanted meet it, every match is sorted after all.
    ``every_match``: the matches are known to be at most ``_KEPT_SET_ROWS``, so a kept sort
    reads them all and keeps their ids for the query's other orders (``_kept_page``), as
    it does whenever they are fewer than the order's kept rows."""
    options: dict[str, Any] = {
        "walk": False,
        "search": search,
        "sort_matches": sort_matches,
        "text_drives": text_drives,
        "short": short,
        "cut": cut,
    }
    args = (conn, history_filter, sort, descending)
    keep = keeping if offset + limit <= KEPT_ROWS else None
    sorts = sort_matches or _sorts_every_match(
        conn, *_select_query(*args, offset, limit, ids_only=True, **options)
    )
    if not sorts:
        keep = None
    elif _ids_then_keys(conn, history_filter, search):
        options["by_keys"] = True
    elif (span := _dated_span(conn, history_filter)) is not None:
        options["id_span"] = span
    every = every_match and cut is None
    kept = max(KEPT_ROWS, _KEPT_SET_ROWS + 1) if every else KEPT_ROWS
    first, count = (0, kept) if keep is not None else (offset, limit)
    ids = [row["id"] for row in _select(*args, first, count, ids_only=True, **options)]
    if cut is not None and len(ids) < count:  # the cut says nothing of the rows past it
        options["cut"] = None
        ids = [row["id"] for row in _select(*args, first, count, ids_only=True, **options)]
    if keep is None:
        return _rows_in_order(conn, ids)
    if len(ids) < count and options["cut"] is None and len(ids) <= _KEPT_SET_ROWS:
        keep.orders.keep_fact(_set_key(history_filter, search), keep.version, array("q", ids))
    key = _order_key(history_filter, sort, descending, search)
    keep.orders.keep(key, keep.version, ids[:KEPT_ROWS], complete=len(ids) < KEPT_ROWS)
    return _rows_in_order(conn, ids[offset : offset + limit])


def _narrowed_walk_steps(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    offset: int,
    limit: int,
    search: bool,
) -> int:
    """How far a page under the clerk's filters may walk the sort's index, testing each row
    against the filters, before it sorts every match instead (0: sort at once).

    Sorting every match costs 0.5-5 s at 5M rows when they are many (an amount range, a
    gateway status, "not final after 24 h"), where a walk finds a page near the top within a
    few thousand rows. Near the top the walk's budget is small, so few or far-down matches
    cost it tens of ms before the sort; a page far down walks further only when the matches
    are many (the capped count reaches ``_DENSE_MATCHES``, which dense matches do at once)
    and not a date range's. A date range of few payouts (its days' counts) sorts at once.
    """
    f = history_filter
    if f.needs_review or _range_in_order(f, sort):
        return 0
    dated = f.created_from is not None or f.created_to is not None
    if dated and _dated_rows(conn, f) <= _DATED_SORT_ROWS:
        return 0  # few: quick to sort, where a walk would pass over most of the history
    if offset <= _DEEP_OFFSET:
        return _NARROWED_WALK_STEPS
    if dated:
        # A date range alone, in an order of many distinct values: a walk testing each
        # entry's id against the range's span (no row read) reaches the page when the dates
        # lie spread along the order or bunched at its start (30 days by request id, newest
        # first: the 10,000th in 5 ms at 5M, where sorting all 200,000 took 0.13 s).
        # Elsewhere it stops at its budget (about 12 ms) and they are sorted.
        alone = replace(f, created_from=None, created_to=None) == _EVERYTHING
        if not alone or sort not in _DATES_SPREAD or _date_ids(conn, f) is None:
            return 0
        total = _count(conn, _EVERYTHING, search=search)
        reach = (offset + limit) * total <= _DATED_WALK_ENTRIES * _dated_rows(conn, f)
        return _WALK_STEPS if reach else 0
    dense = _narrowed_count(conn, f, search, _DENSE_MATCHES) >= _DENSE_MATCHES
    return _WALK_STEPS if dense else 0


def _dated_rows(conn: sqlite3.Connection, history_filter: HistoryFilter) -> int:
    """How many payouts of the exact filters the days of the date range hold (its whole
    first and last UTC days: at least the range's own)."""
    f = history_filter
    exact = HistoryFilter(states=f.states, currency=f.currency, profile_id=f.profile_id)
    where, params = _where(exact)
    days = []
    if f.created_from is not None:
        days.append(("day >= ?", f.created_from // DAY_MS))
    if f.created_to is not None:
        days.append(("day <= ?", (f.created_to - 1) // DAY_MS))
    clauses = [where[len(" WHERE ") :]] if where else []
    clauses += [clause for clause, _ in days]
    sql = f"SELECT coalesce(sum(n), 0) FROM {DAY_COUNTS_TABLE} WHERE " + " AND ".join(clauses)
    return int(conn.execute(sql, [*params, *(day for _, day in days)]).fetchone()[0])


def _range_in_order(history_filter: HistoryFilter, sort: SortKey) -> bool:
    """Whether an index range of the clerk's filters is already in the sort's order (the time
    index's dates or a gateway status's times; the amount index's range), so a walk of the
    whole order would only skip what that range leaves out."""
    f = history_filter
    if sort is SortKey.CREATED_AT:
        return f.created_from is not None or f.created_to is not None or bool(f.gateway_statuses)
    if sort is SortKey.GATEWAY_STATUS:
        return bool(f.gateway_statuses)  # the (gateway_status, id) index's ranges
    return sort is SortKey.AMOUNT and (f.amount_min is not None or f.amount_max is not None)


def _amount_in_time_order(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    descending: bool,
    offset: int,
    limit: int,
    search: bool,
) -> list[int] | None:
    """A page of an amount range without dates in time order: walk the time index (of the
    currency, when one is set) and test each amount, instead of sorting every amount in the
    range; None when it is not such a filter or the walk passes its budget (a rare amount).

    While every record was created in time order, ``payouts_sort_keys`` is walked in id
    order instead, each entry tested there: no row is read until it matches. The 10,000th
    RUB payout of 1,000-5,000 at 5M took 30-50 ms with the file in memory and 0.6 s from
    disk, reading 40,000 rows; the keys give it in 15 ms, reading one stretch of the index.
    """
    f = history_filter
    if (f.amount_min is None and f.amount_max is None) or f.created_from is not None:
        return None
    if f.created_to is not None or f.gateway_statuses or f.aged_before is not None:
        return None
    direction = " DESC" if descending else ""
    recipient = f.recipient.strip()
    if _in_time_order(conn) and (not recipient or (search and len(recipient) >= _TRIGRAM)):
        where, params = _where(f, search=search)
        sql = f"SELECT id FROM {KEYS_SOURCE}{where} ORDER BY id{direction} LIMIT ? OFFSET ?"
        found = _read_within(conn, sql, [*params, limit, offset], seconds=_KEYS_WALK_S)
        return None if found is None else [row[0] for row in found]
    where, params = _where(replace(f, amount_min=None, amount_max=None), search=search)
    clauses = [where[len(" WHERE ") :]] if where else []
    for bound, operator in ((f.amount_min, ">="), (f.amount_max, "<=")):
        if bound is not None:
            clauses.append(f"+amount_minor {operator} ?")  # + keeps the amount index out
            params.append(bound)
    sql = (
        f"SELECT id FROM payouts WHERE {' AND '.join(clauses)} "
        f"ORDER BY created_at{direction}, id{direction} LIMIT ? OFFSET ?"
    )
    found = _read_within(conn, sql, [*params, limit, offset], steps=_WALK_STEPS)
    return None if found is None else [row[0] for row in found]


def _order_by(sort: SortKey, descending: bool, *, indexed: bool = True) -> str:
    """The ORDER BY of a sort; ``indexed=False`` keeps SQLite off the sort's own index (a
    unary + on each term), so it reads the matches through the filter and sorts them."""
    direction = " DESC" if descending else ""
    plus = "" if indexed else "+"
    terms = [*_ORDER_TERMS[SortKey(sort)], "id"]
    return " ORDER BY " + ", ".join(plus + term + direction for term in terms)


_LATEST_NAME = (
    "SELECT profile_name FROM payouts WHERE profile_id = ? "
    "ORDER BY created_at DESC, id DESC LIMIT 1"
)


def _distinct(conn: sqlite3.Connection, column: str) -> list[Any]:
    """The distinct values of an indexed column, hopping through its index (a loose scan).

    A plain DISTINCT reads every index entry; this reads one per value.
    """
    sql = (
        f"WITH RECURSIVE seen(value) AS (SELECT min({column}) FROM payouts UNION ALL "
        f"SELECT (SELECT min({column}) FROM payouts WHERE {column} > seen.value) "
        "FROM seen WHERE seen.value IS NOT NULL) "
        "SELECT value FROM seen WHERE value IS NOT NULL"
    )
    return [row[0] for row in conn.execute(sql)]


def _exact_filters(history_filter: HistoryFilter) -> list[str]:
    return [
        column
        for column, used in (
            ("state", bool(history_filter.states)),
            ("currency", bool(history_filter.currency)),
            ("profile_id", bool(history_filter.profile_id)),
            ("needs_review", history_filter.needs_review),
        )
        if used
    ]


def _should_walk(
    history_filter: HistoryFilter, sort: SortKey, rows_needed: int, matched: int, total: int
) -> bool:
    """Whether to walk the sort's index, skipping rows that do not match, for one page.

    SQLite otherwise picks the filter's index and sorts every match: about 0.2-0.8 s for a
    filter matching a fifth of a million rows. Walking costs about ``rows_needed`` divided by
    the matching fraction row lookups, which is far less near the top of a common filter.
    """
    exact = _exact_filters(history_filter)
    if not exact or history_filter.text.strip():
        return False
    single_state = exact != ["state"] or len(history_filter.states) == 1
    own_column = {SortKey.STATE: "state", SortKey.CURRENCY: "currency"}.get(sort)
    if len(exact) == 1 and single_state and (sort is SortKey.CREATED_AT or own_column in exact):
        return False  # the filter's index (column, created_at, id) already gives this order
    if (
        sort is SortKey.CREATED_AT
        and exact == ["state", "currency", "profile_id"]
        and len(history_filter.states) == 1
    ):
        return False  # payouts_scp_time (state, currency, profile_id, created_at, id) gives it
    return matched > 0 and rows_needed * total <= _WALK_BUDGET * matched


def _count(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    *,
    search: bool,
    cap: int | None = None,
) -> int:
    """How many rows match, counting no further than ``cap``.

    Without search text the per-filter counts table answers at once. With text, the trigram
    index drives the count (CROSS JOIN keeps it the outer loop), so a cap stops it early;
    a 2-character text of few matches counts its ``_text_set``.
    """
    if history_filter.narrowed():
        return _narrowed_count(conn, history_filter, search, cap)
    text = history_filter.text.strip()
    if not text and not history_filter.needs_review:  # the counts table has no review column
        where, params = _where(history_filter)
        row = conn.execute(f"SELECT coalesce(sum(n), 0) FROM {COUNTS_TABLE}{where}", params)
        total = int(row.fetchone()[0])
        return total if cap is None else min(total, cap)
    if search and len(text) >= _TRIGRAM:
        exact, params = _where(replace(history_filter, text=""))
        source = SEARCH_TABLE
        if exact:
            source += f" CROSS JOIN {KEYS_SOURCE} ON payouts.id = {SEARCH_TABLE}.rowid"
        where = f" WHERE {SEARCH_TABLE} MATCH ?" + exact.replace(" WHERE ", " AND ", 1)
        params = [_match_phrase(text), *params]
    elif search and len(text) == _SHORT and (few := _short_matches(conn, text)) is not None:
        if history_filter == HistoryFilter(text=history_filter.text):
            return few if cap is None else min(few, cap)
        drives = _text_drives(conn, history_filter, few)
        where, params = _where(history_filter, search=search, short=True, text_drives=drives)
        # The other filters tested in the narrow index by id that holds them, not the rows.
        narrow = _narrow_tests(history_filter, search, True)
        source = f"payouts INDEXED BY {narrow}" if narrow else "payouts"
    else:
        source = "payouts"
        where, params = _where(history_filter)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {source}{where} LIMIT ?)"
    limit = -1 if cap is None else max(0, cap)
    return int(conn.execute(sql, [*params, limit]).fetchone()[0])


def _select(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    **options: Any,
) -> list[sqlite3.Row]:
    """The page's rows by the query ``_select_query`` writes (``options`` are its own)."""
    sql, params = _select_query(conn, history_filter, sort, descending, offset, limit, **options)
    return conn.execute(sql, params).fetchall()


def _keys_read(history_filter: HistoryFilter, search: bool, short: bool, drives: bool) -> bool:
    """Whether a read of every match (to sort them) goes through indexes by id (the sort's
    own, ``_narrow_tests``, else ``payouts_sort_keys``): they hold every column the filter
    tests but a recipient's LIKE (no recipient index), and
    the read is either a scan of every row (``drives``: no index narrows it) or driven by a
    text index's set of ids (without exact filters, whose own indexes SQLite may prefer)."""
    f = history_filter
    recipient = f.recipient.strip()
    recipient_set = bool(recipient) and search and len(recipient) >= _TRIGRAM
    if recipient and not recipient_set:
        return False
    if drives:
        return True
    text = f.text.strip()
    text_set = search and (len(text) >= _TRIGRAM or (short and len(text) <= _SHORT))
    return (text_set or recipient_set) and not _exact_filters(f)


def _narrow_tests(history_filter: HistoryFilter, search: bool, short: bool) -> str | None:
    """Where a read of the matches by id tests the rest of the filter: "" when it tests
    nothing but ids (its text and recipient read as sets of ids from their indexes), the
    narrow index by id holding every other column it tests (``_keyed_index``), or None."""
    f = history_filter
    text, recipient = f.text.strip(), f.recipient.strip()
    text_set = not text or (search and (len(text) >= _TRIGRAM or (short and len(text) <= _SHORT)))
    recipient_set = not recipient or (search and len(recipient) >= _TRIGRAM)
    if not (text_set and recipient_set):
        return None
    rest = replace(f, text="", recipient="")
    if rest == _EVERYTHING:
        return ""
    index = _keyed_index(rest, "")
    return None if index == SORT_KEYS_INDEX else index


def _ids_then_keys(conn: sqlite3.Connection, history_filter: HistoryFilter, search: bool) -> bool:
    """Whether a sort of every match of the clerk's filters reads the matches' ids from an
    index alone, then their sort terms from the sort's own index by id, instead of
    each match's row in the index's order: 275,000 amounts of a currency sorted by profile
    took 0.67 s with the file in memory and 14 s without, and take 0.4 s either way. Not
    for a date range (``_dated_span``) nor where the filter's index cannot give the ids
    alone (the rows are read anyway)."""
    f = history_filter
    dated = f.created_from is not None or f.created_to is not None
    if f.text.strip() or f.recipient.strip() or dated:
        return False
    where, params = _where(f, search=search)
    plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM payouts{where}", params).fetchall()
    reads = [row[3] for row in plan if row[3].startswith(("SEARCH payouts", "SCAN payouts"))]
    return bool(reads) and all("COVERING INDEX" in line for line in reads)


def _dated_span(conn: sqlite3.Connection, history_filter: HistoryFilter) -> tuple[int, int] | None:
    """The first and last id of a date range's payouts while every record was created in
    time order (no time breaks), so a sort of its matches reads an index by id between
    them (``payouts_sort_keys``; the sort's own for a date range alone): 0.04-0.15 s for
    200,000 payouts of 30 days at 5M, where their rows took 0.13-0.19 s. None for another
    filter, no payout in the range, or a span of many more payouts than the exact filters
    leave in its days (a rare profile's few are read through its own index)."""
    f = history_filter
    if f.text.strip() or f.recipient.strip():
        return None
    ends = _date_ids(conn, f)
    if ends is None or ends[1] - ends[0] >= _SPAN_ROWS_PER_MATCH * _dated_rows(conn, f):
        return None
    return ends


def _date_ids(conn: sqlite3.Connection, history_filter: HistoryFilter) -> tuple[int, int] | None:
    """The first and last id of a date range's payouts while every record was created in
    time order (no time breaks): then every payout between them is in the range. None
    without dates, out of time order, or with no payout in the range."""
    f = history_filter
    if f.created_from is None and f.created_to is None:
        return None
    if not _in_time_order(conn):
        return None
    dates, params = range_clauses(
        HistoryFilter(created_from=f.created_from, created_to=f.created_to), "?"
    )
    where = " AND ".join(dates)
    ends = []
    for direction in ("", " DESC"):
        order = f"created_at{direction}, id{direction}"
        sql = f"SELECT id FROM payouts WHERE {where} ORDER BY {order} LIMIT 1"
        row = conn.execute(sql, params).fetchone()
        if row is None:
            return None
        ends.append(int(row[0]))
    return ends[0], ends[1]


_SPAN_ROWS_PER_MATCH = 4  # a date range's span read for its matches: at most 4 ids each


def _sorts_every_match(conn: sqlite3.Connection, sql: str, params: list[Any]) -> bool:
    """Whether SQLite sorts the matches of ``sql`` itself (no index gives its order)."""
    plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return any("TEMP B-TREE" in row[3] and "ORDER BY" in row[3] for row in plan)


def _select_query(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    walk: bool,
    search: bool,
    member: bool = False,
    text_drives: bool = False,
    short: bool = False,
    bound: tuple[str, int] | None = None,
    sort_matches: bool = False,
    ids_only: bool = False,
    by_keys: bool = False,
    id_span: tuple[int, int] | None = None,
    cut: tuple[str, Any] | None = None,
    members: str | None = None,
) -> tuple[str, list[Any]]:
    """The SQL and parameters of a page (``ids_only``: only the rows' ids where the query
    has one arm, so a sort of every match carries the id and its sort terms alone;
    ``by_keys``: those ids' sort terms read from the sort's own index by id, ``_ids_then_keys``;
    ``id_span``: that index read between two ids, ``_dated_span``; in a walk, each walked
    entry tested to lie between them, ``_date_ids``; ``cut``: a bound on the sort's first
    term the ids read must meet, ``_sampled_cut``; ``members``: a table holding the
    recipient's matches, ``match_sets``)."""
    # Several states in time order: one ordered index range per state, merged by SQLite
    # (a compound SELECT's MERGE), instead of sorting every match of the states.
    merge = (
        not walk
        and sort is SortKey.CREATED_AT
        and len(history_filter.states) > 1
        and not history_filter.text.strip()
    )
    parts = (
        [replace(history_filter, states=frozenset({state})) for state in history_filter.states]
        if merge
        else [history_filter]
    )
    source = "payouts"
    if merge and history_filter.currency and not history_filter.profile_id:
        triples = _profile_parts(conn, history_filter)
        if triples is not None:
            # One range of payouts_scp_time per (state, currency, profile), where the
            # currency's time index read every row of the currency to test its state.
            parts, source = triples, "payouts INDEXED BY payouts_scp_time"
    if (
        not walk
        and sort is SortKey.CREATED_AT
        and len(history_filter.gateway_statuses) > 1
        and not history_filter.text.strip()
    ):  # the same for several gateway statuses: one (status, time) range each
        parts = [
            replace(part, gateway_statuses=frozenset({status}))
            for part in parts
            for status in sorted(history_filter.gateway_statuses)
        ]
    # In amount order a currency's walk reads (currency, amount_minor, id): its own amounts
    # only, where the amount index holds every currency's and a currency sits in one stretch.
    own = "currency" if walk and sort is SortKey.AMOUNT and history_filter.currency else ""
    keys = (
        ids_only
        and len(parts) == 1
        and bound is None
        and not walk
        and _keys_read(history_filter, search, short, sort_matches or text_drives)
    )
    arms: list[str] = []
    params: list[Any] = []
    for part in parts:
        where, part_params = _where(
            part,
            walk=walk,
            search=search,
            member=member,
            text_drives=text_drives,
            own=own,
            short=short,
            keyed=walk,
            members=members,
        )
        if bound is not None:  # the order from the start of a counted bucket on (_bucket_of)
            where += " AND " if where else " WHERE "
            where += bound[0]
            part_params.append(bound[1])
        if keys:
            source = KEYS_SOURCE
            tests = _narrow_tests(part, search, short) if sort in _TERMS_INDEX else None
            if tests is not None and tests in ("", _TERMS_INDEX[sort]):
                source = _terms_source(sort)
            elif tests is not None:
                # The filter's tests in the narrow index holding their columns, then the
                # sort's terms of the matches left in its own: two narrow lookups cost less
                # than one in the wide keys.
                where = f" WHERE id IN (SELECT id FROM payouts INDEXED BY {tests}{where})"
                source = _terms_source(sort)
        elif sort_matches:
            # Every row in the file's order: a filter's index (ACCEPTED: 80 % of the rows)
            # would read them one lookup at a time, up to 30 s at 5M instead of 1.5.
            source = "payouts NOT INDEXED"
        columns = "id" if ids_only and len(parts) == 1 else _ROW_COLUMNS
        if by_keys and columns == "id":
            where = f" WHERE id IN (SELECT id FROM {source}{where})"
            source = _terms_source(sort)
        elif id_span is not None and walk:
            # Tested on each walked index entry (every index holds the id) before its row
            # is read; the + keeps SQLite off the id range, which it would read and sort.
            where += f"{' AND' if where else ' WHERE'} +id BETWEEN ? AND ?"
            part_params += list(id_span)
        elif id_span is not None and columns == "id":
            source = KEYS_SOURCE
            if bound is None and replace(part, created_from=None, created_to=None) == _EVERYTHING:
                # Dates alone: the span is the range (_date_ids), so only the sort's terms
                # are read, from its own index by id.
                where, part_params, source = "", [], _terms_source(sort)
            where += f"{' AND' if where else ' WHERE'} id BETWEEN ? AND ?"
            part_params += list(id_span)
        if cut is not None and columns == "id":
            where += f"{' AND' if where else ' WHERE'} {cut[0]}"
            part_params.append(cut[1])
        by_id = source == _terms_source(sort) and columns == "id" and not walk
        if by_id and descending and sort is SortKey.REQUEST_ID:
            # The request ids Cactus Desk makes start with their date, so their order is
            # nearly the ids': fed newest first, few of the matches enter the sort's kept
            # top rows (the 71,000 of "yu" Z-A in 70 ms, not 105, fed oldest first).
            where += " ORDER BY id DESC LIMIT -1"
            source = f"(SELECT id, request_id FROM {source}{where})"
            where = ""
        arms.append(f"SELECT {columns} FROM {source}{where}")
        params += part_params
    # Matches read first are then sorted: no walk of the sort's index.
    order = _order_by(sort, descending, indexed=not (sort_matches or text_drives))
    sql = " UNION ALL ".join(arms) + f"{order} LIMIT ? OFFSET ?"
    return sql, [*params, limit, offset]


def _profile_parts(
    conn: sqlite3.Connection, history_filter: HistoryFilter
) -> list[HistoryFilter] | None:
    """The filter split into one exact (state, currency, profile) part per triple that holds
    rows (from the counts), or None for too many parts or the clerk's filters."""
    if history_filter.narrowed():
        return None
    where, params = _where(replace(history_filter, needs_review=False))
    triples = conn.execute(
        f"SELECT state, profile_id FROM {COUNTS_TABLE}{where} AND n > 0", params
    ).fetchall()
    if not triples or len(triples) > _MAX_RANGES:
        return None
    return [
        replace(history_filter, states=frozenset({state}), profile_id=profile)
        for state, profile in triples
    ]


def _walk_or_none(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
    member: bool = False,
    short: bool = False,
    steps: int = _WALK_STEPS,
    seconds: float | None = None,
    members: str | None = None,
) -> list[sqlite3.Row] | None:
    """The page by walking the sort's index, or None if that would cost more than the budget.

    The estimate behind a walk assumes the filter is spread evenly over the sort order; when
    it is not (USD payouts sorted by amount sit below every IDR and VND one), the walk is
    stopped after ``steps`` virtual-machine steps (or, given ``seconds``, that long) and the
    caller sorts the matches instead.
    """
    sql, params = _select_query(
        conn,
        history_filter,
        sort,
        descending,
        offset,
        limit,
        walk=True,
        search=search,
        member=member,
        short=short,
        id_span=_date_ids(conn, history_filter),
        members=members,
    )
    if _KEYED_TESTS in sql:
        steps *= _KEYED_STEP_COST
    return _read_within(conn, sql, params, steps=steps, seconds=seconds)


# How a walk tests its filters on the sort keys (``_where``'s ``keyed``), and how many more
# VM steps that takes per entry than a test on the row (about as long in memory, where
# the row read was few steps but a page fetch): the walks' step budgets scale by it.
_KEYED_TESTS = "EXISTS (SELECT 1 FROM payouts AS k INDEXED BY"
_KEYED_STEP_COST = 2


def _read_within(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any],
    *,
    steps: int = _WALK_STEPS,
    seconds: float | None = None,
) -> list[sqlite3.Row] | None:
    """``sql``'s rows, or None when reading them passes the budget: ``steps`` virtual-machine
    steps or, given ``seconds``, that long (the clock read every ``_BUDGET_STEPS`` steps)."""
    if seconds is None:
        conn.set_progress_handler(*step_budget(steps))
    else:
        deadline = time.monotonic() + seconds
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _BUDGET_STEPS)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        return None
    finally:
        conn.set_progress_handler(None, 0)


def step_budget(steps: int) -> tuple[Callable[[], bool], int]:
    """A progress handler and its period that stop a statement within one period of
    ``steps`` VM steps.

    SQLite calls the handler each time the statement's count of steps passes a multiple of
    the period, and that count runs on over every execution of the statement: a cached
    statement run again (the next page of the same query) started part way to its first
    call. With the budget as the period, a repeated walk was stopped after anything from
    one step to the whole budget, and its page sorted every match instead (seconds at 5M
    payouts). Counting the calls of a period a fraction of the budget bounds every run
    alike."""
    period = max(1, steps // _BUDGET_PERIODS)
    calls = steps // period
    seen = 0

    def over() -> bool:
        nonlocal seen
        seen += 1
        return seen > calls

    return over, period


# The periods a step budget is counted in: each call takes the interpreter lock, and a
# run stops within one period of its budget.
_BUDGET_PERIODS = 32
# Totals the kept sums cannot answer are summed from the payouts within these bounds.
DIRECT_TOTALS_MAX_ROWS = 200_000
DIRECT_TOTALS_BUDGET_S = 3.0
# SQLite VM steps between two looks at the clock (a few ms): each look takes the interpreter
# lock from the GUI thread, so a finer clock made the window's paints wait on the read.
_BUDGET_STEPS = 100_000
TOO_BROAD = (
    "Totals are not available for this search yet: it matches too many payouts to add up "
    "here. Narrow it with a fuller recipient name, a currency or a date range."
)
_SORT_MATCHES = 2_000  # text matches few enough to fetch and sort for any page
_SET_MATCHES = 100_000  # text matches few enough to test a walked index against as a set
# A 1-2 character search of fewer matches is served by its _text_set (at 5M rows: "yu" holds
# 71,000, 0.1 s to read and sort, where reading every row took 1.8 s; "q" 109,000).
_SHORT_SET_MATCHES = 150_000
_DEEP_OFFSET = 1_000  # past this many rows a page starts from its bucket's count
_MAX_ARMS = 200  # (state, currency) ranges merged for a filtered amount sort
_NARROWED_WALK_STEPS = _WALK_STEPS // 4  # a walk near the top under the clerk's filters
# A 1-2 character search walks this long at most, then reads every row (about 1.5 s at 5M).
_SHORT_WALK_S = 1.0
# Far down a short search's listed rows in another order than time: past this a sort of
# every match, kept for the next pages, costs less than walking again for each of them.
# The sort reads every payout's sort keys (1-2.5 s at 5M rows), where a walk reaches the
# 5,000th or 10,000th match of a character in 6 % of them ("x") in 0.15-0.8 s.
_DEEP_SHORT_WALK_S = 0.8
# A character whose share of the newest payouts puts that page past this many entries of
# the order sorts at once: its walk would pass the clock ("j", 2 %: 1.2-1.8 s).
_DEEP_SHORT_WALK_ENTRIES = 250_000
_LOOKUP_COST = 6  # index entries read in order that cost as much as one row read by id
# Orders of many distinct values (in the others a value's payouts are in time order, and a
# date range's sit at one end of each value's stretch).
_DATES_SPREAD = frozenset(
    {SortKey.REQUEST_ID, SortKey.INVOICE_ID, SortKey.SITE_LOGIN, SortKey.AMOUNT}
)
_DATED_WALK_ENTRIES = 400_000
_DATED_SORT_ROWS = 50_000  # a date range's payouts few enough to sort (about 60 ms at 5M)
_DENSE_MATCHES = 10_000  # clerk's-filter matches that make a walk far down worth its budget
# A recipient search walks this long at most (its matches as a set: 20-50 ms at 5M rows for a
# common surname), then sorts every match (about 0.2 s for 120,000 of them).
_MEMBER_WALK_S = 0.1
# A 2-character text's walk near the top (the sort it falls back to reads up to 100,000
# matches: 0.1-0.15 s at 5M rows, where a walk that reaches its page takes 5-30 ms).
_SHORT_MEMBER_WALK_S = 0.025
# How long a 2-character text's LIKE walk near the top of the time order may take before
# the page reads the text's set instead.
_SHORT_FIRST_WALK_S = 0.02
# Far down, a recipient's walk that should reach the page within this many index entries
# (0.15-0.35 us each at 5M rows) runs this long at most: 0.08-0.18 s at the 10,000th of
# 120,000 matches, where sorting them all takes 0.17-0.23 s.
_DEEP_MEMBER_ENTRIES = 500_000
_DEEP_MEMBER_WALK_S = 0.2
# How long an amount range's walk of the sort keys in time order runs at most (about a
# million entries at 5M rows), then its matches are sorted.
_KEYS_WALK_S = 0.1


def _text_count(conn: sqlite3.Connection, text: str, cap: int, table: str = SEARCH_TABLE) -> int:
    """How many rows a trigram index matches for ``text`` (no further than ``cap``); a
    2-character ``text`` counts its ``_text_set``."""
    if len(text) < _TRIGRAM:  # the set's ids alone: no row is read
        matches, params = _text_set(text)
        sql = f"SELECT count(*) FROM (SELECT DISTINCT id FROM ({matches}) LIMIT ?)"
        return int(conn.execute(sql, [*params, cap]).fetchone()[0])
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT ?)"
    return int(conn.execute(sql, (_match_phrase(text), cap)).fetchone()[0])


_SHORT = 2  # a search of two characters: its matches are found through the indexes too


def _text_set(text: str) -> tuple[str, list[Any]]:
    """SQL (and its parameters) for the ids of the payouts whose text columns hold ``text``.

    Three or more characters: a phrase of the trigram index. One or two: the trigram
    index's terms that start with them (its vocabulary read by range), and the values whose
    last two characters (``payouts_<column>_end``, in any case of each character, as the
    index folds case) are them, or for one character start or end with it (the distinct
    endings read by hopping through the index: a few hundred per column).
    """
    if len(text) >= _TRIGRAM:
        sql = f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ?"
        return sql, [_match_phrase(text)]
    low = "".join(_fold(char) for char in text)
    # Terms are compared as UTF-8 bytes: U+10FFFF is the greatest character.
    terms = (
        "SELECT group_concat('\"' || replace(term, '\"', '\"\"') || '\"', ' OR ') "
        f"FROM {SEARCH_TERMS_TABLE} WHERE term >= ? AND term <= ?"
    )
    # No term: an empty phrase, which matches nothing (NULL would be a syntax error).
    phrases = f"coalesce(({terms}), '\"\"')"
    arms = [f"SELECT rowid AS id FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH {phrases}"]
    params: list[Any] = [low, low + "\U0010ffff"]
    if len(text) == 1:
        for column in SEARCH_COLUMNS:
            arm, arm_params = _one_character_endings(ENDING_SQL.format(column=column), text)
            arms.append(arm)
            params.extend(arm_params)
        return " UNION ALL ".join(arms), params
    endings = sorted(
        {_ascii_lower(first + second) for first in _cases(text[0]) for second in _cases(text[1])}
    )
    marks = ", ".join("?" * len(endings))
    for column in SEARCH_COLUMNS:
        arms.append(f"SELECT id FROM payouts WHERE {ENDING_SQL.format(column=column)} IN ({marks})")
        params.extend(endings)
    return " UNION ALL ".join(arms), params


def _one_character_endings(ending: str, char: str) -> tuple[str, list[Any]]:
    """SQL (and its parameters) for the ids of the payouts whose ``ending`` (the last two
    characters of a column, or the whole of a shorter value) starts or ends with ``char``."""
    cases = sorted({_ascii_lower(case) for case in _cases(char)})
    marks = ", ".join("?" * len(cases))
    starts = " OR ".join(f"({ending} >= ? AND {ending} <= ?)" for _ in cases)
    # The distinct endings, one index seek each, of which those that end with the character.
    seen = (
        f"WITH RECURSIVE seen(v) AS (SELECT min({ending}) FROM payouts UNION ALL "
        f"SELECT (SELECT min({ending}) FROM payouts WHERE {ending} > seen.v) FROM seen "
        "WHERE seen.v IS NOT NULL) "
        f"SELECT v FROM seen WHERE length(v) = 2 AND substr(v, 2) IN ({marks})"
    )
    sql = f"SELECT id FROM payouts WHERE {starts} OR {ending} IN ({seen})"
    params: list[Any] = [bound for case in cases for bound in (case, case + "\U0010ffff")]
    return sql, [*params, *cases]


def _fold(char: str) -> str:
    """``char`` in lower case where that is one character (as the trigram index folds)."""
    lower = char.lower()
    return lower if len(lower) == 1 else char


def _cases(char: str) -> set[str]:
    """``char`` in each of its one-character cases."""
    return {case for case in (char, char.lower(), char.upper()) if len(case) == 1}


def _ascii_lower(text: str) -> str:
    """``text`` with ASCII letters in lower case, as SQLite's lower() does."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _rare_character(conn: sqlite3.Connection, text: str) -> bool:
    """Whether one character looks rare enough for its ``_text_set``: in the newest
    ``_RARE_SAMPLE`` payouts' sort keys, fewer than ``_SHORT_SET_MATCHES`` in the whole
    history's proportion. A common one ("a", a digit) would read a vocabulary range of
    hundreds of terms (0.3 s at 5M) to learn that; its LIKE walk finds pages at once."""
    share = _newest_share(conn, text)
    return share is not None and share * _count(conn, _EVERYTHING, search=True) < (
        _SHORT_SET_MATCHES
    )


def _newest_share(conn: sqlite3.Connection, text: str) -> float | None:
    """The share of the newest ``_RARE_SAMPLE`` payouts whose text holds ``text`` (LIKE,
    on their sort keys), or None in an empty history."""
    tests = " OR ".join(f"{column} LIKE ?1 ESCAPE '\\'" for column in _TEXT_COLUMNS)
    newest = f"SELECT {', '.join(_TEXT_COLUMNS)} FROM {KEYS_SOURCE} ORDER BY id DESC LIMIT ?2"
    sql = f"SELECT count(*), (SELECT count(*) FROM ({newest})) FROM ({newest}) WHERE {tests}"
    hits, seen = conn.execute(sql, (_like_pattern(text), _RARE_SAMPLE)).fetchone()
    return int(hits) / int(seen) if seen else None


def _deep_walk_seconds(conn: sqlite3.Connection, text: str, offset: int, limit: int) -> float:
    """How long a LIKE walk far down a short search's order may run before its matches are
    sorted: none for one character whose share of the newest payouts
    (``_newest_share``) puts the page past ``_DEEP_SHORT_WALK_ENTRIES`` entries."""
    if len(text) == 1:
        share = _newest_share(conn, text)
        if not share or (offset + limit) > share * _DEEP_SHORT_WALK_ENTRIES:
            return 0.0
    return _DEEP_SHORT_WALK_S


_RARE_SAMPLE = 2_000  # the newest payouts a single character's rarity is judged on


def _short_matches(conn: sqlite3.Connection, text: str) -> int | None:
    """How many payouts a 1-2 character ``text``'s ``_text_set`` holds, or None when that is
    ``_SHORT_SET_MATCHES`` or more (the vocabulary's document counts, an upper bound, say
    so first): a walk testing LIKE then finds a page sooner than reading them all."""
    low = "".join(_fold(char) for char in text)
    documents = conn.execute(
        f"SELECT coalesce(sum(doc), 0) FROM {SEARCH_TERMS_TABLE} WHERE term >= ? AND term <= ?",
        (low, low + "\U0010ffff"),
    ).fetchone()[0]
    if int(documents) >= _SHORT_SET_MATCHES:
        return None
    found = _text_count(conn, text, _SHORT_SET_MATCHES)
    return found if found < _SHORT_SET_MATCHES else None


def _in_time_order(conn: sqlite3.Connection) -> bool:
    """Whether every record was created in time order (no time breaks): then the id order is
    the time order."""
    return not conn.execute(f"SELECT 1 FROM {TIME_BREAKS_TABLE} LIMIT 1").fetchone()


def _keys_in_id_order(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
) -> list[int]:
    """The ids of a page in time order of a search no text index serves (LIKE), read from
    ``payouts_sort_keys`` in id order (``_in_time_order``), each entry tested there: the
    10,000th match of "q" (2 % of 5M payouts) in 80 ms, where a walk of the time index
    reading each row passed its 1 s and every match was then sorted (2 s in all)."""
    where, params = _where(history_filter, search=search)
    direction = " DESC" if descending else ""
    sql = f"SELECT id FROM {KEYS_SOURCE}{where} ORDER BY id{direction} LIMIT ? OFFSET ?"
    return [row[0] for row in conn.execute(sql, [*params, limit, offset])]


def _text_page(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
    keeping: Keeping | None = None,
) -> list[sqlite3.Row]:
    """A page of a text search, never deciding by a count over the whole history.

    One character (but a rare one in another order than time, ``_rare_character``), two of
    ``_SHORT_SET_MATCHES`` matches or more, or no trigram index: in time order read the
    sort keys in id order (``_keys_in_id_order``); otherwise walk
    the sort's index testing LIKE, on a worker; when the walk passes ``_SHORT_WALK_S`` (the
    matches sit far down that order, or are rare) read every row once and sort the matches:
    a scan of about 1.5 s at 5M rows where the walk took 10 s and more. Far down the listed
    rows, in another order than time, the walk gives up after ``_DEEP_SHORT_WALK_S``, as
    the sort is kept. Longer text, and one or two characters of fewer matches (their
    ``_text_set``): few matches are fetched by the index and sorted; more are a set each
    entry of the sort's index is tested against (inside the index: no row read until one
    matches); a dense word is a LIKE walk that finds a page within a few thousand rows. Far
    down, a page of fewer matches sorts them all and keeps the order for the next pages
    (``_every_match_sorted``).
    """
    kept = _kept_page(conn, keeping, history_filter, sort, descending, offset, limit, search)
    if kept is not None:
        return kept
    args = (conn, history_filter, sort, descending, offset, limit)
    text = history_filter.text.strip()
    # Far down the listed rows, where a sort of every match is kept for the next pages.
    kept_next = keeping is not None and _DEEP_OFFSET < offset <= KEPT_ROWS - limit
    newest = sort is SortKey.CREATED_AT and offset <= _DEEP_OFFSET
    if search and len(text) == _SHORT and newest and text.isascii():
        # Near the top of the time order a brief LIKE walk finds the newest matches of
        # "yu" in about 10 ms, before the matches' set is even counted. (LIKE folds the
        # case of ASCII letters only: other text reads its set, as its later pages do.)
        rows = _walk_or_none(*args, search=search, seconds=_SHORT_FIRST_WALK_S)
        if rows is not None:
            return rows
    # One character reads its set too where it is rare, but not in time order, where the
    # sort keys read in id order find its pages sooner.
    one = len(text) == 1 and sort is not SortKey.CREATED_AT and _rare_character(conn, text)
    few = (
        _kept_fact(
            keeping, ("short matches", text, _SHORT_SET_MATCHES), lambda: _short_matches(conn, text)
        )
        if search and (len(text) == _SHORT or one)
        else None
    )
    short = few is not None
    if not search or (len(text) < _TRIGRAM and not short):
        if sort is SortKey.CREATED_AT and _in_time_order(conn):
            return _rows_in_order(conn, _keys_in_id_order(*args, search=search))
        # In time order the walk keeps its full clock: it costs what the page's depth does
        # (about 0.5 s at the 10,000th match of "yu" at 5M), less than the sort.
        deep = kept_next and sort is not SortKey.CREATED_AT
        seconds = _deep_walk_seconds(conn, text, offset, limit) if deep else _SHORT_WALK_S
        rows = _walk_or_none(*args, search=search, seconds=seconds) if seconds else None
        if rows is None:
            rows = _every_match_sorted(*args, search=search, keeping=keeping, sort_matches=True)
        return rows
    if sort is SortKey.CREATED_AT and _in_time_order(conn):
        rows = _newest_matches(conn, history_filter, descending, offset, limit)
        if rows is not None:
            return rows
    if few is None:
        matches = _kept_fact(
            keeping,
            ("text matches", text, _SET_MATCHES),
            lambda: _text_count(conn, text, _SET_MATCHES),
        )
    else:
        matches = few
    drives = _text_drives(conn, history_filter, matches)
    if matches < _SORT_MATCHES:
        return _select(*args, walk=False, search=search, text_drives=drives, short=short)
    every = matches <= _KEPT_SET_ROWS
    if (matches < _SET_MATCHES or short) and kept_next:
        return _every_match_sorted(
            *args,
            search=search,
            keeping=keeping,
            text_drives=drives,
            short=short,
            every_match=every,
        )
    if matches >= _SET_MATCHES and not short:
        rows = _walk_or_none(*args, search=search)
        return rows if rows is not None else _select(*args, walk=True, search=search, member=True)
    # Near the top, a 2-character text's walk gives up sooner: its sort reads more matches.
    seconds = _SHORT_MEMBER_WALK_S if short else _MEMBER_WALK_S
    rows = _walk_or_none(*args, search=search, member=True, short=short, seconds=seconds)
    if rows is None:
        rows = _every_match_sorted(
            *args,
            search=search,
            keeping=keeping,
            text_drives=drives,
            short=short,
            every_match=every,
        )
    return rows


def _text_drives(conn: sqlite3.Connection, history_filter: HistoryFilter, matches: int) -> bool:
    """Whether a search's matches, fewer than ``_SET_MATCHES``, are read first, the exact
    filters tested on each and the rest sorted: SQLite otherwise reads a currency's or a
    state's whole index and tests each entry against the matches (1.3M RUB entries for
    45,000 matches of "petrov": 0.28 s where reading the matches takes 0.06), or walks the
    sort's index testing each entry. A row read by id costs about six index entries read in
    order, so an exact filter of fewer rows than that drives instead."""
    if history_filter.needs_review:
        return False
    if not (history_filter.states or history_filter.currency or history_filter.profile_id):
        return True
    where, params = _where(replace(history_filter, text=""))
    row = conn.execute(f"SELECT coalesce(sum(n), 0) FROM {COUNTS_TABLE}{where}", params)
    return matches * _LOOKUP_COST < int(row.fetchone()[0])


def _newest_matches(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    descending: bool,
    offset: int,
    limit: int,
) -> list[sqlite3.Row] | None:
    """A text search's page in time order read from the text index in id order (a
    2-character text without exact filters: its ``_text_set``, whose ids are few enough to
    put in order).

    Only right while every record was created in time order (no time breaks): then the
    index's own order is the page's, and no match beyond the page is read. Exact filters are
    checked on each match's row; a walk past the budget (a rare filter) gives None.
    """
    exact, params = _where(replace(history_filter, text=""))
    direction = " DESC" if descending else ""
    text = history_filter.text.strip()
    if len(text) >= _TRIGRAM:
        source, key = SEARCH_TABLE, f"{SEARCH_TABLE}.rowid"
        match = f" WHERE {SEARCH_TABLE} MATCH ?"
        match_params = [_match_phrase(text)]
    elif exact:
        return None  # the set in order, each row read until the page: a walk does better
    else:
        matches, match_params = _text_set(text)
        source, key, match = f"(SELECT DISTINCT id FROM ({matches})) AS m", "m.id", ""
    if not exact:
        sql = f"SELECT {key} FROM {source}{match} ORDER BY {key}{direction} LIMIT ? OFFSET ?"
        ids = [row[0] for row in conn.execute(sql, (*match_params, limit, offset))]
    else:
        sql = (
            f"SELECT payouts.id FROM {source} CROSS JOIN {KEYS_SOURCE} ON payouts.id = {key}"
            + match
            + exact.replace(" WHERE ", " AND ", 1)
            + f" ORDER BY {key}{direction} LIMIT ? OFFSET ?"
        )
        values = (*match_params, *params, limit, offset)
        found = _read_within(conn, sql, values, steps=_WALK_STEPS)
        if found is None:
            return None
        ids = [row[0] for row in found]
    return _rows_in_order(conn, ids)


def _rows_in_order(conn: sqlite3.Connection, ids: list[int]) -> list[sqlite3.Row]:
    """The list rows of ``ids``, in that order."""
    rows = conn.execute(
        f"SELECT {_ROW_COLUMNS} FROM payouts WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    ).fetchall()
    by_id = {row["id"]: row for row in rows}
    return [by_id[record_id] for record_id in ids if record_id in by_id]


def _bucket_of(
    conn: sqlite3.Connection,
    table: str,
    column: str,
    history_filter: HistoryFilter,
    descending: bool,
    offset: int,
) -> tuple[int, int] | None:
    """The bucket holding row ``offset`` of the order and the row's offset inside it.

    Read from a trigger-kept counts table (per UTC day, or per amount bucket), so a jump to
    the middle of millions of rows reads one bucket's index range instead of stepping over
    half the history.
    """
    where, params = _where(history_filter)
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {column}, sum(n) FROM {table}{where} GROUP BY {column} "
        f"ORDER BY {column} {direction}"
    )
    seen = 0
    for bucket, n in conn.execute(sql, params):
        if seen + n > offset:
            return int(bucket), offset - seen
        seen += n
    return None


def _deep_bound(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
) -> tuple[tuple[str, int], int] | None:
    """For a page far down the time or amount order: where its bucket starts, and the
    page's offset from there (None for other orders, or filters the counts do not hold)."""
    if offset <= _DEEP_OFFSET or history_filter.needs_review or history_filter.text.strip():
        return None
    if sort is SortKey.CREATED_AT:
        found = _bucket_of(conn, DAY_COUNTS_TABLE, "day", history_filter, descending, offset)
        if found is None:
            return None
        day, inside = found
        if descending:
            return ("created_at < ?", (day + 1) * DAY_MS), inside
        return ("created_at >= ?", day * DAY_MS), inside
    if sort is SortKey.AMOUNT:
        found = _bucket_of(conn, AMOUNT_COUNTS_TABLE, "bucket", history_filter, descending, offset)
        if found is None:
            return None
        bucket, inside = found
        low, high = amount_bucket_range(bucket)
        return (("amount_minor < ?", high) if descending else ("amount_minor >= ?", low)), inside
    return None


def _amount_page(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    descending: bool,
    offset: int,
    limit: int,
    bound: tuple[str, int] | None = None,
) -> list[sqlite3.Row] | None:
    """A page sorted by amount under a state, currency or profile filter, by merging index
    ranges.

    ``payouts_sc_amount`` holds each (state, currency) pair's amounts in order, and
    ``payouts_scp_amount`` each (state, currency, profile) triple's; SQLite merges one
    ordered range per pair (or, under a profile, triple) the filter allows (MERGE of a
    compound SELECT), reading ids from the index only, then the page's rows by id. None when
    the filter allows too many.
    """
    where, params = _where(replace(history_filter, needs_review=False))
    pairs = conn.execute(
        f"SELECT DISTINCT state, currency FROM {COUNTS_TABLE}{where}"
        + (" AND" if where else " WHERE")
        + " n > 0",
        params,
    ).fetchall()
    if not pairs:
        return []
    if len(pairs) > _MAX_ARMS:
        return None
    extra, extra_params = "", list[Any]()
    index = "payouts_sc_amount"
    if history_filter.profile_id:
        index = "payouts_scp_amount"
        extra += " AND profile_id = ?"
        extra_params.append(history_filter.profile_id)
    if history_filter.needs_review:
        extra += " AND needs_review = 1"
    if bound is not None:
        extra += f" AND {bound[0]}"
        extra_params.append(bound[1])
    arm = (
        f"SELECT amount_minor, id FROM payouts INDEXED BY {index} "
        f"WHERE state = ? AND currency = ?{extra}"
    )
    direction = " DESC" if descending else ""
    sql = (
        " UNION ALL ".join([arm] * len(pairs))
        + f" ORDER BY amount_minor{direction}, id{direction} LIMIT ? OFFSET ?"
    )
    arm_params = [value for pair in pairs for value in (*pair, *extra_params)]
    ids = [row[1] for row in conn.execute(sql, [*arm_params, limit, offset])]
    return _rows_in_order(conn, ids)


_BUCKETED: dict[SortKey, SortBuckets] = {
    sort: buckets
    for sort, buckets in zip(
        (
            SortKey.PROFILE,
            SortKey.REQUEST_ID,
            SortKey.INVOICE_ID,
            SortKey.SITE_LOGIN,
            SortKey.METHOD,
            SortKey.GATEWAY_STATUS,
        ),
        SORT_BUCKETS,
        strict=True,
    )
}
_MAX_RANGES = 450  # index ranges merged in one page (SQLite allows 500 arms in a compound)

# Each sort's order inside one (state, currency, profile) triple, as an index holds it.
_TRIPLE_ORDERS: dict[SortKey, str] = {
    **{sort: f"payouts_scp_{buckets.name}" for sort, buckets in _BUCKETED.items()},
    SortKey.STATE: "payouts_scp_time",
    SortKey.CURRENCY: "payouts_scp_time",
    SortKey.AMOUNT: "payouts_scp_amount",
}
# How long a merge of triples may read before the page sorts every match instead; far
# down longer, as it then merges up to 10,000 rows (0.1-0.2 s at 5M payouts for an amount
# range in login order) where the sort reads all 275,000 matches (0.8-1.5 s).
_MERGE_S = 0.15
_DEEP_MERGE_S = 0.3


def _mergeable(history_filter: HistoryFilter, sort: SortKey) -> bool:
    """Whether ``_merged_triples`` can read a page of the clerk's filters in ``sort``: not
    with text or a recipient (each range would build its own set of their matches), nor a
    date range, whose matches are few and quick to sort from the time index and sparse in
    every triple, nor where an index range of the filter is already in the sort's order."""
    f = history_filter
    return not (
        sort not in _TRIPLE_ORDERS
        or f.needs_review
        or f.text.strip()
        or f.recipient.strip()
        or f.created_from is not None
        or f.created_to is not None
        or _range_in_order(f, sort)
    )


def _live_triples(
    conn: sqlite3.Connection, history_filter: HistoryFilter
) -> list[tuple[str, str, str]]:
    """The (state, currency, profile) triples that may hold a match of the clerk's filters
    (``_mergeable``): those of the counts the exact filters allow, less each one an index
    seek shows holds no row of the filter's status or amount range, or, aging, no open
    state or no payout old enough."""
    f = history_filter
    exact = HistoryFilter(states=f.states, currency=f.currency, profile_id=f.profile_id)
    where, params = _where(exact)
    clauses = [where[len(" WHERE ") :]] if where else []
    clauses.append("n > 0")
    triple = "p.state = c.state AND p.currency = c.currency AND p.profile_id = c.profile_id"

    def seek(index: str, terms: list[str], values: list[Any]) -> None:
        clauses.append(
            f"EXISTS (SELECT 1 FROM payouts AS p INDEXED BY {index} "
            f"WHERE {' AND '.join([triple, *terms])})"
        )
        params.extend(values)

    if f.gateway_statuses:
        codes = sorted(f.gateway_statuses)
        seek("payouts_scp_status", [f"p.gateway_status IN ({', '.join('?' * len(codes))})"], codes)
    amounts = [(f.amount_min, ">="), (f.amount_max, "<=")]
    bounds = [(value, operator) for value, operator in amounts if value is not None]
    if bounds:
        terms = [f"p.amount_minor {operator} ?" for _, operator in bounds]
        seek("payouts_scp_amount", terms, [value for value, _ in bounds])
    if f.aged_before is not None:
        seek("payouts_scp_time", ["p.created_at < ?"], [f.aged_before])
        states = [str(state) for state in (*OPEN_STATES, State.ACCEPTED)]
        clauses.append(f"c.state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    sql = f"SELECT state, currency, profile_id FROM {COUNTS_TABLE} AS c WHERE " + " AND ".join(
        clauses
    )
    return [tuple(row) for row in conn.execute(sql, params)]


def _merged_triples(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    triples: list[tuple[str, str, str]],
    search: bool,
    keeping: Keeping | None,
) -> list[int] | None:
    """A page under the clerk's filters (``_mergeable``) in another order than their own
    indexes': one range of the sort's ``payouts_scp_*`` index per live triple (``triples``,
    from ``_live_triples``), merged by SQLite, with the rest of the filter tested on each
    entry's entry in an index by id (``_keyed_index``; a row instead: 113 ms, not 42, for
    an amount range by profile far down at 5M, and past the budget from disk). None when the
    merge passes ``_MERGE_S`` (``_DEEP_MERGE_S`` far down): the matches are sparse in their
    triples, and the caller sorts every match (0.7-3 s at 5M rows for a gateway status,
    aging or an amount range).

    A walk of the sort's whole index stops at the first long run of rows the filter leaves
    out (no invoice before the first ACCEPTED one); a triple the filter leaves out entirely
    is not read. Far down (past ``_DEEP_OFFSET``) the order is merged a little past the
    page and kept for the next pages.
    """
    f = history_filter
    index = _TRIPLE_ORDERS[sort]
    if not triples:
        return []
    # No range's index holds what the rest tests (_range_in_order leaves none): each entry
    # is tested on its sort keys, as a walk's are.
    rest, rest_params = _where(
        replace(f, states=frozenset(), currency=None, profile_id=None), walk=True, keyed=True
    )
    rest = rest.replace(" WHERE ", " AND ", 1)
    columns = ", ".join(["id", *(term.split(" ")[0] for term in _ORDER_TERMS[sort])])
    arm = (
        f"SELECT {columns} FROM payouts INDEXED BY {index} "
        f"WHERE state = ? AND currency = ? AND profile_id = ?{rest}"
    )
    keep = keeping if _DEEP_OFFSET < offset + limit <= KEPT_ROWS else None
    reach = min(KEPT_ROWS, offset + limit + _DEEP_OFFSET)
    first, count = (0, reach) if keep is not None else (offset, limit)
    sql = " UNION ALL ".join([arm] * len(triples)) + _order_by(sort, descending)
    sql += " LIMIT ? OFFSET ?"
    params = [value for triple in triples for value in (*triple, *rest_params)]
    seconds = _DEEP_MERGE_S if keep is not None else _MERGE_S
    found = _read_within(conn, sql, [*params, count, first], seconds=seconds)
    if found is None:
        return None
    ids = [row["id"] for row in found]
    if keep is None:
        return ids
    key = _order_key(f, sort, descending, search)
    keep.orders.keep(key, keep.version, ids, complete=len(ids) < reach)
    return ids[offset : offset + limit]


# The least value of an integer column (gateway_status); a text column's is "" (the sorted
# columns are TEXT or INTEGER, so every non-NULL value is at least that).
_LOWEST_INTEGER = -(2**63)


def _is_null_bucket(value: Any) -> bool:
    return isinstance(value, float) and value == float("-inf")


def _sort_bucket(
    conn: sqlite3.Connection,
    buckets: SortBuckets,
    history_filter: HistoryFilter,
    descending: bool,
    offset: int,
) -> tuple[list[tuple[str, list[Any]]], int] | None:
    """Where the bucket holding row ``offset`` of a sort starts, and the offset inside it.

    The start is a list of index ranges (SQL conditions) whose union is every row from the
    bucket on, in the page's direction; None when the offset is past the counted rows.
    """
    where, params = _where(history_filter)
    where = where.replace(" WHERE ", " AND ", 1)
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT v, blk, sum(n) FROM {SORT_COUNTS_TABLE} WHERE sort = ?{where} "
        f"GROUP BY v, blk ORDER BY v {direction}, blk {direction}"
    )
    seen = 0
    above: Any = None  # the bucket met before this one (the next one up when descending)
    column = buckets.column
    collate = " COLLATE NOCASE" if buckets.nocase else ""
    for value, block, n in conn.execute(sql, [buckets.key, *params]):
        if seen + n <= offset:
            seen += n
            above = value
            continue
        inside = offset - seen
        null = _is_null_bucket(value)
        if buckets.prefix and not null:
            if not descending:
                ranges = [(f"{column}{collate} >= ?", [value])]
            elif above is None:
                ranges = []
            else:  # every value below the next bucket up (see the migration's proof)
                ranges = [(f"{column}{collate} < ?", [above]), (f"{column} IS NULL", [])]
            return ranges, inside
        low = block << ID_BLOCK_BITS
        high = (block + 1) << ID_BLOCK_BITS
        if not descending and null:
            # Every value: a range of the index (IS NOT NULL would scan the triple's NULLs).
            every = f"{column}{collate} >= ?", ["" if buckets.nocase else _LOWEST_INTEGER]
            ranges = [(f"{column} IS NULL AND id >= ?", [low]), every]
        elif not descending:
            ranges = [
                (f"{column}{collate} = ? AND id >= ?", [value, low]),
                (f"{column}{collate} > ?", [value]),
            ]
        elif null:
            ranges = [(f"{column} IS NULL AND id < ?", [high])]
        else:
            ranges = [
                (f"{column}{collate} = ? AND id < ?", [value, high]),
                (f"{column}{collate} < ?", [value]),
                (f"{column} IS NULL", []),
            ]
        return ranges, inside
    return None


def _login_start(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
) -> tuple[list[tuple[str, list[Any]]], int] | None:
    """``_sort_bucket`` for the login order under any states and a currency or a profile
    (not both), from the nested login counts (a few hundred count rows read, a short OFFSET
    left); None when they cannot serve (another order or filter, or still being built).
    """
    kind = login_kind(history_filter.currency, history_filter.profile_id)
    if sort is not SortKey.SITE_LOGIN or kind is None or not login_counts_ready(conn):
        return None
    found = login_bucket(conn, *kind, history_filter.states, descending, offset)
    if found is None:  # past the counted rows: no row ("WHERE 0")
        return [("0", [])], 0
    prefix, before, inside = found
    if not descending:
        return [("site_login COLLATE NOCASE >= ?", [prefix])], inside
    if before is None:
        return [], inside  # the bucket is the first: the page is at the top
    return [("site_login COLLATE NOCASE < ?", [before])], inside


def _sorted_page(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
) -> list[sqlite3.Row] | None:
    """A page of a bucketed sort (profile, ids, login, method, status), by merging ranges.

    Under a state, currency or profile filter each allowed (state, currency, profile) triple
    is one ordered range of ``payouts_scp_<name>``, merged by SQLite reading index entries
    only; far down the order every range starts at the page's bucket (``_sort_bucket``).
    None when neither helps (an unfiltered page near the top walks the plain index).
    """
    buckets = _BUCKETED[sort]
    filtered = bool(history_filter.states or history_filter.currency or history_filter.profile_id)
    ranges: list[tuple[str, list[Any]]] = [("", [])]
    if offset > _DEEP_OFFSET:
        found = _login_start(conn, history_filter, sort, descending, offset)
        if found is None:
            found = _sort_bucket(conn, buckets, history_filter, descending, offset)
        if found is None:
            return []
        if found[0]:
            ranges, offset = found
    elif not filtered:
        return None
    if filtered:
        where, params = _where(history_filter)
        triples = conn.execute(
            f"SELECT state, currency, profile_id FROM {COUNTS_TABLE}{where}"
            + (" AND" if where else " WHERE")
            + " n > 0",
            params,
        ).fetchall()
        if not triples:
            return []
        index = f"payouts_scp_{buckets.name}"
        exact = "state = ? AND currency = ? AND profile_id = ?"
    else:
        triples = [()]
        index = f"payouts_by_{buckets.name}"
        exact = ""
    if len(triples) * len(ranges) > _MAX_RANGES:
        return None
    arms: list[str] = []
    arm_params: list[Any] = []
    for triple in triples:
        for condition, values in ranges:
            terms = " AND ".join(term for term in (exact, condition) if term)
            arms.append(
                f"SELECT {buckets.column} AS k, id FROM payouts INDEXED BY {index}"
                + (f" WHERE {terms}" if terms else "")
            )
            arm_params += [*triple, *values]
    direction = " DESC" if descending else ""
    collate = " COLLATE NOCASE" if buckets.nocase else ""
    order = f" ORDER BY k{collate}{direction}, id{direction} LIMIT ? OFFSET ?"
    sql = " UNION ALL ".join(arms) + order
    ids = [row[1] for row in conn.execute(sql, [*arm_params, limit, offset])]
    return _rows_in_order(conn, ids)


def _by_value_then_time(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    search: bool,
) -> list[sqlite3.Row]:
    """A page far down the state or currency order, which is (value, time, id).

    The counts per value say which value the page starts in; inside one value it is a page
    of the time order under that value, which the per-day counts reach directly.
    """
    column = "state" if sort is SortKey.STATE else "currency"
    where, params = _where(history_filter)
    direction = "DESC" if descending else "ASC"
    groups = conn.execute(
        f"SELECT {column}, sum(n) FROM {COUNTS_TABLE}{where} GROUP BY {column} "
        f"ORDER BY {column} {direction}",
        params,
    ).fetchall()
    rows: list[sqlite3.Row] = []
    seen = 0
    for value, n in groups:
        if seen + n > offset and len(rows) < limit:
            narrowed = (
                replace(history_filter, states=frozenset({value}))
                if column == "state"
                else replace(history_filter, currency=value)
            )
            start = max(0, offset - seen)
            rows += _page(
                conn,
                narrowed,
                SortKey.CREATED_AT,
                descending,
                start,
                limit - len(rows),
                search=search,
            )
        seen += n
    return rows


def _page(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
    keeping: Keeping | None = None,
) -> list[sqlite3.Row]:
    """One page, choosing between the filter's index, an index walk and reading backwards.

    With ``keeping``, a search's or clerk's filter's page that must sort every match keeps
    the order's first rows for the next pages (``kept_orders``).
    """
    if (sort is SortKey.CURRENCY and history_filter.currency) or (
        sort is SortKey.STATE and len(history_filter.states) == 1
    ):
        # The order is (value, time, id) and the filter holds the value: the time order.
        sort = SortKey.CREATED_AT
    args = (conn, history_filter, sort, descending, offset, limit)
    if history_filter.narrowed():  # the clerk's filters: their own indexes pick the rows
        return _narrowed_page(*args, search, keeping)
    if history_filter.text.strip():
        return _text_page(*args, search=search, keeping=keeping)
    total = _count(conn, HistoryFilter(), search=search)
    reverse = False
    matched = _count(conn, history_filter, search=search)
    if offset >= matched or limit == 0:
        return []
    if 2 * offset + limit > matched:
        # Nearer the end than the start: OFFSET steps over every skipped row, so read the
        # reversed order from the end (the order is total: ties are broken by id).
        reverse = True
        offset, limit = _from_the_end(matched, offset, limit)
        descending = not descending
    args = (conn, history_filter, sort, descending, offset, limit)
    if (
        sort in (SortKey.STATE, SortKey.CURRENCY)
        and offset > _DEEP_OFFSET
        and not history_filter.needs_review
    ):
        grouped = _by_value_then_time(conn, history_filter, sort, descending, offset, limit, search)
        return grouped[::-1] if reverse else grouped
    rows: list[sqlite3.Row] | None = None
    if sort in _BUCKETED and not history_filter.needs_review:
        rows = _sorted_page(conn, history_filter, sort, descending, offset, limit)
        if rows is not None:
            return rows[::-1] if reverse else rows
    deep = _deep_bound(conn, history_filter, sort, descending, offset)
    bound, inside = deep if deep is not None else (None, offset)
    if sort is SortKey.AMOUNT and (
        history_filter.states or history_filter.currency or history_filter.profile_id
    ):
        rows = _amount_page(conn, history_filter, descending, inside, limit, bound)
    elif bound is not None:
        # From the bucket's start the filter's columns are checked on the sort's index walk.
        walk = sort is SortKey.AMOUNT
        rows = _select(
            conn,
            history_filter,
            sort,
            descending,
            inside,
            limit,
            walk=walk,
            search=search,
            bound=bound,
        )
    if rows is None:
        walk = _should_walk(history_filter, sort, offset + limit, matched, total)
        rows = _walk_or_none(*args, search=search) if walk else None
    if rows is None:
        rows = _select(*args, walk=False, search=search)
    if reverse:
        rows.reverse()
    return rows


def _prepare_file(path: Path) -> None:
    """Create the database file private to the user before SQLite opens it.

    SQLite gives the -wal and -shm files the main file's permissions, so creating it 0600
    keeps all three private without touching the process-wide umask.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    with contextlib.suppress(OSError):
        path.chmod(0o600)


class _Pending:
    """One caller's write waiting for a group commit: its work, then its result or error."""

    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


def _commit_group(conn: sqlite3.Connection, group: list[_Pending]) -> None:
    """Run every pending write in one transaction, each in a savepoint of its own (one that
    fails leaves the others), then COMMIT once: one fsync for all. A failure of the
    transaction itself fails every write of the group (none of them is in the file)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        for item in group:
            conn.execute("SAVEPOINT grouped")
            try:
                item.result = item.work(conn)
            except BaseException as exc:
                conn.execute("ROLLBACK TO grouped")
                item.error = exc
            conn.execute("RELEASE grouped")
        conn.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        for item in group:
            if item.error is None:
                item.result, item.error = None, exc
    finally:
        for item in group:
            item.done = True


class SqliteHistoryStore:
    """The payout history database (see the module docstring for the threading model)."""

    def __init__(
        self, path: Path, *, clock: Callable[[], int] = now_ms, zone: LocalZone | None = None
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        # The zone whose days the local-day totals keep: the desk's own (this process's).
        self._zone = local_zone() if zone is None else zone
        self._local_ready = False  # the local-day totals hold every payout in self._zone
        self.direct_totals_max_rows = DIRECT_TOTALS_MAX_ROWS
        self.direct_totals_budget_s = DIRECT_TOTALS_BUDGET_S
        self._local_batch = _LOCAL_BATCH
        # Last in, first out: the connection read last holds the tables of the matches its
        # pages kept (``match_sets``) and the freshest cache.
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._lent: set[sqlite3.Connection] = set()  # pooled connections a reader is using
        self._lock = threading.Lock()
        # Writers of this process take turns here rather than in SQLite's busy handler, whose
        # sleeps (1, 2, 5, 10 ms …) would add to every write that meets the maintenance step.
        self._write_lock = threading.RLock()
        self._waiting_lock = threading.Lock()
        self._writers_waiting = 0
        self._pending: list[_Pending] = []  # writes waiting for a group commit
        self._pending_lock = threading.Lock()
        self._maintainer: sqlite3.Connection | None = None
        self._upkeep_lock = threading.Lock()  # one maintenance pass at a time
        self._closed = False
        try:
            _prepare_file(self.path)
        except OSError as exc:
            raise HistoryOpenError(f"The payout history cannot be opened: {exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, no space
                raise HistoryOpenError(f"The payout history cannot be opened: {exc}") from exc
            if isinstance(exc, sqlite3.DatabaseError):  # not a database, or damaged
                raise HistoryOpenError(
                    f"The payout history cannot be opened ({exc}). Cactus Desk left the file "
                    "untouched; move it aside to start a new history."
                ) from exc
            raise
        self._search = (
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SEARCH_TABLE,)).fetchone()
            is not None
        )
        self._recipient_ready = False  # see _search_for
        self._login_ready = False  # the login counts' background build is done
        # Every text index (FTS5): the upkeep merges them, a write never does.
        self._text_tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND sql LIKE 'CREATE VIRTUAL TABLE % USING fts5(%' ORDER BY name"
            )
        ]
        for table in self._text_tables:
            _tune_search(conn, table)
        self._merge_turn = 0  # the index the next merge step is for (_merge_steps)
        self._all.append(conn)
        self._idle.put(conn)
        for sidecar in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{sidecar}").chmod(0o600)
        self._watch = self._connect()
        self._all.append(self._watch)
        self._kept = KeptOrders()

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: every write opens its own BEGIN IMMEDIATE; check_same_thread is
        # off because a pooled connection serves one thread at a time, not always the same.
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        # FULL: a committed payout survives a power cut, not only a crash of the app.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_BACKSTOP_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={_WAL_KEEP_BYTES}")
        return conn

    @contextlib.contextmanager
    def _connection(self, *, translate: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:  # taken and marked lent at once: close() leaves it to us
            if self._closed:
                raise HistoryClosedError("The payout history is closed")
            conn: sqlite3.Connection | None = None
            with contextlib.suppress(queue.Empty):
                conn = self._idle.get_nowait()
                self._lent.add(conn)
        if conn is None:
            conn = self._connect()
            with self._lock:
                if self._closed:
                    conn.close()
                    raise HistoryClosedError("The payout history is closed")
                self._all.append(conn)
                self._lent.add(conn)
        try:
            yield conn
        except sqlite3.Error as exc:
            if not translate:
                raise
            if self._closed:
                raise HistoryClosedError("The payout history is closed") from exc
            raise HistoryUnavailableError(str(exc) or type(exc).__name__) from exc
        finally:
            reusable = False
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                reusable = True
            finally:
                # Back to the pool, unless the store was closed meanwhile or the rollback
                # failed (its transaction must not reach the next reader): then closed.
                with self._lock:
                    self._lent.discard(conn)
                    reusable = reusable and not self._closed
                    if reusable:
                        self._idle.put(conn)
                    elif conn in self._all:
                        self._all.remove(conn)
                if not reusable:
                    conn.close()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn to write (the maintenance step yields to a waiting writer)."""
        with self._waiting_lock:
            self._writers_waiting += 1
        try:
            self._write_lock.acquire()
        finally:
            with self._waiting_lock:
                self._writers_waiting -= 1
        try:
            yield
        finally:
            self._write_lock.release()

    @contextlib.contextmanager
    def _write(self, *, translate: bool = True) -> Iterator[sqlite3.Connection]:
        with self._connection(translate=translate) as conn, self._turn():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _grouped(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` inside a write transaction, committed together with the writes other
        threads queue meanwhile (group commit): whichever writer gets the turn commits every
        write waiting, so concurrent sends share one fsync. Returns (or raises what ``work``
        raised) only once the COMMIT holding its write is durable, as ``_write`` does."""
        item = _Pending(work)
        with self._connection() as conn:
            # Queued only once this caller holds a connection: a write queued by a caller that
            # then failed could be committed by another writer after the caller gave up.
            with self._pending_lock:
                self._pending.append(item)
            with self._turn():
                if not item.done:
                    with self._pending_lock:
                        group, self._pending = self._pending, []
                    _commit_group(conn, group)
        error = item.error
        if error is None:
            return item.result
        if isinstance(error, sqlite3.Error):
            if self._closed:
                raise HistoryClosedError("The payout history is closed") from error
            raise HistoryUnavailableError(str(error) or type(error).__name__) from error
        raise error

    def close(self) -> None:
        """Close every connection; the store cannot be used afterwards.

        A connection a reader is using is closed when that reader gives it back: closing it
        under a running statement crashes the interpreter (the statement's thread reads the
        freed handle). A maintenance pass under way finishes first.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections, self._all = self._all, []
            lent = set(self._lent)
        with self._upkeep_lock:
            for conn in connections:
                if conn not in lent:
                    conn.close()

    def __enter__(self) -> SqliteHistoryStore:
        return self

    def now(self) -> int:
        """The store's clock in epoch milliseconds (what ``updated_at`` is stamped with)."""
        return self._clock()

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: committed on exit, rolled back on error.

        For read-check-write steps (applying a callback) that must see no concurrent writer,
        whether in this process or another one on the same file.
        """
        with self._write(translate=False) as conn:
            yield conn

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for reads outside a transaction (rows are ``sqlite3.Row``)."""
        with self._connection(translate=False) as conn:
            yield conn

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------

    def create_attempt(self, attempt: NewAttempt) -> int:
        """Record ``attempt`` as SUBMITTING and return its id; raises DuplicateRequestIdError."""
        stamp = self._clock()

        def insert(conn: sqlite3.Connection) -> int | None:
            try:
                cursor = conn.execute(
                    "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, "
                    "environment, merchant_id, site_id, request_id, site_login, method, "
                    "currency, amount_minor, state, request_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        stamp,
                        stamp,
                        attempt.profile_id,
                        attempt.profile_name,
                        attempt.environment,
                        attempt.merchant_id,
                        attempt.site_id,
                        attempt.request_id,
                        scrub_card_numbers(attempt.site_login),
                        attempt.method,
                        attempt.currency,
                        attempt.amount_minor,
                        str(State.SUBMITTING),
                        masked_json(attempt.request_payload()),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_CONSTRAINT_UNIQUE":
                    raise
                return None  # the request id is taken
            return cursor.lastrowid

        record_id = self._grouped(insert)
        if record_id is None:
            raise DuplicateRequestIdError(
                attempt.request_id,
                attempt.merchant_id,
                attempt.site_id,
                self._find_request(attempt.merchant_id, attempt.site_id, attempt.request_id),
            ) from None
        return record_id

    def _find_request(self, merchant_id: str, site_id: int, request_id: str) -> int | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id FROM payouts WHERE merchant_id = ? AND site_id = ? AND request_id = ?",
                (merchant_id, site_id, request_id),
            ).fetchone()
        return int(row[0]) if row else None

    def record_outcome(self, record_id: int, outcome: PayoutOutcome) -> None:
        """Give a SUBMITTING attempt its outcome: ACCEPTED, REJECTED or UNKNOWN."""
        columns = outcome_columns(outcome)
        response = columns.pop("response")
        columns["response_json"] = None if response is None else masked_json(response)
        columns["state"] = str(columns["state"])
        for name in ("message", "detail"):
            columns[name] = scrub_card_numbers(columns[name] or "")
        self._finish(record_id, columns)

    def mark_sending(self, record_id: int) -> None:
        """Durably note that a SUBMITTING attempt's request is about to leave (recovery uses it)."""
        stamp = self._clock()

        def mark(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE payouts SET sending_started_at = ?, send_attempts = send_attempts + 1, "
                "updated_at = ? WHERE id = ? AND state = ?",
                (stamp, stamp, record_id, str(State.SUBMITTING)),
            )
            if cursor.rowcount != 1:
                raise OutcomeAlreadyRecordedError(
                    f"History record {record_id} is not waiting to be sent; nothing was sent."
                )

        self._grouped(mark)

    def record_not_sent(self, record_id: int, reason: str, *, detail: str = "") -> None:
        """Mark a SUBMITTING attempt as NOT_SENT: it was stopped before any byte left."""
        columns = {"state": str(State.NOT_SENT), "message": scrub_card_numbers(reason)}
        if detail:
            columns["detail"] = scrub_card_numbers(detail)
        self._finish(record_id, columns)

    def _finish(self, record_id: int, columns: dict[str, Any]) -> None:
        columns["updated_at"] = self._clock()

        def finish(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT state, gateway_status, invoice_id FROM payouts WHERE id = ?", (record_id,)
            ).fetchone()
            if row is None:
                raise RecordNotFoundError(f"No payout with history record {record_id}")
            if row["state"] != State.SUBMITTING:
                raise OutcomeAlreadyRecordedError(
                    f"History record {record_id} already has an outcome "
                    f"({State(row['state']).label}); it is not changed."
                )
            if row["gateway_status"] is not None:
                keep_early_callback(columns, row)
            assignments = ", ".join(f"{name} = ?" for name in columns)
            conn.execute(
                f"UPDATE payouts SET {assignments} WHERE id = ?", [*columns.values(), record_id]
            )

        self._grouped(finish)

    # -- reads ----------------------------------------------------------------------------

    def get(self, record_id: int) -> PayoutRecord:
        """Return one record with its request and response parsed."""
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM payouts WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"No payout with history record {record_id}")
        return _payout_record(row)

    def count(self, history_filter: HistoryFilter = _EVERYTHING, *, cap: int | None = None) -> int:
        """How many records match ``history_filter``.

        With ``cap``, counting stops there: a result equal to ``cap`` means "at least cap".
        Counts without search text are always instant; a common search word over a million
        payouts takes up to ~0.1 s uncapped (more with exact filters on top).
        """
        keeping = None
        if history_filter.narrowed():
            keeping = Keeping(self._kept, self.data_version())  # read before, as in ``page``
        with self._connection() as conn:
            search = self._search_for(conn, history_filter)
            total = _count(conn, history_filter, search=search, cap=cap)
        if keeping is not None and (cap is None or total < cap):
            keeping.orders.keep_fact(_total_key(history_filter, search), keeping.version, total)
        return total

    def page(
        self,
        history_filter: HistoryFilter = _EVERYTHING,
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> list[HistoryRow]:
        """One page of matching rows in the given order; ties are broken by id."""
        offset, limit = max(0, offset), max(0, limit)
        keeping = None
        if history_filter.narrowed() or history_filter.text.strip():
            # Read before the snapshot: after a commit in between, an order kept by this
            # read is newer than its tag, so the next page sorts again rather than trust it.
            keeping = Keeping(self._kept, self.data_version())
        with self._connection() as conn:
            conn.execute("BEGIN")  # the counts and the page from one snapshot
            rows = _page(
                conn,
                history_filter,
                SortKey(sort),
                descending,
                offset,
                limit,
                search=self._search_for(conn, history_filter),
                keeping=keeping,
            )
            if conn.in_transaction:  # a walk given up may have ended the read already
                conn.execute("COMMIT")
        return _history_rows(rows)

    def iter_records(
        self,
        history_filter: HistoryFilter = _EVERYTHING,
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
    ) -> Iterator[PayoutRecord]:
        """Every matching record in order, streamed from one consistent snapshot."""
        with self._connection() as conn:
            where, params = _where(history_filter, search=self._search_for(conn, history_filter))
            sql = f"SELECT * FROM payouts{where}{_order_by(sort, descending)}"
            for row in conn.execute(sql, params):
                yield _payout_record(row)

    def distinct_profiles(self) -> list[tuple[str, str]]:
        """``(profile_id, name)`` of every profile in the history, with its latest name."""
        with self._connection() as conn:
            result = [
                (profile_id, conn.execute(_LATEST_NAME, (profile_id,)).fetchone()[0])
                for profile_id in _distinct(conn, "profile_id")
            ]
        return sorted(result, key=lambda item: (item[1].casefold(), item[0]))

    def distinct_currencies(self) -> list[str]:
        """Every currency in the history, sorted."""
        with self._connection() as conn:
            return _distinct(conn, "currency")

    def _search_for(self, conn: sqlite3.Connection, history_filter: HistoryFilter) -> bool:
        """Whether the text indexes may serve ``history_filter``: not for a recipient while
        the recipient index is still being built in the background (it would miss payouts)."""
        if not (self._search and history_filter.recipient.strip()):
            return self._search
        if not self._recipient_ready:
            self._recipient_ready = recipient_index_ready(conn)
        return self._recipient_ready

    def _totals_source(
        self, history_filter: HistoryFilter, search: bool
    ) -> tuple[str, str, list[Any]]:
        """What totals read: the recipient's index drives them when there is one."""
        driven = _recipient_source(history_filter, search)
        if driven is not None:
            return driven
        where, params = _where(history_filter, search=search)
        return "payouts", where, params

    def _local_kept(self, conn: sqlite3.Connection, zone: LocalZone) -> bool:
        """Whether the local-day totals hold every payout, in ``zone``'s days."""
        if zone.key != self._zone.key:
            return False
        if not self._local_ready:
            kept_zone, ready = local_totals_state(conn)
            self._local_ready = ready and kept_zone == zone.key
        return self._local_ready

    def _bounded(
        self,
        conn: sqlite3.Connection,
        source: str,
        where: str,
        params: list[Any],
        sql: str,
        sql_params: list[Any],
    ) -> list[Any]:
        """``sql``'s rows, summed from the payouts themselves within the direct-sum bounds
        (at most ``direct_totals_max_rows`` matching payouts, ``direct_totals_budget_s`` of
        work), or TotalsTooBroadError: never a sum of only the rows read so far."""
        deadline = time.monotonic() + self.direct_totals_budget_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _BUDGET_STEPS)
        try:
            counted = f"SELECT count(*) FROM (SELECT 1 FROM {source}{where} LIMIT ?)"
            cap = self.direct_totals_max_rows
            if int(conn.execute(counted, [*params, cap + 1]).fetchone()[0]) > cap:
                raise TotalsTooBroadError(TOO_BROAD)
            return conn.execute(sql, sql_params).fetchall()
        except sqlite3.OperationalError as exc:
            if "interrupt" in str(exc):
                raise TotalsTooBroadError(TOO_BROAD) from exc
            raise
        finally:
            conn.set_progress_handler(None, 0)

    def totals(self, history_filter: HistoryFilter = _EVERYTHING) -> list[TotalRow]:
        """Per currency and state: how many payouts the filter selects, and their sum
        (TotalsTooBroadError when the kept sums cannot answer and too many payouts match)."""
        with self._connection() as conn:

            def direct(part: HistoryFilter) -> list[TotalRow]:
                search = self._search_for(conn, part)
                source, where, params = self._totals_source(part, search)
                sql = totals_sql(where, source)
                rows = self._bounded(conn, source, where, params, sql, params)
                return [TotalRow(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

            kept = kept_totals.totals(conn, history_filter, direct)
            if kept is None and self._local_kept(conn, self._zone):
                search = self._search_for(conn, history_filter)
                kept = kept_totals.local_totals(conn, history_filter, self._zone, search)
            return direct(history_filter) if kept is None else kept

    def daily_totals(
        self,
        history_filter: HistoryFilter = _EVERYTHING,
        offset_ms: int = 0,
        zone: LocalZone | None = None,
    ) -> list[DayTotal]:
        """Per day and currency: sent, paid and declined sums, oldest first. Days are
        ``zone``'s local days, or UTC days shifted by ``offset_ms`` without one."""
        limit = MAX_CHART_DAYS * 8  # a few currencies a day
        days_in = LocalZone.fixed(offset_ms) if zone is None else zone
        with self._connection() as conn:
            search = self._search_for(conn, history_filter)
            source, where, params = self._totals_source(history_filter, search)
            sql = daily_sql(where, "?", source, zone)
            kept = None
            if self._local_kept(conn, days_in):
                kept = kept_totals.local_daily(conn, history_filter, days_in, search, limit)
            if kept is None and zone is None:
                kept = kept_totals.daily(conn, history_filter, offset_ms, limit)
            if kept is not None:
                return kept[::-1]
            rows = self._bounded(conn, source, where, params, sql, [offset_ms, *params, limit])
        found = [
            DayTotal(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows
        ]
        return found[::-1]

    def data_version(self) -> int:
        """A cheap marker that changes whenever anyone (this or another process) commits."""
        with self._lock:
            if self._closed:
                raise HistoryClosedError("The payout history is closed")
            try:
                return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise HistoryUnavailableError(str(exc) or type(exc).__name__) from exc

    @property
    def location(self) -> Path:
        """The history file (what a damaged history's set-aside and the receiver watch)."""
        return self.path

    # -- port operations beyond the basic ledger --------------------------------------------

    def rows_by_id(self, ids: Sequence[int]) -> list[HistoryRow]:
        """The list columns of the records ``ids`` (in no order); gone ones are left out."""
        if not ids:
            return []
        with self._connection() as conn:
            cursor = conn.cursor()
            cursor.row_factory = None  # plain tuples: most are compared and dropped
            rows = cursor.execute(_ROWS_BY_ID, (json.dumps([int(i) for i in ids]),)).fetchall()
        return [_history_row_from_values(values) for values in rows]

    def newest_record_id(self) -> int:
        """The highest record id (0 when empty): new records have higher ones."""
        with self._connection() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM payouts").fetchone()[0])

    def last_event_id(self) -> int:
        """The id of the newest event in the history (0 when there is none)."""
        with self._connection() as conn:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def newest_event_id(self, record_id: int) -> int:
        """The id of the newest event of ``record_id`` (0 when it has none)."""
        with self._connection() as conn:
            return event_rows.newest_event_id(conn, record_id)

    def events_for(self, record_id: int) -> list[Event]:
        """The record's timeline: every event attached to it, oldest first."""
        with self._connection() as conn:
            return event_rows.events_for(conn, record_id)

    def events_since(self, after_id: int = 0, limit: int = 1000) -> list[Event]:
        """Events newer than ``after_id``, oldest first (live views pick up others' writes)."""
        with self._connection() as conn:
            return event_rows.events_since(conn, after_id, limit)

    def rejected_events(self, limit: int = 100) -> list[Event]:
        """The latest rejected callbacks (forged, unknown request_id, bad body), newest first."""
        with self._connection() as conn:
            return event_rows.rejected_events(conn, limit)

    def details(self, record_id: int) -> PayoutDetails:
        """One payout with its timeline and resend audit, read from one snapshot."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                row = conn.execute("SELECT * FROM payouts WHERE id = ?", (record_id,)).fetchone()
                if row is None:
                    raise RecordNotFoundError(f"No payout with history record {record_id}")
                events = event_rows.events_for(conn, record_id)
                resends = _resends(conn, record_id)
            finally:
                conn.execute("COMMIT")
        return PayoutDetails(_payout_record(row), tuple(events), tuple(resends))

    def resend_history(self, record_id: int) -> list[ResendAudit]:
        """Every confirmed resend of ``record_id``, oldest first."""
        with self._connection() as conn:
            return _resends(conn, record_id)

    def recent_similar(self, probe: DuplicateProbe) -> list[PayoutRecord]:
        """Records like ``probe`` (amount, currency, login, method, environment) created at or
        after ``probe.since`` whose state is not one of ``probe.exclude_states``, newest first."""
        excluded = sorted(str(state) for state in probe.exclude_states)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT * FROM payouts WHERE amount_minor = ? AND currency = ? "
                "AND site_login = ? AND method = ? AND environment = ? AND created_at >= ? "
                f"AND state NOT IN ({', '.join('?' * len(excluded))}) "
                "ORDER BY created_at DESC, id DESC",
                (
                    probe.amount_minor,
                    probe.currency,
                    scrub_card_numbers(probe.site_login),
                    probe.method,
                    probe.environment,
                    probe.since,
                    *excluded,
                ),
            ).fetchall()
        return [_payout_record(row) for row in rows]

    def recent_similar_many(self, probes: Sequence[DuplicateProbe]) -> list[list[PayoutRecord]]:
        """``recent_similar`` for every probe in one statement per (environment, window,
        excluded states): the probes are the outer loop, each a seek in ``payouts_by_amount``.

        The matches come back as one row holding a JSON array: the module gives up and takes
        back the GIL at every row it steps to, and on a thread racing a busy one (a batch's
        checks) each take waits out the switch interval, so a hundred matches took half a
        second to fetch as rows."""
        found: list[list[PayoutRecord]] = [[] for _ in probes]
        for (environment, since, excluded), keys in probe_groups(probes).items():
            probe_json = json.dumps([list(key) for key in keys])
            with self._connection() as conn:
                names = [
                    column[0]
                    for column in conn.execute("SELECT * FROM payouts LIMIT 0").description
                ]
                (matches,) = conn.execute(
                    "WITH probe (amount_minor, currency, site_login, method) AS ("
                    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
                    "json_extract(value, '$[2]'), json_extract(value, '$[3]') "
                    "FROM json_each(?)) "
                    f"SELECT json_group_array(json_array({', '.join(names)})) FROM payouts "
                    "WHERE id IN (SELECT payouts.id FROM probe "
                    "CROSS JOIN payouts ON payouts.amount_minor = probe.amount_minor "
                    # Unary plus: a seek by amount per probe, never a walk of a day's rows.
                    "AND +payouts.currency = probe.currency "
                    "AND payouts.site_login = probe.site_login AND payouts.method = probe.method "
                    "WHERE payouts.environment = ? AND +payouts.created_at >= ? "
                    f"AND payouts.state NOT IN ({', '.join('?' * len(excluded))}))",
                    (probe_json, environment, since, *excluded),
                ).fetchone()
            records = [
                _payout_record(dict(zip(names, row, strict=True))) for row in json.loads(matches)
            ]
            records.sort(key=lambda record: (record.created_at, record.id), reverse=True)
            for record in records:
                key = (record.amount_minor, record.currency, record.site_login, record.method)
                for index in keys.get(key, ()):
                    found[index].append(record)
        return found

    def recent_amounts(
        self, environment: str, since: int, exclude_states: frozenset[State], limit: int
    ) -> frozenset[int] | None:
        """The different amounts of the window's payouts (``HistoryReader.recent_amounts``):
        a walk of the window in ``payouts_by_created``, answered as one row."""
        excluded = sorted(str(state) for state in exclude_states)
        with self._connection() as conn:
            (amounts,) = conn.execute(
                "SELECT json_group_array(amount_minor) FROM (SELECT DISTINCT amount_minor "
                "FROM payouts INDEXED BY payouts_by_created WHERE created_at >= ? "
                f"AND environment = ? AND state NOT IN ({', '.join('?' * len(excluded))}) "
                "LIMIT ?)",
                (since, environment, *excluded, limit + 1),
            ).fetchone()
        found = json.loads(amounts)
        return None if len(found) > limit else frozenset(found)

    def interrupted_attempts(self) -> list[InterruptedAttempt]:
        """Attempts still SUBMITTING (left by a crash when no other process is sending)."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, request_id, sending_started_at, send_attempts FROM payouts "
                "WHERE state = ? ORDER BY id",
                (str(State.SUBMITTING),),
            ).fetchall()
        return [
            InterruptedAttempt(
                int(row["id"]), row["request_id"], row["sending_started_at"], row["send_attempts"]
            )
            for row in rows
        ]

    def begin_resend(self, record_id: int, expected_state: State) -> ResendStart | None:
        """Audit a confirmed resend and put the record back to SUBMITTING, in one transaction.

        Returns what the record held before (to restore if the resend never leaves), or None
        when the record is gone or no longer in ``expected_state`` (nothing is changed).
        """
        stamp = self._clock()
        with self._write() as conn:
            row = conn.execute(
                "SELECT state, message, detail, unknown_kind, send_attempts FROM payouts "
                "WHERE id = ?",
                (record_id,),
            ).fetchone()
            if row is None or row["state"] != expected_state:
                return None
            conn.execute(
                "INSERT INTO resends (record_id, confirmed_at, attempt, previous_state, "
                "previous_message, previous_detail) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record_id,
                    stamp,
                    row["send_attempts"] + 1,
                    row["state"],
                    row["message"],
                    row["detail"],
                ),
            )
            conn.execute(
                "UPDATE payouts SET state = ?, sending_started_at = NULL, unknown_kind = NULL, "
                "updated_at = ? WHERE id = ?",
                (str(State.SUBMITTING), stamp, record_id),
            )
        return ResendStart(
            record_id,
            State(row["state"]),
            row["message"],
            row["detail"],
            row["unknown_kind"],
            row["send_attempts"] + 1,
        )

    def undo_resend(self, before: ResendStart, event: ManualEvent) -> int:
        """A resend that never left: the record gets back what it had, plus ``event``."""
        now = self._clock()
        with self._write() as conn:
            conn.execute(
                "UPDATE payouts SET state = ?, message = ?, detail = ?, unknown_kind = ?, "
                "updated_at = ? WHERE id = ? AND state = ?",
                (
                    str(before.state),
                    before.message,
                    before.detail,
                    before.unknown_kind,
                    now,
                    before.record_id,
                    str(State.SUBMITTING),
                ),
            )
            return _insert_manual(conn, now, event)

    def add_manual_event(self, event: ManualEvent) -> int:
        """Append an operator's event (source manual) to the audit trail; return its id."""
        with self._write() as conn:
            return _insert_manual(conn, self._clock(), event)

    def record_batch(self, entry: BatchEntry) -> BatchEntry:
        """Keep ``entry`` unless its batch is known; return the stored one."""
        values = (
            entry.merchant_id,
            entry.site_id,
            entry.batch_id,
            entry.profile_id,
            entry.file_sha256,
            entry.file_name,
            entry.row_count,
            entry.parent,
        )
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO batches (merchant_id, site_id, batch_id, profile_id, "
                "file_sha256, file_name, row_count, parent, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, self._clock()),
            )
            row = conn.execute(
                "SELECT * FROM batches WHERE merchant_id = ? AND site_id = ? AND batch_id = ?",
                (entry.merchant_id, entry.site_id, entry.batch_id),
            ).fetchone()
        return batch_entry(row)

    def recent_batches(self, limit: int = 100) -> list[BatchEntry]:
        """The ``limit`` most recently imported batches, newest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT * FROM batches ORDER BY created_at DESC, batch_id DESC LIMIT ?",
                (max(0, int(limit)),),
            ).fetchall()
        return [batch_entry(row) for row in rows]

    def batches_for_file(self, file_sha256: str) -> list[BatchEntry]:
        """Every batch imported from a file with this SHA-256, oldest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT * FROM batches WHERE file_sha256 = ? ORDER BY created_at, batch_id",
                (file_sha256,),
            ).fetchall()
        return [batch_entry(row) for row in rows]

    def record_rejected_callback(
        self,
        payload: Mapping[str, Any],
        reason: Reason,
        *,
        source: EventSource = EventSource.GATEWAY,
        request_id: str | None = None,
    ) -> ApplyResult:
        """Store a callback that was not verified (``payload`` already bounded), with why."""
        with self._write() as conn:
            return callback_rows.reject(
                conn, self._clock(), source, payload, reason, request_id=request_id
            )

    def apply_verified_callback(
        self,
        payload: Mapping[str, Any],
        *,
        merchant_id: str | None = None,
        site_id: int | None = None,
        source: EventSource = EventSource.GATEWAY,
    ) -> ApplyResult:
        """Match a verified callback to its payout and apply it; always exactly one event."""
        with self._write() as conn:
            return callback_rows.apply_verified(
                conn, self._clock(), payload, merchant_id, site_id, source
            )

    def set_final_state(
        self, record_id: int, status: int, note: str, *, invoice_id: str | None, who: str
    ) -> int:
        """Settle a payout by hand (``callbacks.rules.final_state_change``); the event id."""
        with self._write() as conn:
            return callback_rows.set_final_state(
                conn, self._clock(), record_id, status, note, invoice_id, who
            )

    def prune_rejected(self, older_than_ms: int, who: str) -> PruneReport:
        """Delete unverified rejected callbacks older than ``older_than_ms`` and audit it."""
        with self._write() as conn:
            now = self._clock()
            cutoff = now - older_than_ms
            deleted = event_rows.prune_rejected(conn, cutoff, PRUNABLE_REASONS)
            payload, message = prune_audit(older_than_ms, cutoff, deleted, PRUNABLE_REASONS)
            event_id = event_rows.insert_event(
                conn,
                received_at=now,
                source=EventSource.MANUAL,
                outcome=EventOutcome.PRUNED,
                payload=payload,
                message=message,
                who=who,
            )
        return PruneReport(deleted, cutoff, event_id)

    def back_up(self, reason: str) -> Path:
        """Copy the history to ``backups/`` now (older copies beyond the kept number go)."""
        if not reason.replace("-", "").isalnum() or not reason.islower():
            raise ValueError(f"A backup reason is a short lower-case tag, not {reason!r}")
        return backup.make_backup(self.path, reason, now_ms=self._clock())

    def _build_steps(
        self,
        conn: sqlite3.Connection,
        deadline: float,
        step: Callable[[sqlite3.Connection], bool],
    ) -> tuple[int, bool]:
        """Run ``step`` (one write transaction each; True while work is left) until it is
        done, the budget ends, or a writer waits: (steps taken, whether it is done)."""
        steps = 0
        while True:
            if self._writers_waiting or time.monotonic() >= deadline:
                return steps, False
            if not self._write_lock.acquire(blocking=False):
                return steps, False
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    left = step(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._write_lock.release()
            steps += 1
            if not left:
                return steps, True

    def _merge_steps(self, conn: sqlite3.Connection, deadline: float) -> tuple[int, bool]:
        """Merge steps of the text indexes (``_MERGE_PAGES`` pages each, in their own short
        transactions) until none has work left, the budget ends, or a writer waits: (steps
        taken, whether all are merged). The indexes take turns, carried over between passes:
        a pass often ends after a step or two, and the index listed last would never get one.
        """
        left = set(self._text_tables)
        steps = 0
        while left:
            if self._writers_waiting or time.monotonic() >= deadline:
                return steps, False
            if not self._write_lock.acquire(blocking=False):
                return steps, False
            table = self._text_tables[self._merge_turn % len(self._text_tables)]
            self._merge_turn += 1
            try:
                merged = table in left and _merge_step(conn, table)
            finally:
                self._write_lock.release()
            if merged:
                steps += 1
            else:
                left.discard(table)
        return steps, True

    def _local_step(self, conn: sqlite3.Connection) -> bool:
        """One step of the local-day totals' build; True while more is left."""
        kept_zone, _built = local_totals_state(conn)
        if kept_zone != self._zone.key:  # first run, or the desk's zone moved
            reset_local_totals(conn, self._zone.changes, self._zone.key)
            return True
        began = time.monotonic()
        left = build_local_totals(conn, self._local_batch)
        self._local_batch = _next_batch(self._local_batch, time.monotonic() - began)
        return left

    def run_maintenance(self, budget_ms: int = 40) -> MaintenanceReport:
        """Merge the text indexes a few small steps, build the recipient index and the login
        counts a batch at a time (after the upgrades that added them) and checkpoint the WAL,
        within ``budget_ms``.

        Call it every second or so from a worker (never from a GUI thread). Each merge step is
        its own short transaction and the pass stops as soon as a writer of this process
        waits, so a write waits for one step at most; a file busy in another process is
        skipped until the next pass. The checkpoint is PASSIVE: it never blocks a writer.
        """
        if not self._upkeep_lock.acquire(blocking=False):
            return MaintenanceReport(0, more=False, wal_frames_left=-1)  # a pass is running
        try:
            return self._maintenance_pass(budget_ms)
        finally:
            self._upkeep_lock.release()

    def _maintenance_pass(self, budget_ms: int) -> MaintenanceReport:
        deadline = time.monotonic() + budget_ms / 1000
        steps, more = 0, False
        with self._lock:
            if self._closed:
                raise HistoryClosedError("The payout history is closed")
            if self._maintainer is None:
                self._maintainer = self._connect()
                self._maintainer.execute("PRAGMA busy_timeout=0")
                self._all.append(self._maintainer)
            conn = self._maintainer
        try:
            steps, merged = self._merge_steps(conn, deadline)
            more = not merged
            if self._search and not self._recipient_ready:
                taken, self._recipient_ready = self._build_steps(
                    conn, deadline, lambda c: build_recipient_index(c, _RECIPIENT_BATCH)
                )
                steps, more = steps + taken, more or not self._recipient_ready
            if not self._login_ready and login_counts_ready(conn):
                self._login_ready = True
            if not self._login_ready:
                taken, self._login_ready = self._build_steps(
                    conn, deadline, lambda c: build_login_counts(c, _LOGIN_BATCH)
                )
                steps, more = steps + taken, more or not self._login_ready
            if not self._local_ready:
                taken, self._local_ready = self._build_steps(conn, deadline, self._local_step)
                steps, more = steps + taken, more or not self._local_ready
            busy, wal_frames, copied = _checkpoint(conn)
            # Writes that landed while the bulk was copied keep the WAL from starting over, so
            # under steady writes it would grow without end. Copy the few frames left while
            # this process's writers hold off (SQLite restarts the WAL at the next write).
            if (
                0 <= copied < wal_frames
                and not self._writers_waiting
                and self._write_lock.acquire(blocking=False)
            ):
                try:
                    busy, wal_frames, copied = _checkpoint(conn)
                finally:
                    self._write_lock.release()
        except sqlite3.OperationalError as exc:
            if self._closed:
                raise HistoryClosedError("The payout history is closed") from exc
            if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise HistoryUnavailableError(str(exc)) from exc
            return MaintenanceReport(steps, more=True, wal_frames_left=-1)
        except sqlite3.Error as exc:
            if self._closed:
                raise HistoryClosedError("The payout history is closed") from exc
            raise HistoryUnavailableError(str(exc) or type(exc).__name__) from exc
        left = max(0, int(wal_frames) - int(copied)) if wal_frames >= 0 else -1
        return MaintenanceReport(steps, more=more or bool(busy), wal_frames_left=left)

    def warm_up(self) -> None:
        """Read ``payouts_sort_keys`` and each sort's own indexes once, in order, so the OS
        keeps them in memory.

        A sort of a search's or a recipient's matches reads an entry of an index by id per
        match, and a page in another order walks the sort's index: from a cold disk the
        first such page at 5M payouts took 0.1-0.6 s longer than the next. These reads (2.4 GB
        at 5M, a quarter of the file) take a second or two from disk, 0.6 s of CPU from
        memory, and stop when the store closes.
        """
        with self._connection() as conn:
            reads = [_whole_range(conn, SORT_KEYS_INDEX)] + [
                _whole_range(conn, str(row[0]))
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'payouts' AND (name GLOB 'payouts_by_*' "
                    "OR name GLOB 'payouts_id_*') ORDER BY name"
                )
            ]
            conn.set_progress_handler(lambda: self._closed, _BUDGET_STEPS)
            try:
                for sql in reads:
                    conn.execute(sql).fetchone()
            finally:
                conn.set_progress_handler(None, 0)

    def check_integrity(self, *, complete: bool = False) -> str | None:
        """Check the file; SQLite's complaint, or None.

        By default the bounded start-up check (``backup.bounded_problem``: well under a second
        at any size), then the daily backup if due. ``complete`` runs the whole check to its
        end instead (seconds at millions of payouts) and takes no backup. Either way on a
        worker. Raises ``HistoryUnavailableError`` when the file cannot be checked for another
        reason (busy, unreadable).
        """
        full = self.path.stat().st_size <= backup.FULL_CHECK_MAX_BYTES
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise HistoryUnavailableError(f"The payout history cannot be checked: {exc}") from exc
        try:
            if complete:
                problem = backup.integrity_problem(conn, full=full)
            else:
                problem, _finished = backup.bounded_problem(conn, full=full)
            has_payouts = (
                problem is None
                and conn.execute("SELECT 1 FROM payouts LIMIT 1").fetchone() is not None
            )
        except sqlite3.DatabaseError as exc:
            if not getattr(exc, "sqlite_errorname", "").startswith(_DAMAGED_NAMES):
                raise HistoryUnavailableError(
                    f"The payout history cannot be checked: {exc}"
                ) from exc
            return str(exc)
        finally:
            conn.close()
        if problem is not None:
            return problem
        if not complete and has_payouts:
            try:
                # Abandoned within a step once the store is closed (the window quits).
                backup.daily_backup_if_due(
                    self.path, now_ms=self._clock(), should_stop=lambda: self._closed
                )
            except BackupError as exc:  # a missed daily backup must not keep anyone from work
                logging.getLogger(__name__).warning("%s", exc)
        return None


def _whole_range(conn: sqlite3.Connection, index: str) -> str:
    """A count of every non-NULL entry of a payouts index as one range of it: no test on
    each entry (a third of a scan's CPU), and not a bare count(*), which SQLite answers
    from the smallest index."""
    column, collation = conn.execute(
        "SELECT name, coll FROM pragma_index_xinfo(?) WHERE seqno = 0", (index,)
    ).fetchone()
    types = dict(conn.execute("SELECT name, type FROM pragma_table_info('payouts')").fetchall())
    lowest = "''" if str(types.get(column, "")).upper() == "TEXT" else "-9e999"
    return (
        f"SELECT count(*) FROM payouts INDEXED BY {index} "
        f"WHERE {column} COLLATE {collation} >= {lowest}"
    )


_ROWS_BY_ID = (
    f"SELECT {', '.join(f.name for f in fields(HistoryRow))} FROM payouts "
    "WHERE id IN (SELECT value FROM json_each(?))"
)
_ROW_NAMES = tuple(f.name for f in fields(HistoryRow))
_ROW_STATE_AT = _ROW_NAMES.index("state")
_ROW_REVIEW_AT = _ROW_NAMES.index("needs_review")
_ROW_CONFLICT_AT = _ROW_NAMES.index("status_conflict")


def _next_batch(batch: int, took_s: float) -> int:
    """The local-day build's next batch: doubled after a quick step, halved after a slow one."""
    if took_s < _LOCAL_STEP_S / 2:
        return min(batch * 2, _LOCAL_BATCH_MAX)
    if took_s > _LOCAL_STEP_S * 2:
        return max(batch // 2, 1)
    return batch


def _history_row_from_values(values: Sequence[Any]) -> HistoryRow:
    converted = list(values)
    converted[_ROW_STATE_AT] = State(converted[_ROW_STATE_AT])
    converted[_ROW_REVIEW_AT] = bool(converted[_ROW_REVIEW_AT])
    converted[_ROW_CONFLICT_AT] = bool(converted[_ROW_CONFLICT_AT])
    return HistoryRow(*converted)


def _resends(conn: sqlite3.Connection, record_id: int) -> list[ResendAudit]:
    rows = conn.execute(
        "SELECT confirmed_at, attempt, previous_state, previous_message, previous_detail "
        "FROM resends WHERE record_id = ? ORDER BY id",
        (record_id,),
    ).fetchall()
    return [ResendAudit(**dict(row)) for row in rows]


def _insert_manual(conn: sqlite3.Connection, now: int, event: ManualEvent) -> int:
    return event_rows.insert_event(
        conn,
        received_at=now,
        source=EventSource.MANUAL,
        outcome=event.outcome,
        payload=event.payload,
        record_id=event.record_id,
        message=event.message,
        who=event.who,
    )


def _merge_step(conn: sqlite3.Connection, table: str) -> bool:
    """One incremental merge of the text index ``table`` in a transaction of its own; False
    when there was nothing left to merge."""
    before = conn.total_changes
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)", (_MERGE_PAGES,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return conn.total_changes - before >= 2  # FTS5's sign of work done


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """A PASSIVE checkpoint: (busy, frames in the WAL, frames copied); never waits for locks."""
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(copied)


def _tune_search(conn: sqlite3.Connection, table: str) -> None:
    """Keep the text index ``table``'s merges off the write path (``_SEARCH_SETTINGS``).

    Written once per file (the settings live in the file); a file busy elsewhere is tuned
    at a later open.
    """
    rows = conn.execute(f"SELECT k, v FROM {table}_config").fetchall()
    current = {str(row[0]): row[1] for row in rows}
    wanted = {k: v for k, v in _SEARCH_SETTINGS.items() if current.get(k) != v}
    if not wanted:
        return
    command = f"INSERT INTO {table}({table}, rank) VALUES (?, ?)"
    try:
        conn.execute("BEGIN IMMEDIATE")
        for key, value in wanted.items():
            conn.execute(command, (key, value))
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        logging.getLogger(__name__).info("text index settings left for later: %s", exc)
