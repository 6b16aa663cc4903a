"""Every sort the history panel offers, under state, currency and profile filters.

Pages of any sort under any exact filter are slices of one total order: the column (ASCII
letters folded, missing values first when ascending), then the record id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cactus_desk.gateway.outcomes import Accepted, Unknown, UnknownKind
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryRow, SortKey
from tests.history.contract.conftest import step_clock
from tests.history.contract.helpers import attempt

LOGINS = ("ivan", "IVAN", "anna", "Ølaf", "budi")
METHODS = ("card", "Card", "bank", "QIWI")
PROFILES = (("p1", "Shop A"), ("p2", "shop a"), ("p1", "Shop b"))


def _fold(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _missing_first(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    return (1, _fold(value) if isinstance(value, str) else value)


KEYS: dict[SortKey, Callable[[HistoryRow], Any]] = {
    SortKey.PROFILE: lambda row: (_fold(row.profile_name), row.id),
    SortKey.REQUEST_ID: lambda row: (_fold(row.request_id), row.id),
    SortKey.INVOICE_ID: lambda row: (_missing_first(row.invoice_id), row.id),
    SortKey.SITE_LOGIN: lambda row: (_fold(row.site_login), row.id),
    SortKey.METHOD: lambda row: (_fold(row.method), row.id),
    SortKey.GATEWAY_STATUS: lambda row: (_missing_first(row.gateway_status), row.id),
}

FILTERS = [
    HistoryFilter(),
    HistoryFilter(states=frozenset({"UNKNOWN"})),
    HistoryFilter(states=frozenset({"ACCEPTED", "UNKNOWN"}), currency="USD"),
    HistoryFilter(profile_id="p1"),
]


@pytest.mark.parametrize("descending", [True, False])
def test_every_sort_under_every_exact_filter_pages_one_total_order(
    open_store: Callable[..., HistoryStore], descending: bool
) -> None:
    store = open_store(step_clock())
    for i in range(15):
        profile_id, profile_name = PROFILES[i % 3]
        record_id = store.create_attempt(
            attempt(
                request_id=("PO-", "po-", "x-")[i % 3] + f"{i * 7 % 11}",
                site_login=f"{LOGINS[i % 5]}{i % 2}",
                method=METHODS[i % 4],
                currency=("USD", "RUB")[i % 2],
                profile_id=profile_id,
                profile_name=profile_name,
            )
        )
        store.mark_sending(record_id)
        if i % 4 == 1:
            store.record_outcome(record_id, Unknown("No answer in time.", UnknownKind.TIMEOUT))
        else:
            invoice = ("INV-", "inv-", "7")[i % 3] + f"{i * 5 % 9}"
            store.record_outcome(record_id, Accepted(invoice, (3, 2)[i % 2], "Initialized"))
    everything = store.page(limit=100)
    for history_filter in FILTERS:
        matching = [
            row
            for row in everything
            if (not history_filter.states or str(row.state) in history_filter.states)
            and history_filter.currency in (None, row.currency)
            and history_filter.profile_id in (None, row.profile_id)
        ]
        assert len(matching) >= 3
        for sort, key in KEYS.items():
            expected = [row.id for row in sorted(matching, key=key, reverse=descending)]
            pages = [
                row.id
                for offset in range(0, len(expected), 2)
                for row in store.page(history_filter, sort, descending, offset, 2)
            ]
            assert pages == expected, (history_filter, sort)
