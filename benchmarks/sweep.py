"""Every filter with every sort at 5M payouts, read by the store alone.

The history group times a few interactions end to end, painted. The issue asks more: any
sort combined with any filter. This group opens the cached 5M history with the store (no
window) and, for each of 17 filters and combinations (exact filters, a 1-2 and a 3+
character search, the clerk's recipient, amount, date, gateway-status and aging filters)
in each of the ten orders both ways, reads the first page, then the middle one, then the
last, as a clerk reaches them: what a page costs the worker before the window paints it, so
a lower bound of the painted time. A search or a clerk's filter lists its first 10,000
matches at most (the window's count stops there), so its last page is the 10,000th row.
First it reads ahead the sort keys and the sorts' indexes, as the window does two seconds
after the history opens (``warm_up``); the log gives how long that took.

The worst page and the 95th percentile are the figures; the log lists the ten worst pages.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from benchmarks.app_api import HistoryFilter, HistoryStore, SortKey
from benchmarks.common import Result, emit
from benchmarks.generate import LARGE_ROWS, history_file

PAGE = 200  # the history panel's page
LISTED = 10_000  # the most rows a search or a clerk's filter lists
DAY_MS = 86_400_000
GOAL_MS = 150.0
OPEN = frozenset({"UNKNOWN", "REFUSED_UNVERIFIED", "SUBMITTING"})


def _filters(store: HistoryStore) -> dict[str, HistoryFilter]:
    """The filters and combinations, their values taken from the history itself."""
    profile = store.distinct_profiles()[0][0]
    newest = store.page(HistoryFilter(), SortKey.CREATED_AT, True, 0, 1)[0].created_at
    amounts = {"amount_min": 100_000, "amount_max": 500_000, "currency": "RUB"}
    return {
        "everything": HistoryFilter(),
        "profile": HistoryFilter(profile_id=profile),
        "currency": HistoryFilter(currency="RUB"),
        "state": HistoryFilter(states=frozenset({"ACCEPTED"})),
        "attention": HistoryFilter(states=OPEN),
        "review": HistoryFilter(needs_review=True),
        "state+currency+profile": HistoryFilter(
            states=frozenset({"ACCEPTED"}), currency="RUB", profile_id=profile
        ),
        "text 'petrov'": HistoryFilter(text="petrov"),
        "text 'yu'": HistoryFilter(text="yu"),
        "text 'petrov'+currency": HistoryFilter(text="petrov", currency="RUB"),
        "text 'yu'+profile": HistoryFilter(text="yu", profile_id=profile),
        "recipient": HistoryFilter(recipient="petrov"),
        "amount range": HistoryFilter(**amounts),  # type: ignore[arg-type]
        "30 days": HistoryFilter(created_from=newest - 30 * DAY_MS, created_to=newest),
        "gateway status": HistoryFilter(gateway_statuses=frozenset({3})),
        "not final after 24 h": HistoryFilter(aged_before=newest - DAY_MS),
        "amount+90 days+profile": HistoryFilter(
            created_from=newest - 90 * DAY_MS,
            created_to=newest,
            profile_id=profile,
            **amounts,  # type: ignore[arg-type]
        ),
    }


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def sweep(path: Path) -> list[Result]:
    """Every page of every filter and sort, timed; the figures and a log of the worst."""
    store = HistoryStore(path)
    timed: list[tuple[float, str]] = []
    try:
        started = time.perf_counter()
        store.warm_up()
        print(f"read ahead in {time.perf_counter() - started:.2f} s", flush=True)
        for name, history_filter in _filters(store).items():
            capped = bool(history_filter.text) or history_filter.narrowed()
            matches = store.count(history_filter, cap=LISTED if capped else None)
            for sort in SortKey:
                for descending in (True, False):
                    for page, offset in (
                        ("first", 0),
                        ("middle", matches // 2),
                        ("last", max(0, matches - PAGE)),
                    ):
                        started = time.perf_counter()
                        store.page(history_filter, sort, descending, offset, PAGE)
                        took = (time.perf_counter() - started) * 1000
                        way = "Z-A" if descending else "A-Z"
                        timed.append((took, f"{name} by {sort.value} {way}, {page} page"))
    finally:
        store.close()
    timed.sort(reverse=True)
    samples = [took for took, _ in timed]
    over = sum(1 for took in samples if took > GOAL_MS)
    print(f"{len(samples)} pages, {over} over {GOAL_MS:.0f} ms; the slowest:", flush=True)
    for took, what in timed[:10]:
        print(f"  {took:7.1f} ms  {what}", flush=True)
    return [
        Result("history_any_filter_sort_max_5m", round(samples[0], 1), "ms", None, "≤ 150 ms"),
        Result(
            "history_any_filter_sort_p95_5m",
            round(_percentile(samples, 0.95), 1),
            "ms",
            None,
            "reported",
        ),
        Result(
            "history_any_filter_sort_over_150ms_5m",
            over,
            f"of {len(samples)}",
            None,
            "reported",
        ),
    ]


def main(argv: list[str]) -> None:
    """``[--rows N]``: N makes a small history (for the tests and ``--quick``)."""
    rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else LARGE_ROWS
    emit(sweep(history_file(rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
