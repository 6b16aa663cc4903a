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
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from cactus_desk.gateway.outcomes import (
    Accepted,
    PayoutOutcome,
    RefusedUnverified,
    Rejected,
    Unknown,
)
from cactus_desk.paths import ensure_private_dir
from cactus_desk.payouts.migrations import COUNTS_TABLE, SEARCH_TABLE, migrate
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus

HISTORY_FILE = "history.sqlite3"
ENVIRONMENTS = ("live", "sandbox")
RESPONSE_TEXT_LIMIT = 4000
_BUSY_TIMEOUT_S = 10.0

# Keys whose values are identifiers or amounts the gateway needs for reconciliation; a long
# digit run in them is an id, not a card, and masking it would lose the payout's trail.
_IDENTIFIER_KEYS = frozenset(
    {"request_id", "invoice_id", "merchant_id", "site_id", "amount", "received_amount"}
)
# What people and systems put between a card's digits: spaces (also no-break and thin ones),
# dashes of every kind, dots, underscores, slashes; up to three in a row (" - ").
CARD_SEPARATORS = "[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000._/\\-\u2010-\u2015\u2212]"
_DIGIT_RUN = re.compile(rf"(?<!\d)\d(?:{CARD_SEPARATORS}{{0,3}}\d)*")
_DIGITS = re.compile(r"\d+")
_CARD_KEYS = frozenset({"card_number", "card", "pan"})
_KNOWN_STATUSES = frozenset(int(status) for status in GatewayStatus)


class DuplicateRequestIdError(Exception):
    """A payout with this request_id is already recorded for the merchant and site."""

    def __init__(self, request_id: str, merchant_id: str, site_id: int, existing_id: int | None):
        self.request_id = request_id
        self.merchant_id = merchant_id
        self.site_id = site_id
        self.existing_id = existing_id
        where = f" (history record {existing_id})" if existing_id is not None else ""
        super().__init__(
            f"Request ID {request_id!r} was already used for merchant {merchant_id!r}, "
            f"site {site_id}{where}. Nothing was sent; use a new request ID."
        )


class HistoryOpenError(Exception):
    """The history file cannot be opened or created; the message says why."""


class RecordNotFoundError(LookupError):
    """No history record has this id."""


class OutcomeAlreadyRecordedError(Exception):
    """The attempt already has an outcome; an outcome is written once only."""


