"""The sandbox finalizer: the decline rule, signed callbacks end to end, and the retry schedule."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.signature import verify
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.payouts.payout import Payout, PayoutTarget
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import submit_payout
from cactus_desk.receiver.app import CallbackApp
from cactus_desk.receiver.serve import BackgroundReceiver
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.sandbox.finalizer import (
    DECLINE_DESCRIPTION,
    RETRY_SCHEDULE_S,
    Finalizer,
    callback_body,
)

SALT = "sandbox-salt-41d7"
INVOICE = {
    "invoice_id": "100001",
    "request_id": "po-1",
    "merchant_id": "acme",
    "site_id": 21,
    "site_login": "alice",
    "amount": 150_000,
    "currency": "RUB",
    "method": "card",
    "additional_fields": {"card_number": "411111******1111"},
}


class Recorder:
    """A fake callback endpoint that fails the first ``failures`` POSTs, noting arrival times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.times: list[float] = []
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.times.append(time.monotonic())
            self.bodies.append(json.loads(request.content))
            if len(self.times) <= self.failures:
                return httpx.Response(500, text="<html>down</html>")
        return httpx.Response(200, json={"result": "ok"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def test_the_callback_is_signed_and_carries_the_documented_fields() -> None:
    body = callback_body(INVOICE, 4, SALT)
    assert verify(body, SALT)
    assert body["invoice_id"] == 100001 and body["is_payout"] is True
    assert (body["status"], body["received_amount"], body["description"]) == (4, 150_000, "")
    assert body["additional_fields"] == INVOICE["additional_fields"]
    declined = callback_body(INVOICE, 5, SALT)
    assert (declined["received_amount"], declined["description"]) == (0, DECLINE_DESCRIPTION)


@pytest.mark.parametrize(("amount", "status"), [(150_000, 4), (1013, 5), (113, 5), (1310, 4)])
def test_amounts_ending_in_13_are_declined(amount: int, status: int) -> None:
    recorder = Recorder()
    with Finalizer(SALT, "http://cb.test/callback", delay=0, client=recorder.client()) as fin:
        fin.schedule({**INVOICE, "amount": amount})
        assert fin.wait_idle(5)
    assert fin.status_of("po-1") == status
    assert recorder.bodies[0]["status"] == status


def test_retries_follow_the_schedule_compressed_by_time_scale() -> None:
    recorder = Recorder(failures=3)
    scale = 0.001  # 45 s -> 45 ms, 2 min -> 120 ms, 5 min -> 300 ms
    with Finalizer(
        SALT, "http://cb.test/callback", delay=0, time_scale=scale, client=recorder.client()
    ) as fin:
        fin.schedule(INVOICE)
        assert fin.wait_idle(5)
    assert (fin.attempts, fin.delivered, fin.abandoned) == (4, 1, 0)
    gaps = [later - earlier for earlier, later in pairwise(recorder.times)]
    for gap, planned in zip(gaps, RETRY_SCHEDULE_S[:3], strict=True):
        assert planned * scale * 0.9 <= gap <= planned * scale + 0.25
    assert recorder.bodies[0] == recorder.bodies[-1]  # the same signed callback each time


def test_the_schedule_runs_out_and_the_callback_is_abandoned() -> None:
    recorder = Recorder(failures=100)
    with Finalizer(
        SALT,
        "http://cb.test/callback",
        delay=0,
        client=recorder.client(),
        retry_schedule=(0.01, 0.01),
    ) as fin:
        fin.schedule(INVOICE)
        assert fin.wait_idle(5)
    assert (fin.attempts, fin.delivered, fin.abandoned) == (3, 0, 1)


def test_the_default_schedule_is_the_sister_gateways() -> None:
    minutes = [seconds / 60 for seconds in RETRY_SCHEDULE_S]
    assert minutes[:5] == [0.75, 2, 5, 10, 30]
    assert minutes[5:] == [60] * 24


def test_stop_is_prompt_with_callbacks_still_waiting() -> None:
    recorder = Recorder()
    fin = Finalizer(SALT, "http://cb.test/callback", delay=600, client=recorder.client()).start()
    fin.schedule(INVOICE)
    started = time.monotonic()
    fin.stop()
    assert time.monotonic() - started < 1.0
    assert recorder.times == []


def test_bad_settings_and_invoices_are_refused() -> None:
    with pytest.raises(ValueError, match="callback URL"):
        Finalizer(SALT, "ftp://cb.test/callback")
    fin = Finalizer(SALT, "http://cb.test/callback")
    with pytest.raises(ValueError, match="request_id"):
        fin.schedule({**INVOICE, "request_id": ""})
    fin.stop()


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    data_home.mkdir(parents=True, exist_ok=True)
    with SqliteHistoryStore(data_home / "history.sqlite3") as history:
        yield history


def _pay(store: HistoryStore, gateway: SandboxGateway, request_id: str, amount: int) -> int:
    request = PayoutRequest(
        merchant_id="acme",
        site_login="alice",
        site_id=21,
        request_id=request_id,
        amount=amount,
        currency="RUB",
        method="sbp",
        additional_fields={"phone_number": "79990000000", "phone_holder": "Ivan Petrov"},
    )
    payout = Payout(
        target=PayoutTarget("p-sandbox", "Sandbox", "sandbox", "acme", 21),
        request_id=request.request_id,
        site_login=request.site_login,
        method=request.method,
        currency=request.currency,
        amount_minor=request.amount,
        fields=request.additional_fields,
    )
    with CactusClient(gateway.base_url) as client:
        result = submit_payout(store, client, lambda: gateway.salt, payout)
    return result.record_id


def test_a_sandbox_payout_reaches_success_through_the_receiver(store: HistoryStore) -> None:
    with (
        SandboxGateway(merchant_id="acme", site_id=21, salt=SALT) as gateway,
        BackgroundReceiver(CallbackApp(store, SALT, merchant_id="acme", site_id=21)) as receiver,
        Finalizer(gateway.salt, receiver.url, delay=0.05) as finalizer,
    ):
        paid = _pay(store, gateway, "po-paid", 150_000)
        declined = _pay(store, gateway, "po-declined", 50_013)
        assert [store.get(r).gateway_status for r in (paid, declined)] == [3, 3]

        for invoice in gateway.invoices:
            finalizer.schedule(invoice)
        assert finalizer.wait_idle(10)

    assert (finalizer.delivered, finalizer.attempts) == (2, 2)
    record = store.get(paid)
    assert (record.state, record.gateway_status, record.status_source) == (
        State.ACCEPTED,
        4,
        "gateway",
    )
    assert record.received_amount == 150_000
    assert store.get(declined).gateway_status == 5
    assert store.get(declined).description == DECLINE_DESCRIPTION
