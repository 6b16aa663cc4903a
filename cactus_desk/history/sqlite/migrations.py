"""Ordered schema migrations for the history database.

Each migration is a function of a connection that runs inside its own ``BEGIN IMMEDIATE``
transaction together with the row that records its version in ``schema_version``, so a
migration that fails leaves the database exactly as it was. Append new migrations to
``MIGRATIONS``; never edit or reorder one that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cactus_desk.history.clerk import RECIPIENT_FIELDS
from cactus_desk.history.sqlite.login_counts import add_login_counts, rebuild_login_counts

Migration = Callable[[sqlite3.Connection], None]


class SchemaTooNewError(RuntimeError):
    """The history file was written by a newer Cactus Desk than this one."""


def _v1_payouts(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE payouts (
            id INTEGER PRIMARY KEY,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            profile_id TEXT NOT NULL,
            profile_name TEXT NOT NULL,
            environment TEXT NOT NULL CHECK (environment IN ('live', 'sandbox')),
            merchant_id TEXT NOT NULL,
            site_id INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            invoice_id TEXT,
            site_login TEXT NOT NULL,
            method TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            state TEXT NOT NULL,
            gateway_status INTEGER,
            message TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            http_status INTEGER,
            request_json TEXT NOT NULL,
            response_json TEXT,
            unknown_kind TEXT
        )
        """
    )
    # The gateway looks invoices up by request_id per merchant and site.
    conn.execute(
        "CREATE UNIQUE INDEX payouts_request_unique ON payouts (merchant_id, site_id, request_id)"
    )
    # One index per sortable column, ending in id (the tie-breaker), so that a page of a
    # million rows sorted by any column is an index walk rather than a sort.
    for name, column in (
        ("created", "created_at"),
        ("profile", "profile_name COLLATE NOCASE"),
        ("request", "request_id COLLATE NOCASE"),
        ("invoice", "invoice_id COLLATE NOCASE"),
        ("login", "site_login COLLATE NOCASE"),
        ("method", "method COLLATE NOCASE"),
        ("amount", "amount_minor"),
        ("status", "gateway_status"),
    ):
        conn.execute(f"CREATE INDEX payouts_by_{name} ON payouts ({column}, id)")
    # The three exact-match filters, each also ordered by time (the default sort); the same
    # indexes serve sorting by state and currency.
    for name, column in (
        ("state", "state"),
        ("currency", "currency"),
        ("profile_id", "profile_id"),
    ):
        conn.execute(f"CREATE INDEX payouts_{name}_time ON payouts ({column}, created_at, id)")


def _v2_status_lifecycle(conn: sqlite3.Connection) -> None:
    """Statuses after the first answer: callback fields, review flags and the events table."""
    for column in (
        # Where the gateway status shown came from: the gateway itself, or an operator.
        "status_source TEXT NOT NULL DEFAULT 'gateway' CHECK (status_source IN "
        "('gateway', 'manual'))",
        "needs_review INTEGER NOT NULL DEFAULT 0",
        "review_message TEXT NOT NULL DEFAULT ''",
        "received_amount INTEGER",
        "received_currency TEXT",
        "description TEXT NOT NULL DEFAULT ''",
    ):
        conn.execute(f"ALTER TABLE payouts ADD COLUMN {column}")
    conn.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            received_at INTEGER NOT NULL,
            record_id INTEGER REFERENCES payouts (id),
            source TEXT NOT NULL CHECK (source IN ('gateway', 'import', 'manual')),
            who TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            request_id TEXT,
            invoice_id TEXT,
            status INTEGER,
            payload_json TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX events_by_record ON events (record_id, id)")
    # Append-only: the audit trail of statuses must not be rewritten, even by a bug.
    for action in ("UPDATE", "DELETE"):
        conn.execute(
            f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
            "BEGIN SELECT RAISE(ABORT, 'the events table is append-only'); END"
        )


def _v3_send_marks(conn: sqlite3.Connection) -> None:
    """When the request was about to leave, how often it was sent, and the resends' audit."""
    conn.execute("ALTER TABLE payouts ADD COLUMN sending_started_at INTEGER")
    conn.execute("ALTER TABLE payouts ADD COLUMN send_attempts INTEGER NOT NULL DEFAULT 0")
    # An attempt left in SUBMITTING by an older version may or may not have been sent; marking
    # it as sending makes recovery call it UNKNOWN rather than claim it never left.
    conn.execute(
        "UPDATE payouts SET sending_started_at = updated_at, send_attempts = 1 "
        "WHERE state = 'SUBMITTING'"
    )
    conn.execute(
        """
        CREATE TABLE resends (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES payouts (id),
            confirmed_at INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            previous_state TEXT NOT NULL,
            previous_message TEXT NOT NULL DEFAULT '',
            previous_detail TEXT NOT NULL DEFAULT ''
        )
        """
    )
    conn.execute("CREATE INDEX resends_by_record ON resends (record_id, id)")
    for action in ("UPDATE", "DELETE"):
        conn.execute(
            f"CREATE TRIGGER resends_no_{action.lower()} BEFORE {action} ON resends "
            "BEGIN SELECT RAISE(ABORT, 'the resends table is append-only'); END"
        )


SEARCH_TABLE = "payouts_search"
SEARCH_COLUMNS = ("request_id", "invoice_id", "site_login", "message")
COUNTS_TABLE = "payouts_counts"
DAY_COUNTS_TABLE = "payouts_day_counts"
DAY_MS = 86_400_000  # the width of a day bucket in payouts_day_counts (UTC days)
TIME_BREAKS_TABLE = "payouts_time_breaks"
AMOUNT_COUNTS_TABLE = "payouts_amount_counts"
SORT_COUNTS_TABLE = "payouts_sort_counts"
RECIPIENT_SEARCH_TABLE = "payouts_recipient_search"
RECIPIENT_BUILD_TABLE = "payouts_recipient_build"
TOTALS_TABLE = "payouts_totals"
DAY_TOTALS_TABLE = "payouts_day_totals"
BLOCK_TOTALS_TABLE = "payouts_block_totals"
BLOCK_DAYS = 32  # the days a row of payouts_block_totals spans (from a multiple of 32)
ID_BLOCK_BITS = 16  # a bucket of one value (or of NULLs) spans 2**16 ids


@dataclass(frozen=True)
class SortBuckets:
    """How one sort order is cut into counted buckets (see ``payouts_sort_counts``).

    ``prefix`` > 0: a bucket is the first ``prefix`` characters of the value, lower-cased
    (the order is COLLATE NOCASE, which folds ASCII exactly as ``lower()`` does). ``prefix``
    0: the column has few values, so a bucket is one value and a block of ids. NULLs (which
    sort first) are always bucketed by value and id block.
    """

    key: int  # the ``sort`` column of payouts_sort_counts
    name: str  # the index names: payouts_by_<name> and payouts_scp_<name>
    column: str
    prefix: int
    nocase: bool = True

    def bucket_sql(self, row: str) -> tuple[str, str]:
        """SQL for (value, block) of the bucket of ``row`` ("new", "old" or a table)."""
        value = f"{row}.{self.column}"
        if self.prefix:
            value = f"lower(substr({value}, 1, {self.prefix}))"
        elif self.nocase:
            value = f"lower({value})"
        block = f"({row}.id >> {ID_BLOCK_BITS})"
        if self.prefix:
            block = f"(CASE WHEN {row}.{self.column} IS NULL THEN {block} ELSE 0 END)"
        # -Inf stands for NULL: it sorts before every number and text, as NULL does.
        return f"coalesce({value}, -9e999)", block


