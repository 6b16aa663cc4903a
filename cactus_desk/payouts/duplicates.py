"""Spotting a payout that repeats a recent one, so sending it needs an explicit override.

A repeat is the same site login, method, recipient, amount and currency, in the same
environment, within ``WINDOW_MS``, unless the earlier one certainly moved no money (REJECTED,
which is a verified refusal, or NOT_SENT); a refusal that could not be verified
(REFUSED_UNVERIFIED) counts as possibly paid. The recipient is compared on the fields that
identify them. A card number is compared as stored, first 6 / last 4 together with the
holder: a plain hash of a full card number could be reversed by trying every number, so none
is kept.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from cactus_desk.catalog import Catalog, UnknownMethodError, load_catalog
from cactus_desk.history.port import HistoryReader
from cactus_desk.history.types import DuplicateProbe, NewAttempt, PayoutRecord, now_ms
from cactus_desk.payouts.draft import mask_card
from cactus_desk.payouts.states import State

if TYPE_CHECKING:
    from cactus_desk.payouts.payout import Payout

WINDOW_MS = 24 * 3600 * 1000
# Field checks (catalog "check" names) whose values say who receives the money.
IDENTIFYING_CHECKS = frozenset(
    {
        "card_number",
        "holder_name",
        "phone",
        "account_number",
        "skrill_account",
        "wise_tag",
        "papara_account",
        "pix_key",
    }
)
_COMPACT_CHECKS = frozenset({"card_number", "phone", "account_number"})
_NO_MONEY_MOVED = frozenset({State.REJECTED, State.NOT_SENT})
# Past this many different amounts in a day, a batch's rows are all looked up.
AMOUNT_FILTER_LIMIT = 100_000


def identifying_fields(method: str) -> dict[str, str]:
    """Wire name -> check name of the fields of ``method`` that identify the recipient."""
    return dict(_identifying(load_catalog(), method))


@lru_cache(maxsize=256)
def _identifying(catalog: Catalog, method: str) -> tuple[tuple[str, str], ...]:
    """``identifying_fields`` sorted by wire name, worked out once per catalog and method."""
    try:
        spec = catalog.method(method)
    except UnknownMethodError:
        return ()
    return tuple(
        sorted(
            (field.wire, field.check) for field in spec.fields if field.check in IDENTIFYING_CHECKS
        )
    )


def _normalise(check: str, value: object) -> str:
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if check in _COMPACT_CHECKS:
        text = "".join(ch for ch in text if ch not in " -()")
        if check == "card_number" and "*" not in text:
            text = mask_card(text)  # compare a full number as it would be stored
        return text
    return " ".join(text.split()).casefold()


def recipient_key(method: str, fields: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """What identifies the recipient of a payout by ``method`` with ``fields`` (masked or not)."""
    return tuple(
        (wire, _normalise(check, fields.get(wire, "")))
        for wire, check in _identifying(load_catalog(), method)
    )


def find_recent_duplicates(
    store: HistoryReader, attempt: NewAttempt, now: int | None = None
) -> list[PayoutRecord]:
    """Records that ``attempt`` would repeat, newest first; empty when it is not a repeat.

    ``now`` is epoch milliseconds (default: the current time). Call before sending; the
    person must confirm sending anyway.
    """
    candidates = store.recent_similar(
        DuplicateProbe(
            environment=attempt.environment,
            site_login=attempt.site_login,
            method=attempt.method,
            currency=attempt.currency,
            amount_minor=attempt.amount_minor,
            since=_window_start(now),
            exclude_states=_NO_MONEY_MOVED,
        )
    )
    wanted = recipient_key(attempt.method, attempt.request_fields)
    matches = []
    for record in candidates:
        fields = record.request.get("additional_fields") or {}
        if recipient_key(record.method, fields) == wanted:
            matches.append(record)
    return matches


def find_recent_duplicates_many(
    store: HistoryReader, attempts: Sequence[NewAttempt], now: int | None = None
) -> list[list[PayoutRecord]]:
    """``find_recent_duplicates`` for many attempts in one lookup (``recent_similar_many``)."""
    found = _similar_many(
        store,
        ((a.environment, a.site_login, a.method, a.currency, a.amount_minor) for a in attempts),
        now,
    )
    return _same_recipient(
        found, lambda index: recipient_key(attempts[index].method, attempts[index].request_fields)
    )


class RecentAmounts(NamedTuple):
    """The amounts of one environment's payouts of a window that may have moved money."""

    environment: str
    amounts: frozenset[int]


def recent_amounts(
    store: HistoryReader, environment: str, now: int | None = None
) -> RecentAmounts | None:
    """The amounts ``environment``'s payouts of the 24 hours before ``now`` could be repeated
    in; None when there are too many different ones for a filter to pay its way."""
    found = store.recent_amounts(
        environment, _window_start(now), _NO_MONEY_MOVED, AMOUNT_FILTER_LIMIT
    )
    return None if found is None else RecentAmounts(environment, found)


def find_payout_duplicates_many(
    store: HistoryReader,
    payouts: Sequence[Payout],
    now: int | None = None,
    *,
    window: RecentAmounts | None = None,
) -> list[list[PayoutRecord]]:
    """``find_recent_duplicates_many`` for payouts not recorded yet, without first deriving
    what the history would keep of each: the recipient key masks a full card number itself,
    and it is worked out only for payouts the lookup found candidates for.

    ``window``: ``recent_amounts`` for the same ``now``, when known. A payout of its
    environment whose amount is not among them repeats nothing and is not looked up."""
    if window is not None:
        probed = [
            index
            for index, payout in enumerate(payouts)
            if payout.amount_minor in window.amounts
            or payout.target.environment != window.environment
        ]
        if len(probed) < len(payouts):
            found: list[list[PayoutRecord]] = [[] for _ in payouts]
            some = find_payout_duplicates_many(store, [payouts[i] for i in probed], now)
            for index, records in zip(probed, some, strict=True):
                found[index] = records
            return found
    found = _similar_many(
        store,
        (
            (p.target.environment, p.site_login, p.method, p.currency, p.amount_minor)
            for p in payouts
        ),
        now,
    )
    return _same_recipient(
        found, lambda index: recipient_key(payouts[index].method, payouts[index].fields)
    )


def _similar_many(
    store: HistoryReader, subjects: Iterable[tuple[str, str, str, str, int]], now: int | None
) -> list[list[PayoutRecord]]:
    """``recent_similar_many`` for (environment, login, method, currency, amount) subjects,
    over the 24 hours before ``now`` (default: the current time)."""
    since = _window_start(now)
    return store.recent_similar_many(
        [DuplicateProbe(*subject, since, _NO_MONEY_MOVED) for subject in subjects]
    )


def _window_start(now: int | None) -> int:
    """The start of the duplicate window ending at ``now`` (default: the current time)."""
    return (now_ms() if now is None else now) - WINDOW_MS


def _same_recipient(
    found: Sequence[list[PayoutRecord]], wanted: Callable[[int], tuple[tuple[str, str], ...]]
) -> list[list[PayoutRecord]]:
    """Of each subject's candidates, those paying the same recipient; ``wanted(i)`` is subject
    ``i``'s recipient key, worked out only when the lookup found candidates for it."""
    matches: list[list[PayoutRecord]] = []
    for index, candidates in enumerate(found):
        if not candidates:  # most payouts: no recipient to compare
            matches.append([])
            continue
        key = wanted(index)
        matches.append(
            [
                record
                for record in candidates
                if recipient_key(record.method, record.request.get("additional_fields") or {})
                == key
            ]
        )
    return matches
