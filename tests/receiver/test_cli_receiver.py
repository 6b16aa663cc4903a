"""``cactus-desk receiver`` as a real process: it serves the profile's callbacks until SIGTERM."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from cactus_desk import cli
from cactus_desk.history import open_history
from cactus_desk.history.sqlite.backup import list_backups
from cactus_desk.logs import stop_logging
from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.payouts.conftest import make_attempt

REPO = Path(__file__).resolve().parents[2]

# The child process gets its own in-memory keyring holding the profile's salt.
CHILD = textwrap.dedent(
    f"""
    import sys
    import keyring
    from tests.memory_keyring import MemoryKeyring
    keyring.set_keyring(MemoryKeyring())
    from cactus_desk import cli, paths
    from cactus_desk.profiles import Profile, ProfileStore
    from cactus_desk.secrets import SecretStore
    profile = ProfileStore(paths.data_dir()).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m_demo", site_id=7)
    )
    SecretStore().set_salt(profile.id, {SALT!r})
    sys.exit(cli.main(["receiver", "--listen", "127.0.0.1:0", "--profile", "Shop"]))
    """
)


def test_the_receiver_command_stores_callbacks_and_stops_cleanly(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    with open_history(data_home) as store:
        record_id = accepted_record(store)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)  # a hung receiver must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/callback)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        reply = httpx.post(match.group(1), json=callback(4), timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"result": "ok"})
        proc.send_signal(signal.SIGTERM)
        rest, errors = proc.communicate(timeout=20)
        assert proc.returncode == 0, errors
        assert "Callback receiver stopped." in rest
        assert SALT not in rest + errors + first
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with open_history(data_home) as store:
        assert store.get(record_id).gateway_status == 4


def test_an_unknown_profile_is_one_clear_line(
    data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = cli.main(["receiver", "--profile", "Nope", "--listen", "127.0.0.1:0"])
    finally:
        stop_logging()
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("cactus-desk: error:") and "Nope" in err
    assert len(err.strip().splitlines()) == 1


def _index_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM payouts_search_data").fetchone()[0])
    finally:
        conn.close()


def test_the_receiver_process_runs_the_history_upkeep(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    with open_history(data_home) as store:
        for n in range(25):  # each write leaves its own small text-index segment
            record_id = store.create_attempt(make_attempt(request_id=f"po-{n}"))
            store.record_not_sent(record_id, "No salt")
        path = store.location
    unmerged = _index_rows(path)
    assert unmerged >= 50
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "Receiving callbacks" in first, first + (proc.stderr.read() if proc.stderr else "")
        deadline = time.monotonic() + 30
        while _index_rows(path) > unmerged // 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _index_rows(path) <= unmerged // 4  # merged by the receiver's upkeep thread
        proc.send_signal(signal.SIGTERM)
        _rest, errors = proc.communicate(timeout=20)
        assert proc.returncode == 0, errors
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_receiver_process_takes_the_daily_backup_beside_its_work(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    with open_history(data_home) as store:
        record_id = accepted_record(store)
    assert list_backups(data_home) == []  # the daily backup is due
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/callback)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        reply = httpx.post(match.group(1), json=callback(4), timeout=10)
        assert (reply.status_code, reply.json()) == (200, {"result": "ok"})
        deadline = time.monotonic() + 40
        while not list_backups(data_home) and time.monotonic() < deadline:
            time.sleep(0.1)
        (taken,) = list_backups(data_home)
        assert taken.name.endswith("-daily.sqlite3.gz")
        proc.send_signal(signal.SIGTERM)
        _rest, errors = proc.communicate(timeout=20)
        assert proc.returncode == 0, errors
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert sorted((data_home / "backups").iterdir()) == [taken]  # nothing partial beside it
    with open_history(data_home) as store:
        assert store.get(record_id).gateway_status == 4
