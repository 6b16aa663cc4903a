"""The clerk's filters as SQL both adapters share, and the aging rule.

A payout is *open* while its money is not decided: still submitting, in doubt, or accepted
without a final gateway status (Success or Declined). An open payout older than the aging
limit (default 24 hours) is *aged*. The recipient search is each adapter's own (a trigram
index in either); the range and status filters here are plain comparisons on indexed columns.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from cactus_desk.history.types import HistoryFilter
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus

#: What a recipient is for the recipient search: these fields of the recorded body (where a
#: card number is already masked), in this order, in both adapters' search columns.
RECIPIENT_FIELDS = (
    "card_number",
    "card_holder",
    "phone_number",
    "phone_holder",
    "account_number",
    "account_holder",
    "skrill_account",
    "skrill_holder",
    "wise_tag",
    "wise_holder",
    "papara_account",
    "papara_holder",
    "pix_transfer_key",
    "username",
)
DEFAULT_AGING_MS = 24 * 3600 * 1000
FINAL_STATUSES = (int(GatewayStatus.SUCCESS), int(GatewayStatus.DECLINE))
OPEN_STATES = (State.SUBMITTING, State.UNKNOWN, State.REFUSED_UNVERIFIED)


def is_open(state: State | str, gateway_status: int | None) -> bool:
    """True while the payout's money is not decided."""
    if state in OPEN_STATES:
        return True
    return state == State.ACCEPTED and gateway_status not in FINAL_STATUSES


def is_aged(
    state: State | str,
    gateway_status: int | None,
    created_at: int,
    now_ms: int,
    limit_ms: int = DEFAULT_AGING_MS,
) -> bool:
    """True for an open payout created more than ``limit_ms`` before ``now_ms``."""
    return is_open(state, gateway_status) and created_at < now_ms - limit_ms


def range_clauses(
    history_filter: HistoryFilter, mark: str, *, plus: str = ""
) -> tuple[list[str], list[Any]]:
    """The amount, date, status and aging clauses with ``mark`` as the placeholder.

    ``plus="+"`` (SQLite) keeps the planner off each column's index, so it walks the sort's
    index instead.
    """
    clauses: list[str] = []
    params: list[Any] = []
    f = history_filter
    # With a date range the (currency, created_at) index narrows best: a unary + keeps the
    # planner off the amount index, whose range spans every date.
    amount = "+amount_minor" if f.created_from is not None else f"{plus}amount_minor"
    if f.amount_min is not None:
        clauses.append(f"{amount} >= {mark}")
        params.append(f.amount_min)
    if f.amount_max is not None:
        clauses.append(f"{amount} <= {mark}")
        params.append(f.amount_max)
    created, status, state = f"{plus}created_at", f"{plus}gateway_status", f"{plus}state"
    if f.created_from is not None:
        clauses.append(f"{created} >= {mark}")
        params.append(f.created_from)
    if f.created_to is not None:
        clauses.append(f"{created} < {mark}")
        params.append(f.created_to)
    if f.gateway_statuses:
        codes = sorted(f.gateway_statuses)
        clauses.append(f"{status} IN ({', '.join([mark] * len(codes))})")
        params.extend(codes)
    if f.aged_before is not None:
        states = ", ".join([mark] * len(OPEN_STATES))
        finals = ", ".join([mark] * len(FINAL_STATUSES))
        clauses.append(
            f"{created} < {mark} AND ({state} IN ({states}) OR ({state} = {mark} AND "
            f"({status} IS NULL OR {status} NOT IN ({finals}))))"
        )
        params.extend(
            [f.aged_before, *[str(s) for s in OPEN_STATES], str(State.ACCEPTED), *FINAL_STATUSES]
        )
    return clauses, params


PRESETS = ("today", "yesterday", "this week", "this month")


def preset_range(preset: str, now: datetime) -> tuple[int, int]:
    """``[from, to)`` in ms since the epoch for a date preset, in ``now``'s time zone (the
    desk's local time: a clerk's "today" is their own day). The week starts on Monday."""
    start_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if preset == "today":
        start, end = start_today, start_today + timedelta(days=1)
    elif preset == "yesterday":
        start, end = start_today - timedelta(days=1), start_today
    elif preset == "this week":
        start = start_today - timedelta(days=start_today.weekday())
        end = start + timedelta(days=7)
    elif preset == "this month":
        start = start_today.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"Unknown date preset: {preset!r}")
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def totals_sql(where: str, source: str = "payouts") -> str:
    """Counts and sums per currency and state under ``where`` (a WHERE clause or '')."""
    return (
        "SELECT currency, state, count(*) AS n, coalesce(sum(amount_minor), 0) AS total "
        f"FROM {source}{where} GROUP BY currency, state ORDER BY currency, state"
    )


