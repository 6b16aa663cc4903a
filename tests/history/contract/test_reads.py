"""Reads, recovery and the duplicate guard's lookup, against every history backend."""

from __future__ import annotations

import csv
import io

import pytest

from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.callbacks.events import EventOutcome
from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
from cactus_desk.history.export import export_csv
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import DuplicateProbe, HistoryFilter, ManualEvent, SortKey
from cactus_desk.payouts.recovery import recover_interrupted
from cactus_desk.payouts.states import State
from tests.history.contract.helpers import SALT, accepted, attempt, callback, unknown


def _filled(store: HistoryStore) -> list[int]:
    ids = [
        accepted(store, "po-1", amount_minor=300, currency="RUB"),
        accepted(store, "po-2", amount_minor=100, currency="USD", invoice_id="500002"),
        unknown(store, "po-3"),
        accepted(store, "po-4", amount_minor=200, currency="RUB", invoice_id="500004"),
    ]
    return ids


def test_pages_count_filter_and_sort(store: HistoryStore) -> None:
    ids = _filled(store)
    assert store.count() == 4
    newest_first = store.page()
    assert [row.id for row in newest_first] == list(reversed(ids))
    assert [row.id for row in store.page(descending=False, offset=1, limit=2)] == ids[1:3]

    rub = HistoryFilter(currency="RUB")
    assert store.count(rub) == 3
    by_amount = store.page(rub, SortKey.AMOUNT, descending=False)
    assert [row.amount_minor for row in by_amount] == [200, 300, 150000]

    in_doubt = HistoryFilter(states=frozenset({str(State.UNKNOWN)}))
    assert [row.request_id for row in store.page(in_doubt)] == ["po-3"]
    assert [row.request_id for row in store.page(HistoryFilter(text="po-4"))] == ["po-4"]
    assert store.count(HistoryFilter(text="po-4")) == 1
    assert store.count(cap=2) == 2
    assert store.distinct_currencies() == ["RUB", "USD"]
    assert store.distinct_profiles() == [("p-main", "Main shop")]


def test_rows_by_id_and_the_newest_ids_serve_live_views(store: HistoryStore) -> None:
    assert store.newest_record_id() == 0
    ids = _filled(store)
    assert store.newest_record_id() == max(ids)
    rows = store.rows_by_id([ids[0], ids[2], 99_999])
    assert sorted(row.id for row in rows) == [ids[0], ids[2]]
    before = store.data_version()
    apply_callback(store, callback(4, request_id="po-1"), SALT, merchant_id="m_demo", site_id=7)
    (row,) = store.rows_by_id([ids[0]])
    assert row.gateway_status == 4
    assert isinstance(before, int)
    assert store.newest_event_id(ids[0]) > 0
    assert store.newest_event_id(ids[1]) == 0


def test_details_hold_the_record_its_timeline_and_its_resends(store: HistoryStore) -> None:
    record_id = unknown(store)
    apply_callback(store, callback(3), SALT, merchant_id="m_demo", site_id=7)
    apply_callback(store, callback(4), SALT, merchant_id="m_demo", site_id=7)
    details = store.details(record_id)
    assert details.record.id == record_id and details.record.gateway_status == 4
    assert [event.status for event in details.events] == [3, 4]
    assert details.newest_event_id == store.newest_event_id(record_id)
    assert details.resends == ()


def test_events_since_a_watermark(store: HistoryStore) -> None:
    accepted(store)
    first = apply_callback(store, callback(3), SALT, merchant_id="m_demo", site_id=7)
    second = apply_callback(store, callback(4), SALT, merchant_id="m_demo", site_id=7)
    assert [event.id for event in store.events_since(0)] == [first.event_id, second.event_id]
    assert [event.id for event in store.events_since(first.event_id)] == [second.event_id]
    assert store.events_since(0, limit=1)[0].id == first.event_id
    assert store.events_since(second.event_id) == []


def test_a_resend_is_audited_and_undone_when_it_never_left(store: HistoryStore) -> None:
    record_id = unknown(store)
    assert store.begin_resend(record_id, State.ACCEPTED) is None  # changed meanwhile
    assert store.get(record_id).state is State.UNKNOWN

    before = store.begin_resend(record_id, State.UNKNOWN)
    assert before is not None and before.state is State.UNKNOWN and before.attempt == 2
    assert store.get(record_id).state is State.SUBMITTING
    (audit,) = store.resend_history(record_id)
    assert (audit.attempt, audit.previous_state) == (2, "UNKNOWN")
    assert store.details(record_id).resends == (audit,)

    event_id = store.undo_resend(
        before,
        ManualEvent(record_id, EventOutcome.RESEND_NOT_SENT, {"request_id": "po-0001"}, "x", "o"),
    )
    record = store.get(record_id)
    assert (record.state, record.message) == (State.UNKNOWN, before.message)
    assert [event.id for event in store.events_for(record_id)] == [event_id]