SORT_BUCKETS: tuple[SortBuckets, ...] = (
    SortBuckets(1, "profile", "profile_name", 0),
    SortBuckets(2, "request", "request_id", 10),
    SortBuckets(3, "invoice", "invoice_id", 3),
    SortBuckets(4, "login", "site_login", 7),
    SortBuckets(5, "method", "method", 0),
    SortBuckets(6, "status", "gateway_status", 0, nocase=False),
)


def amount_bucket_sql(amount: str) -> str:
    """SQL for the amount bucket of ``amount``: its number of digits, then its first two.

    Buckets sort as amounts do (``amount_bucket_range`` gives each one's amounts): about
    ninety per power of ten, so one bucket holds a small share of any history.
    """
    return f"(length({amount}) * 100 + CAST(substr({amount} || '0', 1, 2) AS INTEGER))"


def amount_bucket_range(bucket: int) -> tuple[int, int]:
    """The amounts ``[low, high)`` of an amount bucket (see ``amount_bucket_sql``)."""
    digits, leading = divmod(bucket, 100)
    if digits == 1:  # one digit: "7" reads as "70"
        return leading // 10, leading // 10 + 1
    scale = 10 ** (digits - 2)
    return leading * scale, (leading + 1) * scale


def trigram_supported(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 or later)."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.trigram_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.trigram_probe")
    return True


def rebuild_search_index(conn: sqlite3.Connection) -> None:
    """Re-read every payout into the text indexes (when there are any)."""
    _rebuild_recipient_index(conn)
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SEARCH_TABLE,)).fetchone():
        return
    _rebuild_text_index(conn, SEARCH_TABLE)


REBUILD_BUFFER = 64 * 1024 * 1024  # bytes of terms a text index's rebuild holds per segment


def _rebuild_text_index(conn: sqlite3.Connection, table: str) -> None:
    """Re-read every payout into the text index ``table``, then merge it into one segment.

    A 64 MB buffer (default 1 MB) writes far fewer segments to merge: twice as fast at a
    million rows. It is dropped afterwards, so everyday writes keep the default. The rebuild
    leaves its segments (64 MB each) on the level where every write adds its own small one,
    so the upkeep's first merges would rewrite the whole index in steps of up to 0.1 s, and
    a crisis merge inside a write would too; merged into one segment, they sit a level up.
    """
    conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', ?)", (REBUILD_BUFFER,))
    conn.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")
    conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    conn.execute(f"DELETE FROM {table}_config WHERE k = 'hashsize'")


def rebuild_counts(conn: sqlite3.Connection) -> None:
    """Recount the payouts per state, currency and profile."""
    conn.execute(f"DELETE FROM {COUNTS_TABLE}")
    conn.execute(
        f"INSERT INTO {COUNTS_TABLE} (state, currency, profile_id, n) "
        "SELECT state, currency, profile_id, count(*) FROM payouts "
        "GROUP BY state, currency, profile_id"
    )
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (DAY_COUNTS_TABLE,)).fetchone():
        conn.execute(f"DELETE FROM {DAY_COUNTS_TABLE}")
        conn.execute(
            f"INSERT INTO {DAY_COUNTS_TABLE} (day, state, currency, profile_id, n) "
            f"SELECT created_at / {DAY_MS}, state, currency, profile_id, count(*) FROM payouts "
            "GROUP BY 1, 2, 3, 4"
        )
        conn.execute(f"DELETE FROM {AMOUNT_COUNTS_TABLE}")
        conn.execute(
            f"INSERT INTO {AMOUNT_COUNTS_TABLE} (bucket, state, currency, profile_id, n) "
            f"SELECT {amount_bucket_sql('amount_minor')}, state, currency, profile_id, count(*) "
            "FROM payouts GROUP BY 1, 2, 3, 4"
        )
        _rebuild_sort_counts(conn)
        _rebuild_totals(conn)
        rebuild_login_counts(conn)
        conn.execute(f"DELETE FROM {TIME_BREAKS_TABLE}")
        conn.execute(
            f"INSERT INTO {TIME_BREAKS_TABLE} (id) SELECT id FROM (SELECT id, created_at, "
            "max(created_at) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
            "AS before FROM payouts) WHERE created_at < before"
        )


def _v4_search_and_counts(conn: sqlite3.Connection) -> None:
    """A trigram text index and per-filter counts, both kept in step by triggers.

    A text search with LIKE reads every row (0.6-6 s at a million payouts); the trigram
    index finds any substring of three or more characters directly. Counting the rows of a
    state or currency reads its whole index range (up to 0.2 s); the counts table answers
    any combination of the exact filters from a few dozen rows.
    """
    if trigram_supported(conn):
        columns = ", ".join(SEARCH_COLUMNS)
        old = ", ".join(f"old.{column}" for column in SEARCH_COLUMNS)
        new = ", ".join(f"new.{column}" for column in SEARCH_COLUMNS)
        # External content: the index keeps only trigrams, the text stays in payouts.
        conn.execute(
            f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5({columns}, content='payouts', "
            "content_rowid='id', tokenize='trigram', columnsize=0)"
        )
        remove = (
            f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, {columns}) "
            f"VALUES ('delete', old.id, {old});"
        )
        add = f"INSERT INTO {SEARCH_TABLE}(rowid, {columns}) VALUES (new.id, {new});"
        conn.execute(
            f"CREATE TRIGGER payouts_search_insert AFTER INSERT ON payouts BEGIN {add} END"
        )
        conn.execute(
            f"CREATE TRIGGER payouts_search_delete AFTER DELETE ON payouts BEGIN {remove} END"
        )
        conn.execute(
            f"CREATE TRIGGER payouts_search_update AFTER UPDATE OF {columns} ON payouts "
            f"BEGIN {remove} {add} END"
        )
        rebuild_search_index(conn)
    conn.execute(
        f"CREATE TABLE {COUNTS_TABLE} (state TEXT NOT NULL, currency TEXT NOT NULL, "
        "profile_id TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (state, currency, profile_id)) WITHOUT ROWID"
    )
    increment = (
        f"INSERT INTO {COUNTS_TABLE} (state, currency, profile_id, n) "
        "VALUES (new.state, new.currency, new.profile_id, 1) "
        "ON CONFLICT DO UPDATE SET n = n + 1;"
    )
    decrement = (
        f"UPDATE {COUNTS_TABLE} SET n = n - 1 "
        "WHERE state = old.state AND currency = old.currency AND profile_id = old.profile_id;"
    )
    conn.execute(
        f"CREATE TRIGGER payouts_counts_insert AFTER INSERT ON payouts BEGIN {increment} END"
    )
    conn.execute(
        f"CREATE TRIGGER payouts_counts_delete AFTER DELETE ON payouts BEGIN {decrement} END"
    )
    conn.execute(
        "CREATE TRIGGER payouts_counts_update AFTER UPDATE OF state, currency, profile_id "
        "ON payouts WHEN old.state IS NOT new.state OR old.currency IS NOT new.currency "
        f"OR old.profile_id IS NOT new.profile_id BEGIN {decrement} {increment} END"
    )
    rebuild_counts(conn)


