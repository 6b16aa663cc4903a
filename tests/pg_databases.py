"""Fresh, migrated team-history databases on the test cluster, one per test, made fast.

The schema is migrated once per session into a template database; each test's database is a
file copy of it (``CREATE DATABASE ... TEMPLATE``), which takes milliseconds.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import psycopg

from cactus_desk.history.postgres.store import PostgresHistoryStore
from tests.pg_cluster import SUPERUSER, PgCluster

TEMPLATE = "cactus_template"


class PgDatabases:
    """Makes and drops databases on ``cluster``; URLs carry no password (it is passed apart)."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self._numbers = itertools.count(1)
        self._admin(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        self._admin(f"CREATE DATABASE {TEMPLATE}")
        PostgresHistoryStore(
            self.url(TEMPLATE), password=cluster.password, local_dir=cluster.root / "unused"
        ).close()

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
            conn.execute(statement)

    def url(self, db: str, user: str = SUPERUSER) -> str:
        """A password-less URL of ``db`` on the cluster."""
        return f"postgresql://{user}@127.0.0.1:{self.cluster.port}/{db}"

    def create(self, *, migrated: bool = True) -> str:
        """A new database (migrated unless told otherwise); its name."""
        name = f"history_{next(self._numbers)}"
        template = f" TEMPLATE {TEMPLATE} STRATEGY WAL_LOG" if migrated else ""
        self._admin(f"CREATE DATABASE {name}{template}")
        return name

    def drop(self, name: str) -> None:
        """Drop ``name``, ending any session still on it."""
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def open(self, name: str, local_dir: Path, **options: object) -> PostgresHistoryStore:
        """Open the team history in ``name`` as the cluster's owner."""
        return PostgresHistoryStore(
            self.url(name),
            password=self.cluster.password,
            local_dir=local_dir,
            **options,  # type: ignore[arg-type]
        )
