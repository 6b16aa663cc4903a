"""Checking every row of a batch with the form's own checks, before anything is sent.

Each row becomes a ``Payout`` through ``payouts.payout.payout_for`` (the catalog and field
checks of the one-off form). On top: values a spreadsheet shortened to scientific notation,
request ids repeated in the file, payouts repeated in the file or in the last 24 hours of
history, totals per currency (against the balance when the gateway gives it) and a file
imported before.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from cactus_desk.batch.columns import BASE_COLUMNS, missing_columns
from cactus_desk.batch.ids import batch_id, row_request_id
from cactus_desk.batch.reading import Table
from cactus_desk.batch.store import batch_records
from cactus_desk.catalog import Catalog, UnknownMethodError, load_catalog
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import BatchEntry, PayoutRecord, now_ms
from cactus_desk.money import format_major
from cactus_desk.payouts.duplicates import (
    RecentAmounts,
    find_payout_duplicates_many,
    recent_amounts,
    recipient_key,
)
from cactus_desk.payouts.payout import Payout, PayoutInvalidError, PayoutTarget, build_payout
from cactus_desk.profiles import Profile

SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
SCIENTIFIC_MESSAGE = (
    "{value} looks like a number the spreadsheet shortened to scientific notation, losing "
    "digits; format the column as text and type the full value again."
)
_SIGNS = frozenset("+-")
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n", ""})
LOOKUP_CHUNK = 1000  # rows per duplicate lookup in the history while later rows are checked


@dataclass
class BatchRow:
    """One row: its line, its values by wire name, and what validation found."""

    index: int
    line: int
    values: dict[str, str]
    request_id: str = ""
    payout: Payout | None = None
    errors: dict[str, str] = field(default_factory=dict)  # column (wire name) -> message
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the row can be sent."""
        return self.payout is not None and not self.errors


@dataclass
class Batch:
    """A validated batch: its id, rows, totals and file-level warnings."""

    batch_id: str
    file_sha256: str
    profile: Profile
    rows: list[BatchRow]
    columns: tuple[str, ...]
    totals: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    problems: list[str] = field(default_factory=list)  # file-level errors: nothing sendable
    warnings: list[str] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)  # available, minor units
    parent: str | None = None
    file_name: str = ""

    def entry(self) -> BatchEntry:
        """What the history keeps of this batch."""
        return BatchEntry(
            batch_id=self.batch_id,
            merchant_id=self.profile.merchant_id,
            site_id=self.profile.site_id,
            profile_id=self.profile.id,
            file_sha256=self.file_sha256,
            file_name=self.file_name,
            row_count=len(self.rows),
            parent=self.parent,
        )

    @property
    def bad_rows(self) -> list[BatchRow]:
        """Rows with at least one error."""
        return [row for row in self.rows if not row.valid]

    @property
    def ok(self) -> bool:
        """True when every row is valid and the file has no problem."""
        return not self.problems and not self.bad_rows and bool(self.rows)

    def counts(self) -> dict[str, int]:
        """Rows per currency."""
        counts: dict[str, int] = {}
        for row in self.rows:
            if row.payout is not None:
                counts[row.payout.currency] = counts.get(row.payout.currency, 0) + 1
        return counts

    def total_text(self, currency: str) -> str:
        """A currency's total as major units, e.g. ``"1 500.00 RUB"``."""
        cur = self.profile.currency(currency)
        return f"{format_major(self.totals.get(currency, 0), cur)} {currency}"


BalanceReader = Callable[[], Mapping[str, Decimal]]
"""Available balances in major units by currency; may raise (the gateway is unreachable)."""


def rows_of(table: Table, mapping: Mapping[int, str]) -> list[BatchRow]:
    """The table's rows as values by wire name (columns not mapped are left out)."""
    rows = []
    for index, cells in enumerate(table.rows):
        if not any(cells):
            continue  # a blank line between rows
        values = {wire: cells[column].strip() for column, wire in mapping.items()}
        rows.append(BatchRow(index=index, line=table.line_of(index), values=values))
    return rows


