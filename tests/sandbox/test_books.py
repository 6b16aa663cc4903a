"""The sandbox's books: a decline gives the money back, and no invoice id is ever handed out
twice, not by two sandboxes in one process nor by a sandbox started again later."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Accepted
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.receiver.app import CallbackApp
from cactus_desk.receiver.serve import BackgroundReceiver
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.sandbox.finalizer import Finalizer
from cactus_desk.sandbox.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
SALT = "books-salt-5c1e"
START = 1_000_000  # 10,000.00 RUB


def payout(request_id: str, amount: int) -> PayoutRequest:
    return PayoutRequest(
        merchant_id="acme",
        site_login="alice",
        site_id=21,
        request_id=request_id,
        amount=amount,
        currency="RUB",
        method="sbp",
        additional_fields={"phone_number": "79990000000", "phone_holder": "Ivan Petrov"},
    )


def rub_balance(client: CactusClient, gateway: SandboxGateway) -> tuple[Decimal, Decimal]:
    """(amount, available) in RUB as the console reads them over HTTP."""
    (rub,) = client.balance("acme", 21, gateway.salt, currency="RUB").balances
    return rub.amount, rub.available


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    data_home.mkdir(parents=True, exist_ok=True)
    with SqliteHistoryStore(data_home / "history.sqlite3") as history:
        yield history


def _enable_finalizer(gateway: SandboxGateway, url: str) -> Finalizer:
    return gateway.enable_finalizer(url, delay=0)


def _finalizer_of_its_own(gateway: SandboxGateway, url: str) -> Finalizer:
    # How the window's live statuses do it: their own finalizer, fed by on_accept.
    finalizer = Finalizer(gateway.salt, url, delay=0).start()
    gateway.on_accept = finalizer.schedule
    return finalizer


@pytest.mark.parametrize(
    "attach", [_enable_finalizer, _finalizer_of_its_own], ids=["enable_finalizer", "on_accept"]
)
def test_a_declined_payout_gives_its_amount_back_and_a_paid_one_leaves(
    store: HistoryStore, attach: Callable[[SandboxGateway, str], Finalizer]
) -> None:
    with (
        SandboxGateway(merchant_id="acme", site_id=21, salt=SALT, balances={"RUB": START}) as gw,
        BackgroundReceiver(CallbackApp(store, SALT, merchant_id="acme", site_id=21)) as receiver,
        CactusClient(gw.base_url) as client,
    ):
        finalizer = attach(gw, receiver.url)
        try:
            assert isinstance(client.payout(payout("po-declined", 50_013), SALT), Accepted)
            assert isinstance(client.payout(payout("po-paid", 150_000), SALT), Accepted)
            assert finalizer.wait_idle(10)
            assert finalizer.status_of("po-declined") == 5
            assert finalizer.status_of("po-paid") == 4
            assert finalizer.delivered == 2
            # 10,000.00 - 1,500.00 paid; the declined 500.13 is back.
            assert rub_balance(client, gw) == (Decimal("8500.0"), Decimal("8500.0"))
        finally:
            finalizer.stop()
    assert [invoice["status"] for invoice in gw.invoices] == [5, 4]


def test_a_payout_in_progress_is_reserved_but_still_on_the_account() -> None:
    with (
        SandboxGateway(merchant_id="acme", site_id=21, salt=SALT, balances={"RUB": START}) as gw,
        CactusClient(gw.base_url) as client,
    ):
        assert isinstance(client.payout(payout("po-1", 50_013), SALT), Accepted)
        assert rub_balance(client, gw) == (Decimal("10000.0"), Decimal("9499.87"))
        assert (gw.total("RUB"), gw.available("RUB")) == (START, START - 50_013)


def test_an_invoice_is_settled_once() -> None:
    ledger = Ledger("acme", 21, SALT, {"RUB": START})
    body = payout("po-1", 50_013).signed_payload(SALT)
    invoice_id = ledger.payout(body)["invoice_id"]
    assert ledger.settle(invoice_id, 5) is True
    assert ledger.settle(invoice_id, 5) is False  # a callback retry does not pay back twice
    assert ledger.settle(invoice_id, 4) is False
    assert ledger.settle("no-such-invoice", 5) is False
    with pytest.raises(ValueError, match="4 or 5"):
        ledger.settle(invoice_id, 3)
    assert (ledger.total("RUB"), ledger.available("RUB")) == (START, START)


def test_two_sandboxes_in_one_process_never_share_an_invoice_id() -> None:
    ids: list[int] = []
    with (
        SandboxGateway(merchant_id="acme", site_id=21, salt=SALT) as first,
        SandboxGateway(merchant_id="acme", site_id=21, salt=SALT) as second,
        CactusClient(first.base_url) as to_first,
        CactusClient(second.base_url) as to_second,
    ):
        for index in range(10):
            for client in (to_first, to_second):
                outcome = client.payout(payout(f"po-{index}", 100), SALT)
                assert isinstance(outcome, Accepted), outcome
                ids.append(int(outcome.invoice_id))
    assert len(set(ids)) == len(ids) == 20
    assert ids == sorted(ids)


SERVE = (
    "import sys\n"
    "from cactus_desk.sandbox.standalone import serve\n"
    f"sys.exit(serve(0, 'acme', 21, {SALT!r}))\n"
)


def _run_sandbox_process(payouts: int, tag: str) -> list[int]:
    """Start ``cactus-desk sandbox`` as its own process, make payouts, stop it; the ids."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        banner = ""
        for line in process.stdout:
            banner += line
            if line.startswith("Press Ctrl+C"):
                break
        match = re.search(r"base URL:\s+(http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        ids = []
        with CactusClient(match.group(1)) as client:
            for index in range(payouts):
                outcome = client.payout(payout(f"{tag}-{index}", 1_000), SALT)
                assert isinstance(outcome, Accepted), outcome
                ids.append(int(outcome.invoice_id))
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return ids


def test_a_restarted_sandbox_never_hands_out_an_earlier_invoice_id() -> None:
    first = _run_sandbox_process(5, "first")
    second = _run_sandbox_process(5, "second")
    assert len(set(first)) == 5
    assert min(second) > max(first)
