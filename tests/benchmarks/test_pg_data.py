"""The benchmarks' PostgreSQL history build: the same schema and summaries the app keeps.

The build skips the triggers and rebuilds the indexes and the summaries itself (over
several connections at once, after a vacuum); here a small build is checked against what
the app's migrations and triggers would have made: every index of a freshly migrated
database present and valid, every summary equal to the payouts, the visibility map set (the
index-only scans need it) and the statistics gathered.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from benchmarks import pg_data
from cactus_desk.history.postgres.store import PostgresHistoryStore
from tests.pg_cluster import PgCluster

ROWS = 3_000


def _indexes(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public' "
        "AND i.indisvalid"
    ).fetchall()
    return {(str(name), str(definition)) for name, definition in rows}


@pytest.fixture
def bench_data(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A cache folder of the benchmarks' own that the server's user can reach."""
    folder = Path(tempfile.mkdtemp(prefix="cactus-bench-data-"))
    folder.chmod(0o755)
    monkeypatch.setattr(pg_data, "DATA", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_built_history_has_the_apps_indexes_and_summaries(
    pg_cluster: PgCluster, bench_data: Path, tmp_path: Path
) -> None:
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE bench_compared")
    try:
        url, password = pg_cluster.url(password="", db="bench_compared"), pg_cluster.password
        PostgresHistoryStore(url, password=password, local_dir=tmp_path / "migrated").close()
        with psycopg.connect(url, password=password, autocommit=True) as conn:
            expected = _indexes(conn)  # what the app's migrations make
    finally:
        with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_compared WITH (FORCE)")

    with (
        pg_data.bench_cluster(ROWS, log=False) as cluster,
        psycopg.connect(cluster.url(), password=cluster.password, autocommit=True) as conn,
    ):
        assert pg_data.cache_root(ROWS).parent == bench_data
        assert _indexes(conn) == expected
        payouts = conn.execute("SELECT count(*) FROM payouts").fetchone()
        assert payouts == (ROWS,)
        differing = conn.execute(
            "SELECT (SELECT count(*) FROM (SELECT state, currency, profile_id, count(*) AS n "
            "FROM payouts GROUP BY 1, 2, 3) AS real FULL JOIN payouts_counts AS kept "
            "USING (state, currency, profile_id) WHERE real.n IS DISTINCT FROM kept.n), "
            "(SELECT count(*) FROM (SELECT state, currency, profile_id, "
            "created_at / 86400000 AS day, count(*) AS n FROM payouts GROUP BY 1, 2, 3, 4) "
            "AS real FULL JOIN payouts_day_counts AS kept "
            "USING (state, currency, profile_id, day) WHERE real.n IS DISTINCT FROM kept.n), "
            "(SELECT count(*) FROM (SELECT created_at / 86400000 AS day, count(*) AS n "
            "FROM payouts GROUP BY 1) AS real FULL JOIN payouts_day_totals AS kept "
            "USING (day) WHERE real.n IS DISTINCT FROM kept.n)"
        ).fetchone()
        assert differing == (0, 0, 0)
        kept = conn.execute(
            "SELECT relpages, relallvisible, reltuples FROM pg_class WHERE relname = 'payouts'"
        ).fetchone()
        assert kept is not None
        pages, visible, tuples = kept
        assert pages > 0 and visible == pages  # vacuumed: every page all-visible
        assert tuples == ROWS  # analysed
