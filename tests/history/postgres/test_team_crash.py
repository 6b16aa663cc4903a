"""A desk killed mid-send on the team history: UNKNOWN, never resent, seen by the other desk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cactus_desk.gateway.outcomes import UnknownKind
from cactus_desk.history import open_team_history
from cactus_desk.payouts.recovery import recover_interrupted
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault, SandboxGateway
from tests.pg_databases import PgDatabases
from tests.safety.helpers import MERCHANT, SALT, SITE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 30.0


def test_a_desk_killed_after_the_gateway_got_it_leaves_an_unknown_payout_never_resent(
    pg_databases: PgDatabases, database: str, tmp_path: Path
) -> None:
    url = pg_databases.url(database)
    password = pg_databases.cluster.password
    crashed_desk, other_desk = tmp_path / "desk-a", tmp_path / "desk-b"
    with SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gateway:
        gateway.set_fault(Fault.NO_ANSWER)
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.safety.crash_driver",
                "core",
                str(crashed_desk),
                gateway.base_url,
                SALT,
                "send",
                "po-crash",
            ],
            cwd=ROOT,
            env={**os.environ, "CACTUS_DESK_STORE": url, "PGPASSWORD": password},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + WAIT_S
        while len(gateway.invoices) < 1:  # recorded first, then it reached the gateway
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the payout never reached the gateway"
            time.sleep(0.01)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=WAIT_S)
        driver.communicate()
        assert driver.returncode == -signal.SIGKILL

        with open_team_history(url, other_desk, password=password) as other:
            (row,) = other.page()
            assert row.request_id == "po-crash"
            assert row.state is State.SUBMITTING  # the other desk sees it in flight
            assert recover_interrupted(other) == []  # and never settles another desk's send
        with open_team_history(url, crashed_desk, password=password) as restarted:
            assert recover_interrupted(restarted) == [row.id]
            record = restarted.get(row.id)
            assert record.state is State.UNKNOWN
            assert record.unknown_kind == UnknownKind.INTERRUPTED
            assert "do not send it again" in record.message
            assert recover_interrupted(restarted) == []
        with open_team_history(url, other_desk, password=password) as other:
            assert other.get(row.id).state is State.UNKNOWN  # visible to the other desk
        assert gateway.requests_received == 1  # never resent
        assert len(gateway.invoices) == 1