def _v5_settled_by_hand(conn: sqlite3.Connection) -> None:
    """Payouts an operator settled before the gateway ever accepted them were stored as
    ACCEPTED; they become SETTLED ("Settled manually"), as the manual event's record of the
    state before says. One the gateway has since confirmed by callback keeps its state."""
    conn.execute(
        "UPDATE payouts SET state = 'SETTLED' WHERE state = 'ACCEPTED' "
        "AND status_source = 'manual' AND id IN (SELECT record_id FROM events "
        "WHERE source = 'manual' AND json_extract(payload_json, '$.previous_state') "
        "NOT IN ('ACCEPTED'))"
    )


# Rejected callbacks that were never verified: the only events an operator may prune.
PRUNABLE_REASONS = ("bad_signature", "bad_body", "ambiguous_value")


def _v6_review_and_pruning(conn: sqlite3.Connection) -> None:
    """Conflicting final statuses, the "Needs review" filter, and pruning forged callbacks.

    ``status_conflict`` marks a record whose final status was contradicted by a later verified
    one (the later one is shown). The delete trigger now lets through unverified rejected
    callbacks only, so a flood of forgeries can be pruned while verified events stay
    append-only.
    """
    conn.execute("ALTER TABLE payouts ADD COLUMN status_conflict INTEGER NOT NULL DEFAULT 0")
    conn.execute(
        "UPDATE payouts SET status_conflict = 1 WHERE id IN "
        "(SELECT record_id FROM events WHERE outcome = 'conflict' AND record_id IS NOT NULL)"
    )
    conn.execute("CREATE INDEX payouts_review_time ON payouts (needs_review, created_at, id)")
    conn.execute("CREATE INDEX events_by_outcome_time ON events (outcome, received_at)")
    reasons = ", ".join(f"'{reason}'" for reason in PRUNABLE_REASONS)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        f"WHEN NOT (old.outcome = 'rejected' AND old.reason IN ({reasons})) "
        "BEGIN SELECT RAISE(ABORT, 'the events table is append-only'); END"
    )


def _unverifiable_refusal(
    request_id: str, detail: str, http_status: int | None, response_json: str | None
) -> str | None:
    """Why a refusal recorded by an earlier version proves nothing, or None when it does."""
    if detail == "The rejection was not signed.":
        return "it is not signed"
    if http_status is not None and not 200 <= http_status < 300:
        return f"it came with HTTP {http_status}"
    try:
        response = json.loads(response_json or "null")
    except ValueError:
        response = None
    if not isinstance(response, dict):
        return "the answer was not kept"
    if response.get("request_id") != request_id:
        return "it does not name this payout's request ID"
    if response.get("invoice_id") not in (None, ""):
        return f"it carries invoice {response.get('invoice_id')!r}"
    if response.get("status") not in (None, False):
        return f"it carries a status {response.get('status')!r}"
    return None


def _v7_unverified_refusals(conn: sqlite3.Connection) -> None:
    """Refusals that earlier versions trusted without proof become "Refused, unverified".

    Only a refusal signed with the site's salt and echoing the request_id shows that no money
    moved; any other one may hide a created payout, so the duplicate guard must count it.
    """
    rows = conn.execute(
        "SELECT id, request_id, detail, http_status, response_json FROM payouts "
        "WHERE state = 'REJECTED'"
    ).fetchall()
    for record_id, *columns in rows:
        why = _unverifiable_refusal(*columns)
        if why is not None:
            conn.execute(
                "UPDATE payouts SET state = 'REFUSED_UNVERIFIED', detail = ? WHERE id = ?",
                (f"The refusal could not be verified: {why}.", record_id),
            )


def add_amount_counts(conn: sqlite3.Connection) -> None:
    """The count per (amount bucket, state, currency, profile), kept by triggers."""
    conn.execute(
        f"CREATE TABLE {AMOUNT_COUNTS_TABLE} (bucket INTEGER NOT NULL, state TEXT NOT NULL, "
        "currency TEXT NOT NULL, profile_id TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (bucket, state, currency, profile_id)) WITHOUT ROWID"
    )
    new_bucket, old_bucket = (
        amount_bucket_sql("new.amount_minor"),
        amount_bucket_sql("old.amount_minor"),
    )
    increment = (
        f"INSERT INTO {AMOUNT_COUNTS_TABLE} (bucket, state, currency, profile_id, n) "
        f"VALUES ({new_bucket}, new.state, new.currency, new.profile_id, 1) "
        "ON CONFLICT DO UPDATE SET n = n + 1;"
    )
    decrement = (
        f"UPDATE {AMOUNT_COUNTS_TABLE} SET n = n - 1 WHERE bucket = {old_bucket} "
        "AND state = old.state AND currency = old.currency AND profile_id = old.profile_id;"
    )
    conn.execute(
        f"CREATE TRIGGER {AMOUNT_COUNTS_TABLE}_insert AFTER INSERT ON payouts BEGIN {increment} END"
    )
    conn.execute(
        f"CREATE TRIGGER {AMOUNT_COUNTS_TABLE}_delete AFTER DELETE ON payouts BEGIN {decrement} END"
    )
    conn.execute(
        f"CREATE TRIGGER {AMOUNT_COUNTS_TABLE}_update AFTER UPDATE OF amount_minor, state, "
        "currency, profile_id ON payouts WHEN old.amount_minor IS NOT new.amount_minor "
        "OR old.state IS NOT new.state OR old.currency IS NOT new.currency "
        f"OR old.profile_id IS NOT new.profile_id BEGIN {decrement} {increment} END"
    )


