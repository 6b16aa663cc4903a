"""Setting a team up on its PostgreSQL history: the schema, the roles, logins, a desk moving in.

``init_team`` (the database owner, once; idempotent) migrates the schema, creates the group
roles and applies ``roles.PRIVILEGES``. ``add_user`` (an admin) makes a person's login through
the owner's ``cactus_add_user`` function with a SCRAM verifier computed here, so the plain
password never reaches the server or its logs. ``import_history`` copies a desk's own history
in, in one transaction, keyed so a second run adds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cactus_desk.callbacks.events import Event, masked_payload
from cactus_desk.history.postgres.connect import (
    NO_PASSWORD_FILE,
    parse_store_url,
    unreachable_message,
)
from cactus_desk.history.postgres.migrations import SchemaTooNewError, migrate
from cactus_desk.history.postgres.roles import (
    ADMIN,
    GROUP_ROLES,
    IMPORT_COLUMNS,
    TEAM_ROLES,
    apply_privileges,
    ensure_group_roles,
    tables_without_entry,
)
from cactus_desk.history.transfer import CopiedRecord, ImportReport
from cactus_desk.history.types import (
    HistoryOpenError,
    HistoryPermissionError,
    HistoryUnavailableError,
    TeamSetupError,
    TeamUserError,
)
from cactus_desk.masking import masked_json
from cactus_desk.payouts.states import State

Conn = psycopg.Connection[Any]  # dict rows; the set-up helpers read with their own cursors


@dataclass(frozen=True)
class TeamSetup:
    """What ``init_team`` found and did."""

    schema_version: int
    roles_created: tuple[str, ...]
    tables_without_entry: tuple[str, ...]


@dataclass(frozen=True)
class TeamUser:
    """A login of the team and the team roles it holds (``maker``, ...)."""

    login: str
    roles: tuple[str, ...]


@contextlib.contextmanager
def team_connection(url: str, password: str | None) -> Iterator[Conn]:
    """One autocommit connection to the team history as the URL's user.

    Raises ``HistoryOpenError`` when it cannot be reached (never naming the password).
    """
    try:
        target = parse_store_url(url)
    except ValueError as exc:
        raise HistoryOpenError(str(exc)) from None
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "row_factory": dict_row,
        "connect_timeout": 10,
        "application_name": "cactus-desk",
        "passfile": NO_PASSWORD_FILE,
    }
    if password:
        kwargs["password"] = password
    try:
        conn = psycopg.connect(target.url, **kwargs)
    except psycopg.Error as exc:
        raise HistoryOpenError(unreachable_message(target.label, exc, password)) from None
    with conn:
        yield conn


def init_team(conn: Conn) -> TeamSetup:
    """Migrate the schema, create the group roles and give each exactly its privileges.

    Raises ``TeamSetupError`` (e.g. this login may not create roles) and ``HistoryOpenError``
    (the schema is newer than this Cactus Desk).
    """
    try:
        version = migrate(conn)
    except SchemaTooNewError as exc:
        raise HistoryOpenError(str(exc)) from None
    except psycopg.errors.InsufficientPrivilege:
        raise TeamSetupError(
            "This login may not create the team history's tables: run team init as the "
            "database owner."
        ) from None
    created = ensure_group_roles(conn)
    try:
        apply_privileges(conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise TeamSetupError(
            f"This login may not set the team's privileges ({' '.join(str(exc).split())}): "
            "run team init as the owner of the database and its tables."
        ) from None
    return TeamSetup(version, tuple(created), tuple(tables_without_entry(conn)))


def add_user(conn: Conn, login: str, role: str, password: str) -> None:
    """Create ``login`` with ``password``, granted the team role ``role`` (``maker``, ...).

    Only the SCRAM verifier of the password is sent. Raises ``TeamUserError`` and
    ``HistoryPermissionError`` (this login is not a team admin).
    """
    group = TEAM_ROLES.get(role)
    if group is None:
        raise TeamUserError(f"{role!r} is not a team role; use one of {', '.join(TEAM_ROLES)}")
    if not password:
        raise TeamUserError("the new login's password is empty")
    verifier = conn.pgconn.encrypt_password(
        password.encode("utf-8"), login.encode("utf-8"), b"scram-sha-256"
    ).decode("ascii")
    try:
        conn.execute("SELECT cactus_add_user(%s, %s, %s)", (login, group, verifier))
    except psycopg.errors.DuplicateObject:
        raise TeamUserError(f"the login {login} exists already; nothing was changed") from None
    except psycopg.errors.InvalidName:
        raise TeamUserError(
            f"{login!r} cannot be a login name: use lower-case letters, digits and _ . @ - "
            "(at most 63, starting with a letter or _, not pg_)"
        ) from None
    except psycopg.errors.UndefinedFunction:
        raise TeamUserError(
            "this team history is not set up for logins yet: the database owner runs "
            "cactus-desk --store URL team init first"
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        if "cactus_add_user" in str(exc):  # refused the call itself: not an admin
            raise HistoryPermissionError(
                f"only a team admin ({ADMIN}) or the database owner can add logins"
            ) from None
        raise HistoryPermissionError(  # the owner's own rights fall short (CREATEROLE, ADMIN)
            "the database owner's login may not create this login or grant its role "
            f"({' '.join(str(exc).split())}); the server's administrator must give it "
            "CREATEROLE (and, from PostgreSQL 16, ADMIN OPTION on the cactus_ roles)"
        ) from None


def list_users(conn: Conn) -> list[TeamUser]:
    """Every login holding one of the team roles, by name."""
    found = conn.execute(
        "SELECT m.rolname AS login, array_agg(g.rolname ORDER BY g.rolname) AS groups "
        "FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
        "JOIN pg_roles m ON m.oid = a.member "
        "WHERE g.rolname = ANY(%s) GROUP BY m.rolname ORDER BY m.rolname",
        (list(GROUP_ROLES),),
    ).fetchall()
    return [
        TeamUser(row["login"], tuple(name.removeprefix("cactus_") for name in row["groups"]))
        for row in found
    ]


def _key(*parts: object) -> str:
    """A stable identity for a copied row: the hash of what makes it that row."""
    text = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record_values(copied: CopiedRecord) -> dict[str, Any]:
    record = copied.record
    values: dict[str, Any] = {
        name: getattr(record, name)
        for name in IMPORT_COLUMNS
        if name not in ("request_json", "response_json", "desk", "imported_at")
    }
    values["state"] = str(record.state)
    values["needs_review"] = int(record.needs_review)
    values["status_conflict"] = int(record.status_conflict)
    values["request_json"] = masked_json(record.request)
    values["response_json"] = None if record.response is None else masked_json(record.response)
    values["desk"] = ""  # no desk's start-up recovery may take it for its own
    values["imported_at"] = 0  # the database stamps its own time and the importer
    return values


class _Importer:
    """Copies records, their resends and then the events, counting what was already there."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.counts = dict.fromkeys(ImportReport.__dataclass_fields__, 0)
        self.team_ids: dict[int, int] = {}  # the desk's record id -> the team's
        self.keys: dict[int, tuple[str, int, str]] = {}  # the desk's record id -> its key

    def record(self, copied: CopiedRecord) -> None:
        record = copied.record
        if record.state is State.SUBMITTING:
            raise TeamUserError(
                f"payout {record.request_id} is still being sent on that desk; open Cactus "
                "Desk on that data folder once (it settles interrupted sends), then import"
            )
        values = _record_values(copied)
        names = ", ".join(values)
        holes = ", ".join(["%s"] * len(values))
        row = self.conn.execute(
            f"INSERT INTO payouts ({names}) VALUES ({holes}) "
            "ON CONFLICT ON CONSTRAINT payouts_request_unique DO NOTHING RETURNING id",
            list(values.values()),
        ).fetchone()
        key = (record.merchant_id, record.site_id, record.request_id)
        if row is None:
            self.counts["payouts_present"] += 1
            row = self.conn.execute(
                "SELECT id FROM payouts WHERE merchant_id = %s AND site_id = %s "
                "AND request_id = %s",
                key,
            ).fetchone()
            assert row is not None
        else:
            self.counts["payouts_imported"] += 1
        self.team_ids[record.id] = int(row["id"])
        self.keys[record.id] = key
        for resend in copied.resends:
            added = self.conn.execute(
                "INSERT INTO resends (record_id, confirmed_at, attempt, previous_state, "
                "previous_message, previous_detail, import_key, imported_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 0) ON CONFLICT (import_key) DO NOTHING",
                (
                    int(row["id"]),
                    resend.confirmed_at,
                    resend.attempt,
                    resend.previous_state,
                    resend.previous_message,
                    resend.previous_detail,
                    _key("resend", *key, resend.attempt, resend.confirmed_at),
                ),
            ).rowcount
            self.counts["resends_imported" if added == 1 else "resends_present"] += 1

    def event(self, event: Event) -> None:
        key = self.keys.get(event.record_id) if event.record_id is not None else None
        payload = masked_payload(event.payload)
        identity = _key(
            "event",
            key,
            event.id,
            event.received_at,
            str(event.source),
            str(event.outcome),
            event.reason,
            payload,
        )
        added = self.conn.execute(
            "INSERT INTO events (received_at, record_id, source, who, outcome, reason, message, "
            "request_id, invoice_id, status, payload_json, import_key, imported_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0) "
            "ON CONFLICT (import_key) DO NOTHING",
            (
                event.received_at,
                self.team_ids.get(event.record_id) if event.record_id is not None else None,
                str(event.source),
                event.who,
                str(event.outcome),
                event.reason,
                event.message,
                event.request_id,
                event.invoice_id,
                event.status,
                json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str),
                identity,
            ),
        ).rowcount
        self.counts["events_imported" if added == 1 else "events_present"] += 1


def import_history(
    conn: Conn, records: Iterable[CopiedRecord], events: Iterable[Event]
) -> ImportReport:
    """Copy ``records`` (with their resends) and then ``events`` in, in one transaction.

    Times, states, messages and each event's ``who`` are kept as they were; the database
    stamps who imported and when. A payout already there (same merchant, site and request
    id) is left as it is; an event or resend already copied (same identity) is skipped, so a
    second run adds nothing. Raises ``TeamUserError`` (a payout still being sent on that desk;
    nothing is copied then) and ``HistoryPermissionError`` (this login may not import).
    """
    importer = _Importer(conn)
    try:
        with conn.transaction():
            for copied in records:
                importer.record(copied)
            for event in events:
                importer.event(event)
    except psycopg.errors.InsufficientPrivilege:
        raise HistoryPermissionError(
            f"only a team admin ({ADMIN}) or the database owner can import a history"
        ) from None
    except psycopg.Error as exc:
        raise HistoryUnavailableError(
            f"The history could not be copied; nothing was imported: {' '.join(str(exc).split())}"
        ) from None
    return ImportReport(**importer.counts)
