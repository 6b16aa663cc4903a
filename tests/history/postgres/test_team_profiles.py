"""The team's profiles in PostgreSQL: one list for every desk, versioned, stamped, no salt."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cactus_desk.history import open_profiles
from cactus_desk.history.postgres.profiles import PostgresProfileStore
from cactus_desk.payout_command import EXIT_NOT_SENT
from cactus_desk.payouts.states import State
from cactus_desk.profiles import (
    DuplicateProfileError,
    Profile,
    ProfileConflictError,
    ProfileNotFoundError,
    ProfileStoreError,
)
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.secrets import SecretStore
from tests.pg_cluster import SUPERUSER
from tests.pg_databases import PgDatabases
from tests.test_payout_command import _close_the_log_file, cactus, gateway, send_args

__all__ = ["_close_the_log_file", "gateway"]

Desk = Callable[[], PostgresProfileStore]


@pytest.fixture
def desk(pg_databases: PgDatabases, database: str) -> Desk:
    """Opens the team's profiles as one more desk would (its own connections)."""

    def open_one() -> PostgresProfileStore:
        return PostgresProfileStore(
            pg_databases.url(database), password=pg_databases.cluster.password
        )

    return open_one


def shop(**overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "Acme live",
        "base_url": "https://gateway.example.com",
        "merchant_id": "acme",
        "site_id": 21,
        "extensions": ["skrill"],
        "decimals": {"IDR": 0},
        "read_timeout": 60,
    }
    values.update(overrides)
    return Profile(**values)


def test_a_profile_added_on_one_desk_is_seen_by_another_on_its_next_read(desk: Desk) -> None:
    first, second = desk(), desk()
    assert second.all() == []
    added = first.add(shop())
    assert added.version == 1

    seen = second.get("ACME LIVE")
    assert seen == added
    assert (seen.extensions, seen.decimals, seen.read_timeout) == (["skrill"], {"IDR": 0}, 60)
    assert second.get_by_id(added.id) == added
    changed = first.update(seen.model_copy(update={"decimals": {"IDR": 2}, "site_id": 22}))
    assert changed.version == 2
    assert second.get("Acme live").decimals == {"IDR": 2}
    assert second.get("Acme live").site_id == 22

    assert second.remove("acme live") == changed
    assert first.all() == []
    with pytest.raises(ProfileNotFoundError):
        first.get("Acme live")


def test_a_stale_update_is_refused_and_names_who_changed_it(desk: Desk) -> None:
    first, second = desk(), desk()
    original = first.add(shop())
    mine = first.get("Acme live")
    theirs = second.get("Acme live")

    first.update(mine.model_copy(update={"decimals": {"IDR": 2}}))
    with pytest.raises(ProfileConflictError) as caught:
        second.update(theirs.model_copy(update={"merchant_id": "other"}))
    message = str(caught.value)
    assert "'Acme live' was changed by " + SUPERUSER in message
    assert "not saved" in message
    stored = second.get_by_id(original.id)
    assert (stored.decimals, stored.merchant_id, stored.version) == ({"IDR": 2}, "acme", 2)

    # Read again, the same change goes through.
    again = second.update(stored.model_copy(update={"merchant_id": "other"}))
    assert again.version == 3 and first.get("Acme live").merchant_id == "other"


def test_names_are_unique_ignoring_case_and_unknown_ids_are_reported(desk: Desk) -> None:
    store = desk()
    store.add(shop(name="Acme"))
    second = store.add(shop(name="Beta"))
    with pytest.raises(DuplicateProfileError, match="A profile named 'Acme' already exists"):
        store.add(shop(name="acme"))
    with pytest.raises(DuplicateProfileError, match="A profile named 'Acme' already exists"):
        store.update(second.model_copy(update={"name": "ACME"}))
    with pytest.raises(DuplicateProfileError, match="with id"):
        store.add(second.model_copy(update={"name": "Gamma"}))
    with pytest.raises(ProfileNotFoundError):
        store.update(shop(name="Never saved"))
    assert [p.name for p in store.all()] == ["Acme", "Beta"]


def test_the_database_records_who_changed_a_profile_and_when(
    desk: Desk, owner_sql: psycopg.Connection
) -> None:
    store = desk()
    added = store.add(shop())
    store.update(added.model_copy(update={"site_id": 99}))
    # A client cannot write another name or version: the database stamps its own.
    owner_sql.execute(
        "UPDATE profiles SET updated_by = 'mallory', created_by = 'mallory', version = 1 "
        "WHERE id = %s",
        (added.id,),
    )
    store.remove("Acme live")

    changes = store.changes(added.id)
    assert [(c.action, c.version, c.changed_by) for c in changes] == [
        ("add", 1, SUPERUSER),
        ("update", 2, SUPERUSER),
        ("update", 3, SUPERUSER),
        ("remove", 3, SUPERUSER),
    ]
    assert changes[0].changed_at <= changes[-1].changed_at
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        owner_sql.execute("DELETE FROM profile_changes")