def _v8_fast_history_reads(conn: sqlite3.Connection) -> None:
    """Counts per day, an index for a filtered amount sort and the time order's breaks.

    ``payouts_day_counts`` holds the count per (UTC day of ``created_at``, state, currency,
    profile), kept by triggers like ``payouts_counts``: a page far down the time order
    becomes a day's range plus an OFFSET inside that day; ``payouts_amount_counts`` does the
    same for the amount order. ``payouts_sc_amount`` gives every
    (state, currency) pair its amounts in order, so a filtered amount sort merges a few
    ordered index ranges instead of sorting every match. ``payouts_time_breaks`` lists the
    records created out of time order (normally none), so a text search in time order can
    read the text index newest id first instead of sorting its matches.
    """
    conn.execute("CREATE INDEX payouts_sc_amount ON payouts (state, currency, amount_minor)")
    conn.execute(
        f"CREATE TABLE {DAY_COUNTS_TABLE} (day INTEGER NOT NULL, state TEXT NOT NULL, "
        "currency TEXT NOT NULL, profile_id TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (day, state, currency, profile_id)) WITHOUT ROWID"
    )
    increment = (
        f"INSERT INTO {DAY_COUNTS_TABLE} (day, state, currency, profile_id, n) "
        f"VALUES (new.created_at / {DAY_MS}, new.state, new.currency, new.profile_id, 1) "
        "ON CONFLICT DO UPDATE SET n = n + 1;"
    )
    decrement = (
        f"UPDATE {DAY_COUNTS_TABLE} SET n = n - 1 WHERE day = old.created_at / {DAY_MS} "
        "AND state = old.state AND currency = old.currency AND profile_id = old.profile_id;"
    )
    conn.execute(
        f"CREATE TRIGGER payouts_day_counts_insert AFTER INSERT ON payouts BEGIN {increment} END"
    )
    conn.execute(
        f"CREATE TRIGGER payouts_day_counts_delete AFTER DELETE ON payouts BEGIN {decrement} END"
    )
    conn.execute(
        "CREATE TRIGGER payouts_day_counts_update AFTER UPDATE OF created_at, state, currency, "
        f"profile_id ON payouts WHEN old.created_at / {DAY_MS} IS NOT new.created_at / {DAY_MS} "
        "OR old.state IS NOT new.state OR old.currency IS NOT new.currency "
        f"OR old.profile_id IS NOT new.profile_id BEGIN {decrement} {increment} END"
    )
    add_amount_counts(conn)
    # Records created out of time order (a clock stepped back, an id given by hand). While
    # there are none, the time order is the id order, which the text index walks natively.
    conn.execute(f"CREATE TABLE {TIME_BREAKS_TABLE} (id INTEGER PRIMARY KEY)")
    conn.execute(
        f"CREATE TRIGGER {TIME_BREAKS_TABLE}_insert AFTER INSERT ON payouts "
        "WHEN EXISTS (SELECT 1 FROM payouts WHERE created_at > new.created_at) "
        "OR new.id < (SELECT max(id) FROM payouts) "
        f"BEGIN INSERT OR IGNORE INTO {TIME_BREAKS_TABLE} (id) VALUES (new.id); END"
    )
    conn.execute(
        f"CREATE TRIGGER {TIME_BREAKS_TABLE}_update AFTER UPDATE OF id, created_at ON payouts "
        "WHEN old.created_at IS NOT new.created_at OR old.id IS NOT new.id "
        f"BEGIN INSERT OR IGNORE INTO {TIME_BREAKS_TABLE} (id) VALUES (new.id); END"
    )
    rebuild_counts(conn)


def _rebuild_sort_counts(conn: sqlite3.Connection) -> None:
    exists = "SELECT 1 FROM sqlite_master WHERE name = ?"
    if not conn.execute(exists, (SORT_COUNTS_TABLE,)).fetchone():
        return
    conn.execute(f"DELETE FROM {SORT_COUNTS_TABLE}")
    for sort in SORT_BUCKETS:
        value, block = sort.bucket_sql("payouts")
        conn.execute(
            f"INSERT INTO {SORT_COUNTS_TABLE} (sort, v, blk, state, currency, profile_id, n) "
            f"SELECT {sort.key}, {value}, {block}, state, currency, profile_id, count(*) "
            "FROM payouts GROUP BY 2, 3, 4, 5, 6"
        )


def _sort_count_statements(row: str, step: str) -> str:
    """One statement per sort: add ``step`` to the count of ``row``'s bucket."""
    statements = []
    for sort in SORT_BUCKETS:
        value, block = sort.bucket_sql(row)
        if step == "+1":
            statements.append(
                f"INSERT INTO {SORT_COUNTS_TABLE} (sort, v, blk, state, currency, profile_id, n) "
                f"VALUES ({sort.key}, {value}, {block}, {row}.state, {row}.currency, "
                f"{row}.profile_id, 1) ON CONFLICT DO UPDATE SET n = n + 1;"
            )
        else:
            statements.append(
                f"UPDATE {SORT_COUNTS_TABLE} SET n = n - 1 WHERE sort = {sort.key} "
                f"AND v = {value} AND blk = {block} AND state = {row}.state "
                f"AND currency = {row}.currency AND profile_id = {row}.profile_id;"
            )
    return " ".join(statements)


def _v9_filtered_sorts(conn: sqlite3.Connection) -> None:
    """Every sort ordered under each (state, currency, profile), and counts per sort bucket.

    ``payouts_scp_<name>`` holds each (state, currency, profile) triple's rows in one sort's
    order, so a filtered page merges the triples the filter allows (reading only index
    entries) instead of walking the whole order or sorting every match; ``payouts_scp_time``
    does the same for time, and answers all three filters at once. ``payouts_sort_counts``
    counts each sort's buckets per triple, kept by triggers, so a page far down any of these
    orders starts at its bucket instead of stepping over the rows before it.
    """
    for sort in SORT_BUCKETS:
        collate = " COLLATE NOCASE" if sort.nocase else ""
        conn.execute(
            f"CREATE INDEX payouts_scp_{sort.name} ON payouts "
            f"(state, currency, profile_id, {sort.column}{collate}, id)"
        )
    conn.execute(
        "CREATE INDEX payouts_scp_time ON payouts (state, currency, profile_id, created_at, id)"
    )
    conn.execute(
        f"CREATE TABLE {SORT_COUNTS_TABLE} (sort INTEGER NOT NULL, v NOT NULL, "
        "blk INTEGER NOT NULL, state TEXT NOT NULL, currency TEXT NOT NULL, "
        "profile_id TEXT NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (sort, v, blk, state, currency, profile_id)) WITHOUT ROWID"
    )
    increment, decrement = _sort_count_statements("new", "+1"), _sort_count_statements("old", "-1")
    conn.execute(
        f"CREATE TRIGGER {SORT_COUNTS_TABLE}_insert AFTER INSERT ON payouts BEGIN {increment} END"
    )
    conn.execute(
        f"CREATE TRIGGER {SORT_COUNTS_TABLE}_delete AFTER DELETE ON payouts BEGIN {decrement} END"
    )
    watched = ["id", "state", "currency", "profile_id", *(sort.column for sort in SORT_BUCKETS)]
    changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in watched)
    conn.execute(
        f"CREATE TRIGGER {SORT_COUNTS_TABLE}_update AFTER UPDATE OF {', '.join(watched)} "
        f"ON payouts WHEN {changed} BEGIN {decrement} {increment} END"
    )
    _rebuild_sort_counts(conn)


def _rebuild_recipient_index(conn: sqlite3.Connection) -> None:
    """Re-read every payout's recipient into its trigram index (when there is one)."""
    table = RECIPIENT_SEARCH_TABLE
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
        return
    _rebuild_text_index(conn, table)
    conn.execute(f"UPDATE {RECIPIENT_BUILD_TABLE} SET next_id = until_id + 1")


def recipient_index_ready(conn: sqlite3.Connection) -> bool:
    """Whether the recipient index holds every payout (its background build is done)."""
    row = conn.execute(f"SELECT next_id > until_id FROM {RECIPIENT_BUILD_TABLE}").fetchone()
    return bool(row and row[0])


