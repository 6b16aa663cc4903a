"""The payout history as a windowed table model: every match counted, pages read on demand.

The model reports every matching record as a row (a million rows cost nothing until shown)
and reads the pages the view asks for. Each page's cells are formatted once, when it is read,
so painting a row is a handful of lookups. Only a few pages are kept, which bounds memory
and the work of checking them for changes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QIcon
from PySide6.QtWidgets import QApplication, QStyle

from cactus_desk.history.clerk import is_aged
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryRow, SortKey, iso_utc, now_ms
from cactus_desk.money import UnknownCurrencyError, format_major, with_decimals
from cactus_desk.payouts.states import State, state_text
from cactus_desk.payouts.statuses import status_label
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner, shared_pool, wait_for

log = logging.getLogger(__name__)

PAGE_SIZE = 200
#: Pages kept in memory; the change watch re-reads this many pages' worth of rows at most.
MAX_CACHED_PAGES = 5
#: A reload (new records in another sort, a restored backup) reads back this many of the
#: most recently used pages, so the selected payout and the scroll position survive it.
RELOAD_PAGES = 2
#: A text search counts no further than this: the table then holds this many rows and the
#: count reads "10,000+ payouts" (refining the search shows the rest).
TEXT_COUNT_CAP = 10_000
#: A new search first shows its first page: a full page says "200+ payouts" (a 1–2 character
#: search over millions of payouts reads no further than that page), then it counts on to
#: ``TEXT_COUNT_CAP`` behind. A search run again (a reload) counts this far first.
QUICK_COUNT_CAP = PAGE_SIZE
#: How long after a capped search's first rows its count goes on (they paint meanwhile).
REFINE_DELAY_MS = 50
#: The pool every history read runs on, and its threads: a page, the details and the change
#: watch never queue behind a slow search, or behind jobs of the rest of the window.
READ_POOL = "history-reads"
READ_THREADS = 3
QUERY_CHANNEL = "history-query"
COUNT_CHANNEL = "history-count"
LOADING_TEXT = "…"
#: Pages asked for most recently; an older request still queued when its turn comes is
#: skipped (the rows were scrolled past), so dragging the scroll bar never piles up reads.
WANTED_PAGES = 4
_PLACEHOLDER_FG = QBrush(QColor(style.MUTED_FG))

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
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms // 1000))


def profile_text(name: str, environment: str) -> str:
    """The profile cell: the environment marker first, so LIVE is seen before the name."""
    return f"{'LIVE' if environment == 'live' else 'SANDBOX'} · {name}"


def amount_text(row: HistoryRow, decimals: Mapping[str, int] | None = None) -> str:
    """The amount in major units, or the raw minor units for a currency this build lacks.

    ``decimals`` is the row's profile's override of a currency's decimals.
    """
    try:
        return format_major(row.amount_minor, with_decimals(row.currency, decimals))
    except UnknownCurrencyError:
        return f"{row.amount_minor} (minor units)"


def message_text(message: str) -> str:
    """The message on one line (the full text is the cell's tooltip)."""
    return " ".join(message.split())


def state_cell(row: HistoryRow) -> str:
    """The State cell: the state, flagged when a verified final status contradicted another."""
    text = state_text(row.state, row.gateway_status)
    return f"{text} · conflict: check" if row.status_conflict else text


_AGING_ICON: list[QIcon] = []


def aging_icon(row: HistoryRow) -> QIcon | None:
    """The State cell's flag for a payout still not final a day on (``history.clerk``)."""
    if not is_aged(row.state, row.gateway_status, row.created_at, now_ms()):
        return None
    if not _AGING_ICON:
        style_ = QApplication.style()
        _AGING_ICON.append(style_.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
    return _AGING_ICON[0]


def row_cells(row: HistoryRow) -> tuple[str, ...]:
    """Every cell's text for ``row``, in column order."""
    return (
        local_time(row.created_at),
        profile_text(row.profile_name, row.environment),
        row.request_id,
        row.invoice_id or "",
        row.site_login,
        row.method,
        row.currency,
        amount_text(row),
        state_cell(row),
        status_label(row.gateway_status),
        message_text(row.message),
    )


# The columns a record's later writes can change; the others are fixed when it is created.
_CHANGING = (
    "updated_at",
    "state",
    "gateway_status",
    "invoice_id",
    "message",
    "status_source",
    "needs_review",
)


def change_key(row: HistoryRow) -> tuple[Any, ...]:
    """What the change watch compares: ``_CHANGING`` as stored."""
    return (
        row.updated_at,
        str(row.state),
        row.gateway_status,
        row.invoice_id,
        row.message,
        row.status_source,
        int(row.needs_review),
    )


@dataclass(frozen=True, slots=True)
class _Look:
    """How a row is drawn, shared by every row of one state and environment."""

    background: QBrush | None
    foreground: tuple[QBrush | None, ...]
    font: tuple[QFont | None, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One loaded row: the record, its cell texts and its look, all ready for ``data()``."""

    row: HistoryRow
    cells: tuple[str, ...]
    look: _Look
    key: tuple[Any, ...]


def _build_looks() -> dict[tuple[str, str], _Look]:
    """Every (state, environment) look. GUI thread: fonts are made here once."""
    bold = QFont()
    bold.setBold(True)
    italic = QFont()
    italic.setItalic(True)
    state_fg = {
        State.UNKNOWN: QBrush(QColor(style.UNKNOWN_FG)),
        State.REFUSED_UNVERIFIED: QBrush(QColor(style.UNKNOWN_FG)),
        State.REJECTED: QBrush(QColor(style.ERROR_FG)),
        State.NOT_SENT: QBrush(QColor(style.MUTED_FG)),
    }
    environment_fg = {
        "live": QBrush(QColor(style.LIVE_BG)),
        "sandbox": QBrush(QColor(style.SANDBOX_BG)),
    }
    unknown_bg = QBrush(QColor(style.UNKNOWN_BG))
    looks: dict[tuple[str, str], _Look] = {}
    for state in State:
        for environment, profile_fg in environment_fg.items():
            # The environment colour wins in the profile cell: LIVE must read as LIVE anywhere.
            foreground = [state_fg.get(state)] * len(Column)
            foreground[Column.PROFILE] = profile_fg
            font = [italic if state == State.SUBMITTING else None] * len(Column)
            if environment == "live":
                font[Column.PROFILE] = bold
            background = unknown_bg if state.in_doubt else None
            looks[(str(state), environment)] = _Look(background, tuple(foreground), tuple(font))
    return looks


_LOOKS: dict[tuple[str, str], _Look] = {}


def _entry(row: HistoryRow) -> _Entry:
    """Any thread, once ``_LOOKS`` is filled (the model does that on the GUI thread)."""
    look = _LOOKS.get((str(row.state), row.environment)) or _LOOKS[(str(row.state), "sandbox")]
    return _Entry(row, row_cells(row), look, change_key(row))


@dataclass(frozen=True)
class _Query:
    """The filter and order the shown rows belong to."""

    history_filter: HistoryFilter
    sort: SortKey
    descending: bool

    @property
    def text(self) -> bool:
        # The clerk's filters are counted with a cap too: no counts table answers them.
        return bool(self.history_filter.text.strip()) or self.history_filter.narrowed()


@dataclass(frozen=True)
class _Window:
    """A query's result as far as it was read: the count and some pages of entries."""

    total: int
    capped: bool
    pages: dict[int, list[_Entry]]
    newest: int = 0


@dataclass(frozen=True)
class _Changes:
    """What the change watch read on a worker for the rows on show."""

    found: int  # how many of the rows on show are still in the history
    changed: dict[int, _Entry]  # by record id: the rows that differ from what was on show
    newest: int
    total: int | None  # None for a text search (not counted again)
    fresh: list[_Entry]  # the newest rows, when they may go on top


def _count(store: HistoryStore, query: _Query, cap: int | None = None) -> tuple[int, bool]:
    if query.text:
        cap = cap if cap is not None else min(QUICK_COUNT_CAP, TEXT_COUNT_CAP)
        total = store.count(query.history_filter, cap=cap)
        return total, total >= cap
    return store.count(query.history_filter), False


def _read_page(
    store: HistoryStore, query: _Query, page: int, total: int, shift: int = 0
) -> list[_Entry]:
    """The entries of ``page`` (``shift`` rows further down). Any thread."""
    first = page * PAGE_SIZE
    limit = min(PAGE_SIZE, total - first)
    if limit <= 0:
        return []
    rows = store.page(query.history_filter, query.sort, query.descending, first + shift, limit)
    return [_entry(row) for row in rows]


def _read_window(store: HistoryStore, query: _Query, pages: Iterable[int]) -> _Window:
    """The count and the given pages of ``query``. Worker thread."""
    newest = store.newest_record_id()
    if query.text and list(pages) == [0]:
        # A new search: its first page says whether more match. A count first would walk
        # the same rows again (for "yu" at 5M payouts, 0.1 s more to count to 1,000).
        entries = _read_page(store, query, 0, QUICK_COUNT_CAP)
        return _Window(len(entries), len(entries) >= QUICK_COUNT_CAP, {0: entries}, newest)
    total, capped = _count(store, query)
    pages_read = {page: _read_page(store, query, page, total) for page in pages}
    return _Window(total, capped, pages_read, newest)


_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_USER = int(Qt.ItemDataRole.UserRole)
_AMOUNT = int(Column.AMOUNT)
_COLUMNS = len(Column)
_HORIZONTAL = Qt.Orientation.Horizontal
_HEADER_TEXTS = tuple(HEADERS[column] for column in Column)
_SORTABLE = frozenset(int(column) for column in SORT_KEYS)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class HistoryModel(QAbstractTableModel):
    """Rows of ``HistoryStore`` for one filter and sort, read page by page as they are shown.

    ``rowCount()`` is the number of matches (for a text search, at most ``TEXT_COUNT_CAP``),
    so the scroll bar spans the whole history and a jump to the end reads only the last page.
    Every store read runs on a worker (``runner``): the GUI thread only looks up cached
    pages. A new filter or sort keeps the previous rows until its count and first page
    arrive (``is_loading()`` meanwhile); rows of pages not read yet show ``LOADING_TEXT`` in
    a light colour and fill in when their page arrives. Every answer carries the generation
    it was asked for, so one that arrives after the query or the row numbers changed is
    dropped. ``loaded`` is emitted after every reload, ``countChanged`` when a search's
    count is refined, ``changesApplied(ids)`` after the change watch (None when dropped).
    """

    loaded = Signal()
    countChanged = Signal()
    changesApplied = Signal(object)

    def __init__(
        self, store: HistoryStore, parent: Any = None, runner: Runner | None = None
    ) -> None:
        super().__init__(parent)
        if not _LOOKS:
            _LOOKS.update(_build_looks())
        self._store = store
        if runner is None:
            runner = Runner(self, shared_pool(READ_POOL, READ_THREADS), low_priority=True)
        self._runner = runner
        self._loading = False
        self._count_due = False  # a capped search's count on waits for REFINE_DELAY_MS
        self._watching = False
        self._request = 0  # bumped by every new query: older answers are dropped
        self._filter = HistoryFilter()
        self._sort_column = Column.TIME
        self._descending = True
        self._shown = _Query(self._filter, self.sort_key, True)
        self._total = 0
        self._capped = False
        self._rows: dict[int, _Entry] = {}  # row number -> entry, for the cached pages
        self._pages: OrderedDict[int, None] = OrderedDict()  # cached pages, least recent first
        self._provisional: set[int] = set()  # pages read ahead of an insert not yet shown
        # Pages not to ask for again until the rows are reloaded: being read on a worker, or
        # read short or failed (a reload is on its way), so a paint never loops on queries.
        self._waiting: set[int] = set()
        # Every page asked for gets the next ask number; a worker skips a page asked for
        # more than WANTED_PAGES asks ago (read by workers: plain ints and dict lookups).
        self._asks = 0
        self._last_ask: dict[int, int] = {}
        self._generation = 0  # bumped whenever row numbers change meaning
        self._newest_id = 0  # the highest record id when the rows were last brought up to date
        self._decimals: dict[str, dict[str, int]] = {}  # profile id -> its decimals override
        self._load([0])

    def set_decimals(self, by_profile: Mapping[str, Mapping[str, int]]) -> None:
        """Show amounts of these profiles (id -> ``Profile.decimals``) with their decimals."""
        wanted = {pid: dict(places) for pid, places in by_profile.items() if places}
        if wanted == self._decimals:
            return
        self._decimals = wanted
        if self._total:
            last = self.index(self._total - 1, _AMOUNT)
            self.dataChanged.emit(self.index(0, _AMOUNT), last, [_DISPLAY])

    # -- state ----------------------------------------------------------------------------

    @property
    def history_filter(self) -> HistoryFilter:
        """The filter the rows match (or will, once a search in progress answers)."""
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
        """How many records match the filter (loaded or not); see ``is_capped``."""
        return self._total

    def is_capped(self) -> bool:
        """True when a search matched at least ``total()``: the count reads "N+ payouts".

        A search's first count stops at ``QUICK_COUNT_CAP`` and is refined on a worker up to
        ``TEXT_COUNT_CAP`` (``countChanged``); past that only that many rows are listed.
        """
        return self._capped

    def cached_rows(self) -> int:
        """How many rows are held in memory (a few pages, however long the history)."""
        return len(self._rows)

    def set_filter(self, history_filter: HistoryFilter, *, wait: bool = False) -> None:
        """Show the records matching ``history_filter``, from the first page.

        The query runs on a worker; ``wait=True`` runs it even when the filter is unchanged
        and returns once its rows are in (handling events meanwhile).
        """
        if history_filter == self._filter and not wait:
            return
        self._filter = history_filter
        self._load([0], wait=wait)

    def refresh(self, *, wait: bool = False) -> None:
        """Bring the rows up to date with the store.

        Without search text that is ``apply_changes()``: rows change in place and new ones
        are inserted, with no reset. A text search is run again, keeping the recently shown
        pages. Both read on a worker; ``wait=True`` returns once the rows are up to date.
        """
        if not self._filter.text.strip() and not self._loading and self._shown == self._query():
            if not self._watching:
                self.apply_changes()
        else:
            self._reload()
        if wait:
            self.wait_until_idle()

    def record_id(self, row: int) -> int | None:
        """The history record id shown in ``row``; None (its page asked for) if not loaded."""
        entry = self._entry_now(row)
        return entry.row.id if entry is not None else None

    def cell_look(
        self, row: int, column: int
    ) -> tuple[str, QFont | None, QBrush | None, QBrush | None] | None:
        """A loaded cell's text, font, foreground and background, as ``data()`` gives them;
        None when the row is not loaded (nothing is asked for). For the table's painter."""
        entry = self._rows.get(row)
        if entry is None:
            return None
        text = entry.cells[column]
        if column == _AMOUNT and entry.row.profile_id in self._decimals:
            text = amount_text(entry.row, self._decimals[entry.row.profile_id])
        look = entry.look
        return text, look.font[column], look.foreground[column], look.background

    def loaded_record_id(self, row: int) -> int | None:
        """The record id shown in ``row`` if its page is loaded (nothing is asked for)."""
        entry = self._rows.get(row)
        return entry.row.id if entry is not None else None

    def history_row(self, row: int) -> HistoryRow | None:
        """The stored row shown in ``row``; None (its page asked for) if not loaded."""
        entry = self._entry_now(row)
        return entry.row if entry is not None else None

    def row_of(self, record_id: int) -> int | None:
        """The row that shows ``record_id``, if its page is loaded."""
        return self._find(lambda entry: entry.row.id == record_id)

    def row_of_request(self, request_id: str) -> int | None:
        """The first loaded row whose request id is ``request_id``."""
        return self._find(lambda entry: entry.row.request_id == request_id)

    def is_loading(self) -> bool:
        """True while a query runs on a worker (the rows shown are the previous ones)."""
        return self._loading

    # -- loading --------------------------------------------------------------------------

    def _query(self) -> _Query:
        return _Query(self._filter, self.sort_key, self._descending)

    def is_idle(self) -> bool:
        """True when no query, count or change watch is on its way."""
        return not self._loading and not self._watching

    def wait_until_idle(self, msecs: int = 30_000) -> bool:
        """Handle events until the rows are up to date (``is_idle()``); GUI thread.

        For callers that need the rows before they return (``select_request``): the store
        is still read on a worker and the window keeps painting meanwhile.
        """
        return wait_for(self.is_idle, msecs)

    def _reload(self, *, wait: bool = False) -> None:
        """Run the query again, reading back the most recently used pages."""
        recent = [page for page in reversed(self._pages) if page != 0][: RELOAD_PAGES - 1]
        self._load([0, *recent], wait=wait)

    def _load(self, pages: list[int], *, wait: bool = False) -> None:
        self._request += 1
        request, store, query = self._request, self._store, self._query()
        self._loading = True
        self._runner.invalidate(COUNT_CHANNEL)
        self._runner.run(
            lambda: _read_window(store, query, pages),
            lambda window: self._loaded(request, query, window),
            lambda error: self._failed(request, error),
            channel=QUERY_CHANNEL,
        )
        if wait:
            self.wait_until_idle()

    def _loaded(self, request: int, query: _Query, window: _Window) -> None:  # GUI thread
        if request != self._request:
            return  # a newer query was asked for meanwhile
        self._loading = False
        self._newest_id = window.newest
        self._apply(query, window)
        if window.capped and query.text and window.total < TEXT_COUNT_CAP:
            # Once the rows just applied have painted: a count read beside that paint takes
            # turns with it for the interpreter lock, and the count can wait a moment.
            self._count_due = True
            QTimer.singleShot(
                REFINE_DELAY_MS, self, lambda: self._refine_count_if_current(request, query)
            )

    def _refine_count_if_current(self, request: int, query: _Query) -> None:
        self._count_due = False
        if request == self._request and not self._loading:
            self._refine_count(request, query)

    def count_pending(self) -> bool:
        """True while a capped search's count on to ``TEXT_COUNT_CAP`` is due or running."""
        return self._count_due or self._runner.busy(COUNT_CHANNEL)

    def _failed(self, request: int, error: BaseException) -> None:  # GUI thread
        if request != self._request:
            return
        self._loading = False
        log.error("the history could not be read", exc_info=error)
        self._apply(self._query(), _Window(0, False, {}))

    def _refine_count(self, request: int, query: _Query) -> None:
        """Count a capped search on to ``TEXT_COUNT_CAP`` behind the rows already shown."""
        store = self._store
        self._runner.run(
            lambda: _count(store, query, TEXT_COUNT_CAP),
            lambda counted: self._count_refined(request, counted),
            lambda error: log.warning("a search could not be counted further: %s", error),
            channel=COUNT_CHANNEL,
        )

    def _count_refined(self, request: int, counted: tuple[int, bool]) -> None:  # GUI thread
        if request != self._request or self._loading:
            return
        total, capped = counted
        if total > self._total:
            self.beginInsertRows(QModelIndex(), self._total, total - 1)
            self._total = total
            self.endInsertRows()
        self._capped = capped
        self.countChanged.emit()

    def _apply(self, query: _Query, window: _Window) -> None:
        self.beginResetModel()
        self._generation += 1
        self._shown = query
        self._total, self._capped = window.total, window.capped
        self._rows.clear()
        self._pages.clear()
        self._provisional.clear()
        self._waiting.clear()
        self._last_ask.clear()
        for page, entries in window.pages.items():
            self._store_page(page, entries)
        self.endResetModel()
        self.loaded.emit()

    def _store_page(self, page: int, entries: list[_Entry]) -> None:
        first = page * PAGE_SIZE
        for offset, entry in enumerate(entries):
            self._rows[first + offset] = entry
        self._pages[page] = None
        self._pages.move_to_end(page)
        while len(self._pages) > MAX_CACHED_PAGES:
            old, _ = self._pages.popitem(last=False)
            self._provisional.discard(old)
            for row in range(old * PAGE_SIZE, (old + 1) * PAGE_SIZE):
                self._rows.pop(row, None)

    def _entry_now(self, row: int) -> _Entry | None:
        """The entry for ``row`` if its page is loaded; otherwise its page is asked for."""
        entry = self._rows.get(row)
        if entry is None and 0 <= row < self._total:
            self._request_page(row)
        return entry

    def _check_complete(self, page: int, entries: list[_Entry]) -> None:
        """A page with fewer rows than the count promised: records went; count again."""
        if len(entries) < min(PAGE_SIZE, self._total - page * PAGE_SIZE):
            self._waiting.add(page)
            QTimer.singleShot(0, self._reload_if_shown)

    def _reload_if_shown(self) -> None:
        if not self._loading and self._shown == self._query():
            self._reload()

    def _request_page(self, row: int) -> None:
        """Ask a worker for ``row``'s page; its rows show ``LOADING_TEXT`` until it arrives."""
        page = row // PAGE_SIZE
        if self._last_ask.get(page) != self._asks:
            self._asks += 1
            self._last_ask[page] = self._asks
        if page in self._waiting:
            return
        self._waiting.add(page)
        store, query, total, generation = self._store, self._shown, self._total, self._generation
        on_top = self._inserts_on_top(query)
        last_ask = self._last_ask

        def read() -> tuple[int, list[_Entry]] | None:  # worker thread
            asked = last_ask.get(page, 0)
            if generation != self._generation or self._asks - asked >= WANTED_PAGES:
                return None  # scrolled past, or the rows were reloaded: not worth reading
            shift = 0
            if on_top:
                # Records added since the last look push every row down; until the change
                # watch inserts them, read the page where its rows now are (and again after).
                shift = max(0, store.count(query.history_filter) - total)
            return shift, _read_page(store, query, page, total, shift)

        self._runner.run(
            read,
            lambda result: self._page_read(generation, page, result),
            lambda error: self._page_failed(generation, page, error),
        )

    def _page_read(
        self, generation: int, page: int, result: tuple[int, list[_Entry]] | None
    ) -> None:  # GUI thread
        if generation != self._generation:
            return  # the rows were reloaded meanwhile; the page belongs to an older query
        self._waiting.discard(page)
        first = page * PAGE_SIZE
        if result is not None:
            shift, entries = result
            self._store_page(page, entries)
            if shift:
                self._provisional.add(page)
            self._check_complete(page, entries)
        # Filled in, or skipped: a repaint of rows still on screen asks for them again.
        last = min(first + PAGE_SIZE, self._total) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(Column) - 1))

    def _page_failed(self, generation: int, page: int, error: BaseException) -> None:  # GUI
        # The page stays blank (no retry loop); the next reload or refresh tries again.
        log.error("a page of the history could not be read", exc_info=error)

    def _find(self, match: Callable[[_Entry], bool]) -> int | None:
        found = [row for row, entry in self._rows.items() if match(entry)]
        return min(found) if found else None

    # -- live updates ---------------------------------------------------------------------

    def _inserts_on_top(self, query: _Query) -> bool:
        return query.sort is SortKey.CREATED_AT and query.descending and not query.text

    def apply_changes(self) -> None:
        """Show what changed since the last look without resetting the model.

        The loaded rows' changing columns are read in one query on a worker and only rows
        that differ emit ``dataChanged``. New records go on top when the newest are shown
        first; with another sort or a text search their place is not obvious, so the query
        is run again instead. Emits ``changesApplied`` with the ids of the changed rows, or
        None when the answer was dropped (the rows changed meanwhile; a reload shows all).
        """
        if self._loading or self._watching or self._shown != self._query():
            self.changesApplied.emit(None)  # a reload is on its way and will show everything
            return
        store, query, total = self._store, self._shown, self._total
        generation, request = self._generation, self._request
        # Compared and formatted on the worker: under a stream of callbacks these checks come
        # several times a second, and the GUI thread only swaps in the rows that changed.
        shown = {entry.row.id: entry.key for entry in self._rows.values()}
        on_top = self._inserts_on_top(query)

        def read() -> _Changes:  # worker thread
            current = store.rows_by_id(list(shown)) if shown else []
            changed = {row.id: _entry(row) for row in current if change_key(row) != shown[row.id]}
            newest = store.newest_record_id()
            counted = None if query.text else store.count(query.history_filter)
            fresh: list[_Entry] = []
            if on_top and counted is not None and 0 < counted - total <= PAGE_SIZE:
                rows = store.page(query.history_filter, query.sort, True, 0, counted - total)
                fresh = [_entry(row) for row in rows]
            return _Changes(len(current), changed, newest, counted, fresh)

        self._watching = True
        self._runner.run(
            read,
            lambda changes: self._changes_read(generation, request, len(shown), changes),
            self._changes_failed,
        )

    def _changes_failed(self, error: BaseException) -> None:  # GUI thread
        self._watching = False
        log.warning("the history could not be checked for changes: %s", error)
        self.changesApplied.emit(None)

    def _changes_read(
        self, generation: int, request: int, asked: int, changes: _Changes
    ) -> None:  # GUI thread
        self._watching = False
        if generation != self._generation or request != self._request or self._loading:
            self.changesApplied.emit(None)
            return
        changed = self._update_loaded(changes, asked)
        if changed is None:
            self._reload()  # records disappeared (a restored backup): start again
            self.changesApplied.emit(set())
            return
        if changes.total is None:
            if changes.newest > self._newest_id:
                self._reload()
        elif (
            changes.total != self._total or changes.newest > self._newest_id
        ) and not self._insert_newest(changes.newest, changes.total, changes.fresh):
            self._reload()
        self.changesApplied.emit(changed)

    def _update_loaded(self, changes: _Changes, asked: int) -> set[int] | None:
        """Update loaded rows that changed in place; None if some record is gone."""
        if changes.found != asked:
            return None
        if not changes.changed:
            return set()
        # A page read since the look may already show a change: only those still differing.
        updates = [
            (index, entry)
            for index, shown in self._rows.items()
            if (entry := changes.changed.get(shown.row.id)) is not None and shown.key != entry.key
        ]
        changed = {entry.row.id for _, entry in updates}
        rows = [index for index, _ in updates]
        self._rows.update(updates)
        # One signal per run of adjacent rows: each makes the view repaint what it covers.
        last = len(Column) - 1
        rows.sort()
        start = 0
        for at in range(1, len(rows) + 1):
            if at == len(rows) or rows[at] != rows[at - 1] + 1:
                self.dataChanged.emit(self.index(rows[start], 0), self.index(rows[at - 1], last))
                start = at
        return changed

    def _insert_newest(self, newest: int, total: int, fresh: list[_Entry]) -> bool:
        """Insert records newer than the shown ones on top; False when a reload is needed."""
        added = total - self._total
        if not self._inserts_on_top(self._shown) or not 0 <= added <= PAGE_SIZE:
            return False  # many at once (an import): reading the first page again is cheaper
        entries = [entry for entry in fresh if entry.row.id > self._newest_id]
        if len(entries) != added:
            # A record now matches that was already there (or one sorts below shown rows
            # through clock skew): its place is not on top.
            return False
        if added:
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            self._shift(added, entries)
            self._total = total
            self.endInsertRows()
        self._newest_id = newest
        return True

    def _shift(self, added: int, entries: list[_Entry]) -> None:
        for page in self._provisional:
            for row in range(page * PAGE_SIZE, (page + 1) * PAGE_SIZE):
                self._rows.pop(row, None)
        self._provisional.clear()
        self._generation += 1
        self._waiting.clear()
        self._last_ask.clear()
        rows = {row + added: entry for row, entry in self._rows.items()}
        rows.update(enumerate(entries))
        self._rows = rows
        recency = {page: rank for rank, page in enumerate(self._pages)}

        def rank(page: int) -> int:
            if page * PAGE_SIZE < added:
                return len(recency)  # holds the new records: the most recent
            low = (page * PAGE_SIZE - added) // PAGE_SIZE
            high = ((page + 1) * PAGE_SIZE - 1 - added) // PAGE_SIZE
            return max(recency.get(low, -1), recency.get(high, -1))

        pages = sorted({row // PAGE_SIZE for row in rows}, key=rank)
        self._pages = OrderedDict.fromkeys(pages)
        while len(self._pages) > MAX_CACHED_PAGES:
            old, _ = self._pages.popitem(last=False)
            for row in range(old * PAGE_SIZE, (old + 1) * PAGE_SIZE):
                self._rows.pop(row, None)

    # -- Qt model -------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._total

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        # Asked for every role of every section whenever the header repaints: lookups only.
        if orientation != _HORIZONTAL or not 0 <= section < _COLUMNS:
            return None
        if role == _DISPLAY:
            return _HEADER_TEXTS[section]
        if role == _ALIGNMENT and section == _AMOUNT:
            return _RIGHT
        if role == _TOOLTIP and section not in _SORTABLE:
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
        self._load([0])

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        # Called for every role of every visible cell on each paint: keep it to lookups.
        row = index.row()
        entry = self._rows.get(row)
        if entry is None:
            if not 0 <= row < self._total or not index.isValid():
                return None
            self._request_page(row)
            # Being read on a worker: a light placeholder until its page arrives.
            if role == _DISPLAY and index.column() == 0:
                return LOADING_TEXT
            return _PLACEHOLDER_FG if role == _FOREGROUND else None
        if role == _DISPLAY:
            if index.column() == _AMOUNT and entry.row.profile_id in self._decimals:
                return amount_text(entry.row, self._decimals[entry.row.profile_id])
            return entry.cells[index.column()]
        if role == _FONT:
            return entry.look.font[index.column()]
        if role == _FOREGROUND:
            return entry.look.foreground[index.column()]
        if role == _BACKGROUND:
            return entry.look.background
        if role == _ALIGNMENT:
            return _RIGHT if index.column() == _AMOUNT else _LEFT
        if role == _DECORATION:
            return aging_icon(entry.row) if index.column() == Column.STATE else None
        if role < _USER:
            if role == _TOOLTIP and index.column() == Column.STATE and aging_icon(entry.row):
                return "Aging: not final 24 hours after it was made"
            if role == _TOOLTIP:
                return self._tooltip(entry.row, Column(index.column()))
            return None
        if role == Role.RECORD_ID:
            return entry.row.id
        if role == Role.SORT_VALUE:
            return self._sort_value(entry.row, Column(index.column()))
        if role == Role.STATE:
            return entry.row.state
        if role == Role.ENVIRONMENT:
            return entry.row.environment
        if role == Role.ROW:
            return entry.row
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
                return state_cell(row)
            case Column.GATEWAY_STATUS:
                return status_label(row.gateway_status)
            case Column.MESSAGE:
                return message_text(row.message)

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
            case Column.STATE if row.status_conflict:
                return (
                    "The gateway sent contradicting final statuses; the latest is shown. "
                    "Check the payout with Cactus before acting on it."
                )
            case Column.STATE if row.state == State.UNKNOWN:
                return "No trustworthy answer: the payout may exist. Never resend it."
            case Column.STATE if row.state == State.SETTLED:
                return "Final status set by hand; the gateway never confirmed accepting it."
            case Column.STATE if row.state == State.REFUSED_UNVERIFIED:
                return "The gateway's refusal could not be verified: the payout may exist."
            case Column.MESSAGE:
                return row.message or None
        return None