def test_the_salt_never_reaches_the_team_store(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pg_databases: PgDatabases,
    database: str,
    owner_sql: psycopg.Connection,
    tmp_path: Path,
) -> None:
    salt = "team-salt-never-in-the-database-7f3a"
    monkeypatch.setenv("PGPASSWORD", pg_databases.cluster.password)
    code, _, err = cactus(
        monkeypatch,
        capsys,
        *("--data-dir", str(tmp_path / "desk"), "--store", pg_databases.url(database)),
        *("profile", "add", "Acme live", "--base-url", "https://gateway.example.com"),
        *("--merchant-id", "acme", "--site-id", "21", "--salt-stdin"),
        stdin=io.StringIO(salt + "\n"),
    )
    assert code == 0, err
    assert not (tmp_path / "desk" / "profiles.json").exists()  # the team's, not this desk's
    dumped = owner_sql.execute(
        "SELECT (SELECT string_agg(to_jsonb(p)::text, '') FROM profiles p) || "
        "(SELECT string_agg(to_jsonb(c)::text, '') FROM profile_changes c)"
    ).fetchone()
    assert dumped is not None and "acme" in dumped[0]
    assert salt not in dumped[0] and "salt" not in dumped[0]


def test_an_unreachable_team_store_is_a_plain_profile_error(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> None:
    password = pg_databases.cluster.password
    store = open_profiles(tmp_path, pg_databases.url(database), password=password + "-wrong")
    with pytest.raises(ProfileStoreError) as caught:
        store.all()
    assert "cannot be reached" in str(caught.value)
    assert password not in str(caught.value)
    with pytest.raises(ProfileStoreError, match="must not contain the database password"):
        open_profiles(tmp_path, f"postgresql://u:{password}@127.0.0.1/db")


def test_a_desk_without_the_salt_can_list_but_not_send_until_it_saves_the_salt(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg_databases.cluster.password)
    monkeypatch.setenv("CACTUS_DESK_STORE", pg_databases.url(database))
    desk_a = ["--data-dir", str(tmp_path / "desk-a")]
    desk_b = ["--data-dir", str(tmp_path / "desk-b")]
    code, _, err = cactus(
        monkeypatch,
        capsys,
        *desk_a,
        *("profile", "add", "Shop", "--base-url", gateway.base_url),
        *("--merchant-id", gateway.merchant_id, "--site-id", str(gateway.site_id)),
        *("--environment", "sandbox", "--salt-stdin"),
        stdin=io.StringIO(gateway.salt + "\n"),
    )
    assert code == 0, err
    # Desk B shares the keyring of this test process: take desk A's salt out of it.
    team = open_profiles(tmp_path, pg_databases.url(database))
    SecretStore().delete_salt(team.get("Shop").id)

    code, out, err = cactus(monkeypatch, capsys, *desk_b, "profile", "list")
    assert code == 0 and "Shop" in out and "MISSING" in out
    code, out, err = cactus(
        monkeypatch, capsys, *desk_b, *send_args("--request-id", "po-nosalt", "--yes")
    )
    assert code == EXIT_NOT_SENT
    assert "No site salt on this desk for profile 'Shop'" in out
    assert "cactus-desk profile set-salt Shop --salt-stdin" in out
    assert gateway.requests_received == 0

    code, out, err = cactus(
        monkeypatch,
        capsys,
        *desk_b,
        *("profile", "set-salt", "Shop", "--salt-stdin"),
        stdin=io.StringIO(gateway.salt + "\n"),
    )
    assert (code, err) == (0, "")
    assert gateway.salt not in out
    code, out, err = cactus(
        monkeypatch, capsys, *desk_b, *send_args("--request-id", "po-salted", "--yes")
    )
    assert code == 0, out + err
    with pg_databases.open(database, tmp_path / "check") as history:
        states = {r.request_id: r.state for r in history.iter_records()}
    assert states == {"po-nosalt": State.NOT_SENT, "po-salted": State.ACCEPTED}


def test_a_login_that_may_only_read_gets_a_plain_refusal_when_it_writes(
    desk: Desk, pg_databases: PgDatabases, database: str, owner_sql: psycopg.Connection
) -> None:
    added = desk().add(shop())
    reader = f"reader_{database}"
    owner_sql.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pass-1'")
    try:
        owner_sql.execute(f"GRANT SELECT ON profiles, schema_version TO {reader}")
        store = PostgresProfileStore(
            pg_databases.url(database, user=reader), password="reader-pass-1"
        )
        assert store.get("Acme live") == added
        with pytest.raises(ProfileStoreError, match="may not do this with the team's profiles"):
            store.update(added.model_copy(update={"merchant_id": "other"}))
        assert desk().get("Acme live").merchant_id == "acme"
    finally:
        owner_sql.execute(f"REVOKE ALL ON profiles, schema_version FROM {reader}")
        owner_sql.execute(f"DROP ROLE {reader}")
