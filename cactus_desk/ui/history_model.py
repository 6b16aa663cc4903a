"""The payout history as a lazily loaded table model; SQLite filters and sorts, Qt shows pages."""

from __future__ import annotations

import logging
from datetime import datetime
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from cactus_desk.money import UnknownCurrencyError, format_major
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import status_label
from cactus_desk.payouts.store import HistoryFilter, HistoryRow, HistoryStore, SortKey, iso_utc
from cactus_desk.ui import style
from cactus_desk.ui.live_updates import newest_record_id, rows_by_id
from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)

PAGE_SIZE = 200
# refresh() reloads as many rows as were on screen, but never more than this in one query.
MAX_RELOAD_ROWS = 1000
QUERY_CHANNEL = "history-query"

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    """The history table's columns, in display order."""

    TIME = 0
    PROFILE = 1
    REQUEST_ID = 2
    INVOICE_ID = 3
    SITE_LOGIN = 4
    METHOD = 5
    CURRENCY = 6
    AMOUNT = 7
    STATE = 8
    GATEWAY_STATUS = 9
    MESSAGE = 10


HEADERS: dict[Column, str] = {
    Column.TIME: "Time",
    Column.PROFILE: "Profile",
    Column.REQUEST_ID: "Request ID",
    Column.INVOICE_ID: "Invoice ID",
    Column.SITE_LOGIN: "Site login",
    Column.METHOD: "Method",
    Column.CURRENCY: "Currency",
    Column.AMOUNT: "Amount",
    Column.STATE: "State",
    Column.GATEWAY_STATUS: "Gateway status",
    Column.MESSAGE: "Message",
}

SORT_KEYS: dict[Column, SortKey] = {
    Column.TIME: SortKey.CREATED_AT,
    Column.PROFILE: SortKey.PROFILE,
    Column.REQUEST_ID: SortKey.REQUEST_ID,
    Column.INVOICE_ID: SortKey.INVOICE_ID,
    Column.SITE_LOGIN: SortKey.SITE_LOGIN,
    Column.METHOD: SortKey.METHOD,
    Column.CURRENCY: SortKey.CURRENCY,
    Column.AMOUNT: SortKey.AMOUNT,
    Column.STATE: SortKey.STATE,
    Column.GATEWAY_STATUS: SortKey.GATEWAY_STATUS,
}


class Role(IntEnum):
    """Data roles beyond Qt's own; values are plain Python objects (no 32-bit truncation)."""

    RECORD_ID = Qt.ItemDataRole.UserRole + 1
    SORT_VALUE = Qt.ItemDataRole.UserRole + 2
    STATE = Qt.ItemDataRole.UserRole + 3
    ENVIRONMENT = Qt.ItemDataRole.UserRole + 4
    ROW = Qt.ItemDataRole.UserRole + 5


def local_time(ms: int) -> str:
    """Epoch milliseconds as local wall-clock time, e.g. ``2024-05-01 12:22:33``."""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def profile_text(name: str, environment: str) -> str:
    """The profile cell: the environment marker first, so LIVE is seen before the name."""
    return f"{'LIVE' if environment == 'live' else 'SANDBOX'} · {name}"


def amount_text(row: HistoryRow) -> str:
    """The amount in major units, or the raw minor units for a currency this build lacks."""
    try:
        return format_major(row.amount_minor, row.currency)
    except UnknownCurrencyError:
        return f"{row.amount_minor} (minor units)"


_LIVE_FG = QColor(style.LIVE_BG)
_SANDBOX_FG = QColor(style.SANDBOX_BG)
_UNKNOWN_BG = QColor(style.UNKNOWN_BG)
_UNKNOWN_FG = QColor(style.UNKNOWN_FG)
_REJECTED_FG = QColor(style.ERROR_FG)
_MUTED_FG = QColor(style.MUTED_FG)


def first_rows(
    store: HistoryStore, history_filter: HistoryFilter, sort: SortKey, descending: bool, count: int
) -> tuple[int, list[HistoryRow]]:
    """The number of matches and the first ``count`` of them. Any thread."""
    total = store.count(history_filter)
    return total, store.page(history_filter, sort, descending, 0, min(count, total))


