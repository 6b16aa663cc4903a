"""The team's roles and the least privilege each one holds: one table, applied by ``team init``.

Five group roles (``NOLOGIN``; a person's login is granted one of them, ``team add-user``):

- ``cactus_viewer`` reads the history and nothing more;
- ``cactus_maker`` records attempts and what became of them (outcomes, resends, manual
  events, a final state set by hand), never the recipient, amount or request of a record;
- ``cactus_approver`` reads and settles by hand (a final state with its manual event);
- ``cactus_receiver`` records callbacks: it reads payouts to match them and writes only the
  status columns a callback may change, plus the event; it cannot create payouts, see the
  resend audit or touch anything else;
- ``cactus_admin`` reads, adds logins, copies a desk's history in (``import-history``) and
  prunes old unverified callbacks, the last two through the owner's narrow functions.

Nobody but the schema owner can alter, delete or truncate: no role gets DELETE, TRUNCATE,
TRIGGER or REFERENCES, and the events and resends tables are append-only by trigger besides.
``PUBLIC`` gets nothing (no connect, no schema usage, no execute). Applying is idempotent and
exact: every table and sequence of the schema loses what any group or ``PUBLIC`` held, then
gets what ``PRIVILEGES`` says, so running ``team init`` again changes nothing and a privilege
taken out of the table is taken away. A new table only needs its entry in ``PRIVILEGES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from cactus_desk.history.types import TeamSetupError

ADMIN, MAKER, APPROVER, VIEWER, RECEIVER = (
    "cactus_admin",
    "cactus_maker",
    "cactus_approver",
    "cactus_viewer",
    "cactus_receiver",
)
GROUP_ROLES = (ADMIN, MAKER, APPROVER, VIEWER, RECEIVER)
#: The role names people use (``--role maker``) and the group role each one means.
TEAM_ROLES: Mapping[str, str] = {name.removeprefix("cactus_"): name for name in GROUP_ROLES}


@dataclass(frozen=True)
class Grant:
    """One privilege on one object; ``columns`` narrows a table privilege to those columns."""

    privilege: str
    columns: tuple[str, ...] = ()


# What a desk writes when it records an attempt (``create_attempt``).
ATTEMPT_COLUMNS = (
    "created_at",
    "updated_at",
    "profile_id",
    "profile_name",
    "environment",
    "merchant_id",
    "site_id",
    "request_id",
    "site_login",
    "method",
    "currency",
    "amount_minor",
    "state",
    "request_json",
    "desk",
)
# What a verified callback may change on its record (``callbacks.rules.decide_status`` and
# ``review_columns``): never what was sent, to whom, or how much.
CALLBACK_COLUMNS = (
    "updated_at",
    "state",
    "invoice_id",
    "gateway_status",
    "status_source",
    "message",
    "detail",
    "unknown_kind",
    "received_amount",
    "received_currency",
    "description",
    "needs_review",
    "review_message",
    "status_conflict",
)
# A final state set by hand (``callbacks.rules.final_state_change``).
SETTLE_COLUMNS = (
    "updated_at",
    "state",
    "invoice_id",
    "gateway_status",
    "status_source",
    "message",
    "detail",
    "unknown_kind",
    "needs_review",
    "review_message",
)
# The send path besides: marking a request as leaving, its answer, a resend.
SEND_COLUMNS = tuple(
    dict.fromkeys(
        (
            *CALLBACK_COLUMNS,
            "http_status",
            "response_json",
            "sending_started_at",
            "send_attempts",
        )
    )
)
# A record copied from a desk's own history, as it was (``import-history``).
IMPORT_COLUMNS = (
    *ATTEMPT_COLUMNS,
    *(name for name in SEND_COLUMNS if name not in ATTEMPT_COLUMNS),
    "imported_at",
)
EVENT_COLUMNS = (
    "received_at",
    "record_id",
    "source",
    "who",
    "outcome",
    "reason",
    "message",
    "request_id",
    "invoice_id",
    "status",
    "payload_json",
)
RESEND_COLUMNS = (
    "record_id",
    "confirmed_at",
    "attempt",
    "previous_state",
    "previous_message",
    "previous_detail",
)
_IMPORTED = ("import_key", "imported_at")
_READ = Grant("SELECT")
_READERS = (VIEWER, MAKER, APPROVER, ADMIN)  # the receiver reads payouts only, to match

#: Object (``TABLE name`` or ``FUNCTION name(args)``) -> group role -> its grants.
# What the profile store reads (``history/postgres/profiles.py``).
PROFILE_READ_COLUMNS = (
    "id",
    "name",
    "base_url",
    "merchant_id",
    "site_id",
    "environment",
    "settings",
    "version",
)

_RUN = (Grant("EXECUTE"),)
# Approvals and the audit trail: every table read-only (written by the owner's functions
# only); each function to the roles whose action it is (it checks session_user besides).
APPROVAL_PRIVILEGES: Mapping[str, Mapping[str, tuple[Grant, ...]]] = {
    **{
        f"TABLE {table}": {role: (_READ,) for role in _READERS}
        for table in (
            "approval_policies",
            "approver_limits",
            "approval_requests",
            "approvals",
            "audit_log",
            "approval_batch_totals",
            "approval_batch_rows",
        )
    },
    "FUNCTION cactus_required_approvals(TEXT, TEXT, BIGINT)": {role: _RUN for role in _READERS},
    "FUNCTION cactus_set_policy(TEXT, TEXT, BIGINT, BIGINT, INTEGER)": {ADMIN: _RUN},
    "FUNCTION cactus_set_limit(TEXT, TEXT, BIGINT)": {ADMIN: _RUN},
    "FUNCTION cactus_submit_payout(TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, TEXT, TEXT, TEXT, "
    "BIGINT, TEXT)": {MAKER: _RUN},
    "FUNCTION cactus_submit_batch(TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, JSONB, JSONB)": {
        MAKER: _RUN
    },
    "FUNCTION cactus_approve_payout(BIGINT, TEXT)": {APPROVER: _RUN},
    "FUNCTION cactus_reject_payout(BIGINT, TEXT)": {APPROVER: _RUN},
    "FUNCTION cactus_withdraw_payout(BIGINT)": {MAKER: _RUN},
    "FUNCTION cactus_claim_send(BIGINT)": {MAKER: _RUN, APPROVER: _RUN},
    "FUNCTION cactus_audit_note(TEXT, TEXT, JSONB)": {role: _RUN for role in _READERS},
}


BATCH_COLUMNS = (
    "merchant_id",
    "site_id",
    "batch_id",
    "profile_id",
    "file_sha256",
    "file_name",
    "row_count",
    "parent",
    "created_at",
)

PRIVILEGES: Mapping[str, Mapping[str, tuple[Grant, ...]]] = {
    "TABLE payouts": {
        VIEWER: (_READ,),
        MAKER: (_READ, Grant("INSERT", ATTEMPT_COLUMNS), Grant("UPDATE", SEND_COLUMNS)),
        # An approver records only a payout it claimed for sending, and writes the send
        # columns only of its own (the approval gate trigger checks both).
        APPROVER: (_READ, Grant("INSERT", ATTEMPT_COLUMNS), Grant("UPDATE", SEND_COLUMNS)),
        RECEIVER: (_READ, Grant("UPDATE", CALLBACK_COLUMNS)),
        ADMIN: (_READ, Grant("INSERT", IMPORT_COLUMNS)),
    },
    "TABLE events": {
        VIEWER: (_READ,),
        MAKER: (_READ, Grant("INSERT", EVENT_COLUMNS)),
        APPROVER: (_READ, Grant("INSERT", EVENT_COLUMNS)),
        # Reading its own inserts back (RETURNING id) needs SELECT.
        RECEIVER: (_READ, Grant("INSERT", EVENT_COLUMNS)),
        ADMIN: (_READ, Grant("INSERT", (*EVENT_COLUMNS, *_IMPORTED))),
    },
    "TABLE resends": {
        VIEWER: (_READ,),
        MAKER: (_READ, Grant("INSERT", RESEND_COLUMNS)),
        APPROVER: (_READ,),
        ADMIN: (_READ, Grant("INSERT", (*RESEND_COLUMNS, *_IMPORTED))),
    },
    # Batch files: a maker records the batches it sends; created_by is the database's.
    "TABLE batches": {
        VIEWER: (_READ,),
        MAKER: (_READ, Grant("INSERT", BATCH_COLUMNS)),
        # ... and an approver the approved batch it sends.
        APPROVER: (_READ, Grant("INSERT", BATCH_COLUMNS)),
        ADMIN: (_READ, Grant("INSERT", BATCH_COLUMNS)),
    },
    "TABLE payouts_counts": {
        VIEWER: (_READ,),
        MAKER: (_READ,),
        APPROVER: (_READ,),
        ADMIN: (_READ,),
    },
    "TABLE payouts_day_counts": {
        VIEWER: (_READ,),
        MAKER: (_READ,),
        APPROVER: (_READ,),
        ADMIN: (_READ,),
    },
    "TABLE payouts_day_totals": {
        VIEWER: (_READ,),
        MAKER: (_READ,),
        APPROVER: (_READ,),
        ADMIN: (_READ,),
    },
    "TABLE history_version": {
        VIEWER: (_READ,),
        MAKER: (_READ,),
        APPROVER: (_READ,),
        ADMIN: (_READ,),
    },
    # The team's shared profiles: only admins change them; the receiver reads only what
    # verifying a callback needs (never who changed what).
    "TABLE profiles": {
        VIEWER: (_READ,),
        MAKER: (_READ,),
        APPROVER: (_READ,),
        RECEIVER: (Grant("SELECT", PROFILE_READ_COLUMNS),),
        ADMIN: (_READ, Grant("INSERT"), Grant("UPDATE"), Grant("DELETE")),
    },
    # Written only by the table's own SECURITY DEFINER trigger; readable as an audit.
    "TABLE profile_changes": {
        VIEWER: (_READ,),
        MAKER: (_READ,),
        APPROVER: (_READ,),
        ADMIN: (_READ,),
    },
    # Saved recipients (cards masked): the people who send payouts keep them.
    "TABLE saved_recipients": {
        VIEWER: (_READ,),
        MAKER: (_READ, Grant("INSERT"), Grant("UPDATE"), Grant("DELETE")),
        APPROVER: (_READ,),
        ADMIN: (_READ, Grant("INSERT"), Grant("UPDATE"), Grant("DELETE")),
    },
    # Opening the history checks its version (every role, the receiver too).
    "TABLE schema_version": {role: (_READ,) for role in GROUP_ROLES},
    "FUNCTION cactus_prune_rejected(BIGINT)": {ADMIN: (Grant("EXECUTE"),)},
    "FUNCTION cactus_add_user(TEXT, TEXT, TEXT)": {ADMIN: (Grant("EXECUTE"),)},
    **APPROVAL_PRIVILEGES,
}


def _query(conn: psycopg.Connection, statement: str, params: tuple[object, ...] = ()) -> list:
    return conn.cursor(row_factory=tuple_row).execute(statement, params).fetchall()


def ensure_group_roles(conn: psycopg.Connection) -> list[str]:
    """Create the missing group roles (NOLOGIN); the names created."""
    created = []
    for role in GROUP_ROLES:
        found = _query(conn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
        if found and not found[0][0]:
            continue
        if found:  # a login of that name would make everyone granted the group able to be it
            raise TeamSetupError(
                f"The database has a login named {role}; it must be a group role (NOLOGIN). "
                "Rename that login, then run team init again."
            )
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        except psycopg.errors.DuplicateObject:
            continue  # another database's team init on this server made it just now
        except psycopg.errors.InsufficientPrivilege:
            raise TeamSetupError(
                "Only a login that may create roles (CREATEROLE) can set the team up: run "
                "team init as the database owner with that right."
            ) from None
        created.append(role)
    return created


def _privilege_sql(target: sql.Composable, role: str, grant: Grant) -> sql.Composed:
    privilege: sql.Composable = sql.SQL(grant.privilege)
    if grant.columns:
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in grant.columns)
        privilege = sql.SQL("{} ({})").format(privilege, columns)
    return sql.SQL("GRANT {} ON {} TO {}").format(privilege, target, sql.Identifier(role))


def _object_sql(name: str) -> sql.Composable:
    """``TABLE payouts`` / ``FUNCTION f(BIGINT)``: the names are this module's own."""
    return sql.SQL(name)


