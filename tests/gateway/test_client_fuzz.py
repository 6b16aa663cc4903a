"""Item 9: hostile gateway answers over real loopback HTTP end as UNKNOWN with one log line.

JSON nested to any depth, signatures that are not ASCII or not strings, integers past 64 bits:
``payout()`` never raises, never logs a traceback, and what it returns can be stored.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Accepted, RefusedUnverified, Rejected, Unknown, UnknownKind
from cactus_desk.gateway.signature import sign
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import NewAttempt
from tests.gateway.loopback import LoopbackServer, http_head

SALT = "site-salt-7f3a9c"
REQUEST = PayoutRequest(
    merchant_id="m_demo",
    site_login="alice",
    site_id=21,
    request_id="po-fuzz",
    amount=900000,
    currency="RUB",
    method="sbp",
    additional_fields={"phone_number": "79999999999"},
)
SUCCESS = {
    "message": "Payout initialized",
    "request_id": REQUEST.request_id,
    "success": True,
    "status": 3,
    "amount": REQUEST.amount,
    "site_login": REQUEST.site_login,
    "site_id": REQUEST.site_id,
    "invoice_id": "1314",
    "currency": REQUEST.currency,
}
REFUSAL = {"success": False, "message": "Insufficient funds", "request_id": REQUEST.request_id}
SUITE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class _Answers:
    """What the loopback gateway answers next (one body per example)."""

    body = b"{}"

    def script(self, conn: socket.socket, _request: bytes) -> None:
        head = http_head(
            Content_Type="application/json", Content_Length=str(len(self.body)), Connection="close"
        )
        conn.sendall(head + self.body)


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[_Answers, str]]:
    answers = _Answers()
    with LoopbackServer(answers.script) as server:
        yield answers, server.url


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryStore]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "history.sqlite3"
    with SqliteHistoryStore(path) as store:
        yield store


def _send(
    gateway: tuple[_Answers, str],
    history: HistoryStore,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> Any:
    answers, url = gateway
    answers.body = body
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cactus_desk"), CactusClient(url) as client:
        outcome = client.payout(REQUEST, SALT)
    ours = [record for record in caplog.records if record.name.startswith("cactus_desk")]
    assert len(ours) == 1, [record.getMessage() for record in ours]  # one line per payout
    assert ours[0].exc_info is None and ours[0].levelno <= logging.WARNING
    assert isinstance(outcome, Accepted | Rejected | RefusedUnverified | Unknown)
    # Whatever came back can be written to the history.
    record_id = history.create_attempt(
        NewAttempt(
            profile_id="p",
            profile_name="P",
            environment="sandbox",
            merchant_id=REQUEST.merchant_id,
            site_id=REQUEST.site_id,
            request_id=f"po-{history.count() + 1}",
            site_login=REQUEST.site_login,
            method=REQUEST.method,
            currency=REQUEST.currency,
            amount_minor=REQUEST.amount,
        )
    )
    history.record_outcome(record_id, outcome)
    return outcome


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


@SUITE
@given(
    depth=st.integers(min_value=33, max_value=100_000),  # under the size cap
    kind=st.sampled_from(["list", "dict"]),
    base=st.sampled_from(["success", "refusal", "bare"]),
)
def test_json_nested_deeper_than_any_answer_is_unknown(
    gateway: tuple[_Answers, str],
    history: HistoryStore,
    caplog: pytest.LogCaptureFixture,
    depth: int,
    kind: str,
    base: str,
) -> None:
    nested = _nested(depth, kind)
    if base == "bare":
        body = nested
    else:
        fields = SUCCESS if base == "success" else REFUSAL
        signed = {**fields, "signature": sign(fields, SALT)}
        body = json.dumps(signed)[:-1] + f', "extra": {nested}}}'
    outcome = _send(gateway, history, caplog, body.encode())
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.MALFORMED


SIGNATURES = st.one_of(
    st.text(min_size=1).filter(lambda text: not text.isascii()),
    st.text(alphabet="0123456789abcdefäöü€", min_size=40, max_size=40).filter(
        lambda text: not text.isascii()
    ),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@SUITE
@given(signature=SIGNATURES, base=st.sampled_from(["success", "refusal"]))
def test_a_signature_that_is_not_ascii_text_never_verifies(
    gateway: tuple[_Answers, str],
    history: HistoryStore,
    caplog: pytest.LogCaptureFixture,
    signature: Any,
    base: str,
) -> None:
    fields = SUCCESS if base == "success" else REFUSAL
    outcome = _send(
        gateway, history, caplog, json.dumps({**fields, "signature": signature}).encode()
    )
    if base == "success":
        assert isinstance(outcome, Unknown)
        # A list or object is not even a signature field's type.
        assert outcome.kind in (UnknownKind.BAD_SIGNATURE, UnknownKind.MALFORMED)
    else:
        # Shown, or (a non-finite number) not even read: never "nothing was paid".
        assert isinstance(outcome, RefusedUnverified | Unknown)


BIG = st.one_of(
    st.integers(min_value=2**63, max_value=2**1000),
    st.integers(min_value=-(2**1000), max_value=-(2**63) - 1),
)


@SUITE
@given(
    big=BIG,
    key=st.sampled_from(["status", "amount", "site_id", "invoice_id", "fee", "request_id"]),
    base=st.sampled_from(["success", "refusal"]),
)
def test_integers_beyond_64_bits_are_unknown(
    gateway: tuple[_Answers, str],
    history: HistoryStore,
    caplog: pytest.LogCaptureFixture,
    big: int,
    key: str,
    base: str,
) -> None:
    fields = {**(SUCCESS if base == "success" else REFUSAL), key: big}
    body = json.dumps({**fields, "signature": sign(fields, SALT)}).encode()
    outcome = _send(gateway, history, caplog, body)
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.MALFORMED
    assert "64 bits" in outcome.reason