def validate_batch(
    table: Table,
    mapping: Mapping[int, str],
    profile: Profile,
    *,
    history: HistoryStore | None = None,
    balances: BalanceReader | None = None,
    rows: Sequence[BatchRow] | None = None,
    batch: str | None = None,
    file_name: str = "",
) -> Batch:
    """Check every row of ``table`` (or the edited ``rows``) for ``profile``."""
    bid = batch or batch_id(profile.id, table.sha256)
    missing = missing_columns(mapping)
    with _collector_paused():
        result = Batch(
            batch_id=bid,
            file_sha256=table.sha256,
            profile=profile,
            rows=list(rows) if rows is not None else rows_of(table, mapping),
            columns=tuple(mapping[index] for index in sorted(mapping)),
            file_name=file_name,
        )
        if missing:
            result.problems.append(
                "The file has no column for " + ", ".join(missing) + " (name the columns "
                "by their wire names, or map them)."
            )
            return result
        if not result.rows:
            result.problems.append("The file has no rows to pay.")
            return result
        if history is None:
            check_rows(result)
        else:
            with _HistoryLookup(history, PayoutTarget.of(profile).environment) as lookup:
                check_rows(result, lookup.add)
                check_history(result, history, lookup.results())
    if balances is not None:
        check_balances(result, balances)
    result.warnings.extend(table.notes)
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a batch is built and checked: its objects are freed
    by reference counting, and the collector's passes over the ever larger heap (every few
    hundred new objects) took a sixth of the time. On again afterwards, if it was on.

    The batch's objects then go straight to the oldest generation (``freeze`` and
    ``unfreeze`` move every tracked object there without looking at it): they live as long as
    the batch, and the young generations' passes over them, two of 20 to 40 ms each per
    10,000 rows right after the check, freed nothing. A full collection still sees them. Not
    in a window whose heap is settled (``heap.settle_heap``): ``unfreeze`` would put back in
    every pass what the settling left out."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def check_rows(batch: Batch, checked: Callable[[BatchRow, Payout], None] | None = None) -> None:
    """Validate each row, find repeats inside the file and add up the totals; ``checked`` is
    told of each row that has a payout, as soon as it has it."""
    seen_ids: dict[str, int] = {}
    repeats = _RepeatFinder()
    batch.totals = {}
    rules = RowRules.of(batch)
    for row in batch.rows:
        row.errors = {}
        row.warnings = []
        row.payout = None
        validate_row(row, batch, rules)
        rid = row.request_id
        if rid in seen_ids and "request_id" not in row.errors:
            row.errors["request_id"] = (
                f"The request id {rid} is already used on line {seen_ids[rid]}."
            )
            row.payout = None
        seen_ids.setdefault(rid, row.line)
        payout = row.payout
        if payout is None:
            continue
        if checked is not None:
            checked(row, payout)
        earlier = repeats.first_line(payout, row.line)
        if earlier is not None:
            row.warnings.append(f"Repeats the payout on line {earlier}.")
        batch.totals[payout.currency] = batch.totals.get(payout.currency, 0) + payout.amount_minor


class _RepeatFinder:
    """Payouts of a file repeating an earlier row: the same login (casefolded), method,
    currency, amount and recipient. Rows are grouped by everything but the recipient first;
    the recipient's key is worked out only for rows whose group already holds another."""

    def __init__(self) -> None:
        # (login, method, currency, amount) -> [payout, line, recipient key once worked out]
        self._groups: dict[tuple[str, str, str, int], list[list[Any]]] = {}

    def first_line(self, payout: Payout, line: int) -> int | None:
        """The line of the first earlier payout ``payout`` repeats, else None (and remember
        ``payout`` as on ``line``)."""
        coarse = (payout.site_login.casefold(), payout.method, payout.currency, payout.amount_minor)
        group = self._groups.get(coarse)
        if group is None:
            self._groups[coarse] = [[payout, line, None]]
            return None
        key = recipient_key(payout.method, payout.fields)
        for entry in group:
            if entry[2] is None:
                entry[2] = recipient_key(entry[0].method, entry[0].fields)
            if entry[2] == key:
                return int(entry[1])
        group.append([payout, line, key])
        return None


