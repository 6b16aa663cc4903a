"""Item 1: only a refusal signed with the site's salt and echoing the request_id is REJECTED.

Any other refusal is "Refused, unverified": it shows the gateway's words, counts as possibly
paid for the duplicate guard, can be settled by hand, exported and filtered on. The gateway
is a real loopback HTTP server answering each way.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.callbacks.reconcile import set_final_state
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.outcomes import RefusedUnverified, Rejected
from cactus_desk.gateway.signature import sign
from cactus_desk.history import open_history
from cactus_desk.history.export import export_csv
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryFilter, SortKey
from cactus_desk.payouts.duplicates import find_recent_duplicates
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import submit_payout
from tests.gateway.loopback import http_head, serving
from tests.safety.helpers import SALT, attempt, card_request, payout


def _answering(body: dict[str, Any], status: str = "200 OK") -> Any:
    raw = json.dumps(body).encode()

    def script(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(
            http_head(status, Content_Type="application/json", Content_Length=str(len(raw))) + raw
        )

    return script


def _signed(body: dict[str, Any], salt: str = SALT) -> dict[str, Any]:
    return {**body, "signature": sign(body, salt)}


@pytest.fixture
def store(data_home: Path) -> Iterator[HistoryStore]:
    with open_history(data_home) as opened:
        yield opened


def _send(store: HistoryStore, body: dict[str, Any], status: str = "200 OK") -> Any:
    request = card_request("po-refused")
    with serving(_answering(body, status)) as server, CactusClient(server.url) as client:
        return submit_payout(store, client, lambda: SALT, payout(server.url, request))


ECHO = {"request_id": "po-refused"}
UNVERIFIABLE = {
    "unsigned": ({"success": False, "message": "Insufficient funds", **ECHO}, "200 OK"),
    "signature false": (
        {"status": False, "message": "Insufficient funds", "signature": False, **ECHO},
        "200 OK",
    ),
    "other salt": (
        _signed({"success": False, "message": "Insufficient funds", **ECHO}, "x"),
        "200 OK",
    ),
    "no echo": (_signed({"success": False, "message": "Insufficient funds"}), "200 OK"),
    "4xx": (
        _signed({"success": False, "message": "Insufficient funds", **ECHO}),
        "400 Bad Request",
    ),
    "invoice_id": (
        _signed({"success": False, "message": "Insufficient funds", "invoice_id": "77", **ECHO}),
        "200 OK",
    ),
    "integer status": (
        _signed({"success": False, "message": "Insufficient funds", "status": 5, **ECHO}),
        "200 OK",
    ),
}


@pytest.mark.parametrize("case", sorted(UNVERIFIABLE))
def test_a_refusal_that_cannot_be_verified_is_possibly_paid(store: HistoryStore, case: str) -> None:
    body, status = UNVERIFIABLE[case]
    result = _send(store, body, status)
    record = store.get(result.record_id)

    assert isinstance(result.outcome, RefusedUnverified)
    assert result.state is record.state is State.REFUSED_UNVERIFIED
    assert record.state.label == "Refused, unverified"
    assert record.message == "Insufficient funds"  # the gateway's words are shown
    assert record.detail.startswith("The refusal could not be verified")
    # The duplicate guard treats it as possibly paid: the same payout again needs the override.
    again = attempt("https://gw.test", card_request("po-again"))
    assert [found.id for found in find_recent_duplicates(store, again)] == [record.id]


def test_a_signed_refusal_echoing_the_request_id_is_rejected(store: HistoryStore) -> None:
    result = _send(store, _signed({"success": False, "message": "Insufficient funds", **ECHO}))
    record = store.get(result.record_id)
    assert isinstance(result.outcome, Rejected)
    assert record.state is State.REJECTED
    again = attempt("https://gw.test", card_request("po-again"))
    assert find_recent_duplicates(store, again) == []  # that one moved no money


def test_an_unverified_refusal_is_settled_by_hand_filtered_and_exported(
    store: HistoryStore,
) -> None:
    result = _send(store, {"success": False, "message": "Insufficient funds", **ECHO})
    only = HistoryFilter(states=frozenset({State.REFUSED_UNVERIFIED}))
    assert [row.id for row in store.page(only)] == [result.record_id]
    out = io.StringIO()
    export_csv(store, only, SortKey.CREATED_AT, True, out)
    assert "Refused, unverified" in out.getvalue()

    set_final_state(store, result.record_id, 5, "Cactus support: never created", who="olga")
    record = store.get(result.record_id)
    assert record.gateway_status == 5 and record.status_source == "manual"
    assert "Insufficient funds" in record.detail  # what it was before stays on record


def test_a_verified_callback_proving_the_invoice_settles_an_unverified_refusal(
    store: HistoryStore,
) -> None:
    from cactus_desk.callbacks.apply import apply_callback

    result = _send(store, {"success": False, "message": "Insufficient funds", **ECHO})
    record = store.get(result.record_id)
    assert record.state is State.REFUSED_UNVERIFIED
    body = {
        "site_id": record.site_id,
        "status": 4,
        "invoice_id": "900001",
        "request_id": record.request_id,
        "amount": record.amount_minor,
        "currency": record.currency,
        "is_payout": True,
    }
    body["signature"] = sign(body, SALT)
    apply_callback(store, body, SALT, merchant_id=record.merchant_id, site_id=record.site_id)
    settled = store.get(result.record_id)
    # The "refusal" was wrong: the gateway paid it. The history now says so.
    assert settled.state is State.ACCEPTED
    assert (settled.invoice_id, settled.gateway_status) == ("900001", 4)
