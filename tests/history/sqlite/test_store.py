from __future__ import annotations

import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history import open_history
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import (
    DuplicateRequestIdError,
    HistoryFilter,
    HistoryOpenError,
    OutcomeAlreadyRecordedError,
    RecordNotFoundError,
    SortKey,
    iso_utc,
)
from cactus_desk.masking import scrub_card_numbers
from cactus_desk.payouts.states import State
from tests.payouts.conftest import make_attempt

FULL_CARD = "4111111111111111"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_the_history_and_its_wal_files_are_private(data_home: Path) -> None:
    with open_history(data_home) as store:
        store.create_attempt(make_attempt())
        base = data_home / "history.sqlite3"
        files = [base, Path(f"{base}-wal"), Path(f"{base}-shm")]
        assert all(path.exists() for path in files)
        assert [_mode(path) for path in files] == [0o600, 0o600, 0o600]
    assert _mode(data_home) == 0o700


@posix_only
def test_an_existing_history_readable_by_others_is_made_private(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with SqliteHistoryStore(path):
        assert _mode(path) == 0o600


def test_the_journal_is_wal(store: HistoryStore) -> None:
    import sqlite3

    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_keeps_the_history(store_factory: Callable[[], HistoryStore]) -> None:
    first = store_factory()
    record_id = first.create_attempt(make_attempt())
    first.record_outcome(record_id, Accepted("1314", 3, "Payout initialized"))
    first.close()
    again = store_factory()
    record = again.get(record_id)
    assert (record.state, record.invoice_id, record.request_id) == (
        State.ACCEPTED,
        "1314",
        "po-0001",
    )


def test_a_new_attempt_is_submitting_with_what_was_sent(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt())
    record = store.get(record_id)
    assert record.state is State.SUBMITTING
    assert record.invoice_id is None and record.gateway_status is None
    assert record.created_at == record.updated_at
    assert record.request == {
        "merchant_id": "m_demo",
        "site_login": "alice",
        "site_id": 7,
        "request_id": "po-0001",
        "amount": 150000,
        "currency": "RUB",
        "method": "card",
        "additional_fields": {"card_number": "411111******1111", "card_holder": "Ivan Petrov"},
    }
    assert record.response is None


def test_an_accepted_outcome_is_recorded(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt())
    response = {"success": True, "status": 3, "invoice_id": "1314", "message": "Payout initialized"}
    store.record_outcome(record_id, Accepted("1314", 3, "Payout initialized", response))
    record = store.get(record_id)
    assert record.state is State.ACCEPTED
    assert (record.invoice_id, record.gateway_status, record.message) == (
        "1314",
        3,
        "Payout initialized",
    )
    assert record.response == response
    assert record.updated_at > record.created_at


def test_a_rejection_is_recorded_with_its_message(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt())
    response = {"success": False, "message": "Invalid signature", "status": False}
    store.record_outcome(record_id, Rejected("Invalid signature", response, True, 200))
    record = store.get(record_id)
    assert record.state is State.REJECTED
    assert record.message == "Invalid signature"
    assert record.detail == ""
    assert record.gateway_status is None and record.http_status == 200
    assert record.response == response


def test_an_unknown_outcome_keeps_its_reason_kind_and_raw_body(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt())
    outcome = Unknown(
        "No answer in time. Do not send it again.",
        UnknownKind.HTTP_ERROR,
        "HTTP 502",
        http_status=502,
        response_text="<html>Bad gateway</html>",
    )
    store.record_outcome(record_id, outcome)
    record = store.get(record_id)
    assert record.state is State.UNKNOWN
    assert record.unknown_kind == "http_error"
    assert record.message == "No answer in time. Do not send it again."
    assert (record.detail, record.http_status) == ("HTTP 502", 502)
    assert record.response == {"raw_body": "<html>Bad gateway</html>"}


def test_an_outcome_is_written_once_only(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt())
    store.record_outcome(record_id, Unknown("Timed out", UnknownKind.TIMEOUT))
    with pytest.raises(OutcomeAlreadyRecordedError, match="already has an outcome"):
        store.record_outcome(record_id, Accepted("1314", 4, "late success"))
    assert store.get(record_id).state is State.UNKNOWN
    with pytest.raises(RecordNotFoundError):
        store.record_outcome(9999, Accepted("1", 3, ""))


def test_a_reused_request_id_is_refused(store: HistoryStore) -> None:
    first = store.create_attempt(make_attempt())
    with pytest.raises(DuplicateRequestIdError) as caught:
        store.create_attempt(make_attempt(amount_minor=999))
    message = str(caught.value)
    assert "'po-0001'" in message and f"record {first}" in message and "new request ID" in message
    assert caught.value.existing_id == first
    assert store.count() == 1
    # The same request_id is fine for another site or merchant.
    store.create_attempt(make_attempt(site_id=8))
    store.create_attempt(make_attempt(merchant_id="other"))
    assert store.count() == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount_minor": 0}, "greater than zero"),
        ({"amount_minor": 1.5}, "whole number of minor units"),
        ({"environment": "prod"}, "'live' or 'sandbox'"),
        ({"request_id": "  "}, "request id must not be empty"),
        ({"site_id": "7"}, "site ID must be a whole number"),
    ],
)
def test_a_malformed_attempt_is_refused_clearly(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_attempt(**changes)


def _seed(store: HistoryStore) -> dict[str, int]:
    ids = {
        "a": store.create_attempt(
            make_attempt(request_id="po-A_1", site_login="alice", currency="RUB")
        ),
        "b": store.create_attempt(
            make_attempt(
                request_id="po-B%2",
                site_login="Bob",
                currency="USD",
                profile_id="p-eu",
                profile_name="EU desk",
            )
        ),
        "c": store.create_attempt(make_attempt(request_id="po-C3", site_login="carol")),
        "d": store.create_attempt(
            make_attempt(request_id="po-D4", site_login="dave", currency="VND", amount_minor=5000)
        ),
    }
    store.record_outcome(ids["a"], Accepted("INV-777", 3, "Payout initialized"))
    store.record_outcome(ids["b"], Rejected("Insufficient funds on balance"))
    store.record_outcome(ids["c"], Unknown("No answer in time", UnknownKind.TIMEOUT))
    return ids


def _ids(store: HistoryStore, history_filter: HistoryFilter) -> set[int]:
    rows = store.page(history_filter, limit=1000)
    assert len(rows) == store.count(history_filter)
    return {row.id for row in rows}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A_1", {"a"}),  # request_id
        ("inv-77", {"a"}),  # invoice_id, case-insensitive
        ("BOB", {"b"}),  # site_login
        ("insufficient", {"b"}),  # message
        ("%", {"b"}),  # a literal percent, not a wildcard
        ("_", {"a"}),  # a literal underscore, not a wildcard
        ("po-", {"a", "b", "c", "d"}),
        ("nobody", set()),
    ],
)
def test_text_filter(store: HistoryStore, text: str, expected: set[str]) -> None:
    ids = _seed(store)
    assert _ids(store, HistoryFilter(text=text)) == {ids[key] for key in expected}


