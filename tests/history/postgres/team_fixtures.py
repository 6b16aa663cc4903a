"""A team set up on a test database: ``team init`` run, and logins made per test.

Roles are the server's (not one database's), so each test's logins carry its database's
name and are dropped afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cactus_desk.history.postgres import team
from cactus_desk.history.postgres.store import PostgresHistoryStore
from tests.history.contract.conftest import step_clock
from tests.pg_databases import PgDatabases


class Team:
    """The test database after ``team init``, with logins, stores and plain connections."""

    def __init__(self, databases: PgDatabases, database: str, folder: Path) -> None:
        self.databases = databases
        self.database = database
        self.folder = folder
        self.passwords: dict[str, str] = {}
        self._stores: list[PostgresHistoryStore] = []
        self._conns: list[psycopg.Connection] = []
        self.setup = self.init()

    @property
    def owner_password(self) -> str:
        """The cluster owner's password (it ran ``team init``)."""
        return self.databases.cluster.password

    def url(self, login: str | None = None) -> str:
        """The database's URL as ``login`` (the owner when None), without a password."""
        if login is None:
            return self.databases.url(self.database)
        return self.databases.url(self.database, user=login)

    def init(self) -> team.TeamSetup:
        """Run ``team init`` as the owner."""
        with team.team_connection(self.url(), self.owner_password) as conn:
            return team.init_team(conn)

    def login_name(self, role: str) -> str:
        """This test's login name for ``role``."""
        return f"{self.database}_{role}"

    def add(self, role: str) -> str:
        """A new login holding the team role ``role`` (added by the owner); its name."""
        login = self.login_name(role)
        password = secrets.token_urlsafe(12)
        with team.team_connection(self.url(), self.owner_password) as conn:
            team.add_user(conn, login, role, password)
        self.passwords[login] = password
        return login

    def sql(self, login: str | None = None) -> psycopg.Connection:
        """A plain autocommit connection as ``login`` (the owner when None)."""
        password = self.owner_password if login is None else self.passwords[login]
        conn = psycopg.connect(self.url(login), password=password, autocommit=True)
        self._conns.append(conn)
        return conn

    def store(self, login: str | None = None) -> PostgresHistoryStore:
        """The history port as ``login`` (the owner when None), as a desk of its own."""
        password = self.owner_password if login is None else self.passwords[login]
        store = PostgresHistoryStore(
            self.url(login),
            password=password,
            local_dir=self.folder / (login or "owner"),
            desk=login or "owner",
            clock=step_clock(),
        )
        self._stores.append(store)
        return store

    def close(self) -> None:
        """Close every store and connection, then drop this test's logins."""
        for store in self._stores:
            store.close()
        for conn in self._conns:
            conn.close()
        with psycopg.connect(self.url(), password=self.owner_password, autocommit=True) as conn:
            for login in self.passwords:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (login,),
                )
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


@pytest.fixture
def team_db(pg_databases: PgDatabases, database: str, tmp_path: Path) -> Iterator[Team]:
    """The test's database set up for a team (``team init`` done as the owner)."""
    made = Team(pg_databases, database, tmp_path / "desks")
    yield made
    made.close()