def apply_privileges(conn: psycopg.Connection) -> None:
    """Give the group roles exactly what ``PRIVILEGES`` says, and ``PUBLIC`` nothing.

    Runs in one transaction. The group roles must exist (``ensure_group_roles``).
    """
    everyone = sql.SQL(", ").join([sql.SQL("PUBLIC"), *map(sql.Identifier, GROUP_ROLES)])
    with conn.transaction():
        (database, schema), *_ = _query(conn, "SELECT current_database(), current_schema()")
        db, ns = sql.Identifier(database), sql.Identifier(schema)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, everyone))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(ns, everyone))
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(ns, everyone))
        conn.execute(
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(ns, everyone)
        )
        for (signature,) in _query(
            conn,
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'cactus%%'",
        ):
            conn.execute(
                sql.SQL("REVOKE ALL ON FUNCTION {} FROM {}").format(sql.SQL(signature), everyone)
            )
        # Functions this owner creates later are not everyone's either.
        conn.execute("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
        for role in GROUP_ROLES:
            who = sql.Identifier(role)
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, who))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ns, who))
        for name, by_role in PRIVILEGES.items():
            target = _object_sql(name)
            for role, grants in by_role.items():
                for grant in grants:
                    conn.execute(_privilege_sql(target, role, grant))


def tables_without_entry(conn: psycopg.Connection) -> list[str]:
    """The schema's tables that ``PRIVILEGES`` does not name (nobody but the owner uses them)."""
    named = {name.split(" ", 1)[1] for name in PRIVILEGES if name.startswith("TABLE ")}
    found = _query(
        conn,
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname",
    )
    return [row[0] for row in found if row[0] not in named]
