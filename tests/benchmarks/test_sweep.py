"""The sweep of every filter and sort reads every page it says, and reports the worst."""

from __future__ import annotations

from pathlib import Path

from benchmarks.app_api import HistoryStore
from benchmarks.sweep import _filters, sweep


def test_the_sweep_reads_three_pages_of_every_filter_in_every_order(tiny_history: Path) -> None:
    with HistoryStore(tiny_history) as store:
        filters = _filters(store)
        empty = [name for name, f in filters.items() if store.count(f, cap=10) == 0]
    assert len(filters) == 17 and len(empty) <= 3, empty  # a tiny history lacks a few
    worst, p95, over = sweep(tiny_history)
    assert (worst.name, p95.name, over.name) == (
        "history_any_filter_sort_max_5m",
        "history_any_filter_sort_p95_5m",
        "history_any_filter_sort_over_150ms_5m",
    )
    assert 0 < p95.value <= worst.value
    assert over.unit == f"of {len(filters) * 10 * 2 * 3}"
    assert 0 <= over.value <= len(filters) * 60