def build_recipient_index(conn: sqlite3.Connection, batch: int) -> bool:
    """Index the next ``batch`` payouts of the recipient index's build (in the caller's
    transaction); True while more are left."""
    row = conn.execute(f"SELECT next_id, until_id FROM {RECIPIENT_BUILD_TABLE}").fetchone()
    if row is None or row[0] > row[1]:
        return False
    start, until = row
    last = conn.execute(
        "SELECT max(id) FROM (SELECT id FROM payouts WHERE id >= ? AND id <= ? ORDER BY id "
        "LIMIT ?)",
        (start, until, batch),
    ).fetchone()[0]
    last = until if last is None else last
    conn.execute(
        f"INSERT INTO {RECIPIENT_SEARCH_TABLE}(rowid, recipient) "
        "SELECT id, recipient FROM payouts WHERE id >= ? AND id <= ?",
        (start, last),
    )
    conn.execute(f"UPDATE {RECIPIENT_BUILD_TABLE} SET next_id = ?", (last + 1,))
    return last < until


def _totals_statements(table: str, width: int, row: str, step: str) -> str:
    """Add (``step`` "+1") or take away ``row``'s payout in the totals ``table``."""
    pairs = [
        ("state", f"{row}.state"),
        ("currency", f"{row}.currency"),
        ("profile_id", f"{row}.profile_id"),
        ("status", f"coalesce({row}.gateway_status, -1)"),
    ]
    if width:  # the bucket of ``width`` days; its column is "day" whatever the width
        pairs.insert(0, ("day", f"{row}.created_at / {DAY_MS * width}"))
    keys = ", ".join(key for key, _ in pairs)
    values = ", ".join(value for _, value in pairs)
    if step == "+1":
        return (
            f"INSERT INTO {table} ({keys}, n, total) VALUES ({values}, 1, {row}.amount_minor) "
            f"ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total;"
        )
    match = " AND ".join(f"{key} = {value}" for key, value in pairs)
    return f"UPDATE {table} SET n = n - 1, total = total - {row}.amount_minor WHERE {match};"


def _rebuild_totals(conn: sqlite3.Connection) -> None:
    exists = "SELECT 1 FROM sqlite_master WHERE name = ?"
    if not conn.execute(exists, (TOTALS_TABLE,)).fetchone():
        return
    conn.execute(f"DELETE FROM {DAY_TOTALS_TABLE}")
    conn.execute(
        f"INSERT INTO {DAY_TOTALS_TABLE} (day, state, currency, profile_id, status, n, total) "
        f"SELECT created_at / {DAY_MS}, state, currency, profile_id, "
        "coalesce(gateway_status, -1), count(*), sum(amount_minor) FROM payouts "
        "GROUP BY 1, 2, 3, 4, 5"
    )
    conn.execute(f"DELETE FROM {BLOCK_TOTALS_TABLE}")
    conn.execute(
        f"INSERT INTO {BLOCK_TOTALS_TABLE} (day, state, currency, profile_id, status, n, total) "
        f"SELECT day / {BLOCK_DAYS}, state, currency, profile_id, status, sum(n), sum(total) "
        f"FROM {DAY_TOTALS_TABLE} GROUP BY 1, 2, 3, 4, 5"
    )
    conn.execute(f"DELETE FROM {TOTALS_TABLE}")
    conn.execute(
        f"INSERT INTO {TOTALS_TABLE} (state, currency, profile_id, status, n, total) "
        f"SELECT state, currency, profile_id, status, sum(n), sum(total) FROM {DAY_TOTALS_TABLE} "
        "GROUP BY 1, 2, 3, 4"
    )


def _add_totals(conn: sqlite3.Connection) -> None:
    """Counts and sums per (state, currency, profile, gateway status), overall and per UTC
    day, kept by triggers like ``payouts_day_counts``: totals become a sum over these rows."""
    keys = "state TEXT NOT NULL, currency TEXT NOT NULL, profile_id TEXT NOT NULL, "
    keys += "status INTEGER NOT NULL, n INTEGER NOT NULL, total INTEGER NOT NULL"
    conn.execute(
        f"CREATE TABLE {TOTALS_TABLE} ({keys}, "
        "PRIMARY KEY (state, currency, profile_id, status)) WITHOUT ROWID"
    )
    for table in (DAY_TOTALS_TABLE, BLOCK_TOTALS_TABLE):
        conn.execute(
            f"CREATE TABLE {table} (day INTEGER NOT NULL, {keys}, "
            "PRIMARY KEY (day, state, currency, profile_id, status)) WITHOUT ROWID"
        )
    watched = ("created_at", "state", "currency", "profile_id", "gateway_status", "amount_minor")
    changed = " OR ".join(f"old.{column} IS NOT new.{column}" for column in watched)
    widths = ((TOTALS_TABLE, 0), (DAY_TOTALS_TABLE, 1), (BLOCK_TOTALS_TABLE, BLOCK_DAYS))
    for table, width in widths:
        add = _totals_statements(table, width, "new", "+1")
        remove = _totals_statements(table, width, "old", "-1")
        conn.execute(f"CREATE TRIGGER {table}_insert AFTER INSERT ON payouts BEGIN {add} END")
        conn.execute(f"CREATE TRIGGER {table}_delete AFTER DELETE ON payouts BEGIN {remove} END")
        conn.execute(
            f"CREATE TRIGGER {table}_update AFTER UPDATE OF {', '.join(watched)} ON payouts "
            f"WHEN {changed} BEGIN {remove} {add} END"
        )
    _rebuild_totals(conn)


def _clerk_recipient_search(conn: sqlite3.Connection) -> None:
    """The recipient made searchable (names, phone, account, the masked card's digits), the
    clerk's range filters index-backed, and totals kept per day.

    ``recipient`` is a virtual column computed from the recorded body, which holds card
    numbers masked (first 6 / last 4) only: nothing new is stored, and a full card number
    never was. A trigram index over it finds a name or the last four digits directly; an
    index on (currency, amount_minor, id) serves an amount range within a currency.
    """
    # One json_extract of all paths yields a JSON array padded with a null per absent field;
    # the nulls' trigrams ("nul", "ull") filled every document and slowed the index build.
    paths = ", ".join(f"'$.additional_fields.{name}'" for name in RECIPIENT_FIELDS)
    conn.execute(
        "ALTER TABLE payouts ADD COLUMN recipient TEXT GENERATED ALWAYS AS "
        f"(replace(replace(json_extract(request_json, {paths}), 'null,', ''), ',null', '')) "
        "VIRTUAL"
    )
    conn.execute("CREATE INDEX payouts_currency_amount ON payouts (currency, amount_minor, id)")
    conn.execute("CREATE INDEX payouts_status_time ON payouts (gateway_status, created_at, id)")
    _add_totals(conn)
    if not trigram_supported(conn):
        return  # the recipient filter scans: correct, slower
    table = RECIPIENT_SEARCH_TABLE
    conn.execute(
        f"CREATE VIRTUAL TABLE {table} USING fts5(recipient, content='payouts', "
        "content_rowid='id', tokenize='trigram', columnsize=0)"
    )
    # The payouts already there are indexed in the background (``build_recipient_index``,
    # ids next_id..until_id, half a minute of work at a million), not here: opening after
    # the upgrade does not wait for it, and a recipient search scans until it is done. The
    # triggers keep the index of the payouts outside the range still to build.
    conn.execute(
        f"CREATE TABLE {RECIPIENT_BUILD_TABLE} (next_id INTEGER NOT NULL, "
        "until_id INTEGER NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO {RECIPIENT_BUILD_TABLE} (next_id, until_id) "
        "SELECT 1, coalesce(max(id), 0) FROM payouts"
    )
    indexed = {
        row: f"({row}.id < (SELECT next_id FROM {RECIPIENT_BUILD_TABLE}) "
        f"OR {row}.id > (SELECT until_id FROM {RECIPIENT_BUILD_TABLE}))"
        for row in ("old", "new")
    }
    remove = (
        f"INSERT INTO {table}({table}, rowid, recipient) VALUES ('delete', old.id, old.recipient);"
    )
    add = f"INSERT INTO {table}(rowid, recipient) VALUES (new.id, new.recipient);"
    conn.execute(
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON payouts WHEN {indexed['new']} "
        f"BEGIN {add} END"
    )
    conn.execute(
        f"CREATE TRIGGER {table}_delete AFTER DELETE ON payouts WHEN {indexed['old']} "
        f"BEGIN {remove} END"
    )
    conn.execute(
        f"CREATE TRIGGER {table}_update AFTER UPDATE OF request_json ON payouts "
        f"WHEN {indexed['old']} BEGIN {remove} {add} END"
    )