def now_ms() -> int:
    """The current time as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def iso_utc(ms: int) -> str:
    """Render epoch milliseconds as ISO-8601 UTC, e.g. ``2024-05-01T10:22:33.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _masked(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _mask_run(text: str, *, luhn: bool) -> str:
    """Mask the card numbers in one run of digit groups; a card may be only part of the run
    (``4111 1111 1111 1111 / 12.50``), so every span of whole groups is tried, longest first."""
    groups = [(m.start(), m.end()) for m in _DIGITS.finditer(text)]
    if sum(end - start for start, end in groups) < 12:
        return text
    pieces: list[str] = []
    done = 0
    index = 0
    while index < len(groups):
        best = None
        count = 0
        for last in range(index, len(groups)):
            count += groups[last][1] - groups[last][0]
            if count > 19:
                break
            if count >= 12:
                digits = "".join(text[a:b] for a, b in groups[index : last + 1])
                if not luhn or _luhn_valid(digits):
                    best = (last, digits)
        if best is None:
            index += 1
            continue
        last, digits = best
        pieces.append(text[done : groups[index][0]])
        pieces.append(_masked(digits))
        done = groups[last][1]
        index = last + 1
    pieces.append(text[done:])
    return "".join(pieces)


def scrub_card_numbers(text: str, *, luhn: bool = True) -> str:
    """Mask every 12–19 digit Luhn-valid number as first 6 / last 4, whatever separates its
    digits (spaces, dashes, dots, slashes, underscores); without ``luhn``, every such number."""
    return _DIGIT_RUN.sub(lambda match: _mask_run(match.group(0), luhn=luhn), text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_card_numbers(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        text = str(value)
        masked = scrub_card_numbers(text)
        return value if masked == text else masked
    if isinstance(value, Mapping):
        return _scrub_mapping(value)
    if isinstance(value, list | tuple):
        return [_scrub_value(item) for item in value]
    return value


def _scrub_item(key: Any, value: Any) -> Any:
    if key in _IDENTIFIER_KEYS:
        return value
    if key in _CARD_KEYS and isinstance(value, str):
        return scrub_card_numbers(value, luhn=False)  # a card field: masked even if mistyped
    return _scrub_value(value)


def _scrub_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): _scrub_item(key, value) for key, value in data.items()}


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(_scrub_mapping(data), ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class NewAttempt:
    """What is about to be sent, with the recipient fields already masked."""

    profile_id: str
    profile_name: str
    environment: str
    merchant_id: str
    site_id: int
    request_id: str
    site_login: str
    method: str
    currency: str
    amount_minor: int
    request_fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"Environment must be 'live' or 'sandbox', not {self.environment!r}")
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise ValueError("The amount must be a whole number of minor units")
        if self.amount_minor <= 0:
            raise ValueError("The amount must be greater than zero")
        if isinstance(self.site_id, bool) or not isinstance(self.site_id, int):
            raise ValueError("The site ID must be a whole number")
        for name in ("profile_id", "merchant_id", "request_id", "site_login", "method", "currency"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"The {name.replace('_', ' ')} must not be empty")

    def request_payload(self) -> dict[str, Any]:
        """The request body as sent, without the signature and with recipient fields masked."""
        return {
            "merchant_id": self.merchant_id,
            "site_login": self.site_login,
            "site_id": self.site_id,
            "request_id": self.request_id,
            "amount": self.amount_minor,
            "currency": self.currency,
            "method": self.method,
            "additional_fields": dict(self.request_fields),
        }


@dataclass(frozen=True)
class PayoutRecord:
    """Everything stored about one attempt."""

    id: int
    created_at: int
    updated_at: int
    profile_id: str
    profile_name: str
    environment: str
    merchant_id: str
    site_id: int
    request_id: str
    invoice_id: str | None
    site_login: str
    method: str
    currency: str
    amount_minor: int
    state: State
    gateway_status: int | None
    message: str
    detail: str
    http_status: int | None
    unknown_kind: str | None
    request: dict[str, Any]
    response: dict[str, Any] | None
    status_source: str = "gateway"
    needs_review: bool = False
    review_message: str = ""
    received_amount: int | None = None
    received_currency: str | None = None
    description: str = ""
    sending_started_at: int | None = None
    send_attempts: int = 0
    status_conflict: bool = False


@dataclass(frozen=True)
class HistoryRow:
    """The columns a history table shows; no JSON, so a page of rows stays light."""

    id: int
    created_at: int
    updated_at: int
    profile_name: str
    environment: str
    request_id: str
    invoice_id: str | None
    site_login: str
    method: str
    currency: str
    amount_minor: int
    state: State
    gateway_status: int | None
    message: str
    status_source: str = "gateway"
    needs_review: bool = False
    status_conflict: bool = False
    profile_id: str = ""  # to read the amount with that profile's decimals


_ROW_COLUMNS = (
    "id, created_at, updated_at, profile_name, environment, request_id, invoice_id, "
    "site_login, method, currency, amount_minor, state, gateway_status, message, "
    "status_source, needs_review, status_conflict, profile_id"
)


def _payout_record(row: sqlite3.Row) -> PayoutRecord:
    values = dict(row)
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


@dataclass(frozen=True)
class HistoryFilter:
    """What the history shows: a text search, and exact matches that are empty when unused."""

    text: str = ""
    states: frozenset[str] = frozenset()
    currency: str | None = None
    profile_id: str | None = None
    needs_review: bool = False  # only records flagged for review (conflicts, odd statuses)


class SortKey(StrEnum):
    """The columns the history can be sorted by."""

    CREATED_AT = "created_at"
    PROFILE = "profile"
    REQUEST_ID = "request_id"
    INVOICE_ID = "invoice_id"
    SITE_LOGIN = "site_login"
    METHOD = "method"
    CURRENCY = "currency"
    AMOUNT = "amount"
    STATE = "state"
    GATEWAY_STATUS = "gateway_status"


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
    history_filter: HistoryFilter, *, walk: bool = False, search: bool = False
) -> tuple[str, list[Any]]:
    """The WHERE clause; ``search`` when the trigram index exists, ``walk`` for an index walk.

    A walk checks rows one by one, so its text test is LIKE (exact, ASCII case folding);
    the index folds case for all of Unicode, which only matters for non-ASCII letters.
    """
    # A unary + keeps SQLite off the filter's own index, so it walks the sort's index instead.
    plus = "+" if walk else ""
    clauses: list[str] = []
    params: list[Any] = []
    text = history_filter.text.strip()
    if text and search and not walk and len(text) >= _TRIGRAM:
        clauses.append(f"id IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ?)")
        params.append(_match_phrase(text))
    elif text:
        pattern = _like_pattern(text)
        clauses.append(
            "(" + " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in _TEXT_COLUMNS) + ")"
        )
        params.extend([pattern] * len(_TEXT_COLUMNS))
    if history_filter.states:
        states = sorted(str(state) for state in history_filter.states)
        clauses.append(f"{plus}state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    if history_filter.currency:
        clauses.append(f"{plus}currency = ?")
        params.append(history_filter.currency)
    if history_filter.profile_id:
        clauses.append(f"{plus}profile_id = ?")
        params.append(history_filter.profile_id)
    if history_filter.needs_review:
        clauses.append(f"{plus}needs_review = 1")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _order_by(sort: SortKey, descending: bool) -> str:
    direction = " DESC" if descending else ""
    terms = [*_ORDER_TERMS[SortKey(sort)], "id"]
    return " ORDER BY " + ", ".join(term + direction for term in terms)


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
    index drives the count (CROSS JOIN keeps it the outer loop), so a cap stops it early.
    """
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
            source += f" CROSS JOIN payouts ON payouts.id = {SEARCH_TABLE}.rowid"
        where = f" WHERE {SEARCH_TABLE} MATCH ?" + exact.replace(" WHERE ", " AND ", 1)
        params = [_match_phrase(text), *params]
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
    *,
    walk: bool,
    search: bool,
) -> list[sqlite3.Row]:
    where, params = _where(history_filter, walk=walk, search=search)
    sql = f"SELECT {_ROW_COLUMNS} FROM payouts{where}{_order_by(sort, descending)} LIMIT ? OFFSET ?"
    return conn.execute(sql, [*params, limit, offset]).fetchall()


def _walk_or_none(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
) -> list[sqlite3.Row] | None:
    """The page by walking the sort's index, or None if that would cost more than the budget.

    The estimate behind a walk assumes the filter is spread evenly over the sort order; when
    it is not (USD payouts sorted by amount sit below every IDR and VND one), the walk is
    stopped after _WALK_STEPS virtual-machine steps and the caller sorts the matches instead.
    """
    conn.set_progress_handler(lambda: 1, _WALK_STEPS)
    try:
        return _select(
            conn, history_filter, sort, descending, offset, limit, walk=True, search=search
        )
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        return None
    finally:
        conn.set_progress_handler(None, 0)


def _page(
    conn: sqlite3.Connection,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
    limit: int,
    *,
    search: bool,
) -> list[sqlite3.Row]:
    """One page, choosing between the filter's index, an index walk and reading backwards."""
    total = _count(conn, HistoryFilter(), search=search)
    reverse = False
    if history_filter.text.strip():
        # With fewer matches than this, fetching and sorting them all is cheap; with more,
        # walking the sort's index finds a page within _WALK_BUDGET row checks.
        cap = max(1, -(-(offset + limit) * total // _WALK_BUDGET))
        walk = _count(conn, history_filter, search=search, cap=cap) >= cap
    else:
        matched = _count(conn, history_filter, search=search)
        if offset >= matched or limit == 0:
            return []
        if 2 * offset + limit > matched:
            # Nearer the end than the start: OFFSET steps over every skipped row, so read the
            # reversed order from the end (the order is total: ties are broken by id).
            reverse = True
            offset, limit = max(0, matched - offset - limit), matched - offset
            limit -= offset
            descending = not descending
        walk = _should_walk(history_filter, sort, offset + limit, matched, total)
    args = (conn, history_filter, sort, descending, offset, limit)
    rows = _walk_or_none(*args, search=search) if walk else None
    if rows is None:
        rows = _select(*args, walk=False, search=search)
    if reverse:
        rows.reverse()
    return rows


def _unknown_status_review(status: Any) -> dict[str, Any]:
    """Review columns for an accepted answer whose status is outside the gateway's 1-7."""
    if type(status) is int and status in _KNOWN_STATUSES:
        return {}
    in_range = type(status) is int and -(2**63) <= status < 2**63
    return {
        "gateway_status": status if in_range else None,
        "needs_review": 1,
        "review_message": (
            f"The gateway accepted the payout with status {str(status)[:40]}, which Cactus Desk "
            "does not know; check it by hand."
        ),
    }


def _outcome_columns(outcome: PayoutOutcome) -> dict[str, Any]:
    if isinstance(outcome, Accepted):
        return {
            "state": State.ACCEPTED,
            "invoice_id": outcome.invoice_id,
            "gateway_status": outcome.status,
            "message": outcome.message,
            "detail": "",
            "http_status": None,
            "response": dict(outcome.response),
            "unknown_kind": None,
            **_unknown_status_review(outcome.status),
        }
    if isinstance(outcome, Rejected) and outcome.signature_verified:
        return {
            "state": State.REJECTED,
            "invoice_id": None,
            "gateway_status": None,
            "message": outcome.message,
            "detail": "",
            "http_status": outcome.http_status,
            "response": dict(outcome.response),
            "unknown_kind": None,
        }
    if isinstance(outcome, Rejected | RefusedUnverified):
        # Possibly paid: kept apart from REJECTED so the duplicate guard still counts it.
        why = outcome.why if isinstance(outcome, RefusedUnverified) else "it is not signed"
        return {
            "state": State.REFUSED_UNVERIFIED,
            "invoice_id": None,
            "gateway_status": None,
            "message": outcome.message,
            "detail": f"The refusal could not be verified: {why}.",
            "http_status": outcome.http_status,
            "response": dict(outcome.response),
            "unknown_kind": None,
        }
    if isinstance(outcome, Unknown):
        raw = outcome.response_text
        return {
            "state": State.UNKNOWN,
            "invoice_id": None,
            "gateway_status": None,
            "message": outcome.reason,
            "detail": outcome.detail,
            "http_status": outcome.http_status,
            "response": None if raw is None else {"raw_body": raw[:RESPONSE_TEXT_LIMIT]},
            "unknown_kind": str(outcome.kind),
        }
    raise TypeError(f"Not a payout outcome: {type(outcome).__name__}")


def _keep_early_callback(columns: dict[str, Any], row: sqlite3.Row) -> None:
    """A verified callback applied while the attempt was SUBMITTING outranks its answer.

    Callbacks can overtake the synchronous answer; the answer's status 3 must not move a
    callback's later status back, and a callback that proves the invoice exists turns an
    UNKNOWN outcome into ACCEPTED.
    """
    from cactus_desk.callbacks.lifecycle import PROVES_INVOICE, later_status

    early = int(row["gateway_status"])
    columns["gateway_status"] = later_status(early, columns.get("gateway_status"))
    columns["invoice_id"] = columns.get("invoice_id") or row["invoice_id"]
    doubt = (State.UNKNOWN, State.REFUSED_UNVERIFIED)
    if columns.get("state") in doubt and early in PROVES_INVOICE and row["invoice_id"]:
        columns["state"] = str(State.ACCEPTED)
        columns["detail"] = f"Before the callback: {columns['message']} {columns['detail']}".strip()
        columns["message"] = "Invoice confirmed by a gateway callback"
        columns["unknown_kind"] = None


def _prepare_file(path: Path) -> None:
    """Create the database file private to the user before SQLite opens it.

    SQLite gives the -wal and -shm files the main file's permissions, so creating it 0600
    keeps all three private without touching the process-wide umask.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    with contextlib.suppress(OSError):
        path.chmod(0o600)


class HistoryStore:
    """The payout history database (see the module docstring for the threading model)."""

    def __init__(self, path: Path, *, clock: Callable[[], int] = now_ms) -> None:
        self.path = Path(path)
        self._clock = clock
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
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
        self._all.append(conn)
        self._idle.put(conn)
        for sidecar in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{sidecar}").chmod(0o600)
        self._watch = self._connect()
        self._all.append(self._watch)

    @classmethod
    def open(cls, data_dir: Path) -> HistoryStore:
        """Open (creating if needed) ``history.sqlite3`` in the data folder.

        First checks the file's integrity (a damaged one is set aside and
        ``CorruptHistoryError`` raised) and backs it up before a migration and once a day.
        A history missing where one existed raises ``MissingHistoryError``: it is never
        replaced by an empty one.
        """
        # backup imports this module
        from cactus_desk.payouts.backup import prepare_history, remember_history

        path = ensure_private_dir(Path(data_dir)) / HISTORY_FILE
        prepare_history(path)
        store = cls(path)
        try:
            remember_history(path.parent)
        except OSError as exc:  # the history itself is fine; only the marker is missing
            logging.getLogger(__name__).warning("the history could not be recorded: %s", exc)
        return store

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: every write opens its own BEGIN IMMEDIATE; check_same_thread is
        # off because a pooled connection serves one thread at a time, not always the same.
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("The payout history is closed")
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
            with self._lock:
                if self._closed:
                    conn.close()
                    raise RuntimeError("The payout history is closed") from None
                self._all.append(conn)
        try:
            yield conn
        finally:
            # A connection closed under us by close() just goes back to an unused queue.
            with contextlib.suppress(sqlite3.ProgrammingError):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._idle.put(conn)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection; the store cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()

    def __enter__(self) -> HistoryStore:
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
        with self._write() as conn:
            yield conn

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for reads outside a transaction (rows are ``sqlite3.Row``)."""
        with self._connection() as conn:
            yield conn

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------

    def create_attempt(self, attempt: NewAttempt) -> int:
        """Record ``attempt`` as SUBMITTING and return its id; raises DuplicateRequestIdError."""
        stamp = self._clock()
        try:
            with self._write() as conn:
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
                        _dump(attempt.request_payload()),
                    ),
                )
                record_id = cursor.lastrowid
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise DuplicateRequestIdError(
                attempt.request_id,
                attempt.merchant_id,
                attempt.site_id,
                self._find_request(attempt.merchant_id, attempt.site_id, attempt.request_id),
            ) from None
        assert record_id is not None
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
        columns = _outcome_columns(outcome)
        response = columns.pop("response")
        columns["response_json"] = None if response is None else _dump(response)
        columns["state"] = str(columns["state"])
        for name in ("message", "detail"):
            columns[name] = scrub_card_numbers(columns[name] or "")
        self._finish(record_id, columns)

    def mark_sending(self, record_id: int) -> None:
        """Durably note that a SUBMITTING attempt's request is about to leave (recovery uses it)."""
        stamp = self._clock()
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE payouts SET sending_started_at = ?, send_attempts = send_attempts + 1, "
                "updated_at = ? WHERE id = ? AND state = ?",
                (stamp, stamp, record_id, str(State.SUBMITTING)),
            )
            if cursor.rowcount != 1:
                raise OutcomeAlreadyRecordedError(
                    f"History record {record_id} is not waiting to be sent; nothing was sent."
                )

    def record_not_sent(self, record_id: int, reason: str, *, detail: str = "") -> None:
        """Mark a SUBMITTING attempt as NOT_SENT: it was stopped before any byte left."""
        columns = {"state": str(State.NOT_SENT), "message": scrub_card_numbers(reason)}
        if detail:
            columns["detail"] = scrub_card_numbers(detail)
        self._finish(record_id, columns)

    def _finish(self, record_id: int, columns: dict[str, Any]) -> None:
        columns["updated_at"] = self._clock()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._write() as conn:
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
                _keep_early_callback(columns, row)
                assignments = ", ".join(f"{name} = ?" for name in columns)
            conn.execute(
                f"UPDATE payouts SET {assignments} WHERE id = ?", [*columns.values(), record_id]
            )

    # -- reads ----------------------------------------------------------------------------

    def get(self, record_id: int) -> PayoutRecord:
        """Return one record with its request and response parsed."""
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM payouts WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"No payout with history record {record_id}")
        return _payout_record(row)

    def count(
        self, history_filter: HistoryFilter = HistoryFilter(), *, cap: int | None = None
    ) -> int:
        """How many records match ``history_filter``.

        With ``cap``, counting stops there: a result equal to ``cap`` means "at least cap".
        Counts without search text are always instant; a common search word over a million
        payouts takes up to ~0.1 s uncapped (more with exact filters on top).
        """
        with self._connection() as conn:
            return _count(conn, history_filter, search=self._search, cap=cap)

    def page(
        self,
        history_filter: HistoryFilter = HistoryFilter(),
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> list[HistoryRow]:
        """One page of matching rows in the given order; ties are broken by id."""
        offset, limit = max(0, offset), max(0, limit)
        with self._connection() as conn:
            conn.execute("BEGIN")  # the counts and the page from one snapshot
            rows = _page(
                conn,
                history_filter,
                SortKey(sort),
                descending,
                offset,
                limit,
                search=self._search,
            )
            if conn.in_transaction:  # a walk given up may have ended the read already
                conn.execute("COMMIT")
        return [_history_row(row) for row in rows]

    def iter_records(
        self,
        history_filter: HistoryFilter = HistoryFilter(),
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
    ) -> Iterator[PayoutRecord]:
        """Every matching record in order, streamed from one consistent snapshot."""
        where, params = _where(history_filter, search=self._search)
        sql = f"SELECT * FROM payouts{where}{_order_by(sort, descending)}"
        with self._connection() as conn:
            for row in conn.execute(sql, params):
                yield _payout_record(row)

    def export_csv(
        self,
        history_filter: HistoryFilter,
        sort: SortKey,
        descending: bool,
        stream: TextIO,
        *,
        bom: bool = False,
        decimals: Mapping[str, Mapping[str, int]] | None = None,
    ) -> int:
        """Write the matching records to ``stream`` as CSV; return how many rows were written.

        ``bom`` starts it with a UTF-8 byte order mark, for Excel; ``decimals`` maps profile
        ids to their decimals overrides.
        """
        from cactus_desk.payouts.export import write_csv  # export imports this module

        records = self.iter_records(history_filter, sort, descending)
        return write_csv(records, stream, bom=bom, decimals=decimals)

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

    def data_version(self) -> int:
        """A cheap marker that changes whenever anyone (this or another process) commits."""
        with self._lock:
            if self._closed:
                raise RuntimeError("The payout history is closed")
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
