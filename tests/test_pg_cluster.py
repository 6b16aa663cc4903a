"""The suite's own PostgreSQL cluster: reachable with a password, and its data survive a restart."""

from __future__ import annotations

import psycopg
import pytest

from tests.pg_cluster import PgCluster


def test_cluster_accepts_the_owner_and_refuses_a_wrong_password(pg_cluster: PgCluster) -> None:
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        row = conn.execute("SELECT current_user, inet_server_port()").fetchone()
    assert row == ("cactus_owner", pg_cluster.port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_cluster.url(password="wrong"), connect_timeout=5)


def test_restart_keeps_committed_rows(pg_cluster: PgCluster) -> None:
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survives (n int)")
        conn.execute("INSERT INTO survives VALUES (42)")
    pg_cluster.restart()
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        assert conn.execute("SELECT n FROM survives").fetchall() == [(42,)]
        conn.execute("DROP TABLE survives")
