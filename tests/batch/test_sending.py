"""Sending a batch through the one send path into each history backend (SQLite and the team
history on PostgreSQL), with the sandbox over loopback: recorded before sending, resumed
without sending twice, paused, resumed and cancelled."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from cactus_desk.batch.columns import auto_mapping
from cactus_desk.batch.reading import read_table
from cactus_desk.batch.report import report_rows
from cactus_desk.batch.sending import (
    ALREADY,
    CANCELLED,
    Control,
    existing_records,
    failed_again_batch,
    send_batch,
)
from cactus_desk.batch.store import batch_records
from cactus_desk.batch.validate import Batch, validate_batch
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.send import SendCode, SendService
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.sandbox.faults import Fault
from tests.batch.files import CARD_HEADERS, card_rows, write_csv


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(balances={"RUB": 10**12}) as sandbox:
        yield sandbox


def profile_for(gateway: SandboxGateway) -> Profile:
    return Profile(
        id="p1",
        name="Shop",
        base_url=gateway.base_url,
        merchant_id=gateway.merchant_id,
        site_id=gateway.site_id,
        environment="sandbox",
    )


def batch_of(path: Path, gateway: SandboxGateway, store: HistoryStore | None = None) -> Batch:
    table = read_table(path)
    return validate_batch(table, auto_mapping(table.headers), profile_for(gateway), history=store)


def service(store: HistoryStore, gateway: SandboxGateway) -> SendService:
    return SendService(store, lambda profile: gateway.salt)


def test_every_row_is_recorded_then_sent_and_a_second_run_sends_nothing(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(12))
    recorded_first: list[bool] = []

    def check_recorded(invoice: dict[str, Any]) -> None:
        # The sandbox has the payout: its record must already be in the history.
        found = [r for r in store.iter_records() if r.request_id == invoice["request_id"]]
        recorded_first.append(len(found) == 1)

    gateway.on_accept = check_recorded
    sender = service(store, gateway)
    try:
        batch = batch_of(path, gateway, store)
        outcome = send_batch(batch, sender, concurrency=4)
        assert outcome.count(SendCode.ACCEPTED) == 12
        assert recorded_first == [True] * 12
        records = batch_records(store, batch.batch_id)
        assert [r.request_id for r in records] == [row.request_id for row in batch.rows]
        assert {r.state for r in records} == {State.ACCEPTED}

        again = batch_of(path, gateway, store)
        assert any("imported before" in warning for warning in again.warnings)
        second = send_batch(again, sender, concurrency=4)
        assert second.count(ALREADY) == 12
        assert len(gateway.invoices) == 12
        lines = report_rows(again, existing_records(store, again))
        assert [line[8] for line in lines] == [r.invoice_id for r in records]
    finally:
        sender.close()


def test_refused_rows_become_a_new_batch_and_in_doubt_rows_do_not(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(4))
    sender = service(store, gateway)
    try:
        batch = batch_of(path, gateway, store)
        gateway.set_fault(Fault.REJECT, times=1)
        send_batch(batch, sender, concurrency=1)
        gateway.set_fault(Fault.RESET, times=1)
        rest = batch_of(
            write_csv(tmp_path / "c.csv", CARD_HEADERS, card_rows(1, start=9)), gateway, store
        )
        send_batch(rest, sender, concurrency=1)
        records = existing_records(store, batch)
        assert [r.state for r in records.values()].count(State.REJECTED) == 1
        again = failed_again_batch(batch, records)
        assert again.ok and again.parent == batch.batch_id
        [row] = again.rows
        assert row.line == 2 and row.request_id != batch.rows[0].request_id
        assert send_batch(again, sender).count(SendCode.ACCEPTED) == 1
        # The row whose answer was lost is UNKNOWN: never part of a "pay again" batch.
        lost = existing_records(store, rest)
        assert [r.state for r in lost.values()] == [State.UNKNOWN]
        assert failed_again_batch(rest, lost).problems
    finally:
        sender.close()


def test_pause_holds_further_rows_and_cancel_sends_no_more(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(6))
    control = Control()
    paused = threading.Event()

    def on_row(result: Any, progress: Any) -> None:
        if progress.done == 2:
            control.pause()
            paused.set()

    sender = service(store, gateway)
    outcome_box: list[Any] = []
    try:
        batch = batch_of(path, gateway, store)
        worker = threading.Thread(
            target=lambda: outcome_box.append(
                send_batch(batch, sender, concurrency=1, control=control, on_row=on_row)
            )
        )
        worker.start()
        assert paused.wait(30)
        # While paused, no further row is sent, however long we look.
        worker.join(0.3)
        assert worker.is_alive()
        assert len(gateway.invoices) == 2
        control.resume()
        control.cancel()
        worker.join(30)
        [outcome] = outcome_box
        assert outcome.count(SendCode.ACCEPTED) == 2
        assert outcome.count(CANCELLED) == 4
        assert len(batch_records(store, batch.batch_id)) == 2  # cancelled rows left no record
    finally:
        sender.close()


def test_the_batch_and_its_file_are_recorded_before_any_row_and_a_reimport_is_warned(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(2))
    sha = read_table(path).sha256
    assert store.batches_for_file(sha) == []
    sender = service(store, gateway)
    try:
        batch = batch_of(path, gateway, store)
        gateway.set_fault(Fault.REJECT)  # every row refused: only the batch entry proves it
        send_batch(batch, sender)
    finally:
        sender.close()
    [entry] = store.batches_for_file(sha)
    assert (entry.batch_id, entry.file_sha256, entry.row_count) == (batch.batch_id, sha, 2)
    assert (entry.merchant_id, entry.site_id, entry.profile_id) == ("sandbox", 101, "p1")
    assert entry.created_at > 0
    # Recording it again keeps the first import's entry.
    assert store.record_batch(batch.entry()) == entry
    again = batch_of(path, gateway, store)
    assert any(
        "was imported on" in warning and f"batch {batch.batch_id} (this batch)" in warning
        for warning in again.warnings
    )


def test_the_sandbox_counts_every_request_it_receives_per_request_id(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    """The count the kill test relies on: a repeated request id is counted twice even though
    the sandbox refuses it and makes no second invoice."""
    from cactus_desk.gateway.client import CactusClient

    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(3))
    sender = service(store, gateway)
    try:
        batch = batch_of(path, gateway, store)
        send_batch(batch, sender, concurrency=2)
        row = batch.rows[0]
        assert row.payout is not None
        client = CactusClient(gateway.base_url, read_timeout=30)
        try:
            client.payout(row.payout.wire_request(), gateway.salt)
        finally:
            client.close()
    finally:
        sender.close()
    received = gateway.request_ids_received
    assert received == {batch.rows[0].request_id: 2, **{r.request_id: 1 for r in batch.rows[1:]}}
    assert len(gateway.invoices) == 3


def test_recent_batches_lists_the_newest_first_and_summaries_count_rows_never_sent(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    from cactus_desk.batch.summary import batch_summaries, interrupted_batches

    store = open_store()
    sender = service(store, gateway)
    try:
        done = batch_of(write_csv(tmp_path / "a.csv", CARD_HEADERS, card_rows(2)), gateway, store)
        send_batch(done, sender)
        stopped = batch_of(
            write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(4, start=10)), gateway, store
        )
        control = Control()
        control.cancel()  # recorded as a batch, no row sent
        send_batch(stopped, sender, control=control)
    finally:
        sender.close()
    entries = store.recent_batches(10)
    assert {entry.batch_id for entry in entries} == {done.batch_id, stopped.batch_id}
    assert entries == sorted(entries, key=lambda e: (e.created_at, e.batch_id), reverse=True)
    assert len(store.recent_batches(1)) == 1
    summaries = {summary.entry.batch_id: summary for summary in batch_summaries(store)}
    assert summaries[done.batch_id].recorded == 2 and not summaries[done.batch_id].interrupted
    assert summaries[stopped.batch_id].never_sent == 4
    assert [s.entry.batch_id for s in interrupted_batches(store)] == [stopped.batch_id]
    assert summaries[done.batch_id].totals_text() == "2 accepted"


def test_niceness_lowers_only_the_sending_threads_priority(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(6))
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[tuple[int, int]] = []

    def on_row(_result: object, _progress: object) -> None:
        tid = threading.get_native_id()
        seen.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))

    sender = service(store, gateway)
    try:
        batch = batch_of(path, gateway, store)
        outcome = send_batch(batch, sender, concurrency=3, on_row=on_row, niceness=5)
        assert outcome.count(SendCode.ACCEPTED) == 6
        assert len(seen) == 6
        # Linux gives each thread its own nice value; elsewhere nothing changes.
        lowered = min(caller + 5, 19) if sys.platform.startswith("linux") else caller
        assert {priority for _tid, priority in seen} == {lowered}
        assert threading.get_native_id() not in {tid for tid, _ in seen}
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
    finally:
        sender.close()


def test_the_pool_holds_one_task_per_thread_not_one_per_row(
    open_store: Callable[[], HistoryStore], gateway: SandboxGateway, tmp_path: Path
) -> None:
    """A future per row left 15 objects per row for the cycle collector (150,000 for a
    10,000-row batch): each of its full passes held the interpreter lock, and the window,
    for 100-150 ms. Each sending thread takes the next row instead."""
    store = open_store()
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(40))
    futures: list[int] = []

    def alive() -> int:
        return sum(isinstance(item, Future) for item in gc.get_objects())

    def on_row(_result: object, _progress: object) -> None:
        futures.append(alive())

    sender = service(store, gateway)
    try:
        batch = batch_of(path, gateway, store)
        gc.collect()  # futures an earlier test left in cycles are not this batch's
        before = alive()
        outcome = send_batch(batch, sender, concurrency=3, on_row=on_row)
        assert outcome.count(SendCode.ACCEPTED) == 40
        assert len(futures) == 40
        assert max(futures) <= before + 3
    finally:
        sender.close()
