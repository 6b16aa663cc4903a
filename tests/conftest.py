"""Shared fixtures: offscreen Qt, a private data dir and an in-memory keyring per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.memory_keyring import MemoryKeyring
from tests.pg_cluster import PgCluster, PostgresUnavailableError


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app's data dir (and platformdirs' XDG folders) at a fresh temp folder."""
    home = tmp_path / "cactus-home"
    monkeypatch.setenv("CACTUS_DESK_HOME", str(home))
    for var, sub in (
        ("XDG_DATA_HOME", "xdg-data"),
        ("XDG_STATE_HOME", "xdg-state"),
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_CACHE_HOME", "xdg-cache"),
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return home


@pytest.fixture(autouse=True)
def memory_keyring(request: pytest.FixtureRequest) -> Iterator[MemoryKeyring | None]:
    """Every test gets an empty in-memory keyring, except those that test the real one."""
    if request.node.get_closest_marker("keyring_real"):
        yield None
        return
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the whole run; CI fails rather than skips without one."""
    try:
        cluster = PgCluster()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
