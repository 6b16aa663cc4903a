"""The team's roles on a real PostgreSQL: each one's privileges tried with plain SQL, the
product's own operations as each role, ``team init`` run twice, and who-did-what stamped by
the database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.callbacks.rules import Reason
from cactus_desk.gateway.outcomes import Unknown, UnknownKind
from cactus_desk.history.postgres import roles, team
from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryPermissionError, ManualEvent
from cactus_desk.payouts.states import State
from tests.history.contract.helpers import accepted, attempt, callback, unknown
from tests.history.postgres.team_fixtures import Team, team_db
from tests.pg_databases import PgDatabases

__all__ = ["team_db"]

ROLES = ("admin", "maker", "approver", "viewer", "receiver")
_PAYOUT_COLUMNS = (
    "created_at, updated_at, profile_id, profile_name, environment, merchant_id, site_id, "
    "request_id, site_login, method, currency, amount_minor, state, request_json"
)
_PAYOUT_VALUES = "1, 1, 'p', 'P', 'sandbox', 'm_demo', 7, 'forged', 'x', 'card', 'RUB', 100"
INSERT_PAYOUT = (
    f"INSERT INTO payouts ({_PAYOUT_COLUMNS}) VALUES ({_PAYOUT_VALUES}, 'ACCEPTED', '{{}}')"
)
INSERT_EVENT = (
    "INSERT INTO events (received_at, source, outcome, payload_json) "
    "VALUES (1, 'manual', 'applied', '{}')"
)
INSERT_RESEND = (
    "INSERT INTO resends (record_id, confirmed_at, attempt, previous_state) "
    "SELECT id, 1, 9, 'UNKNOWN' FROM payouts LIMIT 1"
)
# What nobody but the schema owner may do, whatever their team role.
OWNER_ONLY = (
    "UPDATE payouts SET amount_minor = 1",
    "UPDATE payouts SET site_login = 'mallory'",
    "UPDATE payouts SET request_json = '{}'",
    "UPDATE payouts SET created_by = 'mallory'",
    "DELETE FROM payouts",
    "UPDATE events SET message = 'rewritten'",
    "DELETE FROM events",
    "UPDATE resends SET attempt = 99",
    "DELETE FROM resends",
    "TRUNCATE events",
    "UPDATE history_version SET n = 0",
    "UPDATE payouts_counts SET n = 0",
    "ALTER TABLE payouts ADD COLUMN note TEXT",
    "ALTER TABLE events DISABLE TRIGGER events_append_only",
    "DROP TABLE resends",
    "DROP FUNCTION cactus_append_only()",
    "CREATE TABLE extra (x INT)",
)
# What each role may not do beyond that.
REFUSED = {
    "viewer": (
        INSERT_PAYOUT,
        INSERT_EVENT,
        INSERT_RESEND,
        "UPDATE payouts SET state = 'SETTLED'",
        "SELECT cactus_prune_rejected(0)",
        "SELECT cactus_add_user('x', 'cactus_admin', 'SCRAM-SHA-256$x')",
    ),
    "receiver": (
        INSERT_PAYOUT,
        INSERT_RESEND,
        "SELECT * FROM resends",
        "SELECT * FROM payouts_counts",
        "UPDATE payouts SET send_attempts = 9",
        "SELECT cactus_add_user('x', 'cactus_admin', 'SCRAM-SHA-256$x')",
    ),
    "maker": (
        "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment, "
        "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, state, "
        "request_json, created_by) VALUES (1, 1, 'p', 'P', 'sandbox', 'm', 7, 'f', 'x', 'card', "
        "'RUB', 100, 'ACCEPTED', '{}', 'mallory')",
        "INSERT INTO events (received_at, source, outcome, payload_json, recorded_by) "
        "VALUES (1, 'manual', 'applied', '{}', 'mallory')",
        "SELECT cactus_prune_rejected(0)",
        "SELECT cactus_add_user('x', 'cactus_admin', 'SCRAM-SHA-256$x')",
    ),
    "approver": (
        INSERT_PAYOUT,
        INSERT_RESEND,
        "UPDATE payouts SET send_attempts = 9",
        "SELECT cactus_prune_rejected(0)",
    ),
    # An admin copies histories in (rows marked imported), never records a new payout.
    "admin": ("UPDATE payouts SET state = 'SETTLED'", INSERT_PAYOUT),
}


def _refused(conn: psycopg.Connection, statement: str) -> bool:
    """True when the database refuses ``statement`` for lack of privilege."""
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def _seed(team_db: Team) -> None:
    """A payout with an event and a resend, recorded by the owner."""
    owner = team_db.store()
    accepted(owner, "po-seed")
    record_id = unknown(owner, "po-resent")
    start = owner.begin_resend(record_id, State.UNKNOWN)
    assert start is not None
    owner.undo_resend(
        start,
        ManualEvent(record_id, EventOutcome.RESEND_NOT_SENT, {"request_id": "po-resent"}, "", ""),
    )


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_refused_what_it_may_not_do_with_plain_sql(team_db: Team, role: str) -> None:
    _seed(team_db)
    conn = team_db.sql(team_db.add(role))
    statements = (*OWNER_ONLY, *REFUSED[role])
    assert [statement for statement in statements if not _refused(conn, statement)] == []
    # Nothing changed: the owner still sees every row as it was.
    owner = team_db.sql()
    assert owner.execute("SELECT count(*), min(amount_minor) FROM payouts").fetchone() == (
        2,
        150000,
    )
    assert owner.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert owner.execute("SELECT count(*) FROM resends").fetchone() == (1,)


def test_what_each_role_may_do_with_plain_sql(team_db: Team) -> None:
    _seed(team_db)
    for role in ROLES:
        rows = team_db.sql(team_db.add(role)).execute("SELECT count(*) FROM payouts").fetchone()
        assert rows == (2,), role
    viewer = team_db.sql(team_db.login_name("viewer"))
    assert viewer.execute("SELECT count(*) FROM events").fetchone() == (1,)
    maker = team_db.sql(team_db.login_name("maker"))
    maker.execute(INSERT_PAYOUT)
    maker.execute(INSERT_EVENT)
    receiver = team_db.sql(team_db.login_name("receiver"))
    receiver.execute("UPDATE payouts SET gateway_status = 4 WHERE request_id = 'forged'")
    admin = team_db.sql(team_db.login_name("admin"))
    assert admin.execute("SELECT cactus_prune_rejected(0)").fetchone() == (0,)


def test_a_login_without_a_team_role_cannot_even_connect(team_db: Team) -> None:
    login = team_db.login_name("stranger")
    team_db.passwords[login] = "stranger-pw-1"
    team_db.sql().execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'stranger-pw-1'").format(sql.Identifier(login))
    )
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        team_db.sql(login)


def test_every_table_has_an_entry_in_the_privilege_table(team_db: Team) -> None:
    assert team_db.setup.tables_without_entry == ()
    with team.team_connection(team_db.url(), team_db.owner_password) as conn:
        assert roles.tables_without_entry(conn) == []


def test_the_receiver_holds_nothing_beyond_matching_and_recording_callbacks(
    team_db: Team,
) -> None:
    """Profiles or any later table included: nothing unless the privilege table says so."""
    owner = team_db.sql()
    held = owner.execute(
        "SELECT c.relname, p.privilege FROM pg_class c CROSS JOIN unnest(ARRAY['SELECT', "
        "'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(privilege) "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
        "AND (has_table_privilege('cactus_receiver', c.oid, p.privilege) "
        "OR CASE WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') "
        "THEN has_any_column_privilege('cactus_receiver', c.oid, p.privilege) END) "
        "ORDER BY 1, 2"
    ).fetchall()
    assert held == [
        ("events", "INSERT"),
        ("events", "SELECT"),
        ("payouts", "SELECT"),
        ("payouts", "UPDATE"),
        ("profiles", "SELECT"),  # only the columns verifying a callback needs
        ("schema_version", "SELECT"),
    ]


def _privileges(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """Every ACL the team set-up touches, and the group roles' attributes."""
    return conn.execute(
        "SELECT 'class', relname, relacl::text FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace "
        "UNION ALL SELECT 'column', attrelid::regclass::text || '.' || attname, attacl::text "
        "FROM pg_attribute WHERE attacl IS NOT NULL AND attrelid IN (SELECT oid FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace) "
        "UNION ALL SELECT 'function', oid::regprocedure::text, proacl::text FROM pg_proc "
        "WHERE pronamespace = current_schema()::regnamespace "
        "UNION ALL SELECT 'schema', nspname, nspacl::text FROM pg_namespace "
        "WHERE nspname = current_schema() "
        "UNION ALL SELECT 'database', datname, datacl::text FROM pg_database "
        "WHERE datname = current_database() "
        "UNION ALL SELECT 'role', rolname, concat_ws(',', rolcanlogin, rolsuper, rolcreaterole) "
        "FROM pg_roles WHERE rolname LIKE 'cactus\\_%' "
        "UNION ALL SELECT 'version', version::text, '' FROM schema_version ORDER BY 1, 2, 3"
    ).fetchall()