LOCAL_BUILD_TABLE = "payouts_local_build"
ZONE_TABLE = "payouts_zone_offsets"
LOCAL_DAY_TOTALS_TABLE = "payouts_local_day_totals"
WORDS_TABLE = "payouts_recipient_words"
WORD_SEARCH_TABLE = "payouts_recipient_word_search"
WORD_TOTALS_TABLE = "payouts_word_totals"
WORD_DAYS_TABLE = "payouts_word_days"
#: A word is kept when it has a letter (or any character beyond ASCII): a search text with
#: one is never found in a word of digits and punctuation only ("******", "+", "[").
KEPT_WORD = "value GLOB '*[^ -@[-`{-~]*'"
#: Characters that end a recipient word: digits, blanks and the commonest punctuation of
#: names, e-mail addresses and the recorded JSON (whose quotes and backslashes must end words;
#: SQLite's JSON text holds no raw control characters). Few: SQLite's parser nests about 20
#: calls of replace() at most.
WORD_BREAKS = '0123456789 "\\,.@-'


def recipient_words_sql(row: str) -> str:
    """A JSON array of the words of ``row``'s recipient: ASCII lower case, split at each of
    ``WORD_BREAKS``. A search text without those characters occurs in a recipient exactly
    when it occurs in one of its words."""
    text = f"lower({row}.recipient)"
    for char in WORD_BREAKS:
        quoted = "char(39)" if char == "'" else f"'{char}'"
        text = f"replace({text}, {quoted}, char(1))"
    return f"('[\"' || replace({text}, char(1), '\",\"') || '\"]')"


def local_day_sql(row: str) -> str:
    """The local day of ``row``'s payout in the zone kept in ``payouts_zone_offsets``."""
    offset = (
        f"(SELECT offset_ms FROM {ZONE_TABLE} WHERE start_ms <= {row}.created_at "
        "ORDER BY start_ms DESC LIMIT 1)"
    )
    return f"(({row}.created_at + {offset}) / {DAY_MS})"


_CHART_ADD = (
    "ON CONFLICT DO UPDATE SET n = n + excluded.n, sent = sent + excluded.sent, "
    "paid = paid + excluded.paid, declined = declined + excluded.declined"
)


def _chart_sql(row: str) -> tuple[str, str]:
    """What ``row``'s payout adds to the chart's paid and declined sums."""
    paid = f"CASE WHEN {row}.gateway_status = 4 THEN {row}.amount_minor ELSE 0 END"
    declined = (
        f"CASE WHEN {row}.gateway_status = 5 OR {row}.state = 'REJECTED' "
        f"THEN {row}.amount_minor ELSE 0 END"
    )
    return paid, declined


def _local_statements(row: str, step: str) -> str:
    """Add (``step`` "+1") or take away ``row``'s payout in the local-day and word tables."""
    day = local_day_sql(row)
    values = f"{row}.state, {row}.currency, {row}.profile_id, coalesce({row}.gateway_status, -1)"
    keys = "state, currency, profile_id, status"
    words = f"json_each({recipient_words_sql(row)})"
    paid, declined = _chart_sql(row)
    match = (
        f"state = {row}.state AND currency = {row}.currency AND "
        f"profile_id = {row}.profile_id AND status = coalesce({row}.gateway_status, -1)"
    )
    if step == "+1":
        return (
            f"INSERT INTO {LOCAL_DAY_TOTALS_TABLE} (day, {keys}, n, total) "
            f"VALUES ({day}, {values}, 1, {row}.amount_minor) "
            "ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total; "
            f"INSERT OR IGNORE INTO {WORDS_TABLE} (word) SELECT DISTINCT value FROM {words} "
            f"WHERE {KEPT_WORD}; "
            f"INSERT INTO {WORD_TOTALS_TABLE} (word, {keys}, n, total) "
            f"SELECT DISTINCT value, {values}, 1, {row}.amount_minor FROM {words} "
            f"WHERE {KEPT_WORD} "
            "ON CONFLICT DO UPDATE SET n = n + 1, total = total + excluded.total; "
            f"INSERT INTO {WORD_DAYS_TABLE} (word, day, currency, n, sent, paid, declined) "
            f"SELECT DISTINCT value, {day}, {row}.currency, 1, {row}.amount_minor, {paid}, "
            f"{declined} FROM {words} WHERE {KEPT_WORD} "
            f"{_CHART_ADD}; "
            f"INSERT INTO {WORD_DAYS_TABLE} (word, day, currency, n, sent, paid, declined) "
            f"VALUES ('', {day}, {row}.currency, 1, {row}.amount_minor, {paid}, {declined}) "
            f"{_CHART_ADD};"
        )
    return (
        f"UPDATE {LOCAL_DAY_TOTALS_TABLE} SET n = n - 1, total = total - {row}.amount_minor "
        f"WHERE day = {day} AND {match}; "
        f"UPDATE {WORD_TOTALS_TABLE} SET n = n - 1, total = total - {row}.amount_minor "
        f"WHERE word IN (SELECT value FROM {words}) AND {match}; "
        f"UPDATE {WORD_DAYS_TABLE} SET n = n - 1, sent = sent - {row}.amount_minor, "
        f"paid = paid - ({paid}), declined = declined - ({declined}) "
        f"WHERE (word = '' OR word IN (SELECT value FROM {words})) AND day = {day} "
        f"AND currency = {row}.currency;"
    )


def reset_local_totals(
    conn: sqlite3.Connection, changes: Sequence[tuple[int, int]], key: str
) -> None:
    """Keep the local-day totals in a new zone (``changes`` as ``LocalZone.changes``): empty
    them, and let ``build_local_totals`` add up every payout again (in the caller's
    transaction)."""
    conn.execute(f"DELETE FROM {ZONE_TABLE}")
    conn.executemany(f"INSERT INTO {ZONE_TABLE} (start_ms, offset_ms) VALUES (?, ?)", changes)
    conn.execute(f"DELETE FROM {LOCAL_DAY_TOTALS_TABLE}")
    conn.execute(f"DELETE FROM {WORD_TOTALS_TABLE}")
    conn.execute(f"DELETE FROM {WORD_DAYS_TABLE}")
    conn.execute(
        f"UPDATE {LOCAL_BUILD_TABLE} SET zone = ?, next_id = 1, "
        "until_id = (SELECT coalesce(max(id), 0) FROM payouts)",
        (key,),
    )


