"""A batch's records in the history, found through the port by their derived request ids.

Batch membership is carried by the request id (``cb-<batch>-<line>``, see ``ids``), which
the history keeps unique per merchant and site in both backends: the history's text search
finds a batch's rows, and the same id can never be recorded twice.
"""

from __future__ import annotations

from cactus_desk.batch.ids import batch_prefix
from cactus_desk.history.port import HistoryReader
from cactus_desk.history.types import HistoryFilter, PayoutRecord, SortKey


def batch_filter(batch: str) -> HistoryFilter:
    """The History filter that shows batch ``batch``'s rows."""
    return HistoryFilter(text=batch_prefix(batch))


def batch_records(history: HistoryReader, batch: str) -> list[PayoutRecord]:
    """Every record of ``batch``, in line order."""
    prefix = batch_prefix(batch)
    records = [
        record
        for record in history.iter_records(
            batch_filter(batch), sort=SortKey.CREATED_AT, descending=False
        )
        if record.request_id.startswith(prefix)
    ]
    return sorted(records, key=lambda record: record.request_id)


def records_by_request_id(
    history: HistoryReader, batch: str, request_ids: set[str] | None = None
) -> dict[str, PayoutRecord]:
    """The batch's records by request id, plus any of ``request_ids`` (ids a file gave)."""
    found = {record.request_id: record for record in batch_records(history, batch)}
    for request_id in sorted((request_ids or set()) - set(found)):
        for record in history.iter_records(HistoryFilter(text=request_id)):
            if record.request_id == request_id:
                found[request_id] = record
    return found
