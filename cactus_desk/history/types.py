"""Backend-neutral value types and errors of the payout history.

Whatever stores the history (the SQLite file today) hands these out and raises only these
errors, so callers never see a database library's types.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cactus_desk.masking import scrub_card_numbers
from cactus_desk.payouts.states import State

if TYPE_CHECKING:
    from cactus_desk.callbacks.events import Event, EventOutcome

ENVIRONMENTS = ("live", "sandbox")


class HistoryError(Exception):
    """Base of every error the history raises."""


class HistoryUnavailableError(HistoryError):
    """The history cannot be read or written right now (busy, full disk, closed, damaged)."""


class HistoryPermissionError(HistoryUnavailableError):
    """The team history refused this login the operation (its role may not do it)."""


class TeamSetupError(HistoryError):
    """A team history's roles cannot be set up (e.g. this login may not create roles)."""


class TeamUserError(HistoryError, ValueError):
    """A team login that cannot be added, or a history that cannot be copied in; the
    message says why."""


class HistoryClosedError(HistoryUnavailableError, RuntimeError):
    """The history was closed (the window is shutting down, or it was replaced)."""


class DuplicateRequestIdError(HistoryError):
    """A payout with this request_id is already recorded for the merchant and site."""

    def __init__(self, request_id: str, merchant_id: str, site_id: int, existing_id: int | None):
        self.request_id = request_id
        self.merchant_id = merchant_id
        self.site_id = site_id
        self.existing_id = existing_id
        where = f" (history record {existing_id})" if existing_id is not None else ""
        super().__init__(
            f"Request ID {request_id!r} was already used for merchant {merchant_id!r}, "
            f"site {site_id}{where}. Nothing was sent; use a new request ID."
        )


class HistoryOpenError(HistoryError):
    """The history file cannot be opened or created; the message says why."""


class HistoryUnreachableError(HistoryOpenError):
    """A team history's server cannot be reached right now (down, restarting, no network):
    trying again later may succeed."""


class TotalsTooBroadError(HistoryError):
    """The totals of a filter the kept sums cannot answer would take too long to add up from
    the payouts themselves, so none are given (a partial sum never stands for the total).
    The message says how to narrow the filter."""


class RecordNotFoundError(HistoryError, LookupError):
    """No history record has this id."""


class OutcomeAlreadyRecordedError(HistoryError):
    """The attempt already has an outcome; an outcome is written once only."""


#: A backup's file name: ``history-<UTC time>-<reason>.sqlite3.gz`` (compressed; older
#: versions wrote plain ``.sqlite3`` copies, still listed and restored).
BACKUP_NAME = re.compile(r"^history-(\d{8}T\d{9})Z-([a-z0-9-]+)\.sqlite3(?:\.gz)?$")


