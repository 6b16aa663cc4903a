"""Manual final states, audited; and importing a file of callbacks with a report."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.callbacks.events import EventOutcome, EventSource
from cactus_desk.callbacks.reconcile import (
    ImportFileError,
    ReconcileError,
    import_file,
    set_final_state,
)
from cactus_desk.gateway.outcomes import Rejected
from cactus_desk.gateway.signature import sign
from cactus_desk.history.export import write_csv
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.states import State, state_text
from tests.callbacks.helpers import (
    ATTEMPT,
    CARD,
    MERCHANT,
    SALT,
    SITE,
    accepted_record,
    callback,
    unknown_record,
)


def test_an_operator_settles_an_unknown_payout_and_it_is_audited(store: HistoryStore) -> None:
    record_id = unknown_record(store)
    set_final_state(
        store, record_id, 4, "  Confirmed   in the merchant cabinet ", invoice_id="9001", who="olga"
    )

    record = store.get(record_id)
    assert (record.state, record.gateway_status, record.status_source) == (
        State.SETTLED,
        4,
        "manual",
    )
    assert record.invoice_id == "9001"
    assert record.message == "Settled manually: Success (olga)"
    (event,) = store.events_for(record_id)
    assert (event.source, event.who, event.outcome) == (EventSource.MANUAL, "olga", "applied")
    assert event.message == "Confirmed in the merchant cabinet"
    assert not event.verified  # shown apart from what the gateway signed
    assert "Manual by olga" in event.summary


def test_the_os_user_is_recorded_by_default(store: HistoryStore) -> None:
    record_id = accepted_record(store)
    set_final_state(store, record_id, 5, "Support ticket 1234 says declined")
    (event,) = store.events_for(record_id)
    assert event.who  # getpass.getuser()
    assert store.get(record_id).gateway_status == 5


@pytest.mark.parametrize(
    ("status", "note", "field"),
    [(3, "note", "status"), (6, "note", "status"), (4, "   ", "note"), (4, "x" * 1001, "note")],
)
def test_bad_input_is_refused_at_its_field(
    store: HistoryStore, status: int, note: str, field: str
) -> None:
    record_id = unknown_record(store)
    with pytest.raises(ReconcileError) as caught:
        set_final_state(store, record_id, status, note, who="olga")
    assert caught.value.field == field
    assert store.get(record_id).state is State.UNKNOWN
    assert store.events_for(record_id) == []


def test_a_final_rejected_or_missing_record_cannot_be_set(store: HistoryStore) -> None:
    settled = accepted_record(store)
    apply_callback(store, callback(4), SALT)
    with pytest.raises(ReconcileError, match="already final"):
        set_final_state(store, settled, 5, "no", who="olga")

    rejected = store.create_attempt(replace(ATTEMPT, request_id="po-0002"))
    store.record_outcome(rejected, Rejected("Insufficient balance", signature_verified=True))
    with pytest.raises(ReconcileError, match="rejected"):
        set_final_state(store, rejected, 4, "no", who="olga")
    with pytest.raises(ReconcileError, match="no payout"):
        set_final_state(store, 999, 4, "no", who="olga")


def test_a_gateway_callback_confirms_or_contests_a_manual_state(store: HistoryStore) -> None:
    confirmed = accepted_record(store)
    set_final_state(store, confirmed, 4, "phoned support", who="olga")
    apply_callback(store, callback(4), SALT)
    assert store.get(confirmed).status_source == "gateway"

    contested = accepted_record(store, request_id="po-0002", invoice_id="500002")
    set_final_state(store, contested, 4, "phoned support", who="olga")
    result = apply_callback(store, callback(5, request_id="po-0002", invoice_id=500002), SALT)
    assert result.outcome is EventOutcome.CONFLICT
    record = store.get(contested)
    assert (record.gateway_status, record.status_source) == (5, "gateway")
    assert record.status_conflict
    assert record.needs_review and "an operator" in record.review_message


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_importing_json_lines_applies_them_and_reports_every_rejected_line(
    store: HistoryStore, tmp_path: Path
) -> None:
    first = accepted_record(store)
    second = unknown_record(store, request_id="po-0002")
    path = _write_jsonl(
        tmp_path / "callbacks.jsonl",
        [
            json.dumps(callback(4)),
            json.dumps(callback(4)),
            "",
            json.dumps(callback(4, request_id="po-0002", invoice_id=700)),
            json.dumps(callback(5, salt="wrong")),
            json.dumps(callback(4, request_id="po-9999")),
            "{not json",
        ],
    )

    report = import_file(store, path, SALT, merchant_id=MERCHANT, site_id=SITE)

    assert (report.applied, report.duplicate, report.total) == (2, 1, 6)
    assert [(item.line, item.request_id) for item in report.rejected] == [
        (5, "po-0001"),
        (6, "po-9999"),
        (7, None),
    ]
    text = "\n".join(report.lines())
    assert "2 applied" in text and "3 rejected" in text
    assert "line 5 (request_id po-0001): the signature does not match" in text
    assert "line 6 (request_id po-9999): no payout in the history" in text
    assert "line 7: not a callback" in text
    assert store.get(first).gateway_status == 4
    assert (store.get(second).state, store.get(second).invoice_id) == (State.ACCEPTED, "700")
    assert {event.source for event in store.events_for(first)} == {EventSource.IMPORT}


def test_importing_csv_with_a_header_verifies_string_values(
    store: HistoryStore, tmp_path: Path
) -> None:
    record_id = accepted_record(store)
    body = {key: str(value) for key, value in callback(4).items()}
    body["additional_fields"] = {"card_number": CARD, "card_holder": "Ivan Petrov"}
    body.pop("signature")
    body["signature"] = sign(body, SALT)
    path = tmp_path / "callbacks.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(body))
        writer.writerow(
            [json.dumps(v) if isinstance(v, dict) else v for v in body.values()],
        )
        writer.writerow(["7", "alice", "5"])  # a short row

    report = import_file(store, path, SALT, merchant_id=MERCHANT, site_id=SITE)

    assert report.applied == 1
    assert [item.line for item in report.rejected] == [3]
    assert store.get(record_id).gateway_status == 4
    (event,) = store.events_for(record_id)
    assert event.payload["additional_fields"]["card_number"] == "411111******1111"


def test_a_csv_without_the_callback_columns_is_refused(store: HistoryStore, tmp_path: Path) -> None:
    path = tmp_path / "payouts.csv"
    path.write_text("Record,Amount\n1,100\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="request_id and signature"):
        import_file(store, path, SALT)


def test_an_unreadable_file_gives_a_clear_error(store: HistoryStore, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot be read"):
        import_file(store, tmp_path / "missing.jsonl", SALT)
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not text")
    with pytest.raises(ImportFileError, match="not UTF-8"):
        import_file(store, binary, SALT)


def test_a_payout_settled_by_hand_never_reads_accepted(store: HistoryStore) -> None:
    unknown = unknown_record(store, "po-lost")
    accepted = accepted_record(store, "po-sent", invoice_id="700")
    set_final_state(store, unknown, 4, "Cabinet shows it paid", who="olga")
    set_final_state(store, accepted, 5, "Cabinet shows it declined", who="olga")

    settled = store.get(unknown)
    assert settled.state is State.SETTLED
    assert state_text(settled.state, settled.gateway_status) == "Settled manually: Success"
    stream = io.StringIO()
    write_csv([settled], stream)
    assert "Settled manually: Success" in stream.getvalue()
    assert ",Accepted," not in stream.getvalue()
    # One the gateway did accept (a signed answer with an invoice) keeps saying so.
    still = store.get(accepted)
    assert (still.state, still.gateway_status) == (State.ACCEPTED, 5)
    assert state_text(still.state, still.gateway_status) == "Accepted"
