"""The receiver on a headless server: its salt and database password from systemd credentials.

A real receiver process with no usable keyring and no ``PGPASSWORD``: it reads both secrets
from ``$CREDENTIALS_DIRECTORY`` (what ``LoadCredentialEncrypted=`` gives the service), takes
its profile from the team store and writes verified callbacks into it; neither secret reaches
its output or its log.
"""

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

from cactus_desk.credentials import SALT_CREDENTIAL, STORE_PASSWORD_CREDENTIAL
from cactus_desk.history.postgres.profiles import PostgresProfileStore
from cactus_desk.profiles import Profile
from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.pg_databases import PgDatabases

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import sys
    import keyring
    from keyring.backends import fail
    keyring.set_keyring(fail.Keyring())  # a server: no Secret Service session
    from cactus_desk import cli
    sys.exit(cli.main(["receiver", "--listen", "127.0.0.1:0", "--profile", "Shop"]))
    """
)


def _credentials(folder: Path, secrets: dict[str, str]) -> Path:
    folder.mkdir(mode=0o700)
    for name, value in secrets.items():
        path = folder / name
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o400)
    return folder


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_receiver_takes_its_salt_and_password_from_systemd_credentials(
    pg_databases: PgDatabases, database: str, data_home: Path, tmp_path: Path
) -> None:
    cluster = pg_databases.cluster
    url = pg_databases.url(database)
    PostgresProfileStore(url, password=cluster.password).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m_demo", site_id=7)
    )
    with pg_databases.open(database, tmp_path / "desk") as desk:
        record_id = accepted_record(desk)
    folder = _credentials(
        tmp_path / "credentials",
        {SALT_CREDENTIAL: SALT, STORE_PASSWORD_CREDENTIAL: cluster.password},
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update({"CACTUS_DESK_STORE": url, "CREDENTIALS_DIRECTORY": str(folder)})
    proc = _start(env)
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/callback)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        reply = httpx.post(match.group(1), json=callback(4), timeout=30)
        assert (reply.status_code, reply.json()) == (200, {"result": "ok"})
        forged = httpx.post(match.group(1), json={**callback(5), "signature": "0" * 40})
        assert forged.status_code == 400
        proc.send_signal(signal.SIGTERM)
        rest, errors = proc.communicate(timeout=30)
        assert proc.returncode == 0, errors
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    logs = "".join(p.read_text(encoding="utf-8") for p in (data_home / "logs").glob("*.log*"))
    assert "request_id" in logs or "po-0001" in logs  # the log was written
    for secret in (SALT, cluster.password):
        assert secret not in first + rest + errors + logs
    with pg_databases.open(database, tmp_path / "desk") as desk:
        assert desk.get(record_id).gateway_status == 4


def test_without_a_salt_credential_or_keyring_the_receiver_says_how_to_give_one(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> None:
    cluster = pg_databases.cluster
    url = pg_databases.url(database)
    PostgresProfileStore(url, password=cluster.password).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m_demo", site_id=7)
    )
    folder = _credentials(tmp_path / "credentials", {STORE_PASSWORD_CREDENTIAL: cluster.password})
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update({"CACTUS_DESK_STORE": url, "CREDENTIALS_DIRECTORY": str(folder)})
    proc = _start(env)
    out, errors = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"the credential {SALT_CREDENTIAL!r}" in errors and "set-salt" in errors
    assert cluster.password not in out + errors
