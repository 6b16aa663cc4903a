"""The receiver process connected as a ``cactus_receiver`` login, not as the owner."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from cactus_desk.history import open_profiles
from cactus_desk.profiles import Profile
from tests.callbacks.helpers import accepted_record, callback
from tests.history.postgres.team_fixtures import Team, team_db
from tests.history.postgres.test_team_receiver import CHILD, REPO

__all__ = ["team_db"]


def test_the_receiver_records_callbacks_as_its_own_login(team_db: Team, tmp_path: Path) -> None:
    record_id = accepted_record(team_db.store(team_db.add("maker")))
    login = team_db.add("receiver")
    # The team's profile is an admin's to add (here the owner's); the receiver only reads it.
    open_profiles(tmp_path, team_db.url(None), password=team_db.owner_password).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m_demo", site_id=7)
    )
    env = {
        **os.environ,
        "CACTUS_DESK_STORE": team_db.url(login),
        "PGPASSWORD": team_db.passwords[login],
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(90, proc.kill)  # a hung receiver must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/callback)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        reply = httpx.post(match.group(1), json=callback(4), timeout=30)
        assert (reply.status_code, reply.json()) == (200, {"result": "ok"})
        proc.send_signal(signal.SIGTERM)
        rest, errors = proc.communicate(timeout=30)
        assert proc.returncode == 0, errors
        assert team_db.passwords[login] not in first + rest + errors
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    owner = team_db.sql()
    assert owner.execute(
        "SELECT gateway_status FROM payouts WHERE id = %s", (record_id,)
    ).fetchone() == (4,)
    assert owner.execute("SELECT status, recorded_by FROM events").fetchall() == [(4, login)]