def test_interrupted_attempts_are_found_and_settled_truthfully(store: HistoryStore) -> None:
    never_left = store.create_attempt(attempt(request_id="po-a"))
    left = store.create_attempt(attempt(request_id="po-b"))
    store.mark_sending(left)
    done = accepted(store, "po-c")
    found = store.interrupted_attempts()
    assert [(item.record_id, item.send_attempts) for item in found] == [(never_left, 0), (left, 1)]
    assert done not in [item.record_id for item in found]

    assert recover_interrupted(store) == [never_left, left]
    assert store.get(never_left).state is State.NOT_SENT
    assert store.get(left).state is State.UNKNOWN
    assert store.interrupted_attempts() == []


def test_recent_similar_payouts_for_the_duplicate_guard(store: HistoryStore) -> None:
    first = accepted(store, "po-1")
    refused = store.create_attempt(attempt(request_id="po-2"))
    store.record_not_sent(refused, "Not sent")
    in_doubt = store.create_attempt(attempt(request_id="po-3"))
    store.mark_sending(in_doubt)
    store.record_outcome(in_doubt, Unknown("No answer", UnknownKind.TIMEOUT))
    accepted(store, "po-4", amount_minor=1)  # another amount
    probe = DuplicateProbe(
        environment="sandbox",
        site_login="alice",
        method="card",
        currency="RUB",
        amount_minor=150000,
        since=0,
    )
    assert [record.id for record in store.recent_similar(probe)] == [in_doubt, first]
    later = probe._replace(since=store.get(in_doubt).created_at)
    assert [record.id for record in store.recent_similar(later)] == [in_doubt]


def test_the_export_streams_every_matching_record(store: HistoryStore) -> None:
    ids = _filled(store)
    assert [record.id for record in store.iter_records(descending=False)] == ids
    stream = io.StringIO(newline="")
    written = export_csv(store, HistoryFilter(currency="RUB"), SortKey.CREATED_AT, False, stream)
    rows = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert written == 3 == len(rows) - 1
    assert [row[7] for row in rows[1:]] == ["po-1", "po-3", "po-4"]


def test_an_accepted_answer_is_kept_with_its_response(store: HistoryStore) -> None:
    record_id = store.create_attempt(attempt())
    store.mark_sending(record_id)
    store.record_outcome(record_id, Accepted("9", 3, "ok", {"invoice_id": "9", "status": 3}))
    assert store.get(record_id).response == {"invoice_id": "9", "status": 3}


def test_a_backup_is_taken_on_request_and_the_history_works_on(store: HistoryStore) -> None:
    accepted(store)
    copy = store.back_up("manual")
    assert copy.exists() and copy != store.location
    accepted(store, "po-after")
    assert store.count() == 2
    with pytest.raises(ValueError):
        store.back_up("../elsewhere")


def test_recent_similar_many_answers_each_probe_as_recent_similar_does(
    store: HistoryStore,
) -> None:
    first = accepted(store, "po-1")
    in_doubt = unknown(store, "po-2")
    other_amount = accepted(store, "po-3", amount_minor=1)
    refused = store.create_attempt(attempt(request_id="po-4"))
    store.record_not_sent(refused, "Not sent")
    probe = DuplicateProbe(
        environment="sandbox",
        site_login="alice",
        method="card",
        currency="RUB",
        amount_minor=150000,
        since=0,
    )
    probes = [
        probe,
        probe._replace(amount_minor=1),
        probe._replace(site_login="bob"),
        probe._replace(since=store.get(in_doubt).created_at),
        probe._replace(environment="live"),
        probe,  # the same probe twice gets the same answer twice
    ]
    found = store.recent_similar_many(probes)
    assert [[record.id for record in records] for records in found] == [
        [record.id for record in store.recent_similar(one)] for one in probes
    ]
    assert [[record.id for record in records] for records in found] == [
        [in_doubt, first],
        [other_amount],
        [],
        [in_doubt],
        [],
        [in_doubt, first],
    ]
    assert store.recent_similar_many([]) == []


def test_recent_amounts_are_the_windows_amounts_that_may_have_moved_money(
    store: HistoryStore,
) -> None:
    no_money = frozenset({State.REJECTED, State.NOT_SENT})
    assert store.recent_amounts("sandbox", 0, no_money, 10) == frozenset()
    first = accepted(store, "po-1", amount_minor=100)
    unknown(store, "po-2")  # 150000: in doubt, so it may have moved money
    accepted(store, "po-3", amount_minor=100)  # the same amount again
    accepted(store, "po-4", amount_minor=700, environment="live")
    refused = store.create_attempt(attempt(request_id="po-5", amount_minor=900))
    store.record_not_sent(refused, "Not sent")
    assert store.recent_amounts("sandbox", 0, no_money, 10) == frozenset({100, 150000})
    assert store.recent_amounts("sandbox", 0, frozenset(), 10) == frozenset({100, 150000, 900})
    assert store.recent_amounts("live", 0, no_money, 10) == frozenset({700})
    after = store.get(first).created_at + 3_600_000  # created before the window opens
    assert store.recent_amounts("sandbox", after, no_money, 10) == frozenset()
    # More different amounts than the limit: no filter at all.
    assert store.recent_amounts("sandbox", 0, no_money, 2) == frozenset({100, 150000})
    assert store.recent_amounts("sandbox", 0, frozenset(), 2) is None