def backup_time_ms(path: Path) -> int | None:
    match = BACKUP_NAME.match(path.name)
    if not match:
        return None
    moment = datetime.strptime(match.group(1)[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + int(match.group(1)[15:])


def backup_time_text(path: Path) -> str:
    stamp = backup_time_ms(path)
    if stamp is None:
        return "time unknown"
    return datetime.fromtimestamp(stamp / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


class CorruptHistoryError(HistoryOpenError):
    """The history file is damaged; it was renamed to ``kept_path`` and left untouched.

    ``backup_path`` is the newest backup (None when there is none), for ``restore_backup``.
    """

    def __init__(self, problem: str, kept_path: Path, backup_path: Path | None) -> None:
        self.problem = problem
        self.kept_path = kept_path
        self.backup_path = backup_path
        command = f"cactus-desk --data-dir {shlex.quote(str(kept_path.parent))} history restore"
        offer = (
            f"The newest backup is {backup_path.name} ({backup_time_text(backup_path)}); "
            "restore it to continue with the payouts recorded up to then: the window offers "
            f"it when it starts, or run: {command}"
            if backup_path is not None
            else "There is no backup to restore; to start a new, empty history on purpose, "
            f"run: {command} --start-empty"
        )
        super().__init__(
            f"The payout history is damaged ({problem}). It was kept aside, unchanged, as "
            f"{kept_path.name}. {offer}"
        )


class MissingHistoryError(CorruptHistoryError):
    """The history file is missing (or empty) although this folder had a history before.

    Nothing is created in its place. ``evidence`` lists what shows that a history existed;
    ``kept_path`` is the newest file set aside (or None) and ``backup_path`` the newest backup.
    """

    def __init__(
        self,
        history: Path,
        evidence: list[str],
        kept_path: Path | None,
        backup_path: Path | None,
    ) -> None:
        self.problem = f"{history.name} is missing"
        self.kept_path = kept_path  # type: ignore[assignment]
        self.backup_path = backup_path
        self.evidence = evidence
        folder = shlex.quote(str(history.parent))
        if backup_path is not None:
            how = (
                f"To restore the newest backup ({backup_path.name}, "
                f"{backup_time_text(backup_path)}), stop every Cactus Desk process using this "
                f"folder and run: cactus-desk --data-dir {folder} history restore "
                "(the window offers the same when it starts)."
            )
        else:
            how = (
                "There is no backup to restore: put the history file back (a file kept aside "
                "can be renamed to history.sqlite3 once it is repaired)."
            )
        HistoryOpenError.__init__(
            self,
            f"The payout history {history} is missing, but this folder had one "
            f"({'; '.join(evidence)}). Cactus Desk will not start a new, empty history in its "
            f"place: payouts and callbacks would be recorded against nothing. {how} To start a "
            f"new, empty history on purpose, run: cactus-desk --data-dir {folder} history "
            "restore --start-empty",
        )


class BackupError(HistoryError):
    """A backup could not be made or restored; the message says why."""


def now_ms() -> int:
    """The current time as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def iso_utc(ms: int) -> str:
    """Render epoch milliseconds as ISO-8601 UTC, e.g. ``2024-05-01T10:22:33.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class NewAttempt:
    """What is about to be sent, with the recipient fields already masked."""

    profile_id: str
    profile_name: str
    environment: str
    merchant_id: str
    site_id: int
    request_id: str
    site_login: str
    method: str
    currency: str
    amount_minor: int
    request_fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"Environment must be 'live' or 'sandbox', not {self.environment!r}")
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise ValueError("The amount must be a whole number of minor units")
        if self.amount_minor <= 0:
            raise ValueError("The amount must be greater than zero")
        if isinstance(self.site_id, bool) or not isinstance(self.site_id, int):
            raise ValueError("The site ID must be a whole number")
        for name in ("profile_id", "merchant_id", "request_id", "site_login", "method", "currency"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"The {name.replace('_', ' ')} must not be empty")

    def request_payload(self) -> dict[str, Any]:
        """The request body as sent, without the signature and with recipient fields masked."""
        return {
            "merchant_id": self.merchant_id,
            "site_login": self.site_login,
            "site_id": self.site_id,
            "request_id": self.request_id,
            "amount": self.amount_minor,
            "currency": self.currency,
            "method": self.method,
            "additional_fields": dict(self.request_fields),
        }


@dataclass(frozen=True)
class PayoutRecord:
    """Everything stored about one attempt."""

    id: int
    created_at: int
    updated_at: int
    profile_id: str
    profile_name: str
    environment: str
    merchant_id: str
    site_id: int
    request_id: str
    invoice_id: str | None
    site_login: str
    method: str
    currency: str
    amount_minor: int
    state: State
    gateway_status: int | None
    message: str
    detail: str
    http_status: int | None
    unknown_kind: str | None
    request: dict[str, Any]
    response: dict[str, Any] | None
    status_source: str = "gateway"
    needs_review: bool = False
    review_message: str = ""
    received_amount: int | None = None
    received_currency: str | None = None
    description: str = ""
    sending_started_at: int | None = None
    send_attempts: int = 0
    status_conflict: bool = False


@dataclass(frozen=True)
class HistoryRow:
    """The columns a history table shows; no JSON, so a page of rows stays light."""

    id: int
    created_at: int
    updated_at: int
    profile_name: str
    environment: str
    request_id: str
    invoice_id: str | None
    site_login: str
    method: str
    currency: str
    amount_minor: int
    state: State
    gateway_status: int | None
    message: str
    status_source: str = "gateway"
    needs_review: bool = False
    status_conflict: bool = False
    profile_id: str = ""  # to read the amount with that profile's decimals


@dataclass(frozen=True)
class HistoryFilter:
    """What the history shows: a text search, and exact matches that are empty when unused."""

    text: str = ""
    states: frozenset[str] = frozenset()
    currency: str | None = None
    profile_id: str | None = None
    needs_review: bool = False  # only records flagged for review (conflicts, odd statuses)
    # The clerk's filters (unused when empty): a recipient's name, phone, account or card's
    # last digits; an amount range in minor units (with a currency); created in [from, to)
    # (ms since the epoch); the gateway's numeric statuses; not final and created before.
    recipient: str = ""
    amount_min: int | None = None
    amount_max: int | None = None
    created_from: int | None = None
    created_to: int | None = None
    gateway_statuses: frozenset[int] = frozenset()
    aged_before: int | None = None

    def narrowed(self) -> bool:
        """True when any of the clerk's filters (recipient, amount, dates, status, aging)
        is set: such a query is counted with a cap, like a text search."""
        return bool(
            self.recipient.strip()
            or self.amount_min is not None
            or self.amount_max is not None
            or self.created_from is not None
            or self.created_to is not None
            or self.gateway_statuses
            or self.aged_before is not None
        )


@dataclass(frozen=True)
class TotalRow:
    """How many payouts of one currency and state a filter selects, and their sum."""

    currency: str
    state: str
    count: int
    amount_minor: int


@dataclass(frozen=True)
class DayTotal:
    """One day's sums of one currency under a filter: everything sent, what the gateway paid
    (Success) and what it declined (Declined, or a signed refusal). ``day`` is the day's
    number since the epoch in the caller's time zone (see ``offset_ms``)."""

    day: int
    currency: str
    count: int
    sent_minor: int
    paid_minor: int
    declined_minor: int


MAX_CHART_DAYS = 400  # the daily totals a chart reads at most (over a year)


class SortKey(StrEnum):
    """The columns the history can be sorted by."""

    CREATED_AT = "created_at"
    PROFILE = "profile"
    REQUEST_ID = "request_id"
    INVOICE_ID = "invoice_id"
    SITE_LOGIN = "site_login"
    METHOD = "method"
    CURRENCY = "currency"
    AMOUNT = "amount"
    STATE = "state"
    GATEWAY_STATUS = "gateway_status"


@dataclass(frozen=True)
class OpenedHistory:
    """An open history, and whether its integrity check and daily backup are still due."""

    store: Any  # a HistoryStore (port.py imports this module)
    check_pending: bool


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed and the event that records it."""

    deleted: int
    cutoff: int
    event_id: int

    def line(self) -> str:
        """One sentence for the command line and the log."""
        noun = "callback" if self.deleted == 1 else "callbacks"
        return (
            f"Removed {self.deleted} unverified rejected {noun} received before "
            f"{iso_utc(self.cutoff)} (audit event {self.event_id})."
        )


@dataclass(frozen=True)
class ResendAudit:
    """One confirmed resend of a payout: when, which attempt, and what the record held."""

    confirmed_at: int
    attempt: int
    previous_state: str
    previous_message: str
    previous_detail: str


@dataclass(frozen=True)
class PayoutDetails:
    """One payout as its details pane shows it: the record, its timeline and its resends."""

    record: PayoutRecord
    events: tuple[Event, ...]
    resends: tuple[ResendAudit, ...]
    # Who acted, in the store's own word (a team store's database logins); empty where the
    # store keeps no logins (this computer's history); ``approved_by`` is None when the login
    # reading may not read the approvals.
    made_by: str = ""
    approved_by: tuple[str, ...] | None = ()
    settled_by: tuple[str, ...] = ()

    @property
    def newest_event_id(self) -> int:
        """The id of the newest event shown (0 when there is none)."""
        return self.events[-1].id if self.events else 0


class DuplicateProbe(NamedTuple):
    """What makes an earlier payout look like the same one: the duplicate guard's question.

    A named tuple: a batch asks thousands of these at once, and a tuple is made in a
    fraction of a frozen dataclass's time (``_replace`` gives a changed copy)."""

    environment: str
    site_login: str
    method: str
    currency: str
    amount_minor: int
    since: int  # epoch milliseconds
    exclude_states: frozenset[State] = frozenset({State.REJECTED, State.NOT_SENT})


@dataclass(frozen=True)
class InterruptedAttempt:
    """An attempt still SUBMITTING: what recovery needs to settle it truthfully."""

    record_id: int
    request_id: str
    sending_started_at: int | None
    send_attempts: int


@dataclass(frozen=True)
class ResendStart:
    """What a record held before a confirmed resend put it back to SUBMITTING."""

    record_id: int
    state: State
    message: str
    detail: str
    unknown_kind: str | None
    attempt: int


@dataclass(frozen=True)
class ManualEvent:
    """An event an operator's action adds to a payout's audit trail (source manual)."""

    record_id: int | None
    outcome: EventOutcome
    payload: dict[str, Any]
    message: str
    who: str


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance pass did: text-index merge steps, whether work is left (call
    again soon), and the WAL frames not yet copied into the file (-1 when unknown)."""

    merge_steps: int
    more: bool
    wal_frames_left: int


@dataclass(frozen=True)
class BatchEntry:
    """A batch file imported through a profile: its rows' request ids are derived from
    ``batch_id`` (``cb-<batch_id>-<line>``). ``created_at`` is the first import's."""

    batch_id: str
    merchant_id: str
    site_id: int
    profile_id: str
    file_sha256: str
    file_name: str
    row_count: int
    parent: str | None = None  # the batch whose refused rows this one pays again
    created_at: int = 0  # epoch milliseconds; set by the history
    created_by: str = ""  # on a team history, the login that began sending it (the database's)


def batch_entry(row: Any) -> BatchEntry:
    """A ``BatchEntry`` from a stored row (a mapping by column name)."""
    return BatchEntry(
        batch_id=row["batch_id"],
        merchant_id=row["merchant_id"],
        site_id=int(row["site_id"]),
        profile_id=row["profile_id"],
        file_sha256=row["file_sha256"],
        file_name=row["file_name"],
        row_count=int(row["row_count"]),
        parent=row["parent"],
        created_at=int(row["created_at"]),
        # sqlite3.Row's ``in`` looks at the values, so the keys are asked for by name.
        created_by=str(row["created_by"] or "") if "created_by" in row.keys() else "",  # noqa: SIM118
    )


ProbeKey = tuple[int, str, str, str]  # amount_minor, currency, site_login, method


def probe_groups(
    probes: Sequence[DuplicateProbe],
) -> dict[tuple[str, int, tuple[str, ...]], dict[ProbeKey, list[int]]]:
    """The probes' indexes by their lookup key, grouped by (environment, window start,
    excluded states): one statement per group."""
    groups: dict[tuple[str, int, tuple[str, ...]], dict[ProbeKey, list[int]]] = {}
    sorted_states: dict[frozenset[State], tuple[str, ...]] = {}  # the probes share a few sets
    last: tuple[str, int, frozenset[State]] | None = None
    group: dict[ProbeKey, list[int]] = {}
    for index, (environment, login, method, currency, amount, since, states) in enumerate(probes):
        if last != (environment, since, states):  # a batch's probes share all three
            last = (environment, since, states)
            excluded = sorted_states.get(states)
            if excluded is None:
                excluded = tuple(sorted(str(state) for state in states))
                sorted_states[states] = excluded
            group = groups.setdefault((environment, since, excluded), {})
        key = (amount, currency, scrub_card_numbers(login), method)
        indexes = group.get(key)
        if indexes is None:
            group[key] = [index]
        else:
            indexes.append(index)
    return groups