def test_state_currency_and_profile_filters_combine(store: HistoryStore) -> None:
    ids = _seed(store)
    assert _ids(store, HistoryFilter(states=frozenset({"ACCEPTED", "UNKNOWN"}))) == {
        ids["a"],
        ids["c"],
    }
    assert _ids(store, HistoryFilter(states=frozenset({State.SUBMITTING}))) == {ids["d"]}
    assert _ids(store, HistoryFilter(currency="RUB")) == {ids["a"], ids["c"]}
    assert _ids(store, HistoryFilter(profile_id="p-eu")) == {ids["b"]}
    assert _ids(store, HistoryFilter(currency="RUB", states=frozenset({"UNKNOWN"}))) == {ids["c"]}
    assert store.count() == 4


def test_sorting_by_amount_beyond_32_bits(store: HistoryStore) -> None:
    amounts = [2**31 + 5, 7, 2**53, 2**31 - 1, 2**40]
    for index, amount in enumerate(amounts):
        store.create_attempt(make_attempt(request_id=f"po-{index}", amount_minor=amount))
    ascending = [row.amount_minor for row in store.page(sort=SortKey.AMOUNT, descending=False)]
    assert ascending == sorted(amounts)
    descending = [row.amount_minor for row in store.page(sort=SortKey.AMOUNT, descending=True)]
    assert descending == sorted(amounts, reverse=True)