@dataclass(frozen=True)
class RowRules:
    """What every row of a batch is checked against, worked out once per batch: the profile's
    target, enabled methods and decimals, and the catalog (the form's own rules)."""

    profile: Profile
    target: PayoutTarget
    extensions: tuple[str, ...]
    decimals: Mapping[str, int]
    catalog: Catalog

    @classmethod
    def of(cls, batch: Batch) -> RowRules:
        """The rules for ``batch``'s profile."""
        profile = batch.profile
        return cls(
            profile,
            PayoutTarget.of(profile),
            tuple(profile.extensions),
            dict(profile.decimals),
            load_catalog(),
        )


class _RowDraft(NamedTuple):
    """A row's values as the draft ``build_payout`` checks (``DraftValues``). Not the form's
    pydantic ``PayoutDraft``: its checks are of types, and here every value is the text a
    cell gave and ``fields`` holds only text and booleans built by ``validate_row``."""

    site_login: str
    currency: str
    method: str
    amount_text: str
    fields: dict[str, str | bool]
    request_id: str


def validate_row(row: BatchRow, batch: Batch, rules: RowRules | None = None) -> None:
    """Build the row's payout through the form's checks; errors go to ``row.errors``."""
    rules = rules or RowRules.of(batch)
    values = row.values
    for wire, value in values.items():
        # The cheap tests first: a value without an exponent letter, or not starting as a
        # number does, cannot match.
        if (
            ("e" in value or "E" in value)
            and (value[:1].isdecimal() or value[:1] in _SIGNS)  # as SCIENTIFIC starts
            and wire != "amount"
            and SCIENTIFIC.fullmatch(value)
        ):
            row.errors[wire] = SCIENTIFIC_MESSAGE.format(value=value)
    given = values.get("request_id", "").strip()
    row.request_id = given or row_request_id(batch.batch_id, row.line)
    method_wire = values.get("method", "").strip()
    fields: dict[str, str | bool] = {}
    try:
        method = rules.catalog.method(method_wire)
    except UnknownMethodError:
        method = None
    if method is not None:
        for spec in method.fields:
            text = values.get(spec.wire, "").strip()
            if spec.kind == "bool":
                if text.lower() not in _TRUE | _FALSE:
                    row.errors.setdefault(spec.wire, "Write true or false.")
                    continue
                fields[spec.wire] = text.lower() in _TRUE
            elif text:
                fields[spec.wire] = text
    draft = _RowDraft(  # by position: a named tuple's keywords cost a row a microsecond
        values.get("site_login", ""),
        values.get("currency", "").strip().upper(),
        method_wire,
        values.get("amount", ""),
        fields,
        row.request_id,
    )
    try:
        # payout_for's build, with the profile's parts worked out once for the whole batch.
        payout = build_payout(
            draft, rules.target, extensions=rules.extensions, decimals=rules.decimals
        )
    except PayoutInvalidError as exc:
        for key, message in exc.errors.items():
            row.errors.setdefault(key, message)
        return
    except ValueError as exc:  # the gateway's own model refused a value
        row.errors.setdefault("method", str(exc))
        return
    if not row.errors:
        row.payout = payout