def daily_sql(where: str, mark: str, source: str = "payouts", zone: LocalZone | None = None) -> str:
    """Per-day sums under ``where``; the first parameter (``mark``) is the UTC offset in ms
    (unused with ``zone``, whose own days are summed), the last the row limit. A decline is
    status Declined or a signed refusal."""
    day = f"((created_at + {mark}) / 86400000)"
    if zone is not None:
        day = f"({zone.day_sql('created_at')} + 0 * {mark})"
    return (
        f"SELECT {day} AS day, currency, count(*) AS n, "
        "coalesce(sum(amount_minor), 0) AS sent, "
        "coalesce(sum(CASE WHEN gateway_status = 4 THEN amount_minor ELSE 0 END), 0) AS paid, "
        "coalesce(sum(CASE WHEN gateway_status = 5 OR state = 'REJECTED' "
        "THEN amount_minor ELSE 0 END), 0) AS declined "
        f"FROM {source}{where} GROUP BY 1, currency ORDER BY 1 DESC, currency LIMIT {mark}"
    )


DAY_MS = 86_400_000
_FIRST_MS = 0  # payouts are never older than 1970: offsets are read from then on
_LAST_MS = 4_102_444_800_000  # 2100-01-01, far enough for any payout


@dataclass(frozen=True)
class LocalZone:
    """A desk's time zone as its UTC offsets: ``changes`` is ``(from_ms, offset_ms)`` pairs
    in time order (the first from the earliest time), so a day is the desk's own day whatever
    its offset (+5:30, +5:45) and across daylight-saving changes."""

    changes: tuple[tuple[int, int], ...]

    @classmethod
    def fixed(cls, offset_ms: int) -> LocalZone:
        """A zone that is always ``offset_ms`` ahead of UTC."""
        return cls(((-(2**62), offset_ms),))

    @property
    def key(self) -> str:
        """A short name of these offsets (two desks with equal offsets share it)."""
        text = ";".join(f"{start}:{offset}" for start, offset in self.changes)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def offset_at(self, at_ms: int) -> int:
        """The UTC offset in ms at ``at_ms``."""
        index = bisect.bisect_right(self.changes, (at_ms, 2**62)) - 1
        return self.changes[max(index, 0)][1]

    def day_of(self, at_ms: int) -> int:
        """The local day number (days since 1970-01-01 in local time) of ``at_ms``."""
        return (at_ms + self.offset_at(at_ms)) // DAY_MS

    def day_start(self, at_ms: int) -> bool:
        """Whether ``at_ms`` is the first instant of a local day."""
        return (at_ms + self.offset_at(at_ms)) % DAY_MS == 0

    def day_sql(self, column: str) -> str:
        """SQL for the local day number of ``column`` (ms since the epoch, never negative)."""
        if len(self.changes) == 1:
            return f"(({column} + {int(self.changes[0][1])}) / {DAY_MS})"
        whens = " ".join(
            f"WHEN {column} >= {int(start)} THEN {int(offset)}"
            for start, offset in reversed(self.changes[1:])
        )
        return f"(({column} + CASE {whens} ELSE {int(self.changes[0][1])} END) / {DAY_MS})"


def _offset_ms(at_ms: int, tz: tzinfo | None) -> int:
    if tz is None:
        return int(time.localtime(at_ms // 1000).tm_gmtoff) * 1000
    offset = datetime.fromtimestamp(at_ms // 1000, tz).utcoffset()
    return int(offset.total_seconds()) * 1000 if offset else 0


def local_zone(tz: tzinfo | None = None) -> LocalZone:
    """The offsets of ``tz`` (this process's local time zone, ``TZ`` or the system's, when
    None) from 1970 to 2100, read day by day and each change found to the second."""
    return _zone_of(tz, os.environ.get("TZ") if tz is None else None)


@functools.lru_cache(maxsize=16)
def _zone_of(tz: tzinfo | None, _tz_name: str | None) -> LocalZone:
    changes: list[tuple[int, int]] = [(-(2**62), _offset_ms(_FIRST_MS, tz))]
    at = _FIRST_MS
    while at < _LAST_MS:
        after = at + DAY_MS
        if _offset_ms(after, tz) != changes[-1][1]:
            low, high = at // 1000, after // 1000  # the change is in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_ms(middle * 1000, tz) == changes[-1][1]:
                    low = middle
                else:
                    high = middle
            changes.append((high * 1000, _offset_ms(high * 1000, tz)))
        at = after
    return LocalZone(tuple(changes))