def test_sorting_by_text_ignores_case_and_ties_break_by_id(store: HistoryStore) -> None:
    logins = ["carol", "Alice", "bob", "alice"]
    ids = [
        store.create_attempt(make_attempt(request_id=f"po-{i}", site_login=login))
        for i, login in enumerate(logins)
    ]
    rows = store.page(sort=SortKey.SITE_LOGIN, descending=False)
    assert [row.site_login for row in rows] == ["Alice", "alice", "bob", "carol"]
    assert [row.id for row in rows[:2]] == [ids[1], ids[3]]


@pytest.mark.parametrize("key", list(SortKey))
def test_every_sort_key_works_both_ways(store: HistoryStore, key: SortKey) -> None:
    _seed(store)
    forward = [row.id for row in store.page(sort=key, descending=False)]
    backward = [row.id for row in store.page(sort=key, descending=True)]
    assert sorted(forward) == sorted(backward) and len(forward) == 4
    assert forward == backward[::-1]


def test_the_default_order_is_newest_first(store: HistoryStore) -> None:
    ids = _seed(store)
    assert [row.id for row in store.page()] == [ids["d"], ids["c"], ids["b"], ids["a"]]


def test_pages_cover_every_row_once(store: HistoryStore) -> None:
    created = {
        store.create_attempt(make_attempt(request_id=f"po-{i:03d}", amount_minor=100 + i % 7))
        for i in range(53)
    }
    seen: list[int] = []
    for offset in range(0, 60, 10):
        page = store.page(sort=SortKey.AMOUNT, descending=True, offset=offset, limit=10)
        assert len(page) == min(10, 53 - offset)
        seen.extend(row.id for row in page)
    assert len(seen) == 53 and set(seen) == created
    assert store.page(offset=100) == []


def test_rows_carry_the_displayed_columns(store: HistoryStore) -> None:
    _seed(store)
    row = store.page(HistoryFilter(text="INV-777"))[0]
    assert (row.profile_name, row.site_login, row.currency, row.amount_minor) == (
        "Main shop",
        "alice",
        "RUB",
        150000,
    )
    assert (row.state, row.gateway_status, row.invoice_id) == (State.ACCEPTED, 3, "INV-777")
    assert iso_utc(row.created_at) == "2024-05-01T10:22:33.123Z"


def test_distinct_profiles_and_currencies(store: HistoryStore) -> None:
    _seed(store)
    store.create_attempt(make_attempt(request_id="po-X", profile_name="Main shop (renamed)"))
    assert store.distinct_profiles() == [("p-eu", "EU desk"), ("p-main", "Main shop (renamed)")]
    assert store.distinct_currencies() == ["RUB", "USD", "VND"]


def test_data_version_notices_writes_from_this_and_other_stores(
    store_factory: Callable[[], HistoryStore],
) -> None:
    viewer = store_factory()
    writer = store_factory()
    before = viewer.data_version()
    assert viewer.data_version() == before
    writer.create_attempt(make_attempt())
    after_other = viewer.data_version()
    assert after_other != before
    viewer.create_attempt(make_attempt(request_id="po-own"))
    assert viewer.data_version() != after_other


def test_a_gui_thread_can_read_while_a_worker_writes(store: HistoryStore) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(100):
                record_id = store.create_attempt(make_attempt(request_id=f"po-{i}"))
                store.record_outcome(record_id, Accepted(str(i), 3, "ok"))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=write)
    worker.start()
    while worker.is_alive():
        total = store.count()
        assert len(store.page(limit=500)) >= total
    worker.join()
    assert errors == []
    assert store.count(HistoryFilter(states=frozenset({"ACCEPTED"}))) == 100


def test_scrub_card_numbers_masks_only_luhn_valid_runs() -> None:
    assert scrub_card_numbers(f"card {FULL_CARD} ok") == "card 411111******1111 ok"
    assert scrub_card_numbers("4111 1111 1111 1111") == "411111******1111"
    assert scrub_card_numbers("4111111111111112") == "4111111111111112"  # not Luhn-valid
    assert scrub_card_numbers("79999999999") == "79999999999"  # a phone number, 11 digits


