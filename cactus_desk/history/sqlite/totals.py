"""Totals from the kept aggregates (``payouts_totals``, ``payouts_day_totals``).

A filter of states, currency, profile, gateway statuses and a date range is answered from the
aggregate rows: the whole UTC days inside the range from the per-day table, the ragged ends
(less than a day each) from the payouts themselves through the time index. Other filters
(text, recipient, amounts, aging, review) return None and the caller reads the payouts.

The local-day tables (``payouts_local_day_totals``, ``payouts_word_totals``) answer by the
desk's own days, and a recipient search whose text lies within one kept recipient word (a
name, an e-mail's part): a search text without digits or word breaks occurs in a recipient
exactly when it occurs in one of its words, so one matching word's sums are the exact sums.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cactus_desk.history.clerk import LocalZone
from cactus_desk.history.sqlite.migrations import (
    BLOCK_DAYS,
    BLOCK_TOTALS_TABLE,
    DAY_MS,
    DAY_TOTALS_TABLE,
    LOCAL_DAY_TOTALS_TABLE,
    TOTALS_TABLE,
    WORD_BREAKS,
    WORD_DAYS_TABLE,
    WORD_SEARCH_TABLE,
    WORD_TOTALS_TABLE,
    WORDS_TABLE,
    local_totals_state,
)
from cactus_desk.history.types import DayTotal, HistoryFilter, TotalRow

Direct = Callable[[HistoryFilter], list[TotalRow]]
TRIGRAM = 3  # the trigram index finds substrings of at least this many characters


def answerable(history_filter: HistoryFilter) -> bool:
    """Whether the aggregates can answer ``history_filter`` exactly."""
    f = history_filter
    return not (
        f.text.strip()
        or f.recipient.strip()
        or f.amount_min is not None
        or f.amount_max is not None
        or f.aged_before is not None
        or f.needs_review
    )


def _key_clauses(f: HistoryFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.states:
        states = sorted(f.states)
        clauses.append(f"state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    if f.currency is not None:
        clauses.append("currency = ?")
        params.append(f.currency)
    if f.profile_id is not None:
        clauses.append("profile_id = ?")
        params.append(f.profile_id)
    if f.gateway_statuses:
        codes = sorted(f.gateway_statuses)
        clauses.append(f"status IN ({', '.join('?' * len(codes))})")
        params.extend(codes)
    return clauses, params


def _aggregate(
    conn: sqlite3.Connection,
    f: HistoryFilter,
    days: tuple[int, int] | None,
    table: str = DAY_TOTALS_TABLE,
) -> list[TotalRow]:
    clauses, params = _key_clauses(f)
    if days is None:
        table = TOTALS_TABLE
    else:
        clauses = ["day >= ? AND day < ?", *clauses]
        params = [*days, *params]
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = (
        f"SELECT currency, state, sum(n), sum(total) FROM {table}{where} "
        "GROUP BY currency, state HAVING sum(n) > 0 ORDER BY currency, state"
    )
    return [TotalRow(r[0], r[1], int(r[2]), int(r[3])) for r in conn.execute(sql, params)]


def _merge(parts: list[list[TotalRow]]) -> list[TotalRow]:
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for part in parts:
        for row in part:
            n, total = found.get((row.currency, row.state), (0, 0))
            found[(row.currency, row.state)] = (n + row.count, total + row.amount_minor)
    return [TotalRow(c, s, n, t) for (c, s), (n, t) in sorted(found.items()) if n]


def _whole_days(
    conn: sqlite3.Connection, f: HistoryFilter, first: int, stop: int
) -> list[list[TotalRow]]:
    """The totals of days ``[first, stop)``: whole blocks of days from the block table, the
    days around them from the per-day table."""
    low = -(-first // BLOCK_DAYS)  # the first whole block
    high = min(stop, 2**40) // BLOCK_DAYS  # the block after the last whole one
    if low >= high:
        return [_aggregate(conn, f, (first, stop))]
    return [
        _aggregate(conn, f, (low, high), BLOCK_TOTALS_TABLE),
        _aggregate(conn, f, (first, low * BLOCK_DAYS)),
        _aggregate(conn, f, (high * BLOCK_DAYS, stop)),
    ]


def totals(conn: sqlite3.Connection, f: HistoryFilter, direct: Direct) -> list[TotalRow] | None:
    """Per currency and state under ``f`` from the aggregates (``direct`` reads the payouts
    of a range shorter than a day), or None when the aggregates cannot answer ``f``."""
    if not answerable(f):
        return None
    if f.created_from is None and f.created_to is None:
        return _aggregate(conn, f, None)
    start, end = f.created_from, f.created_to
    first = -(-start // DAY_MS) if start is not None else -(2**62)  # the first whole day
    stop = end // DAY_MS if end is not None else 2**62  # the day after the last whole day
    if first >= stop:  # no whole day inside: the range is short, its rows few
        return direct(f)
    parts = _whole_days(conn, f, max(first, 0), stop)
    if start is not None and start < first * DAY_MS:
        parts.append(direct(replace(f, created_to=first * DAY_MS)))
    if end is not None and end > stop * DAY_MS:
        parts.append(direct(replace(f, created_from=stop * DAY_MS)))
    return _merge(parts)


def daily(
    conn: sqlite3.Connection, f: HistoryFilter, offset_ms: int, limit: int
) -> list[DayTotal] | None:
    """Per day and currency from the per-day aggregates, newest first, or None when they
    cannot answer: other filters, a desk whose days are not UTC days shifted whole, or a date
    range that cuts a day."""
    if not answerable(f) or offset_ms % DAY_MS:
        return None
    if any(bound is not None and bound % DAY_MS for bound in (f.created_from, f.created_to)):
        return None
    clauses, params = _key_clauses(f)
    if f.created_from is not None:
        clauses.append("day >= ?")
        params.append(f.created_from // DAY_MS)
    if f.created_to is not None:
        clauses.append("day < ?")
        params.append(f.created_to // DAY_MS)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    shift = offset_ms // DAY_MS
    sql = (
        "SELECT day + ? AS d, currency, sum(n), sum(total), "
        "sum(CASE WHEN status = 4 THEN total ELSE 0 END), "
        "sum(CASE WHEN status = 5 OR state = 'REJECTED' THEN total ELSE 0 END) "
        f"FROM {DAY_TOTALS_TABLE}{where} GROUP BY 1, 2 HAVING sum(n) > 0 "
        "ORDER BY 1 DESC, 2 LIMIT ?"
    )
    rows = conn.execute(sql, [shift, *params, limit])
    return [DayTotal(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]


def _plain(f: HistoryFilter) -> bool:
    """Whether ``f`` has no filter but the keys of the aggregates and a date range."""
    return not (
        f.text.strip()
        or f.amount_min is not None
        or f.amount_max is not None
        or f.aged_before is not None
        or f.needs_review
    )


def _word_of(conn: sqlite3.Connection, text: str, search: bool) -> str | bool | None:
    """The one kept word that holds ``text``; False when none does, None when the words
    cannot answer (the text holds a word break, e.g. a digit, or no letter, or several words
    hold it)."""
    if not text or any(ch in WORD_BREAKS for ch in text):
        return None
    if not any(ch.isalpha() or not ch.isascii() for ch in text):
        return None  # only letters put a word in the kept ones
    if search and len(text) >= TRIGRAM:
        sql = (
            f"SELECT word FROM {WORDS_TABLE} WHERE id IN (SELECT rowid FROM "
            f"{WORD_SEARCH_TABLE} WHERE {WORD_SEARCH_TABLE} MATCH ?) LIMIT 2"
        )
        found = conn.execute(sql, ('"' + text.replace('"', '""') + '"',)).fetchall()
    else:  # as the payouts are searched without their text index: LIKE, ASCII case folding
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = f"SELECT word FROM {WORDS_TABLE} WHERE word LIKE ? ESCAPE '\\' LIMIT 2"
        found = conn.execute(sql, (f"%{escaped}%",)).fetchall()
    if not found:
        return False
    return str(found[0][0]) if len(found) == 1 else None


def _day_clauses(f: HistoryFilter, zone: LocalZone) -> tuple[list[str], list[Any]] | None:
    """The local days of ``f``'s date range, or None when it cuts a local day."""
    clauses: list[str] = []
    params: list[Any] = []
    for bound, clause in ((f.created_from, "day >= ?"), (f.created_to, "day < ?")):
        if bound is None:
            continue
        if not zone.day_start(bound):
            return None
        clauses.append(clause)
        params.append(zone.day_of(bound))
    return clauses, params