def local_totals_state(conn: sqlite3.Connection) -> tuple[str, bool]:
    """The zone the local-day totals are kept in, and whether they hold every payout."""
    row = conn.execute(f"SELECT zone, next_id > until_id FROM {LOCAL_BUILD_TABLE}").fetchone()
    return (str(row[0]), bool(row[1])) if row else ("", False)


def build_local_totals(conn: sqlite3.Connection, batch: int) -> bool:
    """Add the next ``batch`` payouts to the local-day totals (in the caller's transaction);
    True while more are left."""
    row = conn.execute(f"SELECT next_id, until_id FROM {LOCAL_BUILD_TABLE}").fetchone()
    if row is None or row[0] > row[1]:
        return False
    start, until = row
    last = conn.execute(
        "SELECT max(id) FROM (SELECT id FROM payouts WHERE id >= ? AND id <= ? ORDER BY id "
        "LIMIT ?)",
        (start, until, batch),
    ).fetchone()[0]
    last = until if last is None else last
    day = local_day_sql("payouts")
    keys = "state, currency, profile_id, status"
    values = "state, currency, profile_id, coalesce(gateway_status, -1)"
    add = "ON CONFLICT DO UPDATE SET n = n + excluded.n, total = total + excluded.total"
    conn.execute(
        f"INSERT INTO {LOCAL_DAY_TOTALS_TABLE} (day, {keys}, n, total) "
        f"SELECT {day}, {values}, count(*), sum(amount_minor) FROM payouts "
        f"WHERE id >= ? AND id <= ? GROUP BY 1, 2, 3, 4, 5 {add}",
        (start, last),
    )
    words = f"json_each({recipient_words_sql('payouts')})"
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS local_build_words (id INTEGER, word TEXT, "
        "PRIMARY KEY (id, word)) WITHOUT ROWID"
    )
    conn.execute("DELETE FROM temp.local_build_words")
    conn.execute(
        "INSERT OR IGNORE INTO temp.local_build_words (id, word) "
        f"SELECT payouts.id, value FROM payouts, {words} "
        f"WHERE payouts.id >= ? AND payouts.id <= ? AND {KEPT_WORD}",
        (start, last),
    )
    conn.execute(
        f"INSERT OR IGNORE INTO {WORDS_TABLE} (word) "
        "SELECT DISTINCT word FROM temp.local_build_words WHERE true"
    )
    joined = "FROM temp.local_build_words AS b JOIN payouts ON payouts.id = b.id WHERE true"
    conn.execute(
        f"INSERT INTO {WORD_TOTALS_TABLE} (word, {keys}, n, total) "
        f"SELECT b.word, {values}, count(*), sum(amount_minor) {joined} "
        f"GROUP BY 1, 2, 3, 4, 5 {add}"
    )
    paid, declined = _chart_sql("payouts")
    conn.execute(
        f"INSERT INTO {WORD_DAYS_TABLE} (word, day, currency, n, sent, paid, declined) "
        f"SELECT b.word, {day}, currency, count(*), sum(amount_minor), sum({paid}), "
        f"sum({declined}) {joined} GROUP BY 1, 2, 3 {_CHART_ADD}"
    )
    conn.execute(
        f"INSERT INTO {WORD_DAYS_TABLE} (word, day, currency, n, sent, paid, declined) "
        f"SELECT '', {day}, currency, count(*), sum(amount_minor), sum({paid}), "
        f"sum({declined}) FROM payouts WHERE id >= ? AND id <= ? GROUP BY 1, 2, 3 {_CHART_ADD}",
        (start, last),
    )
    conn.execute(f"UPDATE {LOCAL_BUILD_TABLE} SET next_id = ?", (last + 1,))
    return last < until


def _local_totals(conn: sqlite3.Connection) -> None:
    """Totals per day of the desk's own time zone (any offset, daylight saving included),
    per recipient word (by state, currency, profile and status) and per recipient word and
    local day (the chart's sent, paid and declined per currency; the word '' holds every
    payout's), kept by triggers like ``payouts_day_totals``.

    The zone's offsets are a table the triggers read; the payouts already there are added up
    in the background (``build_local_totals``, ids next_id..until_id), and again whenever the
    desk's zone changes (``reset_local_totals``). Until then totals read the payouts.
    """
    keys = "state TEXT NOT NULL, currency TEXT NOT NULL, profile_id TEXT NOT NULL, "
    keys += "status INTEGER NOT NULL, n INTEGER NOT NULL, total INTEGER NOT NULL"
    key_columns = "state, currency, profile_id, status"
    conn.execute(
        f"CREATE TABLE {ZONE_TABLE} (start_ms INTEGER PRIMARY KEY, offset_ms INTEGER NOT NULL)"
    )
    conn.execute(f"INSERT INTO {ZONE_TABLE} (start_ms, offset_ms) VALUES (?, 0)", (-(2**62),))
    conn.execute(
        f"CREATE TABLE {LOCAL_BUILD_TABLE} (zone TEXT NOT NULL, next_id INTEGER NOT NULL, "
        "until_id INTEGER NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO {LOCAL_BUILD_TABLE} (zone, next_id, until_id) "
        "SELECT '', 1, coalesce(max(id), 0) FROM payouts"
    )
    conn.execute(
        f"CREATE TABLE {LOCAL_DAY_TOTALS_TABLE} (day INTEGER NOT NULL, {keys}, "
        f"PRIMARY KEY (day, {key_columns})) WITHOUT ROWID"
    )
    conn.execute(f"CREATE TABLE {WORDS_TABLE} (id INTEGER PRIMARY KEY, word TEXT NOT NULL UNIQUE)")
    conn.execute(
        f"CREATE TABLE {WORD_TOTALS_TABLE} (word TEXT NOT NULL, {keys}, "
        f"PRIMARY KEY (word, {key_columns})) WITHOUT ROWID"
    )
    sums = "n INTEGER NOT NULL, sent INTEGER NOT NULL, paid INTEGER NOT NULL, "
    sums += "declined INTEGER NOT NULL"
    conn.execute(
        f"CREATE TABLE {WORD_DAYS_TABLE} (word TEXT NOT NULL, day INTEGER NOT NULL, "
        f"currency TEXT NOT NULL, {sums}, PRIMARY KEY (word, day, currency)) WITHOUT ROWID"
    )
    if trigram_supported(conn):
        conn.execute(
            f"CREATE VIRTUAL TABLE {WORD_SEARCH_TABLE} USING fts5(word, content='{WORDS_TABLE}', "
            "content_rowid='id', tokenize='trigram', columnsize=0)"
        )
        conn.execute(
            f"CREATE TRIGGER {WORD_SEARCH_TABLE}_insert AFTER INSERT ON {WORDS_TABLE} BEGIN "
            f"INSERT INTO {WORD_SEARCH_TABLE}(rowid, word) VALUES (new.id, new.word); END"
        )
    built = {
        row: f"({row}.id < (SELECT next_id FROM {LOCAL_BUILD_TABLE}) "
        f"OR {row}.id > (SELECT until_id FROM {LOCAL_BUILD_TABLE}))"
        for row in ("old", "new")
    }
    add, remove = _local_statements("new", "+1"), _local_statements("old", "-1")
    watched = ("created_at", "state", "currency", "profile_id", "gateway_status", "amount_minor")
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in (*watched, "request_json"))
    name = LOCAL_DAY_TOTALS_TABLE
    conn.execute(
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON payouts WHEN {built['new']} BEGIN {add} END"
    )
    conn.execute(
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON payouts WHEN {built['old']} "
        f"BEGIN {remove} END"
    )
    conn.execute(
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {', '.join(watched)}, request_json "
        f"ON payouts WHEN {built['old']} AND ({changed}) BEGIN {remove} {add} END"
    )


