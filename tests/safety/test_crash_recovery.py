"""A sending process killed with SIGKILL: the next start tells the truth and resends nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.recovery import (
    NOT_SENT_REASON,
    ResendRefusedError,
    recover_interrupted,
    resend_history,
    resend_unknown,
)
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import submit_payout
from cactus_desk.sandbox import Fault, SandboxGateway
from tests.safety.helpers import CARD, MERCHANT, SALT, SITE, black_hole, card_request, payout

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 15.0
DRIVER = (sys.executable, "-m", "tests.safety.crash_driver")


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gw:
        yield gw


def _wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the driver ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(params=["core", "window"])
def path(request: pytest.FixtureRequest) -> str:
    """Send through the core functions, or through the real window's form."""
    return str(request.param)


def _spawn(path: str, data_dir: Path, gateway: SandboxGateway, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*DRIVER, path, str(data_dir), gateway.base_url, SALT, mode, "po-crash"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT_S)
    assert process.returncode == -signal.SIGKILL
    process.communicate()


def test_killed_after_the_gateway_got_it_is_unknown_and_not_resent(
    path: str, gateway: SandboxGateway, data_home: Path
) -> None:
    gateway.set_fault(Fault.NO_ANSWER)
    driver = _spawn(path, data_home, gateway, "send")
    _wait_for(lambda: len(gateway.invoices) == 1, "the gateway to create the invoice", driver)
    _kill(driver)
    assert gateway.requests_received == 1

    with open_history(data_home) as store:
        (row,) = store.page()
        assert row.state is State.SUBMITTING  # the answer was never stored
        assert recover_interrupted(store) == [row.id]
        record = store.get(row.id)
        assert record.state is State.UNKNOWN
        assert record.unknown_kind == UnknownKind.INTERRUPTED
        assert "may have created this payout" in record.message
        assert "wait for its callback or check with Cactus" in record.message
        assert "do not send it again" in record.message
        assert record.send_attempts == 1
        assert recover_interrupted(store) == []  # a second start changes nothing

    assert gateway.requests_received == 1
    assert len(gateway.invoices) == 1


def test_killed_before_the_request_left_is_not_sent(
    path: str, gateway: SandboxGateway, data_home: Path
) -> None:
    driver = _spawn(path, data_home, gateway, "hold-salt")
    assert driver.stdout is not None
    assert driver.stdout.readline().strip() == "salt-requested"
    _kill(driver)

    with open_history(data_home) as store:
        (row,) = store.page()
        assert row.state is State.SUBMITTING
        recover_interrupted(store)
        record = store.get(row.id)
    assert record.state is State.NOT_SENT
    assert record.message == NOT_SENT_REASON
    assert record.send_attempts == 0
    assert gateway.requests_received == 0


def test_a_completed_send_is_left_alone_by_recovery(
    path: str, gateway: SandboxGateway, data_home: Path
) -> None:
    driver = _spawn(path, data_home, gateway, "send")
    out, err = driver.communicate(timeout=WAIT_S)
    assert "finished ACCEPTED" in out, err
    with open_history(data_home) as store:
        assert recover_interrupted(store) == []
        assert store.page()[0].state is State.ACCEPTED


def _unknown_record(store: HistoryStore, gateway: SandboxGateway, request_id: str) -> int:
    """A payout the gateway created but whose answer was lost (a reset)."""
    request = card_request(request_id)
    gateway.set_fault(Fault.RESET, times=1)
    with CactusClient(gateway.base_url) as client:
        result = submit_payout(store, client, lambda: SALT, payout(gateway.base_url, request))
    assert result.state is State.UNKNOWN
    return result.record_id


def test_resend_reuses_the_request_id_so_the_gateway_does_not_pay_twice(
    gateway: SandboxGateway, data_home: Path
) -> None:
    with open_history(data_home) as store, CactusClient(gateway.base_url) as client:
        record_id = _unknown_record(store, gateway, "po-lost")
        before = store.get(record_id)
        with pytest.raises(ResendRefusedError, match="card number is not stored"):
            resend_unknown(store, client, lambda: SALT, record_id)
        with pytest.raises(ResendRefusedError, match="does not match"):
            resend_unknown(
                store,
                client,
                lambda: SALT,
                record_id,
                reentered_fields={"card_number": "5555555555554444"},
            )
        assert gateway.requests_received == 1  # refused resends send nothing

        result = resend_unknown(
            store, client, lambda: SALT, record_id, reentered_fields={"card_number": CARD}
        )
        record = store.get(record_id)
        audit = resend_history(store, record_id)

    assert gateway.requests_received == 2
    assert len(gateway.invoices) == 1  # the same request_id: one payout, not two
    assert isinstance(result.outcome, Unknown)
    assert result.outcome.kind is UnknownKind.RESEND_REFUSED
    assert record.state is State.UNKNOWN
    assert "refused this resend" in record.message and "already exists" in record.message
    assert "does not document" in record.message
    assert record.request_id == before.request_id == "po-lost"
    assert record.send_attempts == 2
    assert [(row["attempt"], row["previous_state"]) for row in audit] == [(2, "UNKNOWN")]
    assert audit[0]["previous_message"] == before.message


def test_resend_of_a_payout_that_never_arrived_is_accepted(
    gateway: SandboxGateway, data_home: Path
) -> None:
    request = card_request("po-refused")
    with open_history(data_home) as store:
        # A server that hangs up on every request: the first send's fate is UNKNOWN.
        with black_hole() as url, CactusClient(url, connect_timeout=1) as dead:
            first = submit_payout(store, dead, lambda: SALT, payout(gateway.base_url, request))
        assert first.state is State.UNKNOWN
        with CactusClient(gateway.base_url) as client:
            result = resend_unknown(
                store,
                client,
                lambda: SALT,
                first.record_id,
                reentered_fields={"card_number": "4111 1111 1111 1111"},
            )
        record = store.get(first.record_id)
    assert isinstance(result.outcome, Accepted)
    assert record.state is State.ACCEPTED
    assert record.invoice_id == gateway.invoices[0]["invoice_id"]
    assert record.request["additional_fields"]["card_number"] == "411111******1111"


def test_only_an_unknown_record_can_be_resent(gateway: SandboxGateway, data_home: Path) -> None:
    request = card_request("po-ok")
    with open_history(data_home) as store, CactusClient(gateway.base_url) as client:
        done = submit_payout(store, client, lambda: SALT, payout(gateway.base_url, request))
        with pytest.raises(ResendRefusedError, match="is Accepted"):
            resend_unknown(
                store, client, lambda: SALT, done.record_id, reentered_fields={"card_number": CARD}
            )
    assert gateway.requests_received == 1