def test_team_init_twice_changes_nothing_and_takes_back_what_was_added(team_db: Team) -> None:
    owner = team_db.sql()
    before = _privileges(owner)
    assert any(row[0] == "column" for row in before)  # the snapshot sees column grants
    again = team_db.init()
    assert again.roles_created == ()
    assert again.schema_version == team_db.setup.schema_version
    assert _privileges(owner) == before
    # A privilege given by hand outside the table is taken back by the next init.
    owner.execute("GRANT DELETE ON events TO cactus_maker")
    owner.execute("GRANT ALL ON payouts TO PUBLIC")
    assert _privileges(owner) != before
    team_db.init()
    assert _privileges(owner) == before


def test_the_group_roles_cannot_log_in(team_db: Team) -> None:
    found = (
        team_db.sql()
        .execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND NOT rolcanlogin "
            "AND NOT rolsuper AND NOT rolcreaterole ORDER BY 1",
            (list(roles.GROUP_ROLES),),
        )
        .fetchall()
    )
    assert [row[0] for row in found] == sorted(roles.GROUP_ROLES)


def test_a_maker_records_sends_resends_and_settles_through_the_port(team_db: Team) -> None:
    maker_login = team_db.add("maker")
    maker = team_db.store(maker_login)
    record_id = maker.create_attempt(attempt(request_id="po-m1"))
    maker.mark_sending(record_id)
    maker.record_outcome(record_id, Unknown("No answer in time.", UnknownKind.TIMEOUT))
    start = maker.begin_resend(record_id, State.UNKNOWN)
    assert start is not None
    maker.record_outcome(record_id, Unknown("Still no answer.", UnknownKind.TIMEOUT))
    maker.add_manual_event(
        ManualEvent(record_id, EventOutcome.RESEND_REFUSED, {"request_id": "po-m1"}, "n", "ann")
    )
    maker.set_final_state(record_id, 4, "confirmed by phone", invoice_id="77", who="ann")
    details = maker.details(record_id)
    assert details.record.state is State.SETTLED and len(details.resends) == 1
    assert maker.count() == 1 and maker.page()[0].id == record_id and maker.data_version() > 0

    owner = team_db.sql()
    assert owner.execute("SELECT created_by FROM payouts").fetchone() == (maker_login,)
    assert owner.execute("SELECT recorded_by FROM resends").fetchone() == (maker_login,)
    # The event keeps the desk's word for the person (who) and the database's (recorded_by).
    events = owner.execute("SELECT who, recorded_by FROM events ORDER BY id").fetchall()
    assert events == [("ann", maker_login), ("ann", maker_login)]


