"""The team history when the server is away or the URL is wrong: plain errors, no password."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import (
    HistoryError,
    HistoryOpenError,
    HistoryUnavailableError,
    HistoryUnreachableError,
)
from tests.history.contract.helpers import accepted, attempt
from tests.pg_databases import PgDatabases


def test_a_lost_server_is_unavailable_and_the_store_comes_back_with_it(
    open_pg: Callable[..., PostgresHistoryStore], pg_databases: PgDatabases
) -> None:
    cluster = pg_databases.cluster
    store = open_pg(connect_timeout=2)
    record_id = accepted(store)
    cluster.stop()
    try:
        with pytest.raises(HistoryUnavailableError) as caught:
            store.get(record_id)
        message = str(caught.value)
        assert store.label in message and "cannot be reached" in message
        assert cluster.password not in message
        with pytest.raises(HistoryError):  # nothing can be recorded, so nothing is sent
            store.create_attempt(attempt(request_id="po-while-down"))
    finally:
        cluster.start()
    deadline = time.monotonic() + 30
    while True:  # the pool reconnects by itself; wait for it rather than guess how long
        try:
            assert store.get(record_id).request_id == "po-0001"
            break
        except HistoryUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert store.count() == 1  # nothing was half-written while the server was away


def test_a_wrong_password_is_a_clear_open_error_without_the_password(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> None:
    wrong = "Wr0ng-Secret-Horse-91"
    with pytest.raises(HistoryOpenError) as caught:
        PostgresHistoryStore(pg_databases.url(database), password=wrong, local_dir=tmp_path)
    message = str(caught.value)
    assert "password authentication failed" in message
    assert wrong not in message and pg_databases.cluster.password not in message


def test_a_url_with_an_embedded_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    url = "postgresql://alice:Hunter2-Secret@db.example.com:5432/cactus?sslmode=verify-full"
    with pytest.raises(HistoryOpenError) as caught:
        PostgresHistoryStore(url, local_dir=tmp_path)
    message = str(caught.value)
    assert "team connect" in message and "--password-stdin" in message
    assert "Hunter2-Secret" not in message


def test_libpq_parameters_in_the_url_pass_through(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> None:
    # The test server has no TLS: a URL demanding it must fail for that reason, not connect.
    url = pg_databases.url(database) + "?sslmode=require"
    with pytest.raises(HistoryOpenError, match="SSL"):
        PostgresHistoryStore(url, password=pg_databases.cluster.password, local_dir=tmp_path)


def test_an_unreachable_server_is_an_open_error(tmp_path: Path) -> None:
    url = "postgresql://alice@127.0.0.1:1/cactus"
    with pytest.raises(HistoryOpenError, match="cannot be reached"):
        PostgresHistoryStore(url, password="s3cret-pw-x", local_dir=tmp_path, connect_timeout=2)
    # One the window tries again by itself (the server may come back) ...
    with pytest.raises(HistoryUnreachableError):
        PostgresHistoryStore(url, password="s3cret-pw-x", local_dir=tmp_path, connect_timeout=2)


def test_set_up_problems_are_not_retried_as_unreachable(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> None:
    """... unlike a TLS set-up the server refuses or a wrong password: trying again cannot help."""
    for url, password in (
        (pg_databases.url(database) + "?sslmode=require", pg_databases.cluster.password),
        (pg_databases.url(database), pg_databases.cluster.password + "-wrong"),
    ):
        with pytest.raises(HistoryOpenError) as caught:
            PostgresHistoryStore(url, password=password, local_dir=tmp_path)
        assert not isinstance(caught.value, HistoryUnreachableError), caught.value


def test_the_password_never_comes_from_a_file(
    pg_databases: PgDatabases,
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = pg_databases.cluster
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{cluster.password}\n", encoding="utf-8")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    # libpq would find the password in that file; Cactus Desk does not let it.
    with pytest.raises(HistoryOpenError, match="no password supplied"):
        PostgresHistoryStore(pg_databases.url(database), local_dir=tmp_path)
    with pytest.raises(HistoryOpenError, match="password file"):
        PostgresHistoryStore(
            pg_databases.url(database) + f"?passfile={passfile}", local_dir=tmp_path
        )
    monkeypatch.setenv("PGPASSWORD", cluster.password)  # libpq's variable is fine
    PostgresHistoryStore(pg_databases.url(database), local_dir=tmp_path).close()
