"""A real ``cactus-desk batch send`` process killed (SIGKILL) mid-batch, then run again on
the same file: only rows never sent are sent, and rows left in doubt are not resent; the
sandbox's own count of the requests it received shows each request_id exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.history import open_history, open_profiles
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import SandboxGateway
from tests.batch.cli import add_profile
from tests.batch.files import CARD_HEADERS, card_rows, write_csv
from tests.memory_keyring import MemoryKeyring

ROOT = Path(__file__).resolve().parents[2]
ROWS = 120
KILL_AFTER = 50
CONCURRENCY = 4


class HoldAfter:
    """The sandbox's accept hook: lets ``limit`` payouts answer, then holds every later
    answer (its invoice already made) until released: those rows are mid-send when killed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.accepted = 0
        self.held = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, invoice: dict[str, Any]) -> None:
        with self._lock:
            self.accepted += 1
            hold = self.accepted > self.limit
            if hold:
                self.held += 1
        if hold:
            self.release.wait(60)


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(balances={"RUB": 10**12}) as sandbox:
        yield sandbox


def child_env(tmp_path: Path, salt_key: str, salt: str) -> dict[str, str]:
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(json.dumps({f"cactus-desk\n{salt_key}": salt}))
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "tests.batch.file_keyring.FileKeyring"
    env["CACTUS_TEST_KEYRING_FILE"] = str(keyring_file)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_batch_resumes_sending_only_rows_never_sent(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    profile = open_profiles(data_home, None).get("Shop")
    env = child_env(tmp_path, f"{profile.id}:salt", gateway.salt)
    path = write_csv(tmp_path / "batch.csv", CARD_HEADERS, card_rows(ROWS))
    command = [sys.executable, "-m", "cactus_desk", "batch", "send", str(path)]
    command += ["--profile", "Shop", "--yes", "--concurrency", str(CONCURRENCY)]

    hold = HoldAfter(KILL_AFTER)
    gateway.on_accept = hold
    child = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # Killed once every sender waits for a held answer: each request has fully arrived,
        # so the sandbox's count holds only requests whose request_id it read (a kill while
        # a body is on its way leaves a request counted without one).
        wait_for(lambda: hold.held >= CONCURRENCY or child.poll() is not None, 120, "held answers")
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        hold.release.set()
    assert child.returncode == -signal.SIGKILL
    gateway.on_accept = None

    with open_history(data_home) as store:
        before = {record.request_id: record for record in store.iter_records()}
    assert KILL_AFTER <= len(before) < ROWS
    in_flight = {rid for rid, r in before.items() if r.state is State.SUBMITTING}
    assert in_flight  # killed mid-send, not between rows
    # Each of the first KILL_AFTER invoices was answered; the kill may have come before its
    # outcome was written, and then the row is still SUBMITTING.
    accepted = {rid for rid, r in before.items() if r.state is State.ACCEPTED}
    assert len(accepted | in_flight) >= KILL_AFTER

    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    out = again.stdout.decode()
    # Rows whose answer the kill lost are in doubt: exit 5, and they were not resent.
    assert again.returncode == 5, out + again.stderr.decode()
    assert f"{len(before)} were already in the history" in out

    with open_history(data_home) as store:
        after = {record.request_id: record for record in store.iter_records()}
    assert len(after) == ROWS
    seen = Counter(invoice["request_id"] for invoice in gateway.invoices)
    # The sandbox made at most one invoice per request id (it refuses a repeated id)...
    assert set(seen.values()) == {1}
    # ...and it received each request id at most once over both runs: its own count of the
    # payout requests that reached it, refused repeats included, not what the history says.
    received = gateway.request_ids_received
    assert sum(received.values()) == gateway.requests_received
    assert set(received.values()) == {1}, {rid: n for rid, n in received.items() if n > 1}
    assert set(received) == set(seen)  # every request that arrived was accepted
    assert set(received) <= set(after)
    # Rows the first run never recorded were all sent by the second, once, and accepted.
    new = set(after) - set(before)
    assert len(new) == ROWS - len(before)
    assert new <= set(seen)
    assert all(after[rid].state is State.ACCEPTED for rid in new)
    # The rows the kill caught mid-send were settled, never resent: UNKNOWN when they may
    # have left (their invoice may or may not exist), NOT_SENT when they never did.
    for rid in in_flight:
        assert after[rid].state in (State.UNKNOWN, State.NOT_SENT)
        if after[rid].state is State.NOT_SENT:
            assert rid not in seen
    assert any(after[rid].state is State.UNKNOWN for rid in in_flight)
    # Every row the sandbox did not see is one the kill caught before it left, and every row
    # that was not caught mid-send reached the sandbox exactly once.
    assert set(after) - set(received) <= in_flight
    assert all(received.get(rid) == 1 for rid in set(after) - in_flight)