class _HistoryLookup:
    """The history's duplicate lookups of checked rows, made on a thread of their own while
    later rows are checked: a chunk of rows at a time, the database's part of the work done
    without the GIL. Both stores hand each call a connection of its own; the rows' own checks
    never wait for this thread, and ``results`` waits for all of it.

    The thread first reads the amounts the day's payouts of ``environment`` were for: a row
    with another amount repeats nothing, so only the others are looked up one by one."""

    def __init__(self, history: HistoryStore, environment: str) -> None:
        self._history = history
        self._environment = environment
        self._window: RecentAmounts | None = None
        self._window_read = False
        self._chunk = LOOKUP_CHUNK
        self._now = now_ms()  # one 24-hour window for the whole batch
        self._pending: list[tuple[BatchRow, Payout]] = []
        self._jobs: list[tuple[list[BatchRow], Future[list[list[PayoutRecord]]]]] = []
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-history")

    def __enter__(self) -> _HistoryLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an error, lookups not started are dropped; the one running is waited for.
        self._thread.shutdown(wait=True, cancel_futures=True)

    def add(self, row: BatchRow, payout: Payout) -> None:
        """Look ``row`` (checked, as ``payout``) up with the next chunk."""
        self._pending.append((row, payout))
        if len(self._pending) >= self._chunk:
            self._submit()

    def _submit(self) -> None:
        pending, self._pending = self._pending, []
        job = self._thread.submit(self._find, [payout for _, payout in pending])
        self._jobs.append(([row for row, _ in pending], job))

    def _find(self, payouts: list[Payout]) -> list[list[PayoutRecord]]:
        if not self._window_read:  # the first job; the jobs run one after another
            self._window = recent_amounts(self._history, self._environment, self._now)
            self._window_read = True
        return find_payout_duplicates_many(self._history, payouts, self._now, window=self._window)

    def results(self) -> list[tuple[BatchRow, list[PayoutRecord]]]:
        """Every added row with the records it may repeat (raises what a lookup raised)."""
        if self._pending:
            self._submit()
        found: list[tuple[BatchRow, list[PayoutRecord]]] = []
        for rows, job in self._jobs:
            found.extend(zip(rows, job.result(), strict=True))
        return found


def check_history(
    batch: Batch,
    history: HistoryStore,
    found: Sequence[tuple[BatchRow, list[PayoutRecord]]] | None = None,
) -> None:
    """Warn of rows repeating a payout of the last 24 hours, and of a file imported before.

    ``found``: each row with a payout and its candidates, already looked up (else looked up
    here)."""
    for entry in history.batches_for_file(batch.file_sha256):
        when = datetime.fromtimestamp(entry.created_at / 1000).strftime("%Y-%m-%d %H:%M")
        same = entry.batch_id == batch.batch_id
        batch.warnings.append(
            f"The same file (SHA-256 {batch.file_sha256[:12]}…) was imported on {when} as "
            f"batch {entry.batch_id}" + (" (this batch)." if same else " through another profile.")
        )
    earlier = batch_records(history, batch.batch_id)
    if earlier:
        batch.warnings.append(
            f"This file was imported before with this profile: {len(earlier)} of its rows are "
            "already in the history (batch "
            f"{batch.batch_id}); sending it again sends only rows never sent."
        )
    own = {record.request_id for record in earlier}
    if found is None:
        checked = [row for row in batch.rows if row.payout is not None]
        found = list(
            zip(
                checked,
                find_payout_duplicates_many(
                    history, [row.payout for row in checked if row.payout is not None]
                ),
                strict=True,
            )
        )
    for row, records in found:
        repeats = [
            record
            for record in records
            if record.request_id not in own and record.request_id != row.request_id
        ]
        if repeats:
            first = repeats[0]
            row.warnings.append(
                f"Repeats a payout of the last 24 hours: request {first.request_id} "
                f"({first.state.label})."
            )


def check_balances(batch: Batch, balances: BalanceReader) -> None:
    """Warn when a currency's total is above the available balance the gateway reports."""
    try:
        available = balances()
    except Exception as exc:
        batch.warnings.append(f"The balance could not be checked ({exc}).")
        return
    for code, total in sorted(batch.totals.items()):
        major = available.get(code)
        if major is None:
            continue
        cur = batch.profile.currency(code)
        minor = int(Decimal(major).scaleb(cur.exponent).to_integral_value())
        batch.balances[code] = minor
        if total > minor:
            batch.warnings.append(
                f"The {code} total {format_major(total, cur)} is above the available balance "
                f"{format_major(minor, cur)}: some payouts will be refused."
            )


REQUIRED_HEADERS = BASE_COLUMNS