def test_the_receiver_records_callbacks_and_cannot_send(team_db: Team) -> None:
    maker = team_db.store(team_db.add("maker"))
    record_id = accepted(maker, "po-0001")
    receiver_login = team_db.add("receiver")
    receiver = team_db.store(receiver_login)
    result = receiver.apply_verified_callback(callback(4), merchant_id="m_demo", site_id=7)
    assert (result.outcome, result.record_id) == (EventOutcome.APPLIED, record_id)
    rejected = receiver.record_rejected_callback({"request_id": "po-x"}, Reason.BAD_SIGNATURE)
    assert rejected.outcome is EventOutcome.REJECTED
    assert maker.get(record_id).gateway_status == 4
    with pytest.raises(HistoryPermissionError, match="cannot send payouts"):
        receiver.create_attempt(attempt(request_id="po-r"))
    with pytest.raises(HistoryPermissionError, match="cannot settle payouts by hand"):
        receiver.set_final_state(unknown(maker, "po-0002"), 5, "no", invoice_id=None, who="r")
    recorded = team_db.sql().execute("SELECT recorded_by FROM events ORDER BY id").fetchall()
    assert recorded == [(receiver_login,), (receiver_login,)]


def test_a_viewer_reads_and_is_told_its_role_cannot_send(team_db: Team) -> None:
    maker = team_db.store(team_db.add("maker"))
    record_id = accepted(maker, "po-0001")
    viewer = team_db.store(team_db.add("viewer"))
    assert [row.id for row in viewer.page()] == [record_id]
    assert [row.id for row in viewer.page(HistoryFilter(text="PO-00"))] == [record_id]
    assert viewer.count() == 1 and viewer.details(record_id).record.request_id == "po-0001"
    assert viewer.data_version() == maker.data_version()
    with pytest.raises(
        HistoryPermissionError, match=r"Your role in the team history at .* cannot send payouts"
    ):
        viewer.create_attempt(attempt(request_id="po-v"))
    with pytest.raises(HistoryPermissionError, match="cannot add to a payout's timeline"):
        viewer.add_manual_event(
            ManualEvent(record_id, EventOutcome.RESEND_REFUSED, {"request_id": "x"}, "", "")
        )
    assert maker.count() == 1


