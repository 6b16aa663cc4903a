"""The team history: the history port over a PostgreSQL database shared by many desks.

The same operations, states and rules as the SQLite file, with PostgreSQL's concurrency in
place of SQLite's single writer: each write is one short transaction that locks the payout
row it reads (``FOR NO KEY UPDATE``) or changes it with a conditional ``UPDATE``; the unique
(merchant, site, request id) constraint decides a race for a request id (``INSERT ... ON
CONFLICT DO NOTHING``: exactly one desk wins, the other gets ``DuplicateRequestIdError``).

Threads: a ``psycopg_pool.ConnectionPool`` hands each call its own connection, checked before
use, so a desk recovers by itself once the server is back. Any failure to reach the server is
``HistoryUnavailableError`` with a message that names the store and never the password.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from cactus_desk.callbacks.events import Event, EventOutcome, EventSource
from cactus_desk.callbacks.rules import ApplyResult, Reason, prune_audit
from cactus_desk.gateway.outcomes import PayoutOutcome
from cactus_desk.history.clerk import LocalZone, daily_sql, totals_sql
from cactus_desk.history.live import ChangeBatch
from cactus_desk.history.outcomes import keep_early_callback, outcome_columns
from cactus_desk.history.postgres import callbacks as rows
from cactus_desk.history.postgres import queries
from cactus_desk.history.postgres.callbacks import Conn
from cactus_desk.history.postgres.connect import (
    NO_PASSWORD_FILE,
    parse_store_url,
    unreachable_message,
)
from cactus_desk.history.postgres.listen import ChangeListener
from cactus_desk.history.postgres.migrations import (
    PRUNABLE_REASONS,
    SEARCH_INDEX,
    SchemaTooNewError,
    migrate,
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
    HistoryPermissionError,
    HistoryRow,
    HistoryUnavailableError,
    HistoryUnreachableError,
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
    batch_entry,
    now_ms,
    probe_groups,
)
from cactus_desk.masking import masked_json, scrub_card_numbers
from cactus_desk.payouts.states import State

_EVERYTHING = HistoryFilter()
CONNECT_TIMEOUT_S = 10
#: Snapshots of the team history kept on this desk (see ``back_up``).
KEEP_SNAPSHOTS = 7
_SNAPSHOT_TABLES = ("payouts", "events", "resends")


_NOT_IN_RECORD = ("created_by", "desk", "imported_at", "imported_by")  # team-only columns


def _payout_record(row: Mapping[str, Any]) -> PayoutRecord:
    values = dict(row)
    for name in _NOT_IN_RECORD:
        values.pop(name, None)
    values["state"] = State(values["state"])
    values["needs_review"] = bool(values["needs_review"])
    values["status_conflict"] = bool(values["status_conflict"])
    values["request"] = json.loads(values.pop("request_json"))
    response_json = values.pop("response_json")
    values["response"] = None if response_json is None else json.loads(response_json)
    return PayoutRecord(**values)


def _history_row(row: Mapping[str, Any]) -> HistoryRow:
    values = dict(row)
    values["state"] = State(values["state"])
    values["needs_review"] = bool(values["needs_review"])
    values["status_conflict"] = bool(values["status_conflict"])
    return HistoryRow(**values)


class PostgresHistoryStore:
    """The payout history in a PostgreSQL database (the team store).

    ``url`` is a libpq URL without a password (``sslmode``/``sslrootcert`` pass through);
    ``password`` comes from the keyring, or is None to let libpq take ``PGPASSWORD`` (or a
    client certificate); libpq's password file is never read. ``local_dir`` is this desk's
    folder for snapshots of the team history (``back_up``); it is what ``location`` names.
    ``desk`` is this desk's stable id: attempts are recorded with it, and
    ``interrupted_attempts`` returns only this desk's, so a desk starting up never settles an
    attempt another desk is sending.
    """

    def __init__(
        self,
        url: str,
        *,
        local_dir: Path,
        password: str | None = None,
        desk: str = "",
        clock: Callable[[], int] = now_ms,
        max_connections: int = 8,
        connect_timeout: int = CONNECT_TIMEOUT_S,
    ) -> None:
        try:
            target = parse_store_url(url)
        except ValueError as exc:
            raise HistoryOpenError(str(exc)) from None
        self.label = target.label
        self.local_dir = Path(local_dir)
        self._url = target.url
        self._password = password
        self.desk = desk
        self._clock = clock
        self._timeout = float(connect_timeout)
        self._closed = False
        self._lock = threading.Lock()
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": connect_timeout,
            "application_name": "cactus-desk",
            "passfile": NO_PASSWORD_FILE,
        }
        if password:
            self._kwargs["password"] = password
        try:
            with psycopg.connect(self._url, **self._kwargs) as conn:
                migrate(conn)
                found = conn.execute("SELECT to_regclass(%s) AS i", (SEARCH_INDEX,)).fetchone()
                self.text_index = bool(found and found["i"])
        except SchemaTooNewError as exc:
            raise HistoryOpenError(str(exc)) from None
        except psycopg.errors.InsufficientPrivilege:
            raise HistoryOpenError(
                f"The team history at {self.label} needs its schema brought up to date, which "
                "only its owner may do: the database owner runs cactus-desk --store URL team "
                "init (or opens it once)."
            ) from None
        except psycopg.OperationalError as exc:
            # No answer, or a server shutting down or starting up: it may come back.
            state = exc.sqlstate or ""
            # libpq's own "no password supplied" and TLS failures are set-up problems: trying
            # again cannot help.
            text = str(exc)
            set_up = any(word in text for word in ("password", "SSL", "certificate"))
            if (not state or state.startswith(("08", "57P"))) and not set_up:
                raise HistoryUnreachableError(self._unreachable(exc)) from None
            raise HistoryOpenError(self._unreachable(exc)) from None
        except psycopg.Error as exc:
            raise HistoryOpenError(self._unreachable(exc)) from None
        self._pool: psycopg_pool.ConnectionPool[Conn] = psycopg_pool.ConnectionPool(
            self._url,
            kwargs=self._kwargs,
            min_size=1,
            max_size=max(1, max_connections),
            timeout=self._timeout,
            check=psycopg_pool.ConnectionPool.check_connection,
            name="cactus-history",
            open=True,
        )

    def _unreachable(self, exc: BaseException) -> str:
        return unreachable_message(self.label, exc, self._password)

    # -- connections ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self, action: str = "read the history") -> Iterator[Conn]:
        if self._closed:
            raise HistoryClosedError("The payout history is closed")
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                yield conn
        except psycopg.errors.InsufficientPrivilege as exc:
            raise HistoryPermissionError(
                f"Your role in the team history at {self.label} cannot {action} "
                f"({' '.join(str(exc).split())}). Ask a team admin for a role that may."
            ) from None
        except psycopg_pool.PoolClosed as exc:
            raise HistoryClosedError("The payout history is closed") from exc
        except psycopg_pool.PoolTimeout as exc:
            if self._closed:
                raise HistoryClosedError("The payout history is closed") from exc
            raise HistoryUnavailableError(
                f"The team history at {self.label} cannot be reached: no connection within "
                f"{self._timeout:g} s (is the database server running and reachable?)"
            ) from None
        except psycopg.Error as exc:
            if self._closed:
                raise HistoryClosedError("The payout history is closed") from exc
            raise HistoryUnavailableError(self._unreachable(exc)) from None

    @contextlib.contextmanager
    def _write(self, action: str = "change the history") -> Iterator[Conn]:
        with self._connection(action) as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Conn]:
        """A read-only transaction on one snapshot (several reads that must agree)."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def change_listener(
        self,
        on_change: Callable[[ChangeBatch], None],
        on_state: Callable[[str, str], None],
    ) -> ChangeListener:
        """A listener for this history's live changes on a connection of its own (not
        started); see ``postgres/listen.py``."""
        return ChangeListener(
            self._url, self._kwargs, self.label, on_change=on_change, on_state=on_state
        )

    def signed_in_as(self) -> str:
        """The login this desk is connected as (the database's ``session_user``)."""
        with self._connection() as conn:
            row = conn.execute("SELECT session_user AS who").fetchone()
        return str(row["who"]) if row else ""

    def close(self) -> None:
        """Close the pool; the store cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()

    def __enter__(self) -> PostgresHistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> int:
        """The store's clock in epoch milliseconds (what ``updated_at`` is stamped with)."""
        return self._clock()

    # -- the send path --------------------------------------------------------------------

    def create_attempt(self, attempt: NewAttempt) -> int:
        """Record ``attempt`` as SUBMITTING and return its id; raises DuplicateRequestIdError.

        When two desks race for one request id, the second waits for the first to commit and
        then finds the id taken: exactly one attempt is recorded.
        """
        stamp = self._clock()
        with self._write("send payouts") as conn:
            row = conn.execute(
                "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, "
                "environment, merchant_id, site_id, request_id, site_login, method, "
                "currency, amount_minor, state, request_json, desk) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT ON CONSTRAINT payouts_request_unique DO NOTHING RETURNING id",
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
                    self.desk,
                ),
            ).fetchone()
            if row is not None:
                return int(row["id"])
            existing = conn.execute(
                "SELECT id FROM payouts WHERE merchant_id = %s AND site_id = %s "
                "AND request_id = %s",
                (attempt.merchant_id, attempt.site_id, attempt.request_id),
            ).fetchone()
        raise DuplicateRequestIdError(
            attempt.request_id,
            attempt.merchant_id,
            attempt.site_id,
            int(existing["id"]) if existing else None,
        )

    def mark_sending(self, record_id: int) -> None:
        """Durably note that a SUBMITTING attempt's request is about to leave."""
        stamp = self._clock()
        with self._write("send payouts") as conn:
            cursor = conn.execute(
                "UPDATE payouts SET sending_started_at = %s, send_attempts = send_attempts + 1, "
                "updated_at = %s WHERE id = %s AND state = %s",
                (stamp, stamp, record_id, str(State.SUBMITTING)),
            )
            if cursor.rowcount != 1:
                raise OutcomeAlreadyRecordedError(
                    f"History record {record_id} is not waiting to be sent; nothing was sent."
                )

    def record_outcome(self, record_id: int, outcome: PayoutOutcome) -> None:
        """Give a SUBMITTING attempt its outcome: ACCEPTED, REJECTED, REFUSED or UNKNOWN."""
        columns = outcome_columns(outcome)
        response = columns.pop("response")
        columns["response_json"] = None if response is None else masked_json(response)
        columns["state"] = str(columns["state"])
        for name in ("message", "detail"):
            columns[name] = scrub_card_numbers(columns[name] or "")
        self._finish(record_id, columns)

    def record_not_sent(self, record_id: int, reason: str, *, detail: str = "") -> None:
        """Mark a SUBMITTING attempt as NOT_SENT: it was stopped before any byte left."""
        columns: dict[str, Any] = {
            "state": str(State.NOT_SENT),
            "message": scrub_card_numbers(reason),
        }
        if detail:
            columns["detail"] = scrub_card_numbers(detail)
        self._finish(record_id, columns)

    def _finish(self, record_id: int, columns: dict[str, Any]) -> None:
        columns["updated_at"] = self._clock()
        with self._write("record what became of a payout") as conn:
            row = conn.execute(
                "SELECT state, gateway_status, invoice_id FROM payouts WHERE id = %s "
                "FOR NO KEY UPDATE",
                (record_id,),
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
            rows.update_record(conn, record_id, columns)

    def interrupted_attempts(self) -> list[InterruptedAttempt]:
        """This desk's attempts still SUBMITTING (recovery settles them under the instance
        lock); other desks' attempts in flight are theirs to settle."""
        with self._connection() as conn:
            found = conn.execute(
                "SELECT id, request_id, sending_started_at, send_attempts FROM payouts "
                "WHERE state = %s AND desk = %s ORDER BY id",
                (str(State.SUBMITTING), self.desk),
            ).fetchall()
        return [
            InterruptedAttempt(
                int(row["id"]), row["request_id"], row["sending_started_at"], row["send_attempts"]
            )
            for row in found
        ]

    def begin_resend(self, record_id: int, expected_state: State) -> ResendStart | None:
        """Audit a confirmed resend and put the record back to SUBMITTING, in one transaction;
        None when the record is gone or no longer in ``expected_state``."""
        stamp = self._clock()
        with self._write("resend payouts") as conn:
            row = conn.execute(
                "SELECT state, message, detail, unknown_kind, send_attempts FROM payouts "
                "WHERE id = %s FOR NO KEY UPDATE",
                (record_id,),
            ).fetchone()
            if row is None or row["state"] != expected_state:
                return None
            conn.execute(
                "INSERT INTO resends (record_id, confirmed_at, attempt, previous_state, "
                "previous_message, previous_detail) VALUES (%s, %s, %s, %s, %s, %s)",
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
                "UPDATE payouts SET state = %s, sending_started_at = NULL, unknown_kind = NULL, "
                "updated_at = %s WHERE id = %s",
                (str(State.SUBMITTING), stamp, record_id),
            )
        return ResendStart(
            record_id,
            State(row["state"]),
            row["message"],
            row["detail"],
            row["unknown_kind"],
            int(row["send_attempts"]) + 1,
        )

    def undo_resend(self, before: ResendStart, event: ManualEvent) -> int:
        """A resend that never left: the record gets back what it had, plus ``event``."""
        now = self._clock()
        with self._write("resend payouts") as conn:
            conn.execute(
                "UPDATE payouts SET state = %s, message = %s, detail = %s, unknown_kind = %s, "
                "updated_at = %s WHERE id = %s AND state = %s",
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
        with self._write("add to a payout's timeline") as conn:
            return _insert_manual(conn, self._clock(), event)

    # -- callbacks and manual states ------------------------------------------------------

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
        with self._write("send payouts") as conn:
            conn.execute(
                "INSERT INTO batches (merchant_id, site_id, batch_id, profile_id, file_sha256, "
                "file_name, row_count, parent, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (*values, self._clock()),
            )
            row = conn.execute(
                "SELECT * FROM batches WHERE merchant_id = %s AND site_id = %s AND batch_id = %s",
                (entry.merchant_id, entry.site_id, entry.batch_id),
            ).fetchone()
        return batch_entry(row)

    def recent_batches(self, limit: int = 100) -> list[BatchEntry]:
        """The ``limit`` most recently imported batches, newest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT * FROM batches ORDER BY created_at DESC, batch_id DESC LIMIT %s",
                (max(0, int(limit)),),
            ).fetchall()
        return [batch_entry(row) for row in rows]

    def batches_for_file(self, file_sha256: str) -> list[BatchEntry]:
        """Every batch imported from a file with this SHA-256, oldest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT * FROM batches WHERE file_sha256 = %s ORDER BY created_at, batch_id",
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
        with self._write("record callbacks") as conn:
            return rows.reject(conn, self._clock(), source, payload, reason, request_id=request_id)

    def apply_verified_callback(
        self,
        payload: Mapping[str, Any],
        *,
        merchant_id: str | None = None,
        site_id: int | None = None,
        source: EventSource = EventSource.GATEWAY,
    ) -> ApplyResult:
        """Match a verified callback to its payout and apply it; always exactly one event."""
        with self._write("record callbacks") as conn:
            return rows.apply_verified(conn, self._clock(), payload, merchant_id, site_id, source)

    def set_final_state(
        self, record_id: int, status: int, note: str, *, invoice_id: str | None, who: str
    ) -> int:
        """Settle a payout by hand (``callbacks.rules.final_state_change``); the event id."""
        with self._write("settle payouts by hand") as conn:
            return rows.set_final_state(
                conn, self._clock(), record_id, status, note, invoice_id, who
            )

    # -- reads ----------------------------------------------------------------------------

    def get(self, record_id: int) -> PayoutRecord:
        """One record with its request and response parsed; raises RecordNotFoundError."""
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM payouts WHERE id = %s", (record_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"No payout with history record {record_id}")
        return _payout_record(row)

    def details(self, record_id: int) -> PayoutDetails:
        """One payout with its timeline and resend audit, read from one snapshot."""
        with self._snapshot() as conn:
            row = conn.execute("SELECT * FROM payouts WHERE id = %s", (record_id,)).fetchone()
            if row is None:
                raise RecordNotFoundError(f"No payout with history record {record_id}")
            events = _events_for(conn, record_id)
            resends = _resends(conn, record_id)
            approved_by, settled_by = _acted(conn, row)
        return PayoutDetails(
            _payout_record(row),
            tuple(events),
            tuple(resends),
            made_by=_made_by(row),
            approved_by=approved_by,
            settled_by=settled_by,
        )

    def count(self, history_filter: HistoryFilter = _EVERYTHING, *, cap: int | None = None) -> int:
        """How many records match (at most ``cap``: a result equal to it means "at least")."""
        with self._connection() as conn:
            return queries.count(conn, history_filter, cap)

    def page(
        self,
        history_filter: HistoryFilter = _EVERYTHING,
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> list[HistoryRow]:
        """One page of matching rows in order; ties are broken by id."""
        offset, limit = max(0, offset), max(0, limit)
        with self._snapshot() as conn:  # the count and the page from one snapshot
            found = queries.page(conn, history_filter, SortKey(sort), descending, offset, limit)
        return [_history_row(row) for row in found]

    def iter_records(
        self,
        history_filter: HistoryFilter = _EVERYTHING,
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
    ) -> Iterator[PayoutRecord]:
        """Every matching record in order, streamed (server-side cursor) from one snapshot."""
        clause, params = queries.where(history_filter)
        sql = f"SELECT * FROM payouts{clause}{queries.order_by(SortKey(sort), descending)}"
        with self._snapshot() as conn, conn.cursor(name="cactus_export") as cursor:
            cursor.itersize = 500
            cursor.execute(sql, params)
            for row in cursor:
                yield _payout_record(row)

    def rows_by_id(self, ids: Sequence[int]) -> list[HistoryRow]:
        """The list columns of the records ``ids`` (in no order); gone ones are left out."""
        if not ids:
            return []
        with self._connection() as conn:
            found = conn.execute(
                f"SELECT {queries.ROW_COLUMNS} FROM payouts WHERE id = ANY(%s)",
                ([int(i) for i in ids],),
            ).fetchall()
        return [_history_row(row) for row in found]

    def newest_record_id(self) -> int:
        """The highest record id (0 when empty): new records have higher ones."""
        with self._connection() as conn:
            row = conn.execute("SELECT coalesce(max(id), 0) AS n FROM payouts").fetchone()
        return int(row["n"]) if row else 0

    def last_event_id(self) -> int:
        """The id of the newest event in the history (0 when there is none)."""
        with self._connection() as conn:
            row = conn.execute("SELECT coalesce(max(id), 0) AS n FROM events").fetchone()
        return int(row["n"]) if row else 0

    def newest_event_id(self, record_id: int) -> int:
        """The id of the newest event of ``record_id`` (0 when it has none)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT coalesce(max(id), 0) AS n FROM events WHERE record_id = %s", (record_id,)
            ).fetchone()
        return int(row["n"]) if row else 0

    def events_for(self, record_id: int) -> list[Event]:
        """The record's timeline: every event attached to it, oldest first."""
        with self._connection() as conn:
            return _events_for(conn, record_id)

    def events_since(self, after_id: int = 0, limit: int = 1000) -> list[Event]:
        """Events newer than ``after_id``, oldest first."""
        with self._connection() as conn:
            found = conn.execute(
                "SELECT * FROM events WHERE id > %s ORDER BY id LIMIT %s",
                (after_id, max(0, limit)),
            ).fetchall()
        return [rows.row_to_event(row) for row in found]

    def rejected_events(self, limit: int = 100) -> list[Event]:
        """The latest rejected callbacks, newest first."""
        with self._connection() as conn:
            found = conn.execute(
                "SELECT * FROM events WHERE outcome = %s ORDER BY id DESC LIMIT %s",
                (str(EventOutcome.REJECTED), max(0, limit)),
            ).fetchall()
        return [rows.row_to_event(row) for row in found]

    def resend_history(self, record_id: int) -> list[ResendAudit]:
        """Every confirmed resend of ``record_id``, oldest first."""
        with self._connection() as conn:
            return _resends(conn, record_id)

    def recent_similar(self, probe: DuplicateProbe) -> list[PayoutRecord]:
        """Records like ``probe`` created at or after ``probe.since`` whose state is not one of
        ``probe.exclude_states``, newest first: the whole team's payouts."""
        with self._connection() as conn:
            found = conn.execute(
                "SELECT * FROM payouts WHERE amount_minor = %s AND currency = %s "
                "AND site_login = %s AND method = %s AND environment = %s AND created_at >= %s "
                "AND NOT (state = ANY(%s)) ORDER BY created_at DESC, id DESC",
                (
                    probe.amount_minor,
                    probe.currency,
                    scrub_card_numbers(probe.site_login),
                    probe.method,
                    probe.environment,
                    probe.since,
                    sorted(str(state) for state in probe.exclude_states),
                ),
            ).fetchall()
        return [_payout_record(row) for row in found]

    def recent_similar_many(self, probes: Sequence[DuplicateProbe]) -> list[list[PayoutRecord]]:
        """``recent_similar`` for every probe in one statement per (environment, window,
        excluded states): each probe a seek in ``payouts_similar``."""
        found: list[list[PayoutRecord]] = [[] for _ in probes]
        for (environment, since, excluded), keys in probe_groups(probes).items():
            amounts = [key[0] for key in keys]
            currencies = [key[1] for key in keys]
            logins = [key[2] for key in keys]
            methods = [key[3] for key in keys]
            with self._connection() as conn:
                rows_found = conn.execute(
                    "SELECT * FROM payouts WHERE id IN (SELECT payouts.id FROM "
                    "unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
                    "AS probe (amount_minor, currency, site_login, method) "
                    "JOIN payouts ON payouts.site_login = probe.site_login "
                    "AND payouts.amount_minor = probe.amount_minor "
                    "AND payouts.currency = probe.currency AND payouts.method = probe.method "
                    "AND payouts.created_at >= %s "
                    "WHERE payouts.environment = %s AND NOT (payouts.state = ANY(%s))) "
                    "ORDER BY created_at DESC, id DESC",
                    (amounts, currencies, logins, methods, since, environment, list(excluded)),
                ).fetchall()
            for row in rows_found:
                record = _payout_record(row)
                key = (record.amount_minor, record.currency, record.site_login, record.method)
                for index in keys.get(key, ()):
                    found[index].append(record)
        return found

    def recent_amounts(
        self, environment: str, since: int, exclude_states: frozenset[State], limit: int
    ) -> frozenset[int] | None:
        """The different amounts of the window's payouts (``HistoryReader.recent_amounts``):
        a walk of the window in ``payouts_by_created``."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT amount_minor FROM payouts WHERE created_at >= %s "
                "AND environment = %s AND NOT (state = ANY(%s)) LIMIT %s",
                (since, environment, sorted(str(state) for state in exclude_states), limit + 1),
            ).fetchall()
        return None if len(rows) > limit else frozenset(int(row["amount_minor"]) for row in rows)

    def distinct_profiles(self) -> list[tuple[str, str]]:
        """``(profile_id, name)`` of every profile in the history, with its latest name."""
        with self._snapshot() as conn:
            result = []
            for profile_id in queries.distinct(conn, "profile_id"):
                row = conn.execute(queries.LATEST_NAME, (profile_id,)).fetchone()
                result.append((profile_id, row["profile_name"] if row else ""))
        return sorted(result, key=lambda item: (item[1].casefold(), item[0]))

    def distinct_currencies(self) -> list[str]:
        """Every currency in the history, sorted."""
        with self._connection() as conn:
            return queries.distinct(conn, "currency")

    def totals(self, history_filter: HistoryFilter = _EVERYTHING) -> list[TotalRow]:
        """Per currency and state: how many payouts the filter selects, and their sum."""
        clause, params = queries.where(history_filter)
        with self._connection() as conn:
            rows = conn.execute(totals_sql(clause), params).fetchall()
        return [TotalRow(r["currency"], r["state"], int(r["n"]), int(r["total"])) for r in rows]

    def daily_totals(
        self,
        history_filter: HistoryFilter = _EVERYTHING,
        offset_ms: int = 0,
        zone: LocalZone | None = None,
    ) -> list[DayTotal]:
        """Per day and currency: sent, paid and declined sums, oldest first. Days are
        ``zone``'s local days, or UTC days shifted by ``offset_ms`` without one."""
        clause, params = queries.where(history_filter)
        sql = daily_sql(clause, "%s", zone=zone)
        with self._connection() as conn:
            rows = conn.execute(sql, [offset_ms, *params, MAX_CHART_DAYS * 8]).fetchall()
        found = [
            DayTotal(
                int(r["day"]),
                r["currency"],
                int(r["n"]),
                int(r["sent"]),
                int(r["paid"]),
                int(r["declined"]),
            )
            for r in rows
        ]
        return found[::-1]

    def data_version(self) -> int:
        """The team history's change counter: it grows whenever any desk or the receiver
        commits a change (bumped at commit, so the change is visible once the number is)."""
        with self._connection() as conn:
            row = conn.execute("SELECT n FROM history_version").fetchone()
        return int(row["n"]) if row else 0

    # -- maintenance ----------------------------------------------------------------------

    @property
    def location(self) -> Path:
        """This desk's folder for snapshots of the team history (``back_up``).

        The history itself lives in the database (``label`` names it); its file location is
        the server's business.
        """
        return self.local_dir

    def check_integrity(self, *, complete: bool = False) -> str | None:
        """Check that the team history answers and its schema is readable; None when it is.

        ``complete`` changes nothing here: page-level integrity and the daily backups are the
        database server's duty (data checksums, ``pg_dump`` or continuous archiving), so no
        desk takes them. Raises ``HistoryUnavailableError`` when the server cannot be reached.
        """
        with self._connection() as conn:
            conn.execute("SELECT id FROM payouts ORDER BY id DESC LIMIT 1").fetchone()
            conn.execute("SELECT n FROM history_version").fetchone()
        return None

    def warm_up(self) -> None:
        """Nothing to read ahead on a desk: the server's cache is the team's, kept warm by
        every desk's reads. Raises ``HistoryClosedError`` once closed."""
        if self._closed:
            raise HistoryClosedError("The payout history is closed")

    def run_maintenance(self, budget_ms: int = 40) -> MaintenanceReport:
        """Nothing to do on a desk: the server vacuums and checkpoints by itself.

        Raises ``HistoryClosedError`` once closed, as every operation does.
        """
        if self._closed:
            raise HistoryClosedError("The payout history is closed")
        return MaintenanceReport(merge_steps=0, more=False, wal_frames_left=-1)

    def back_up(self, reason: str) -> Path:
        """Write a consistent snapshot of the team history into ``location``; its path.

        A gzipped JSON-lines file (one object per row of payouts, events and resends, from one
        transaction snapshot), private to the user; older snapshots beyond ``KEEP_SNAPSHOTS``
        go. It is a desk-side copy for inspection or ``team import-history``; the team's real
        backups are the server's (``pg_dump`` or continuous archiving). Raises
        ``BackupError`` when it cannot be written, ``HistoryUnavailableError`` when the server
        cannot be reached.
        """
        if not reason.replace("-", "").isalnum() or not reason.islower():
            raise ValueError(f"A backup reason is a short lower-case tag, not {reason!r}")
        stamp = datetime.fromtimestamp(self._clock() / 1000, tz=UTC)
        name = f"team-history-{stamp:%Y%m%dT%H%M%S}{stamp.microsecond // 1000:03d}Z-{reason}"
        try:
            self.local_dir.mkdir(parents=True, exist_ok=True)
            target = self.local_dir / f"{name}.jsonl.gz"
            partial = target.with_suffix(".part")
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
                self._write_snapshot(out)
            partial.replace(target)
        except OSError as exc:
            raise BackupError(f"The team history snapshot could not be written: {exc}") from exc
        snapshots = sorted(self.local_dir.glob("team-history-*.jsonl.gz"))
        for old in snapshots[:-KEEP_SNAPSHOTS]:
            with contextlib.suppress(OSError):
                old.unlink()
        return target

    def _write_snapshot(self, out: gzip.GzipFile) -> None:
        with self._snapshot() as conn:
            for table in _SNAPSHOT_TABLES:
                with conn.cursor(name=f"cactus_snapshot_{table}") as cursor:
                    cursor.itersize = 1000
                    cursor.execute(f"SELECT * FROM {table} ORDER BY id")
                    for row in cursor:
                        line = json.dumps({"table": table, "row": row}, ensure_ascii=False)
                        out.write(line.encode("utf-8") + b"\n")

    def prune_rejected(self, older_than_ms: int, who: str) -> PruneReport:
        """Delete unverified rejected callbacks older than ``older_than_ms`` and audit it."""
        with self._write("prune rejected callbacks") as conn:
            now = self._clock()
            cutoff = now - older_than_ms
            # The owner's function: no team role may DELETE events itself.
            found = conn.execute("SELECT cactus_prune_rejected(%s) AS n", (cutoff,)).fetchone()
            deleted = max(int(found["n"]) if found else 0, 0)
            payload, message = prune_audit(older_than_ms, cutoff, deleted, PRUNABLE_REASONS)
            event_id = rows.insert_event(
                conn,
                received_at=now,
                source=EventSource.MANUAL,
                outcome=EventOutcome.PRUNED,
                payload=payload,
                message=message,
                who=who,
            )
        return PruneReport(deleted, cutoff, event_id)


def _events_for(conn: Conn, record_id: int) -> list[Event]:
    found = conn.execute(
        "SELECT * FROM events WHERE record_id = %s ORDER BY id", (record_id,)
    ).fetchall()
    return [rows.row_to_event(row) for row in found]


def _made_by(row: Mapping[str, Any]) -> str:
    """The login that recorded the payout (or copied it in from a desk's own history)."""
    if row.get("imported_by"):
        return f"{row['imported_by']} (copied in from a desk's own history)"
    return str(row.get("created_by") or "")


def _acted(conn: Conn, row: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The logins that approved the payout's request (one that led to sending; None when this
    login may not read the approvals) and those that settled it by hand, as the database
    recorded them (``session_user``)."""
    readable = conn.execute(
        "SELECT has_table_privilege('approvals', 'SELECT') "
        "AND has_table_privilege('approval_requests', 'SELECT') AS readable"
    ).fetchone()
    approvers = (
        None
        if not (readable and readable["readable"])
        else conn.execute(
            "SELECT DISTINCT a.approver FROM approvals a "
            "JOIN approval_requests r ON r.id = a.approval_id "
            "WHERE r.request_id = %s AND r.merchant_id = %s AND r.site_id = %s "
            "AND r.state IN ('APPROVED', 'SENDING', 'SENT') ORDER BY a.approver",
            (row["request_id"], row["merchant_id"], row["site_id"]),
        ).fetchall()
    )
    settlers = conn.execute(
        "SELECT DISTINCT recorded_by FROM events WHERE record_id = %s AND source = 'manual' "
        "AND recorded_by <> '' ORDER BY recorded_by",
        (row["id"],),
    ).fetchall()
    return (
        None if approvers is None else tuple(str(r["approver"]) for r in approvers),
        tuple(str(r["recorded_by"]) for r in settlers),
    )


def _resends(conn: Conn, record_id: int) -> list[ResendAudit]:
    found = conn.execute(
        "SELECT confirmed_at, attempt, previous_state, previous_message, previous_detail "
        "FROM resends WHERE record_id = %s ORDER BY id",
        (record_id,),
    ).fetchall()
    return [ResendAudit(**row) for row in found]


def _insert_manual(conn: Conn, now: int, event: ManualEvent) -> int:
    return rows.insert_event(
        conn,
        received_at=now,
        source=EventSource.MANUAL,
        outcome=event.outcome,
        payload=event.payload,
        record_id=event.record_id,
        message=event.message,
        who=event.who,
    )
