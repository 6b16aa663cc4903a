"""Item 2: a resend settles a payout in doubt only on a verified acceptance.

Cactus does not document what it does with a request_id it has seen: any refusal of the
resend, in any wording or language, verified or not, is stored as an event and leaves the
record UNKNOWN. A resend that never left keeps the record as it was. Real loopback HTTP.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.outcomes import NotSent, RefusedUnverified, Unknown, UnknownKind
from cactus_desk.gateway.signature import sign
from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.recovery import recover_interrupted, resend_history, resend_unknown
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import submit_payout
from cactus_desk.sandbox import Fault, SandboxGateway
from tests.gateway.loopback import http_head, serving
from tests.safety.helpers import CARD, MERCHANT, SALT, SITE, black_hole, card_request, payout


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    with open_history(data_home) as opened:
        yield opened


def _unknown(store: HistoryStore, request_id: str = "po-lost") -> int:
    request = card_request(request_id)
    with black_hole() as url, CactusClient(url) as client:
        result = submit_payout(store, client, lambda: SALT, payout(url, request))
    assert result.state is State.UNKNOWN
    return result.record_id


def _answering(body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()

    def script(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(http_head(Content_Type="application/json", Content_Length=str(len(raw))) + raw)

    return script


REFUSALS = {
    "english": {"success": False, "message": "Duplicate request_id"},
    "russian": {"success": False, "message": "Заявка с таким идентификатором уже существует"},
    "spanish": {"success": False, "message": "Solicitud rechazada"},
    "no words": {"success": False},
    "verified": {
        "success": False,
        "message": "Insufficient funds",
        "request_id": "po-lost",
        "signature": sign(
            {"success": False, "message": "Insufficient funds", "request_id": "po-lost"}, SALT
        ),
    },
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_any_refusal_of_a_resend_is_an_event_and_the_payout_stays_unknown(
    store: HistoryStore, case: str
) -> None:
    record_id = _unknown(store)
    with serving(_answering(REFUSALS[case])) as server, CactusClient(server.url) as client:
        result = resend_unknown(
            store, client, lambda: SALT, record_id, reentered_fields={"card_number": CARD}
        )
    record = store.get(record_id)
    assert len(server.requests) == 1
    assert isinstance(result.outcome, Unknown)
    assert result.outcome.kind is UnknownKind.RESEND_REFUSED
    assert record.state is State.UNKNOWN and record.unknown_kind == "resend_refused"
    assert "does not document" in record.message
    assert record.send_attempts == 2
    (event,) = store.events_for(record_id)
    assert event.outcome is EventOutcome.RESEND_REFUSED
    assert event.source is EventSource.MANUAL and event.who  # a person asked for it
    assert event.request_id == "po-lost"
    words = REFUSALS[case].get("message")
    if words:
        assert words in event.message and words in record.message


def test_a_resend_that_cannot_connect_keeps_the_payout_unknown(store: HistoryStore) -> None:
    record_id = _unknown(store)
    before = store.get(record_id)
    with CactusClient("http://127.0.0.1:9", connect_timeout=1) as client:
        result = resend_unknown(
            store, client, lambda: SALT, record_id, reentered_fields={"card_number": CARD}
        )
    record = store.get(record_id)
    assert isinstance(result.outcome, NotSent)
    assert result.outcome.reason.startswith("Not sent again: could not connect to the gateway")
    assert "still in doubt" in result.outcome.reason
    assert "nothing was paid" not in result.outcome.reason  # the first send may have paid
    # Never NOT_SENT: the first send may have created it.
    assert record.state is State.UNKNOWN
    assert (record.message, record.unknown_kind) == (before.message, before.unknown_kind)
    (event,) = store.events_for(record_id)
    assert event.outcome is EventOutcome.RESEND_NOT_SENT
    assert [row["previous_state"] for row in resend_history(store, record_id)] == ["UNKNOWN"]


def test_a_refused_unverified_payout_can_be_resent_and_a_refusal_leaves_it_unknown(
    store: HistoryStore,
) -> None:
    request = card_request("po-doubt")
    with SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gateway:
        gateway.set_fault(Fault.REFUSE_WITHOUT_ID, message="Bank offline", times=2)
        with CactusClient(gateway.base_url) as client:
            first = submit_payout(store, client, lambda: SALT, payout(gateway.base_url, request))
            assert isinstance(first.outcome, RefusedUnverified)
            result = resend_unknown(
                store, client, lambda: SALT, first.record_id, reentered_fields={"card_number": CARD}
            )
    assert result.outcome.kind is UnknownKind.RESEND_REFUSED  # type: ignore[union-attr]
    assert store.get(first.record_id).state is State.UNKNOWN
    assert [row["previous_state"] for row in resend_history(store, first.record_id)] == [
        "REFUSED_UNVERIFIED"
    ]


def test_only_a_verified_acceptance_settles_a_resend(store: HistoryStore) -> None:
    record_id = _unknown(store, "po-arrives")
    with (
        SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gateway,
        CactusClient(gateway.base_url) as client,
    ):
        result = resend_unknown(
            store, client, lambda: SALT, record_id, reentered_fields={"card_number": CARD}
        )
    assert store.get(record_id).state is State.ACCEPTED
    assert result.state is State.ACCEPTED


def test_a_resend_interrupted_before_it_left_is_recovered_as_unknown(store: HistoryStore) -> None:
    record_id = _unknown(store)

    class Crash(BaseException):
        pass

    class CrashingClient:
        def payout(self, request: object, salt: str) -> object:
            raise Crash

    # The process "dies" between the resend's SUBMITTING and its sending mark.
    original = store.mark_sending

    def die(record: int) -> None:
        raise Crash

    store.mark_sending = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        resend_unknown(
            store,
            CrashingClient(),
            lambda: SALT,
            record_id,
            reentered_fields={"card_number": CARD},
        )
    store.mark_sending = original  # type: ignore[method-assign]
    assert store.get(record_id).state is State.SUBMITTING

    assert recover_interrupted(store) == [record_id]
    record = store.get(record_id)
    assert record.state is State.UNKNOWN  # the first send may have arrived
    assert "earlier send may already have created it" in record.message
