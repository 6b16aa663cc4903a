"""``cactus-desk receiver`` on a team history: a real process writing callbacks to PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx

from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.pg_databases import PgDatabases

REPO = Path(__file__).resolve().parents[3]

# The child process gets its own in-memory keyring holding the profile's salt; the database
# password comes from libpq's PGPASSWORD, and the store from CACTUS_DESK_STORE, which also
# holds the team's profiles.
CHILD = textwrap.dedent(
    f"""
    import os
    import sys
    import keyring
    from tests.memory_keyring import MemoryKeyring
    keyring.set_keyring(MemoryKeyring())
    from cactus_desk import cli, paths
    from cactus_desk.history import open_profiles
    from cactus_desk.profiles import Profile
    from cactus_desk.secrets import SecretStore
    team = open_profiles(paths.data_dir(), os.environ["CACTUS_DESK_STORE"])
    # An admin may have added the team's profile already; a receiver login may only read it.
    known = [profile for profile in team.all() if profile.name == "Shop"]
    profile = known[0] if known else team.add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m_demo", site_id=7)
    )
    SecretStore().set_salt(profile.id, {SALT!r})
    sys.exit(cli.main(["receiver", "--listen", "127.0.0.1:0", "--profile", "Shop"]))
    """
)


def test_the_receiver_writes_verified_callbacks_into_the_team_history(
    pg_databases: PgDatabases, database: str, data_home: Path, tmp_path: Path
) -> None:
    cluster = pg_databases.cluster
    with pg_databases.open(database, tmp_path / "desk") as desk:
        record_id = accepted_record(desk)
    env = {
        **os.environ,
        "CACTUS_DESK_STORE": pg_databases.url(database),
        "PGPASSWORD": cluster.password,
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
        history_line = proc.stdout.readline()
        assert f"team history 127.0.0.1:{cluster.port}/{database}" in history_line
        reply = httpx.post(match.group(1), json=callback(4), timeout=30)
        assert (reply.status_code, reply.json()) == (200, {"result": "ok"})

        cluster.stop()  # the database goes away: nothing stored, so the gateway must retry
        try:
            reply = httpx.post(match.group(1), json=callback(5), timeout=30)
            assert reply.status_code == 503
        finally:
            cluster.start()

        proc.send_signal(signal.SIGTERM)
        rest, errors = proc.communicate(timeout=30)
        assert proc.returncode == 0, errors
        assert SALT not in rest + errors + first
        assert cluster.password not in rest + errors + first
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with pg_databases.open(database, tmp_path / "desk") as desk:
        assert desk.get(record_id).gateway_status == 4
        assert [event.status for event in desk.events_for(record_id)] == [4]