def _batches(conn: sqlite3.Connection) -> None:
    """Batch files: which file (SHA-256) was imported through which profile as which batch."""
    conn.execute(
        "CREATE TABLE batches (merchant_id TEXT NOT NULL, site_id INTEGER NOT NULL, "
        "batch_id TEXT NOT NULL, profile_id TEXT NOT NULL, file_sha256 TEXT NOT NULL, "
        "file_name TEXT NOT NULL, row_count INTEGER NOT NULL, parent TEXT, "
        "created_at INTEGER NOT NULL, PRIMARY KEY (merchant_id, site_id, batch_id))"
    )
    conn.execute("CREATE INDEX batches_file ON batches (file_sha256, created_at)")


def _amount_by_profile(conn: sqlite3.Connection) -> None:
    """The amount order under a profile filter, as ``payouts_sc_amount`` gives it under a
    state or currency filter.

    ``payouts_scp_amount`` holds each (state, currency, profile) triple's amounts in order:
    a page sorted by amount under a profile merges the profile's triples, reading index
    entries only, where it walked the whole amount order checking each row's profile (a
    middle page of 5M rows took 70-160 ms, a first page up to 0.5 s with a cold cache).
    """
    conn.execute(
        "CREATE INDEX payouts_scp_amount ON payouts (state, currency, profile_id, amount_minor)"
    )


SEARCH_TERMS_TABLE = "payouts_search_terms"
#: The last two characters of a text column, ASCII lower case (as LIKE folds): the key of
#: its ``payouts_<column>_end`` index.
ENDING_SQL = "lower(substr({column}, -2))"


def _two_character_search(conn: sqlite3.Connection) -> None:
    """What a 2-character search reads instead of every row (1.3-1.8 s at 5M payouts).

    Two characters inside a value are the start of one of its trigrams, so the trigram index
    has them: every term that starts with them, listed by ``payouts_search_terms`` (the
    index's vocabulary, read by range). Two characters at a value's end (or a value of two)
    start no trigram: ``payouts_<column>_end`` indexes each text column's last two.
    """
    exists = "SELECT 1 FROM sqlite_master WHERE name = ?"
    if not conn.execute(exists, (SEARCH_TABLE,)).fetchone():
        return  # no trigram index: a short search reads every row, as before
    conn.execute(
        f"CREATE VIRTUAL TABLE {SEARCH_TERMS_TABLE} USING fts5vocab({SEARCH_TABLE}, 'row')"
    )
    for column in SEARCH_COLUMNS:
        ending = ENDING_SQL.format(column=column)
        conn.execute(f"CREATE INDEX payouts_{column}_end ON payouts ({ending})")


SORT_KEYS_INDEX = "payouts_sort_keys"
#: Every column the list filters or sorts by (and the searched ones), after the id it is
#: keyed by: the index covers a read of the matches and their sort, without their rows.
SORT_KEYS_COLUMNS = (
    "id",
    "created_at",
    "state",
    "currency",
    "profile_id",
    "needs_review",
    "amount_minor",
    "gateway_status",
    "profile_name",
    "method",
    *SEARCH_COLUMNS,
)


def _sort_keys(conn: sqlite3.Connection) -> None:
    """What a sort of a search's or a filter's matches reads instead of their rows.

    A sort that no index gives reads each match's row for its sort term: 45,000 matches of
    a search sit at random places of a table of 2.9 GB at 5M payouts, which took 1.6-2.6 s
    with the file not yet in memory. ``payouts_sort_keys`` holds every column a filter or a
    sort reads, in id order, in a fifth of the table's size: the same read takes 0.25 s
    cold and as long as the table's warm, and a scan of every row reads a fifth as much.
    """
    columns = ", ".join(SORT_KEYS_COLUMNS)
    conn.execute(f"CREATE INDEX {SORT_KEYS_INDEX} ON payouts ({columns})")


#: Each sort's own terms after the id it is keyed by (the time order has ``payouts_sort_keys``);
#: the profile's id beside its name, for a profile filter's test.
SORT_TERMS_INDEXES: dict[str, tuple[str, ...]] = {
    "payouts_id_profile": ("profile_name", "profile_id"),
    "payouts_id_request": ("request_id",),
    "payouts_id_invoice": ("invoice_id",),
    "payouts_id_login": ("site_login",),
    "payouts_id_method": ("method",),
    "payouts_id_currency": ("currency", "created_at"),
    "payouts_id_amount": ("amount_minor",),
    "payouts_id_state": ("state", "created_at"),
    "payouts_id_status": ("gateway_status",),
}


def _sort_terms_by_id(conn: sqlite3.Connection) -> None:
    """What a sort of a search's or a recipient's matches reads for each match's sort terms.

    Such a sort looks up every match by id, and a lookup costs what the depth and width of
    the index it descends do: in ``payouts_sort_keys`` (every filter and text column) about
    1 us at 5M payouts, so 118,000 matches of a surname took 0.13 s before they were even
    sorted. An index of one sort's terms after the id is a tenth as wide and a level
    shallower: the same lookups take 0.05 s.
    """
    for name, columns in SORT_TERMS_INDEXES.items():
        conn.execute(f"CREATE INDEX {name} ON payouts (id, {', '.join(columns)})")


MIGRATIONS: tuple[Migration, ...] = (
    _v1_payouts,
    _v2_status_lifecycle,
    _v3_send_marks,
    _v4_search_and_counts,
    _v5_settled_by_hand,
    _v6_review_and_pruning,
    _v7_unverified_refusals,
    _v8_fast_history_reads,
    _v9_filtered_sorts,
    _clerk_recipient_search,
    _batches,
    add_login_counts,
    _local_totals,
    _amount_by_profile,
    _two_character_search,
    _sort_keys,
    _sort_terms_by_id,
)
"""Version N is ``MIGRATIONS[N - 1]``."""


def current_version(conn: sqlite3.Connection) -> int:
    """Return the schema version recorded in the database, 0 for an empty file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the pending migrations in order and return the resulting version.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each step manages its
    own transaction. Two processes opening the file at once are safe, because the version
    is re-read after the write lock is taken.
    """
    target = len(migrations)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            version = current_version(conn)
            if version > target:
                raise SchemaTooNewError(
                    f"The payout history uses schema version {version}, but this Cactus Desk "
                    f"only knows up to version {target}. Update Cactus Desk to open it."
                )
            if version == target:
                conn.execute("COMMIT")
                return version
            migrations[version](conn)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version + 1, time.time_ns() // 1_000_000),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
