"""Choosing the history for every command: --store, $CACTUS_DESK_STORE, team connect, local."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cactus_desk import cli
from cactus_desk.history import open_history
from cactus_desk.logs import stop_logging
from cactus_desk.secrets import SERVICE, STORE_SERVICE
from cactus_desk.store_choice import ENV_STORE, SETTINGS_FILE
from tests.history.contract.helpers import accepted
from tests.memory_keyring import MemoryKeyring
from tests.pg_databases import PgDatabases


@pytest.fixture(autouse=True)
def _close_the_log_file() -> Iterator[None]:
    yield
    stop_logging()


@pytest.fixture
def team_url(
    pg_databases: PgDatabases, database: str, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The URL of a team history holding po-team; the local history holds po-local."""
    monkeypatch.delenv(ENV_STORE, raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = pg_databases.url(database)
    with pg_databases.open(database, data_home / "setup") as team:
        accepted(team, "po-team")
    with open_history(data_home) as local:
        accepted(local, "po-local")
    return url


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def exported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *options: str
) -> list[str]:
    code, out, err = run(monkeypatch, capsys, *options, "history", "export")
    assert code == 0, err
    return [row["Request ID"] for row in csv.DictReader(io.StringIO(out))]


def test_nothing_set_is_the_local_history_and_store_picks_the_team_one(
    team_url: str,
    pg_databases: PgDatabases,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert exported(monkeypatch, capsys) == ["po-local"]
    monkeypatch.setenv("PGPASSWORD", pg_databases.cluster.password)  # libpq's own variable
    assert exported(monkeypatch, capsys, "--store", team_url) == ["po-team"]
    monkeypatch.setenv(ENV_STORE, team_url)
    assert exported(monkeypatch, capsys) == ["po-team"]
    assert exported(monkeypatch, capsys, "--store", "local") == ["po-local"]


def test_a_store_url_with_a_password_is_refused_and_the_password_never_shown(
    team_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    leaked = team_url.replace("cactus_owner@", "cactus_owner:Leaky-Pass-77@")
    code, out, err = run(monkeypatch, capsys, "--store", leaked, "history", "export")
    assert code == 2
    assert "team connect URL --password-stdin" in err and "Leaky-Pass-77" not in out + err
    monkeypatch.setenv(ENV_STORE, leaked)
    code, out, err = run(monkeypatch, capsys, "history", "export")
    assert code == 1
    assert "team connect URL --password-stdin" in err and "Leaky-Pass-77" not in out + err


def test_team_connect_keeps_the_url_in_settings_and_the_password_in_the_keyring(
    team_url: str,
    pg_databases: PgDatabases,
    data_home: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = pg_databases.cluster.password
    code, out, err = run(
        monkeypatch, capsys, "team", "connect", team_url, "--password-stdin", stdin=password + "\n"
    )
    assert code == 0, err
    assert "now uses the team history at 127.0.0.1:" in out and password not in out + err
    settings = json.loads((data_home / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert settings == {"store": team_url}
    assert (data_home / SETTINGS_FILE).stat().st_mode & 0o777 == 0o600
    account = f"cactus_owner@127.0.0.1:{pg_databases.cluster.port}/{team_url.rsplit('/', 1)[1]}"
    assert memory_keyring.passwords == {(STORE_SERVICE, account): password}
    assert STORE_SERVICE != SERVICE  # apart from the salts
    for path in data_home.rglob("*"):  # the password is in no file of the data folder
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path

    # Every command now uses the team history, with the password from the keyring.
    assert exported(monkeypatch, capsys) == ["po-team"]
    assert exported(monkeypatch, capsys, "--store", "local") == ["po-local"]


def test_team_connect_with_a_wrong_password_saves_nothing(
    team_url: str,
    data_home: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        monkeypatch, capsys, "team", "connect", team_url, "--password-stdin", stdin="Not-It-314\n"
    )
    assert code == 1
    assert "password authentication failed" in err and "Nothing was saved" in err
    assert "Not-It-314" not in out + err
    assert not (data_home / SETTINGS_FILE).exists()
    assert memory_keyring.passwords == {}
    assert exported(monkeypatch, capsys) == ["po-local"]


def test_local_only_actions_refuse_a_team_store_plainly(
    team_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(monkeypatch, capsys, "--store", team_url, "history", "restore")
    assert code == 1 and "pg_dump" in err
