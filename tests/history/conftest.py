"""The history tests open stores the way the payouts tests do (one clock, one data dir)."""

from collections.abc import Iterator

import pytest

from tests.payouts.conftest import store, store_factory
from tests.pg_cluster import PgCluster
from tests.pg_databases import PgDatabases

__all__ = ["pg_databases", "store", "store_factory"]


@pytest.fixture(scope="session")
def pg_databases(pg_cluster: PgCluster) -> Iterator[PgDatabases]:
    """Fresh migrated team-history databases on the session's PostgreSQL cluster."""
    yield PgDatabases(pg_cluster)