class HistoryModel(QAbstractTableModel):
    """Rows of ``HistoryStore`` for one filter and sort, fetched page by page as the view scrolls.

    Indexed queries (no search text) run on the GUI thread: a count and one page take
    milliseconds even over a million rows. A text search cannot use an index, so with a
    ``runner`` it runs on a worker and the rows are swapped in when it answers; ``loaded``
    is emitted after every (re)load.
    """

    loaded = Signal()

    def __init__(
        self, store: HistoryStore, parent: Any = None, runner: Runner | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._runner = runner
        self._loading = False
        self._filter = HistoryFilter()
        self._sort_column = Column.TIME
        self._descending = True
        self._rows: list[HistoryRow] = []
        self._ids: set[int] = set()
        self._total = 0
        self._newest_id = 0  # the highest record id when the rows were last queried
        self._bold = QFont()
        self._bold.setBold(True)
        self._italic = QFont()
        self._italic.setItalic(True)
        self._load(PAGE_SIZE)

    # -- state ----------------------------------------------------------------------------

    @property
    def history_filter(self) -> HistoryFilter:
        """The filter the rows match."""
        return self._filter

    @property
    def sort_column(self) -> Column:
        """The column the rows are sorted by."""
        return self._sort_column

    @property
    def sort_order(self) -> Qt.SortOrder:
        """The direction of the sort."""
        return Qt.SortOrder.DescendingOrder if self._descending else Qt.SortOrder.AscendingOrder

    @property
    def sort_key(self) -> SortKey:
        """The store's name for the current sort."""
        return SORT_KEYS[self._sort_column]

    @property
    def descending(self) -> bool:
        """True when the sort runs from the largest value down."""
        return self._descending

    def total(self) -> int:
        """How many records match the filter (loaded or not)."""
        return self._total

    def set_filter(self, history_filter: HistoryFilter, *, wait: bool = False) -> None:
        """Show the records matching ``history_filter``, from the first page."""
        if history_filter == self._filter and not wait:
            return
        self._filter = history_filter
        self._load(PAGE_SIZE, wait=wait)

    def refresh(self, *, wait: bool = False) -> None:
        """Re-run the query (new or changed records), keeping as many rows as were loaded.

        ``wait=True`` runs even a text search here and now, for a caller that needs the rows.
        """
        wanted = min(max(len(self._rows), PAGE_SIZE), MAX_RELOAD_ROWS)
        self._load(wanted, wait=wait)

    def record_id(self, row: int) -> int | None:
        """The history record id shown in ``row``."""
        if 0 <= row < len(self._rows):
            return self._rows[row].id
        return None

    def row_of(self, record_id: int) -> int | None:
        """The row that shows ``record_id``, if it is loaded."""
        for position, item in enumerate(self._rows):
            if item.id == record_id:
                return position
        return None

    def row_of_request(self, request_id: str) -> int | None:
        """The first loaded row whose request id is ``request_id``."""
        for position, item in enumerate(self._rows):
            if item.request_id == request_id:
                return position
        return None

    def history_row(self, row: int) -> HistoryRow | None:
        """The stored row shown in ``row``."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def is_loading(self) -> bool:
        """True while a search runs on a worker (the rows shown are the previous ones)."""
        return self._loading

    def apply_changes(self) -> set[int]:
        """Show what changed since the last look without resetting the model.

        Loaded rows are read again by id and only those that differ emit ``dataChanged``. New
        records go on top when the newest are shown first; with another sort or a text search
        their place is not obvious, so the query is run again instead. Returns the ids of the
        changed rows.
        """
        if self._loading:
            return set()  # a reload is on its way and will show everything
        current = rows_by_id(self._store, self._ids)
        if len(current) != len(self._ids):
            self.refresh()  # records disappeared (a restored backup): start again
            return set()
        changed: set[int] = set()
        last = len(Column) - 1
        for position, item in enumerate(self._rows):
            fresh = current[item.id]
            if fresh != item:
                self._rows[position] = fresh
                changed.add(item.id)
                self.dataChanged.emit(self.index(position, 0), self.index(position, last))
        newest = newest_record_id(self._store)
        if newest > self._newest_id and not self._insert_newest(newest):
            self.refresh()
        return changed

    def _insert_newest(self, newest: int) -> bool:
        if self._sort_column != Column.TIME or not self._descending or self._filter.text:
            return False
        total = self._store.count(self._filter)
        added = total - self._total
        if added > 0:
            page = self._store.page(self._filter, self.sort_key, True, 0, added)
            fresh = [item for item in page if item.id not in self._ids]
            if len(fresh) != len(page) or len(page) != added:
                return False  # a new record sorts below loaded ones (clock skew): reload
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            self._rows[0:0] = fresh
            self._ids.update(item.id for item in fresh)
            self._total = total
            self.endInsertRows()
        elif added < 0:
            return False
        self._newest_id = newest
        return True

    def _load(self, count: int, *, wait: bool = False) -> None:
        self._newest_id = newest_record_id(self._store)
        query = (self._store, self._filter, self.sort_key, self._descending, count)
        if self._runner is None or wait or not self._filter.text:
            if self._runner is not None:
                self._runner.invalidate(QUERY_CHANNEL)
            self._loading = False
            self._apply(*first_rows(*query))
            return
        self._loading = True
        self._runner.run(
            lambda: first_rows(*query), self._loaded, self._failed, channel=QUERY_CHANNEL
        )

    def _loaded(self, result: tuple[int, list[HistoryRow]]) -> None:  # GUI thread
        self._loading = False
        self._apply(*result)

    def _failed(self, error: BaseException) -> None:  # GUI thread
        self._loading = False
        log.error("the history search failed", exc_info=error)
        self._apply(0, [])

    def _apply(self, total: int, rows: list[HistoryRow]) -> None:
        self.beginResetModel()
        self._total = total
        self._rows = rows
        self._ids = {item.id for item in rows}
        self.endResetModel()
        self.loaded.emit()

    # -- Qt model -------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._loading and len(self._rows) < self._total

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or len(self._rows) >= self._total:
            return
        page = self._store.page(
            self._filter, self.sort_key, self._descending, len(self._rows), PAGE_SIZE
        )
        # A payout recorded since the first page shifts the offsets by one; skip what is shown.
        fresh = [item for item in page if item.id not in self._ids]
        if not page:
            self._total = len(self._rows)
            return
        if not fresh:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        self._rows.extend(fresh)
        self._ids.update(item.id for item in fresh)
        self.endInsertRows()

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        column = Column(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column == Column.AMOUNT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column not in SORT_KEYS:
            return "This column cannot be sorted"
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort in SQL by ``column``; a column with no sort key (Message) keeps the order."""
        if not 0 <= column < len(Column) or Column(column) not in SORT_KEYS:
            return
        descending = order == Qt.SortOrder.DescendingOrder
        if Column(column) == self._sort_column and descending == self._descending:
            return
        self._sort_column = Column(column)
        self._descending = descending
        self._load(PAGE_SIZE)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column == Column.AMOUNT:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(_UNKNOWN_BG) if row.state == State.UNKNOWN else None
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.FontRole:
            if column == Column.PROFILE and row.environment == "live":
                return self._bold
            if row.state == State.SUBMITTING:
                return self._italic
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Role.RECORD_ID:
            return row.id
        if role == Role.SORT_VALUE:
            return self._sort_value(row, column)
        if role == Role.STATE:
            return row.state
        if role == Role.ENVIRONMENT:
            return row.environment
        if role == Role.ROW:
            return row
        return None

    @staticmethod
    def _display(row: HistoryRow, column: Column) -> str:
        match column:
            case Column.TIME:
                return local_time(row.created_at)
            case Column.PROFILE:
                return profile_text(row.profile_name, row.environment)
            case Column.REQUEST_ID:
                return row.request_id
            case Column.INVOICE_ID:
                return row.invoice_id or ""
            case Column.SITE_LOGIN:
                return row.site_login
            case Column.METHOD:
                return row.method
            case Column.CURRENCY:
                return row.currency
            case Column.AMOUNT:
                return amount_text(row)
            case Column.STATE:
                return row.state.label
            case Column.GATEWAY_STATUS:
                return status_label(row.gateway_status)
            case Column.MESSAGE:
                return " ".join(row.message.split())

    @staticmethod
    def _sort_value(row: HistoryRow, column: Column) -> Any:
        match column:
            case Column.TIME:
                return row.created_at
            case Column.AMOUNT:
                return row.amount_minor
            case Column.GATEWAY_STATUS:
                return row.gateway_status
            case Column.STATE:
                return str(row.state)
            case Column.PROFILE:
                return row.profile_name
        return HistoryModel._display(row, column)

    @staticmethod
    def _foreground(row: HistoryRow, column: Column) -> QBrush | None:
        # The environment colour wins in the profile cell: LIVE must read as LIVE on any row.
        if column == Column.PROFILE:
            return QBrush(_LIVE_FG if row.environment == "live" else _SANDBOX_FG)
        if row.state == State.UNKNOWN:
            return QBrush(_UNKNOWN_FG)
        if row.state == State.REJECTED:
            return QBrush(_REJECTED_FG)
        if row.state == State.NOT_SENT:
            return QBrush(_MUTED_FG)
        return None

    @staticmethod
    def _tooltip(row: HistoryRow, column: Column) -> str | None:
        match column:
            case Column.TIME:
                return f"{iso_utc(row.created_at)} (UTC)"
            case Column.PROFILE:
                if row.environment == "live":
                    return f"{row.profile_name}: LIVE profile (real money)"
                return f"{row.profile_name}: sandbox profile (test money)"
            case Column.AMOUNT:
                return f"{row.amount_minor} minor units"
            case Column.STATE if row.state == State.UNKNOWN:
                return "No trustworthy answer: the payout may exist. Never resend it."
            case Column.MESSAGE:
                return row.message or None
        return None