def _recipient_word(conn: sqlite3.Connection, f: HistoryFilter, search: bool) -> str | None:
    """The one kept word holding ``f``'s recipient ('' when none does: no payout matches),
    or None when the word sums cannot answer ``f`` (no recipient, a filter they do not
    key, a date range, or a text several words hold)."""
    recipient = f.recipient.strip()
    if not (_plain(f) and recipient) or f.created_from is not None or f.created_to is not None:
        return None
    word = _word_of(conn, recipient, search)
    if word is None:
        return None
    return word if isinstance(word, str) else ""


def local_totals(
    conn: sqlite3.Connection, f: HistoryFilter, zone: LocalZone, search: bool
) -> list[TotalRow] | None:
    """Per currency and state under ``f`` (a recipient search without a date range) from
    the recipient-word sums, or None when they cannot answer it exactly."""
    word = _recipient_word(conn, f, search)
    if word is None:
        return None
    clauses, params = _key_clauses(f)
    where = " AND ".join(["word = ?", *clauses])
    sql = (
        f"SELECT currency, state, sum(n), sum(total) FROM {WORD_TOTALS_TABLE} WHERE {where} "
        "GROUP BY currency, state HAVING sum(n) > 0 ORDER BY currency, state"
    )
    rows = conn.execute(sql, [word, *params])
    return [TotalRow(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def recipient_buckets(
    conn: sqlite3.Connection, f: HistoryFilter, column: str, descending: bool, search: bool
) -> list[tuple[Any, int]] | None:
    """How many of a recipient search's matches each value of ``column`` (``state`` or
    ``currency``) holds, in that column's order, from the recipient-word sums; None when
    they cannot say exactly (the filter has more than their keys, the text lies in several
    words, or the sums are being added up)."""
    if not f.recipient.strip() or not local_totals_state(conn)[1]:
        return None
    word = _recipient_word(conn, f, search)
    if word is None:
        return None
    clauses, params = _key_clauses(f)
    where = " AND ".join(["word = ?", *clauses])
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {column}, sum(n) FROM {WORD_TOTALS_TABLE} WHERE {where} "
        f"GROUP BY {column} HAVING sum(n) > 0 ORDER BY {column} {direction}"
    )
    return [(row[0], int(row[1])) for row in conn.execute(sql, [word, *params])]


def local_daily(
    conn: sqlite3.Connection, f: HistoryFilter, zone: LocalZone, search: bool, limit: int
) -> list[DayTotal] | None:
    """Per local day of ``zone`` and currency, newest first, from the local-day sums (the
    kept zone's), or None when they cannot answer ``f`` exactly."""
    days = _day_clauses(f, zone)
    if not _plain(f) or days is None:
        return None
    recipient = f.recipient.strip()
    by_currency = not (f.states or f.profile_id is not None or f.gateway_statuses)
    if recipient or by_currency:
        if not by_currency:
            return None  # the chart's word sums are per currency only
        word = _word_of(conn, recipient, search) if recipient else ""  # '': every payout
        if word is None:
            return None
        clauses = ["word = ?", *days[0]]
        params: list[Any] = [word or "", *days[1]]
        if f.currency is not None:
            clauses.append("currency = ?")
            params.append(f.currency)
        sql = (
            "SELECT day, currency, sum(n), sum(sent), sum(paid), sum(declined) "
            f"FROM {WORD_DAYS_TABLE} WHERE {' AND '.join(clauses)} "
            # In the primary key's order backwards: no sort of every day first.
            "GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY 1 DESC, 2 DESC LIMIT ?"
        )
    else:
        keys, params = _key_clauses(f)
        clauses = [*days[0], *keys]
        params = [*days[1], *params]
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = (
            "SELECT day, currency, sum(n), sum(total), "
            "sum(CASE WHEN status = 4 THEN total ELSE 0 END), "
            "sum(CASE WHEN status = 5 OR state = 'REJECTED' THEN total ELSE 0 END) "
            f"FROM {LOCAL_DAY_TOTALS_TABLE}{where} GROUP BY 1, 2 HAVING sum(n) > 0 "
            "ORDER BY 1 DESC, 2 LIMIT ?"
        )
    rows = conn.execute(sql, [*params, limit])
    return [DayTotal(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]
