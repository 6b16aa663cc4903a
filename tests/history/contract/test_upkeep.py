"""The upkeep operation of the port, against every history backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryClosedError, HistoryFilter, MaintenanceReport
from tests.history.contract.helpers import accepted


def test_upkeep_passes_change_no_record_and_end_with_nothing_left(
    open_store: Callable[..., HistoryStore],
) -> None:
    store = open_store()
    ids = [accepted(store, f"po-{n}", invoice_id=f"7000{n:02d}") for n in range(30)]
    before = [store.get(record_id) for record_id in ids]
    report = store.run_maintenance(budget_ms=1000)
    for _ in range(100):
        if not report.more:
            break
        report = store.run_maintenance(budget_ms=1000)
    assert isinstance(report, MaintenanceReport) and not report.more
    assert [store.get(record_id) for record_id in ids] == before
    assert store.count(HistoryFilter(text="po-17")) == 1
    assert store.count(HistoryFilter(text="700029")) == 1
    assert store.count() == 30


def test_upkeep_on_a_closed_history_says_it_is_closed(
    open_store: Callable[..., HistoryStore],
) -> None:
    store = open_store()
    store.close()
    with pytest.raises(HistoryClosedError):
        store.run_maintenance()


def test_a_warm_up_changes_nothing_and_a_closed_history_says_it_is_closed(
    open_store: Callable[..., HistoryStore],
) -> None:
    store = open_store()
    ids = [accepted(store, f"po-{n}", invoice_id=f"7100{n:02d}") for n in range(5)]
    before = [store.get(record_id) for record_id in ids]
    store.warm_up()
    assert [store.get(record_id) for record_id in ids] == before
    store.close()
    with pytest.raises(HistoryClosedError):
        store.warm_up()