def test_full_card_numbers_never_reach_the_file(
    store_factory: Callable[[], HistoryStore], data_home: Path
) -> None:
    store = store_factory()
    # A caller that forgot to mask, and a gateway that echoed the card back.
    record_id = store.create_attempt(
        make_attempt(request_fields={"card_number": FULL_CARD, "card_holder": "Ivan Petrov"})
    )
    echoed = {
        "success": True,
        "invoice_id": "1314",
        "additional_fields": {"card_number": FULL_CARD, "pan": int(FULL_CARD)},
        "message": f"Payout to {FULL_CARD} initialized",
    }
    store.record_outcome(record_id, Accepted("1314", 3, f"Payout to {FULL_CARD}", echoed))
    record = store.get(record_id)
    assert record.request["additional_fields"]["card_number"] == "411111******1111"
    assert record.response is not None
    assert record.response["additional_fields"] == {
        "card_number": "411111******1111",
        "pan": "411111******1111",
    }
    assert record.message == "Payout to 411111******1111"
    store.close()
    stored = b"".join(
        path.read_bytes() for path in data_home.iterdir() if path.name.startswith("history")
    )
    assert b"411111******1111" in stored
    assert FULL_CARD.encode() not in stored


def test_identifiers_are_kept_even_when_they_look_like_card_numbers(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt(request_id=FULL_CARD))
    store.record_outcome(record_id, Accepted(FULL_CARD, 3, "ok", {"invoice_id": FULL_CARD}))
    record = store.get(record_id)
    assert (record.request_id, record.invoice_id) == (FULL_CARD, FULL_CARD)
    assert record.request["request_id"] == FULL_CARD


def test_a_closed_store_says_so(store: HistoryStore) -> None:
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.count()


@pytest.mark.parametrize("key", list(SortKey))
def test_a_filtered_page_keeps_the_unfiltered_order(store: HistoryStore, key: SortKey) -> None:
    for i in range(40):
        store.create_attempt(
            make_attempt(
                request_id=f"po-{i}",
                currency=("RUB", "USD")[i % 2],
                site_login=f"user{i % 7}",
                amount_minor=1000 + (i * 37) % 11,
                profile_id=f"p{i % 3}",
                profile_name=f"Desk {i % 3}",
            )
        )
    history_filter = HistoryFilter(currency="USD", profile_id="p1")
    every = [(row.id, row.currency) for row in store.page(sort=key, limit=100)]
    matching = {row.id for row in store.page(history_filter, sort=key, limit=100)}
    assert [row.id for row in store.page(history_filter, sort=key, limit=100)] == [
        record_id for record_id, _ in every if record_id in matching
    ]
    assert len(matching) == store.count(history_filter) == 7


def test_a_file_that_is_not_a_history_is_refused_and_left_alone(data_home: Path) -> None:
    data_home.mkdir(parents=True)
    path = data_home / "history.sqlite3"
    path.write_bytes(b"these are not the payouts you are looking for" * 100)
    before = path.read_bytes()
    with pytest.raises(HistoryOpenError, match=r"not a database.*move it aside"):
        SqliteHistoryStore(path)
    assert path.read_bytes() == before


def test_a_history_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryOpenError, match="cannot be opened"):
        SqliteHistoryStore(tmp_path / "no-such-folder" / "history.sqlite3")


def test_every_page_is_built_by_position_and_matches_the_rows_by_id(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cactus_desk.history.sqlite import store as sqlite_store

    first = store.create_attempt(make_attempt(request_id="po-by-position-1"))
    store.record_outcome(first, Accepted("900001", 3, "Payout initialized"))
    second = store.create_attempt(make_attempt(request_id="po-by-position-2"))
    store.record_outcome(second, Rejected("Declined by the bank"))

    def by_name(row: object) -> None:
        raise AssertionError("a page row was built by name")

    monkeypatch.setattr(sqlite_store, "_history_row", by_name)
    for sort in SortKey:
        for text in ("", "po-by", "900001"):
            rows = store.page(HistoryFilter(text=text), sort, True, 0, 10)
            assert rows and sorted(rows, key=lambda row: row.id) == sorted(
                store.rows_by_id([row.id for row in rows]), key=lambda row: row.id
            )
    page = {row.id: row for row in store.page(HistoryFilter(), SortKey.CREATED_AT, True, 0, 10)}
    assert page[first].state is State.ACCEPTED and page[first].invoice_id == "900001"
    assert page[second].state is store.get(second).state is not State.ACCEPTED
    assert page[second].message == "Declined by the bank"
    assert page[first].needs_review is False and page[first].status_conflict is False
