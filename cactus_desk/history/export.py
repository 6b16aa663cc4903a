"""Export the payout history as CSV, safe to open in a spreadsheet.

After the fixed columns, each recipient field the catalog knows has a column of its own,
named by its wire name and holding the value as stored (card numbers masked). With ``bom``
the file starts with a UTF-8 byte order mark, which Excel needs to read it as UTF-8.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from cactus_desk.catalog import load_catalog
from cactus_desk.history.port import HistoryReader
from cactus_desk.history.types import HistoryFilter, PayoutRecord, SortKey, iso_utc
from cactus_desk.money import UnknownCurrencyError, to_major, with_decimals
from cactus_desk.payouts.states import state_text
from cactus_desk.payouts.statuses import status_label

_FIXED_HEADER = (
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

BOM = "\ufeff"


@functools.cache
def recipient_columns() -> tuple[str, ...]:
    """The wire names of every recipient field in the catalog, in catalog order, once each."""
    names: dict[str, None] = {}
    for method in load_catalog().methods:
        for spec in method.fields:
            names.setdefault(spec.wire, None)
    return tuple(names)


#: The export's header: the fixed columns, then one per recipient field.
HEADER = (*_FIXED_HEADER, *recipient_columns())


# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: str) -> str:
    """Prefix ``'`` to text a spreadsheet would otherwise evaluate as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def major_amount(minor: int, currency: str, decimals: Mapping[str, int] | None = None) -> str:
    """The amount in major units without grouping (``"1500.50"``); ``""`` for an unknown code.

    ``decimals`` is the profile's override of the currency's decimals, if any.
    """
    try:
        return format(to_major(minor, with_decimals(currency, decimals)), "f")
    except UnknownCurrencyError:
        return ""


def _recipient(request: Mapping[str, Any]) -> str:
    fields = request.get("additional_fields") or {}
    if not isinstance(fields, Mapping):
        return ""
    return "; ".join(f"{key}={fields[key]}" for key in sorted(fields))


def _recipient_cells(request: Mapping[str, Any]) -> list[str]:
    fields = request.get("additional_fields") or {}
    if not isinstance(fields, Mapping):
        fields = {}
    cells = []
    for name in recipient_columns():
        value = fields.get(name)
        cells.append("" if value is None else str(value))
    return cells


def _row(record: PayoutRecord, decimals: Mapping[str, int] | None) -> list[str]:
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
        major_amount(record.amount_minor, record.currency, decimals),
        str(record.amount_minor),
        state_text(record.state, record.gateway_status),
        status_label(record.gateway_status),
        record.message,
        record.detail,
        _recipient(record.request),
        *_recipient_cells(record.request),
    ]
    return [guard_cell(cell) for cell in cells]


ProfileDecimals = Mapping[str, Mapping[str, int]]
"""A profile id -> that profile's decimals overrides (currency code -> decimals)."""


def write_csv(
    records: Iterable[PayoutRecord],
    stream: TextIO,
    *,
    bom: bool = False,
    decimals: ProfileDecimals | None = None,
) -> int:
    """Write a header and one row per record; return the number of records written.

    Open ``stream`` with ``newline=""`` so the csv module controls line endings. Recipient
    fields are written as stored, which is masked: the history never holds a full card.
    ``bom`` starts the text with a UTF-8 byte order mark (for Excel). ``decimals`` maps a
    profile id to its decimals overrides, so amounts read as that profile sends them.
    """
    if bom:
        stream.write(BOM)
    writer = csv.writer(stream)
    writer.writerow(HEADER)
    count = 0
    for record in records:
        writer.writerow(_row(record, (decimals or {}).get(record.profile_id)))
        count += 1
    return count


def export_csv(
    store: HistoryReader,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    stream: TextIO,
    *,
    bom: bool = False,
    decimals: ProfileDecimals | None = None,
) -> int:
    """Write the records of ``store`` that match to ``stream`` as CSV; return the row count.

    The records are streamed from one snapshot (``iter_records``). ``bom`` starts the file
    with a UTF-8 byte order mark, for Excel; ``decimals`` maps profile ids to their decimals.
    """
    records = store.iter_records(history_filter, sort, descending)
    return write_csv(records, stream, bom=bom, decimals=decimals)
