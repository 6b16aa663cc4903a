"""The first rows of a search's order, kept once a page had to sort every match for them;
and the facts a query's pages each need (a text's match count, a recipient's sample).

A search or a clerk's filter lists at most its first ``KEPT_ROWS`` matches (the window's
count stops there). When no index serves its order, a page sorts every match, however far
down it is: 0.3-5 s at 5M payouts, and again for the next page as the clerk scrolls. The
page that sorts keeps the ids of the first ``KEPT_ROWS`` rows of that order, so the next
pages of the same query are read by id. Kept ids hold only while the history is unchanged:
each is tagged with the data version it was read at and ignored once that moves on.

The facts are kept the same way: every page of a recipient's or a short search's query
counted its matches again (17 ms at 5M payouts), as did each of its orders.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

#: How many ids of an order are kept: the most rows a search or a clerk's filter lists.
KEPT_ROWS = 10_000
#: Orders kept at once (the history panel shows one; another desk window may show another).
KEPT_ORDERS = 4
#: Facts kept at once: a few per query, for the last few queries.
KEPT_FACTS = 32


@dataclass(frozen=True)
class _Order:
    version: int
    ids: array[int]
    complete: bool  # every match is in ids (fewer than KEPT_ROWS)


class KeptOrders:
    """The kept orders of one history, safe to share between reading threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orders: OrderedDict[Hashable, _Order] = OrderedDict()
        self._facts: OrderedDict[Hashable, tuple[int, object]] = OrderedDict()

    def ids(self, key: Hashable, version: int, offset: int, limit: int) -> list[int] | None:
        """The ids of rows ``offset`` to ``offset + limit`` of ``key``'s order, or None when
        that order is not kept at ``version`` or does not reach that far."""
        with self._lock:
            order = self._orders.get(key)
            if order is None or order.version != version:
                return None
            if offset + limit > len(order.ids) and not order.complete:
                return None
            self._orders.move_to_end(key)
            return order.ids[offset : offset + limit].tolist()

    def keep(self, key: Hashable, version: int, ids: Sequence[int], *, complete: bool) -> None:
        """Keep the first ids of ``key``'s order, read at data ``version``."""
        with self._lock:
            self._orders[key] = _Order(version, array("q", ids), complete)
            self._orders.move_to_end(key)
            while len(self._orders) > KEPT_ORDERS:
                self._orders.popitem(last=False)

    def fact(self, key: Hashable, version: int) -> tuple[object] | None:
        """``(value,)`` of the fact kept under ``key`` at ``version``, or None when none is."""
        with self._lock:
            kept = self._facts.get(key)
            if kept is None or kept[0] != version:
                return None
            self._facts.move_to_end(key)
            return (kept[1],)

    def keep_fact(self, key: Hashable, version: int, value: object) -> None:
        """Keep ``value`` (None too) under ``key``, read at data ``version``."""
        with self._lock:
            self._facts[key] = (version, value)
            self._facts.move_to_end(key)
            while len(self._facts) > KEPT_FACTS:
                self._facts.popitem(last=False)


@dataclass(frozen=True)
class Keeping:
    """Where a page keeps an order it sorted, and the data version its read started at."""

    orders: KeptOrders
    version: int
