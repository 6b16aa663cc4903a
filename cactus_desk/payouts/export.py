"""Export the payout history as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from cactus_desk.money import UnknownCurrencyError, to_major
from cactus_desk.payouts.states import state_text
from cactus_desk.payouts.statuses import status_label
from cactus_desk.payouts.store import PayoutRecord, iso_utc

HEADER = (
    "Record",
    "Created (UTC)",
    "Updated (UTC)",
    "Profile",
    "Environment",
    "Merchant ID",
    "Site ID",
    "Request ID",
    "Invoice ID",
    "Site login",
    "Method",
    "Currency",
    "Amount",
    "Amount (minor units)",
    "State",
    "Gateway status",
    "Message",
    "Detail",
    "Recipient",
)

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: str) -> str:
    """Prefix ``'`` to text a spreadsheet would otherwise evaluate as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def major_amount(minor: int, currency: str) -> str:
    """The amount in major units without grouping (``"1500.50"``); ``""`` for an unknown code."""
    try:
        return format(to_major(minor, currency), "f")
    except UnknownCurrencyError:
        return ""


def _recipient(request: Mapping[str, Any]) -> str:
    fields = request.get("additional_fields") or {}
    if not isinstance(fields, Mapping):
        return ""
    return "; ".join(f"{key}={fields[key]}" for key in sorted(fields))


def _row(record: PayoutRecord) -> list[str]:
    cells = [
        str(record.id),
        iso_utc(record.created_at),
        iso_utc(record.updated_at),
        record.profile_name,
        record.environment,
        record.merchant_id,
        str(record.site_id),
        record.request_id,
        record.invoice_id or "",
        record.site_login,
        record.method,
        record.currency,
        major_amount(record.amount_minor, record.currency),
        str(record.amount_minor),
        state_text(record.state, record.gateway_status),
        status_label(record.gateway_status),
        record.message,
        record.detail,
        _recipient(record.request),
    ]
    return [guard_cell(cell) for cell in cells]


def write_csv(records: Iterable[PayoutRecord], stream: TextIO) -> int:
    """Write a header and one row per record; return the number of records written.

    Open ``stream`` with ``newline=""`` so the csv module controls line endings. Recipient
    fields are written as stored, which is masked: the history never holds a full card.
    """
    writer = csv.writer(stream)
    writer.writerow(HEADER)
    count = 0
    for record in records:
        writer.writerow(_row(record))
        count += 1
    return count