def test_an_approver_settles_by_hand_and_an_admin_prunes_but_neither_sends(
    team_db: Team,
) -> None:
    maker = team_db.store(team_db.add("maker"))
    record_id = unknown(maker, "po-0001")
    approver_login = team_db.add("approver")
    approver = team_db.store(approver_login)
    approver.set_final_state(record_id, 4, "bank confirmed", invoice_id="9", who="bob")
    assert maker.get(record_id).state is State.SETTLED
    admin = team_db.store(team_db.add("admin"))
    team_db.store(team_db.add("receiver")).record_rejected_callback(
        {"request_id": "po-x"}, Reason.BAD_SIGNATURE
    )
    report = admin.prune_rejected(-10_000_000, "carol")
    assert report.deleted == 1
    for store in (approver, admin):
        with pytest.raises(HistoryPermissionError, match="cannot send payouts"):
            store.create_attempt(attempt(request_id="po-z"))
    settled_by = (
        team_db.sql()
        .execute("SELECT recorded_by FROM events WHERE source = 'manual' AND outcome = 'applied'")
        .fetchone()
    )
    assert settled_by == (approver_login,)


def test_attribution_cannot_be_forged_even_by_a_client_with_every_column(team_db: Team) -> None:
    owner = team_db.sql()  # the owner holds every column privilege: the triggers still decide
    owner.execute(
        f"INSERT INTO payouts ({_PAYOUT_COLUMNS}, created_by, imported_by) "
        f"VALUES ({_PAYOUT_VALUES}, 'ACCEPTED', '{{}}', 'mallory', 'mallory')"
    )
    owner.execute("UPDATE payouts SET created_by = 'mallory', imported_at = 5")
    owner.execute(
        "INSERT INTO events (received_at, source, outcome, payload_json, recorded_by, "
        "imported_at) VALUES (1, 'manual', 'applied', '{}', 'mallory', 5)"
    )
    owner.execute(
        "INSERT INTO resends (record_id, confirmed_at, attempt, previous_state, recorded_by) "
        "SELECT id, 1, 1, 'UNKNOWN', 'mallory' FROM payouts"
    )
    me = owner.execute("SELECT session_user").fetchone()
    assert owner.execute("SELECT created_by, imported_at, imported_by FROM payouts").fetchone() == (
        me[0],
        None,
        None,
    )
    assert owner.execute("SELECT recorded_by, imported_at FROM events").fetchone() == (
        me[0],
        None,
    )
    assert owner.execute("SELECT recorded_by FROM resends").fetchone() == me
    # SET ROLE changes current_user, not session_user: still the login that connected.
    maker_login = team_db.add("maker")
    maker = team_db.sql(maker_login)
    maker.execute("SET ROLE cactus_maker")
    maker.execute(INSERT_PAYOUT.replace("'forged'", "'po-role'"))
    assert owner.execute(
        "SELECT created_by FROM payouts WHERE request_id = 'po-role'"
    ).fetchone() == (maker_login,)


def test_a_database_owner_without_superuser_sets_the_team_up_from_an_empty_database(
    pg_databases: PgDatabases, tmp_path: Path
) -> None:
    """The real set-up: a login with CREATEROLE that owns an empty database runs team init."""
    name = pg_databases.create(migrated=False)
    owner_login, password = f"{name}_owner", "owner-Secret-1"
    maker_login = f"{name}_maker"
    admin = psycopg.connect(pg_databases.url("postgres"), password=pg_databases.cluster.password)
    admin.autocommit = True
    try:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(owner_login), sql.Literal(password)
            )
        )
        admin.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(owner_login)
            )
        )
        url = pg_databases.url(name, user=owner_login)
        with team.team_connection(url, password) as conn:
            setup = team.init_team(conn)
            assert setup.tables_without_entry == () and setup.schema_version > 0
            team.add_user(conn, maker_login, "maker", "maker-Secret-2")
            assert team.init_team(conn).roles_created == ()
        store = PostgresHistoryStore(
            pg_databases.url(name, user=maker_login),
            password="maker-Secret-2",
            local_dir=tmp_path / "maker",
            desk="m",
        )
        with store:
            record_id = store.create_attempt(attempt(request_id="po-own"))
            store.mark_sending(record_id)
        with psycopg.connect(url, password=password) as conn:
            row = conn.execute("SELECT created_by, state FROM payouts").fetchone()
        assert row == (maker_login, "SUBMITTING")
    finally:
        pg_databases.drop(name)
        for login in (maker_login, owner_login):
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
        admin.close()
