"""The history's totals for the filtered payouts, written as CSV or an XLSX workbook.

Two tables: per currency and state (count, sum in minor and major units), and per day and
currency (sent, paid, declined). Text cells a spreadsheet would run as a formula are guarded.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from cactus_desk.history.export import guard_cell, major_amount
from cactus_desk.history.types import DayTotal, TotalRow
from cactus_desk.payouts.states import State

TOTALS_HEADER = ("Currency", "State", "Payouts", "Amount (minor units)", "Amount")
DAILY_HEADER = (
    "Day",
    "Currency",
    "Payouts",
    "Sent (minor units)",
    "Paid (minor units)",
    "Declined (minor units)",
    "Sent",
    "Paid",
    "Declined",
)


def day_text(day: int) -> str:
    """A day number since the epoch as ``YYYY-MM-DD``."""
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


def state_label(state: str) -> str:
    """The state's word for a person (the code itself if unknown)."""
    try:
        return State(state).label
    except ValueError:
        return state


def totals_rows(totals: Sequence[TotalRow]) -> list[list[Any]]:
    """The per-currency-and-state table, a grand line per currency after its states."""
    rows: list[list[Any]] = []
    for currency in sorted({t.currency for t in totals}):
        mine = [t for t in totals if t.currency == currency]
        for t in mine:
            amount = major_amount(t.amount_minor, currency)
            rows.append(
                [guard_cell(currency), state_label(t.state), t.count, t.amount_minor, amount]
            )
        count = sum(t.count for t in mine)
        minor = sum(t.amount_minor for t in mine)
        rows.append([guard_cell(currency), "All", count, minor, major_amount(minor, currency)])
    return rows


def daily_rows(days: Sequence[DayTotal]) -> list[list[Any]]:
    """The per-day table, oldest first."""
    return [
        [
            day_text(d.day),
            guard_cell(d.currency),
            d.count,
            d.sent_minor,
            d.paid_minor,
            d.declined_minor,
            major_amount(d.sent_minor, d.currency),
            major_amount(d.paid_minor, d.currency),
            major_amount(d.declined_minor, d.currency),
        ]
        for d in days
    ]


def write_totals_csv(totals: Sequence[TotalRow], days: Sequence[DayTotal], stream: IO[str]) -> None:
    """Both tables, one after the other with a blank line between."""
    writer = csv.writer(stream)
    writer.writerow(TOTALS_HEADER)
    writer.writerows(totals_rows(totals))
    writer.writerow([])
    writer.writerow(DAILY_HEADER)
    writer.writerows(daily_rows(days))


def write_totals_xlsx(totals: Sequence[TotalRow], days: Sequence[DayTotal], path: Path) -> None:
    """A workbook with a "Totals" and a "Daily" sheet; minor units as whole numbers."""
    from openpyxl import Workbook  # loaded on first use

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its first sheet
    sheet.title = "Totals"
    sheet.append(list(TOTALS_HEADER))
    for row in totals_rows(totals):
        sheet.append(row)
    daily = book.create_sheet("Daily")
    daily.append(list(DAILY_HEADER))
    for row in daily_rows(days):
        daily.append(row)
    book.save(path)
