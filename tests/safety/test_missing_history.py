"""A damaged or vanished history never turns into a silent empty one (issue 11, item 10).

The receiver and CLI commands run as real processes, restarted the way systemd would.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cactus_desk.history import open_history
from cactus_desk.history.sqlite.backup import (
    HISTORY_MARKER,
    make_backup,
    read_marker,
    set_aside,
)
from cactus_desk.history.sqlite.opening import start_new_history
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import MissingHistoryError
from tests.callbacks.helpers import SALT, accepted_record, callback

REPO = Path(__file__).resolve().parents[2]

# A `cactus-desk` process with its own in-memory keyring holding the profile's salt; the
# command line comes after `--`.
CHILD = textwrap.dedent(
    f"""
    import sys
    import keyring
    from tests.memory_keyring import MemoryKeyring
    keyring.set_keyring(MemoryKeyring())
    from cactus_desk import cli, paths
    from cactus_desk.profiles import Profile, ProfileNotFoundError, ProfileStore
    from cactus_desk.secrets import SecretStore
    store = ProfileStore(paths.data_dir())
    try:
        profile = store.get("Shop")
    except ProfileNotFoundError:
        profile = store.add(
            Profile(name="Shop", base_url="https://gw.example", merchant_id="m_demo", site_id=7)
        )
    SecretStore().set_salt(profile.id, {SALT!r})
    sys.exit(cli.main(sys.argv[1:]))
    """
)
RECEIVER = ("receiver", "--listen", "127.0.0.1:0", "--profile", "Shop")


def cactus(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run one `cactus-desk` command in a separate process to its end."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def receiver_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running `cactus-desk receiver` and its callback URL ('' when it did not start)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *RECEIVER],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)  # a hung receiver must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "" once the process has ended without serving
        match = re.search(r"at (http://127\.0\.0\.1:\d+/callback)", first)
        yield proc, match.group(1) if match else ""
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def seeded(data_home: Path) -> Path:
    """A history with one accepted payout and a backup of it; returns the history's path."""
    with open_history(data_home) as store:
        accepted_record(store)
    path = data_home / HISTORY_FILE
    make_backup(path, "daily")
    return path


def damage(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.write(b"this is not a database at all, just bytes")


# -- the core: what counts as "a history existed here" ------------------------------------


def test_a_first_start_creates_the_history_and_records_it(data_home: Path) -> None:
    with open_history(data_home):
        pass
    marker = read_marker(data_home)
    assert marker is not None and re.fullmatch(r"[0-9a-f]{32}", marker["history_id"])
    assert (data_home / HISTORY_MARKER).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("how", ["removed", "emptied", "set_aside", "blank_database"])
def test_a_history_gone_after_it_existed_is_never_replaced_by_an_empty_one(
    data_home: Path, how: str
) -> None:
    with open_history(data_home) as store:
        accepted_record(store)
    path = data_home / HISTORY_FILE
    if how == "removed":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif how == "emptied":
        path.write_bytes(b"")
    elif how == "set_aside":
        set_aside(path)
        (data_home / HISTORY_MARKER).unlink()  # the kept file alone is enough
    else:  # a database with no history in it, e.g. created by hand
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE unrelated (x)")
        conn.commit()
        conn.close()

    with pytest.raises(MissingHistoryError) as raised:
        open_history(data_home)
    message = str(raised.value)
    assert "will not start a new, empty history" in message
    assert "history restore --start-empty" in message
    if how != "blank_database":
        assert not path.exists() or path.stat().st_size == 0  # nothing was created


def test_a_removed_history_with_only_a_backup_left_names_the_restore(data_home: Path) -> None:
    path = seeded(data_home)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    (data_home / HISTORY_MARKER).unlink()
    with pytest.raises(MissingHistoryError) as raised:
        open_history(data_home)
    assert raised.value.backup_path is not None
    assert "history restore (the window" in str(raised.value)
    assert raised.value.backup_path.name in str(raised.value)


def test_starting_empty_on_purpose_records_a_new_history(data_home: Path) -> None:
    path = seeded(data_home)
    before = read_marker(data_home)
    set_aside(path)
    with start_new_history(data_home) as store:
        assert store.count() == 0
    after = read_marker(data_home)
    assert before is not None and after is not None
    assert after["history_id"] != before["history_id"]
    with open_history(data_home) as store:  # from now on it opens as usual
        assert store.count() == 0


# -- real processes: the receiver restarted after damage, CLI commands, restore -------------


def test_a_restarted_receiver_refuses_the_missing_history_until_it_is_restored(
    data_home: Path,
) -> None:
    path = seeded(data_home)
    damage(path)

    # The receiver finds the damage, keeps the file aside and stops.
    with receiver_process() as (proc, url):
        assert url == ""
        _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "damaged" in errors and "kept aside" in errors and "history restore" in errors

    # Restarted (systemd does so 5 s later), it must not serve a new, empty history.
    with receiver_process() as (proc, url):
        assert url == "", "the receiver served an empty history in place of the lost one"
        _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert errors.startswith("cactus-desk: error: The payout history") and "missing" in errors
    assert "history restore" in errors and "Traceback" not in errors
    assert not path.exists()

    # Every command that opens the history refuses too.
    for command in (
        ("history", "export"),
        ("history", "reconcile", "1", "--status", "4", "--note", "checked"),
    ):
        result = cactus(*command)
        assert result.returncode == 1, command
        assert "missing" in result.stderr and "history restore" in result.stderr
        assert result.stdout == ""
    assert not path.exists()

    restored = cactus("history", "restore")
    assert restored.returncode == 0, restored.stderr
    assert "Restored" in restored.stdout

    with receiver_process() as (proc, url):
        assert url, proc.stderr.read() if proc.stderr else ""
        reply = httpx.post(url, json=callback(4), timeout=10)
        assert reply.status_code == 200
    with open_history(data_home) as store:
        (record,) = store.iter_records()
        assert record.gateway_status == 4


def test_the_restore_command_refuses_to_replace_a_history_in_place(data_home: Path) -> None:
    seeded(data_home)
    result = cactus("history", "restore")
    assert result.returncode == 1
    assert "a history is in place" in result.stderr
    with open_history(data_home) as store:
        assert store.count() == 1


def test_the_restore_command_can_start_empty_on_purpose(data_home: Path) -> None:
    path = seeded(data_home)
    set_aside(path)
    assert cactus("history", "export").returncode == 1
    result = cactus("history", "restore", "--start-empty")
    assert result.returncode == 0, result.stderr
    exported = cactus("history", "export")
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == 1  # the header only


@pytest.mark.parametrize("how", ["renamed", "removed", "replaced"])
def test_a_receiver_whose_history_is_moved_under_it_stops_answering_200(
    data_home: Path, how: str
) -> None:
    path = seeded(data_home)
    with receiver_process() as (proc, url):
        assert url, proc.stderr.read() if proc.stderr else ""
        assert httpx.post(url, json=callback(3), timeout=10).status_code == 200
        if how == "renamed":
            set_aside(path)
        elif how == "removed":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:  # another history put in its place: this receiver's file is not it
            replacement = path.with_name("other.sqlite3")
            SqliteHistoryStore(replacement).close()
            os.replace(replacement, path)
        reply = httpx.post(url, json=callback(4), timeout=10)
        assert reply.status_code == 503, reply.text
        assert reply.json() == {"result": "error", "code": "unavailable"}
        # It stays that way: the gateway keeps retrying until someone restores and restarts.
        assert httpx.post(url, json=callback(4), timeout=10).status_code == 503
