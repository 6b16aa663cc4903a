"""The history tab: search and filters, the payout table, one payout's details, CSV export."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QContextMenuEvent, QFontDatabase, QKeyEvent, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.history.export import write_csv
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import (
    HistoryFilter,
    PayoutDetails,
    PayoutRecord,
    RecordNotFoundError,
    SortKey,
    iso_utc,
)
from cactus_desk.money import UnknownCurrencyError, format_major, with_decimals
from cactus_desk.payouts.states import State, state_text
from cactus_desk.payouts.statuses import status_label
from cactus_desk.profiles import ProfileStore, ProfileStoreError
from cactus_desk.ui import style
from cactus_desk.ui.history.filters_bar import FiltersBar
from cactus_desk.ui.history.model import (
    HEADERS,
    READ_POOL,
    READ_THREADS,
    SORT_KEYS,
    Column,
    HistoryModel,
    local_time,
)
from cactus_desk.ui.history.table_view import HistoryTableView
from cactus_desk.ui.history.timeline import LOADING_DETAILS, TimelinePanel, can_reconcile
from cactus_desk.ui.history.totals import TotalsPanel
from cactus_desk.ui.receipts.actions import ReceiptActions
from cactus_desk.ui.view_settings import documents_folder
from cactus_desk.ui.workers import Runner, shared_pool, wait_for

if TYPE_CHECKING:
    from cactus_desk.ui.history.reconcile_dialog import ReconcileDialog

log = logging.getLogger(__name__)

FILTER_DELAY_MS = 200
# A cheap PRAGMA: notices payouts and callbacks recorded by the form or another process.
WATCH_INTERVAL_MS = 2000
#: How long a panel that has not painted waits before its first reads start anyway.
FIRST_READS_WAIT_MS = 100
EXPORT_CHANNEL = "export"
DETAILS_CHANNEL = "history-details"
CHOICES_CHANNEL = "history-choices"
WATCH_CHANNEL = "history-watch"
STOP_WAIT_MS = 5_000


#: The interpreter's thread switch interval while the history is open. Its readers are Python
#: threads sharing the interpreter lock with the GUI thread: at the default 5 ms, each time a
#: reader holds it the GUI thread can wait 5 ms for it, a few times in one paint. At 1 ms
#: (a page read on a worker, a 2 ms GUI timer) the longest wait fell from 46-75 to 30-35 ms.
GUI_SWITCH_INTERVAL_S = 0.001


def _read_pool() -> QThreadPool:
    if sys.getswitchinterval() > GUI_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    return shared_pool(READ_POOL, READ_THREADS)


NEEDS_REVIEW = "needs_review"  # the state filter's choice for records flagged for review
_STATE_CHOICES: list[tuple[str, frozenset[str] | str]] = [
    ("All states", frozenset()),
    ("Needs attention", frozenset({State.UNKNOWN, State.REFUSED_UNVERIFIED, State.SUBMITTING})),
    ("Needs review", NEEDS_REVIEW),
    *[(state.label, frozenset({state})) for state in State],
]

# Starting widths: a typical value fits whole (the State column fits every state's label);
# the Message column takes the rest.
_WIDTH_SAMPLES = {
    Column.TIME: "2024-05-01 12:22:33",
    Column.PROFILE: "SANDBOX · Main desk",
    Column.REQUEST_ID: "cd-20240501-0123456789",
    Column.INVOICE_ID: "100000001",
    Column.SITE_LOGIN: "site_login_1",
    Column.METHOD: "localbanks",
    Column.CURRENCY: "USDT",
    Column.AMOUNT: "1 000 000.00",
    Column.GATEWAY_STATUS: "Processing (3)",
}
# The order a new window shows: what a clerk checks first fits the default window width
# (Message, last, takes the rest); the other columns are a scroll, a drag or a click away.
_FIRST_COLUMNS = (
    Column.TIME,
    Column.REQUEST_ID,
    Column.AMOUNT,
    Column.CURRENCY,
    Column.STATE,
    Column.GATEWAY_STATUS,
    Column.PROFILE,
    Column.INVOICE_ID,
    Column.SITE_LOGIN,
    Column.METHOD,
)
DEFAULT_ORDER: tuple[Column, ...] = (
    *_FIRST_COLUMNS,
    *(column for column in Column if column not in _FIRST_COLUMNS and column != Column.MESSAGE),
    Column.MESSAGE,
)
# A remembered width outside these bounds (a hand-edited file) is not used.
_MIN_WIDTH, _MAX_WIDTH = 24, 2000
# Menu, or Shift+F10: the keys that open a context menu where the platform does not.
_MENU_KEYS = {
    (Qt.Key.Key_Menu, Qt.KeyboardModifier.NoModifier),
    (Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier),
}


def count_text(count: int, *, capped: bool = False) -> str:
    """``"1,234 payouts"`` / ``"1 payout"``; ``"10,000+ payouts"`` for a count cut short."""
    if capped:
        return f"{count:,}+ payouts"
    return f"{count:,} payout" + ("" if count == 1 else "s")


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def details_text(record: PayoutRecord, decimals: Mapping[str, int] | None = None) -> str:
    """What the details pane shows for one payout: a summary, the request and the response.

    The stored request is the body as sent without its signature; the salt was never in it,
    and recipient card numbers were masked before the attempt was written.
    """
    environment = "LIVE (real money)" if record.environment == "live" else "SANDBOX (test)"
    try:
        cur = with_decimals(record.currency, decimals)
        amount = f"{format_major(record.amount_minor, cur)} {record.currency}"
    except UnknownCurrencyError:
        amount = record.currency
    lines = [
        f"Payout #{record.id} · {environment} · profile {record.profile_name}",
        f"Merchant {record.merchant_id}, site {record.site_id}",
        f"Created   {local_time(record.created_at)} (local), {iso_utc(record.created_at)}",
        f"Updated   {local_time(record.updated_at)} (local), {iso_utc(record.updated_at)}",
        f"Request   {record.request_id}",
        f"Invoice   {record.invoice_id or '—'}",
        f"Amount    {amount} ({record.amount_minor} minor units)",
        f"State     {state_text(record.state, record.gateway_status)}",
    ]
    if record.gateway_status is not None:
        lines.append(f"Status    {status_label(record.gateway_status)}")
    if record.status_conflict:
        lines.append("Conflict: check. The gateway sent contradicting final statuses; the latest")
        lines.append("verified one is shown. Confirm the result with Cactus before acting on it.")
    if record.http_status is not None:
        lines.append(f"HTTP      {record.http_status}")
    if record.unknown_kind:
        lines.append(f"Why unknown: {record.unknown_kind}")
    if record.message:
        lines.append(f"Message   {record.message}")
    if record.detail:
        lines.append(f"Detail    {record.detail}")
    if record.state == State.UNKNOWN:
        lines.append("The payout may exist at the gateway. Do not send it again; check it first.")
    elif record.state == State.REFUSED_UNVERIFIED:
        lines.append(
            "The gateway's refusal could not be verified, so the payout may exist. Do not send "
            "it again; check it with Cactus, then set its final state."
        )
    lines += [
        "",
        "Request as sent (without its signature; card numbers masked):",
        _pretty(record.request),
        "",
        "Response:",
        _pretty(record.response) if record.response is not None else "No answer was recorded.",
    ]
    return "\n".join(lines)


def write_export(
    store: HistoryStore,
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    path: Path,
    bom: bool = False,
    decimals: Mapping[str, Mapping[str, int]] | None = None,
) -> int:
    """Write the matching payouts to ``path`` as CSV; return how many. Worker thread.

    The file is written beside the target and renamed into place, so a failed export never
    leaves half a file behind; it is private to the user because it holds payout details.
    """
    partial = path.with_name(f".{path.name}.part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            records = store.iter_records(history_filter, sort, descending)
            count = write_csv(records, stream, bom=bom, decimals=decimals)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return count


class HistoryPanel(QWidget):
    """Every payout sent from this computer, newest first, filtered and sorted by SQLite."""

    exportFinished = Signal(str, int)  # path, number of payouts
    exportFailed = Signal(str)  # a plain message
    resendRequested = Signal(int)  # record id: the person asked to send an UNKNOWN one again
    repeatRequested = Signal(int)  # record id: a new payout like this one

    def __init__(
        self, store: HistoryStore, profiles: ProfileStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._profiles = profiles
        self._runner = Runner(self, _read_pool(), low_priority=True)
        self._runner.hold()
        self._seen_version: int | None = None
        self._watch_busy = False
        self._look_again = False  # a forced look was asked for while one was on its way
        self._total_before = 0  # the row count before the change watch's last update
        self._decimals: dict[str, dict[str, int]] = {}

        self._filter_edit = QLineEdit(self)
        self._filter_edit.setObjectName("historyFilterEdit")
        self._filter_edit.setPlaceholderText("Search request id, invoice id, site login, message")
        self._filter_edit.setClearButtonEnabled(True)
        self._filter_edit.setAccessibleName("Search the history")
        self._filter_edit.setToolTip("Search the history (Ctrl+F)")
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._apply_filter)
        self._filter_edit.textChanged.connect(self._filter_timer.start)

        self._state_combo = QComboBox(self)
        self._state_combo.setObjectName("historyStateCombo")
        self._state_combo.setAccessibleName("State filter")
        for label, states in _STATE_CHOICES:
            self._state_combo.addItem(label, states)
        self._state_combo.setItemData(
            1, "Unknown or still submitting: check these", Qt.ItemDataRole.ToolTipRole
        )
        self._state_combo.setItemData(
            2,
            "Flagged by a callback or answer: contradicting final statuses, an error or "
            "unknown status, or an amount, currency or invoice that differs",
            Qt.ItemDataRole.ToolTipRole,
        )
        self._currency_combo = QComboBox(self)
        self._currency_combo.setObjectName("historyCurrencyCombo")
        self._currency_combo.setAccessibleName("Currency filter")
        self._profile_combo = QComboBox(self)
        self._profile_combo.setObjectName("historyProfileCombo")
        self._profile_combo.setAccessibleName("Profile filter")
        self._currency_combo.addItem("All currencies", None)
        self._profile_combo.addItem("All profiles", None)
        self._fill_choices()
        for combo in (self._state_combo, self._currency_combo, self._profile_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._apply_filter)

        self._export_button = QPushButton("Export CSV…", self)
        self._export_button.setObjectName("historyExportButton")
        self._export_button.setToolTip("Save the payouts that match the filters as a CSV file")
        self._export_button.clicked.connect(self._choose_export_path)
        self.export_bom_check = QCheckBox("CSV for Excel (UTF-8 BOM)", self)
        self.export_bom_check.setObjectName("historyExportBomCheck")
        self.export_bom_check.setToolTip(
            "Start the exported file with a byte order mark, so Excel reads accents and "
            "non-Latin names correctly"
        )
        self._count_label = QLabel(self)
        self._count_label.setObjectName("historyCountLabel")
        # Of a fixed size, room for the longest count: its text changes with every query, and
        # a label that resized re-laid out the whole tab (about 5 ms) before each repaint.
        self._count_label.setText(f"{count_text(999_999_999, capped=True)} (searching…)")
        self._count_label.setFixedSize(self._count_label.sizeHint())
        self._count_label.clear()
        self._status_label = style.muted_label("", self)
        self._status_label.setObjectName("historyStatusLabel")

        self._model = HistoryModel(store, self, self._runner)
        self._model.set_decimals(self._decimals)
        # Made in the parents they are shown in: a widget moved into a splitter or a box
        # afterwards re-resolves the style, font and palette of its whole subtree.
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.setChildrenCollapsible(False)
        self._table = HistoryTableView(splitter)
        self._table.setObjectName("historyView")
        self._table.setModel(self._model)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setWordWrap(False)
        rows = self._table.verticalHeader()
        rows.setVisible(False)
        # Fixed heights: a million rows then cost the header nothing to lay out.
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self._table.fontMetrics().height() + 8)
        header = self._table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionsMovable(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        header.setToolTip("Drag a column to move it; right-click to show or hide columns")
        self._default_columns()
        header.setSortIndicator(Column.TIME, Qt.SortOrder.DescendingOrder)
        self._table.setSortingEnabled(True)
        header.sortIndicatorChanged.connect(self._keep_sortable_indicator)
        self._export_folder: str | None = None  # the folder of the last export, this session
        self._selected_id: int | None = None
        self._scroll = 0
        self._table.selectionModel().currentRowChanged.connect(self._show_current)
        self._model.modelAboutToBeReset.connect(self._remember_selection)
        self._model.modelReset.connect(self._after_reset)
        self._model.loaded.connect(self._update_count)
        self._model.countChanged.connect(self._update_count)
        self._model.rowsInserted.connect(self._update_count)
        self._model.changesApplied.connect(self._changes_applied)

        self._timeline = TimelinePanel(splitter)
        self._timeline.reconcileRequested.connect(self.open_reconcile)
        details_box = QWidget(splitter)  # the splitter's panes in order: table, timeline, this
        self._details = QPlainTextEdit(details_box)
        self._details.setObjectName("historyDetails")
        self._details.setReadOnly(True)
        self._details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._details.setPlaceholderText("Select a payout to see what was sent and the answer.")
        self._details.setAccessibleName("Payout details")
        # A scroll bar that came and went with each payout would re-lay out the whole panel.
        self._details.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self._table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._table.customContextMenuRequested.connect(self._context_menu)
        self._table.installEventFilter(self)

        filters = QHBoxLayout()
        filters.setSpacing(8)
        filters.addWidget(self._filter_edit, 1)
        filters.addWidget(self._state_combo)
        filters.addWidget(self._currency_combo)
        filters.addWidget(self._profile_combo)
        filters.addWidget(self._export_button)
        self.filters_bar = FiltersBar(parent=self)
        self.filters_bar.changed.connect(self._apply_filter)
        self.filters_bar.use_main_row(self._main_row_settings, self._restore_main_row)
        self._totals_panel: TotalsPanel | None = None  # built when first asked for
        self.totals_button = QPushButton("Totals", self)
        self.totals_button.setObjectName("totalsButton")
        self.totals_button.setCheckable(True)
        self.totals_button.setToolTip("Totals and a daily chart of the payouts the filters select")
        self.totals_button.toggled.connect(self.show_totals)
        filters.addWidget(self.totals_button)
        footer = QHBoxLayout()
        footer.addWidget(self._count_label)
        footer.addStretch(1)
        footer.addWidget(self._status_label)
        footer.addWidget(self.export_bom_check)

        splitter.addWidget(self._table)
        splitter.addWidget(self._timeline)
        self._resend_button = QPushButton("Send again with the same request ID…", details_box)
        self._resend_button.setObjectName("resendButton")
        self._resend_button.setToolTip(
            "Only for a payout in doubt (unknown, or refused unverified): asks you to confirm first"
        )
        self._resend_button.setVisible(False)
        self._resend_button.clicked.connect(self._resend_clicked)
        self.repeat_button = QPushButton("Repeat this payout…", details_box)
        self.repeat_button.setObjectName("repeatButton")
        self.repeat_button.setToolTip(
            "A new payout with the same profile, recipient and amount and a new request id "
            "(a card number is typed again)"
        )
        self.repeat_button.setVisible(False)
        self.repeat_button.clicked.connect(self._repeat_clicked)
        self.shown_details: PayoutDetails | None = None
        self.receipts = ReceiptActions(self)
        self.receipts.saved.connect(lambda path: self._set_status(f"Receipt saved to {path}."))
        self.receipts.failed.connect(lambda message: self._set_status(message, error=True))
        self.receipt_button = QPushButton("Receipt PDF…", details_box)
        self.receipt_button.setObjectName("receiptButton")
        self.receipt_button.setToolTip("Save this payout's receipt as a PDF (card masked)")
        self.print_button = QPushButton("Print…", details_box)
        self.print_button.setObjectName("printReceiptButton")
        for button in (self.receipt_button, self.print_button):
            button.setVisible(False)
        self.receipt_button.clicked.connect(self._receipt_clicked)
        self.print_button.clicked.connect(self._print_clicked)
        details_layout = QVBoxLayout(details_box)
        details_layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self._resend_button)
        buttons.addWidget(self.repeat_button)
        buttons.addWidget(self.receipt_button)
        buttons.addWidget(self.print_button)
        buttons.addStretch(1)
        details_layout.addLayout(buttons)
        details_layout.addWidget(self._details, 1)
        splitter.addWidget(details_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.filters_bar)
        layout.addWidget(splitter, 1)
        layout.addLayout(footer)

        self._update_count()
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_INTERVAL_MS)
        self._watch.timeout.connect(self._check_for_changes)
        self._watch.start()
        style.flat_scroll_bars(self)
        # The first reads (the first page, the filters' choices) start once the panel has
        # painted: on workers they would take turns with its construction and its first
        # layout and paint for the interpreter lock. A panel that is not shown (yet) starts
        # them after FIRST_READS_WAIT_MS.
        self._first_reads = QTimer(self)
        self._first_reads.setSingleShot(True)
        self._first_reads.setInterval(FIRST_READS_WAIT_MS)
        self._first_reads.timeout.connect(self._start_first_reads)
        self._first_reads.start()

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._runner.holding() and self._first_reads.isActive():
            self._first_reads.stop()
            QTimer.singleShot(0, self, self._start_first_reads)  # once this paint pass is over
        super().paintEvent(event)

    def _start_first_reads(self) -> None:
        self._first_reads.stop()
        if self._runner.holding():
            self._runner.release()

    # -- public ---------------------------------------------------------------------------

    @property
    def model(self) -> HistoryModel:
        """The table model (for the main window and tests)."""
        return self._model

    @property
    def view(self) -> QTableView:
        """The payout table."""
        return self._table

    @property
    def totals_panel(self) -> TotalsPanel:
        """The totals pane under the filters (hidden), built the first time it is asked for:
        most openings of the history never show it."""
        if self._totals_panel is None:
            pane = TotalsPanel(self._store, self)
            pane.setVisible(False)
            style.flat_scroll_bars(pane)
            layout = cast(QVBoxLayout, self.layout())
            layout.insertWidget(layout.indexOf(self.filters_bar) + 1, pane)
            self._totals_panel = pane
        return self._totals_panel

    @property
    def timeline(self) -> TimelinePanel:
        """The selected payout's timeline, review flag and "Set final state…" button."""
        return self._timeline

    def open_reconcile(self, record_id: int | None = None) -> ReconcileDialog | None:
        """Open "Set final state" (non-blocking) for ``record_id`` or the selected payout.

        Returns None, with a message in the footer, when that payout cannot be set by hand.
        """
        from cactus_desk.ui.history.reconcile_dialog import ReconcileDialog

        if record_id is None:
            record_id = self._model.record_id(self._table.currentIndex().row())
        if record_id is None:
            return None
        record = self._timeline.record
        if record is None or record.id != record_id:
            record = self._read_record(record_id)
        if record is None:
            self._set_status("This payout is no longer in the history.", error=True)
            return None
        if not can_reconcile(record):
            self._set_status(
                f"Payout #{record.id} is {record.state.label.lower()}: only unknown or "
                "not yet final payouts can be given a final state by hand.",
                error=True,
            )
            return None
        dialog = ReconcileDialog(self._store, record, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.reconciled.connect(self._reconciled)
        dialog.open()
        return dialog

    def refresh(self) -> None:
        """Bring the table up to date (on a worker); keeps the selected payout.

        Rows change in place and new payouts are inserted (no reset), except that a text
        search, or new payouts in an order where their place is not on top, run the query again.
        """
        self._fill_choices()
        if self._model.is_loading() or self._model.history_filter.text.strip():
            self._model.refresh()
        else:
            self._check_for_changes(force=True)

    def look_for_changes(self) -> None:
        """Look for changed rows now (on a worker), as the change watch does on its tick: the
        team store's listener calls it when another desk or the receiver wrote.

        A look dropped because rows were still being applied is made again once they are."""
        self._want_look = True
        self._check_for_changes(force=True)

    def is_idle(self) -> bool:
        """True when no read of the rows, the details or the change watch is on its way."""
        return (
            self._model.is_idle()
            and not self._watch_busy
            and self._timeline.loading_id() is None
            and not self._runner.busy(CHOICES_CHANNEL)
        )

    def wait_until_idle(self, msecs: int = 30_000) -> bool:
        """Handle events until ``is_idle()`` (for callers and tests that need the rows)."""
        return wait_for(self.is_idle, msecs)

    def select_request(self, request_id: str) -> bool:
        """Select the payout with ``request_id``, searching for it if it is not on screen.

        The rows and the details are read on workers; this returns once they are shown
        (the window keeps handling events meanwhile).
        """
        self._model.wait_until_idle()
        row = self._model.row_of_request(request_id)
        if row is None:
            self._model.refresh(wait=True)
            row = self._model.row_of_request(request_id)
        if row is None:
            # Show it whatever the filters were: search for exactly this request id.
            for combo in (self._state_combo, self._currency_combo, self._profile_combo):
                combo.blockSignals(True)
                combo.setCurrentIndex(0)
                combo.blockSignals(False)
            self._filter_edit.blockSignals(True)
            self._filter_edit.setText(request_id)
            self._filter_edit.blockSignals(False)
            self._filter_timer.stop()
            self._model.set_filter(self.current_filter(), wait=True)
            row = self._model.row_of_request(request_id)
        if row is None:
            return False
        self._select_row(row)
        wait_for(lambda: self._timeline.loading_id() is None)
        return True

    def stop(self, msecs: int = STOP_WAIT_MS) -> None:
        """Stop the change watch and a pending search, and let reads on their way finish
        (up to ``msecs``): the store is about to close."""
        self._watch.stop()
        self._filter_timer.stop()
        self._start_first_reads()  # asked for already: they finish before the store closes
        _read_pool().waitForDone(msecs)

    def focus_search(self) -> None:
        """Put the cursor in the search box, its text selected to type over."""
        self._filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._filter_edit.selectAll()

    def search_for(self, text: str) -> None:
        """Show the payouts matching ``text`` (e.g. one batch's request id prefix)."""
        self._filter_edit.setText(text)

    def export_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the payouts matching the filters to ``path`` on a worker thread.

        Emits ``exportFinished(path, count)`` or ``exportFailed(message)``.
        """
        target = Path(path)
        args = (
            self._store,
            self._model.history_filter,
            self._model.sort_key,
            self._model.descending,
            target,
            self.export_bom_check.isChecked(),
            dict(self._decimals),
        )
        self._export_button.setEnabled(False)
        self._set_status(f"Exporting to {target.name}…")
        self._runner.run(
            lambda: write_export(*args),
            lambda count: self._export_done(str(target), count),
            lambda error: self._export_error(target, error),
            channel=EXPORT_CHANNEL,
        )

    # -- filters --------------------------------------------------------------------------

    def current_filter(self) -> HistoryFilter:
        """The filter the controls describe."""
        choice = self._state_combo.currentData()
        review = choice == NEEDS_REVIEW
        base = HistoryFilter(
            text=self._filter_edit.text().strip(),
            states=frozenset() if review else frozenset(choice or ()),
            needs_review=review,
            currency=self._currency_combo.currentData() or None,
            profile_id=self._profile_combo.currentData() or None,
        )
        return self.filters_bar.apply(base, base.currency)

    def _main_row_settings(self) -> dict[str, Any]:
        """The first filter row as plain values, for a saved filter."""
        choice = self._state_combo.currentData()
        state = choice if isinstance(choice, str) else sorted(str(s) for s in choice or ())
        return {
            "text": self._filter_edit.text(),
            "state": state,
            "currency": self._currency_combo.currentData(),
            "profile": self._profile_combo.currentData(),
        }

    def _restore_main_row(self, settings: dict[str, Any]) -> None:
        """Put a saved filter's first row back without applying it (the bar applies it)."""
        text = settings.get("text")
        wanted = settings.get("state")
        if isinstance(wanted, list):
            wanted = frozenset(str(s) for s in wanted)
        state = next((i for i, (_label, data) in enumerate(_STATE_CHOICES) if data == wanted), 0)
        widgets = (self._filter_edit, self._state_combo, self._currency_combo, self._profile_combo)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self._filter_edit.setText(text if isinstance(text, str) else "")
            self._filter_timer.stop()
            self._state_combo.setCurrentIndex(state)
            for combo, key in (
                (self._currency_combo, "currency"),
                (self._profile_combo, "profile"),
            ):
                value = settings.get(key)
                combo.setCurrentIndex(max(combo.findData(value), 0) if value else 0)
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def show_totals(self, shown: bool = True) -> None:
        """Show (and add up) or hide the totals of the filtered payouts."""
        if self.totals_button.isChecked() != shown:
            self.totals_button.setChecked(shown)  # its toggled signal comes back here, once
            return
        if not shown and self._totals_panel is None:
            return  # never shown: nothing to hide
        self.totals_panel.setVisible(shown)
        if shown:
            self.totals_panel.refresh(self.current_filter())

    def _apply_filter(self) -> None:
        self._filter_timer.stop()
        self._model.set_filter(self.current_filter())
        if self._totals_panel is not None and self._totals_panel.isVisible():
            self._totals_panel.refresh(self._model.history_filter)
        self._update_count()  # "searching…" while a text search runs on a worker

    def _fill_choices(self) -> None:
        """Refill the currency and profile filters from the history, read on a worker."""
        store = self._store
        self._runner.run(
            lambda: (store.distinct_currencies(), store.distinct_profiles()),
            lambda found: self._choices_read(*found),
            lambda error: log.warning("the history's filter choices could not be read: %s", error),
            channel=CHOICES_CHANNEL,
        )
        self._read_decimals()

    def _read_decimals(self) -> dict[str, Any]:
        """Each saved profile's decimals (amounts are shown with them); the profiles by id."""
        try:
            known = {profile.id: profile for profile in self._profiles.all()}
        except ProfileStoreError:
            known = {}
        # Amounts are shown with each profile's decimals (the model is built after this runs).
        self._decimals = {pid: profile.decimals for pid, profile in known.items()}
        if hasattr(self, "_model"):
            self._model.set_decimals(self._decimals)
        return known

    def _choices_read(self, currencies: list[str], profiles: list[tuple[str, str]]) -> None:
        self._refill(
            self._currency_combo,
            [("All currencies", None)] + [(code, code) for code in currencies],
        )
        known = self._read_decimals()
        names = dict(profiles)
        for profile in known.values():
            names.setdefault(profile.id, profile.name)
        choices: list[tuple[str, str | None]] = [("All profiles", None)]
        for profile_id, name in sorted(names.items(), key=lambda item: item[1].casefold()):
            saved = known.get(profile_id)
            if saved is None:
                label = f"{name} (deleted profile)"
            else:
                label = f"{'LIVE' if saved.is_live else 'SANDBOX'} · {saved.name}"
            choices.append((label, profile_id))
        self._refill(self._profile_combo, choices)

    @staticmethod
    def _refill(combo: QComboBox, choices: list[tuple[str, str | None]]) -> None:
        shown = [(combo.itemText(index), combo.itemData(index)) for index in range(combo.count())]
        if shown == choices:
            return  # refilling resizes the combo and relays out the filter bar for nothing
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for label, value in choices:
            combo.addItem(label, value)
        index = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)
        if current is not None and index < 0:
            # The chosen value is gone (e.g. profile removed): the filter falls back to all.
            combo.currentIndexChanged.emit(0)

    # -- columns --------------------------------------------------------------------------

    def column_layout(self) -> dict[str, Any]:
        """The columns as arranged now, by name: order, hidden ones, widths and the sort."""
        header = self._table.horizontalHeader()
        order = [Column(header.logicalIndex(visual)) for visual in range(header.count())]
        return {
            "order": [column.name for column in order],
            "hidden": [column.name for column in order if header.isSectionHidden(column)],
            "widths": {
                column.name: header.sectionSize(column)
                for column in order
                if not header.isSectionHidden(column)
            },
            "sort": self._model.sort_column.name,
            "descending": self._model.descending,
        }

    def restore_columns(self, layout: Mapping[str, Any] | None) -> None:
        """Arrange the columns as ``column_layout()`` described them.

        Names this version does not know are skipped and columns the layout does not name
        keep their default place, so a layout from another version still applies; anything
        malformed falls back to the default for that part.
        """
        if not isinstance(layout, Mapping):
            return
        header = self._table.horizontalHeader()
        names = {column.name: column for column in Column}
        order = layout.get("order")
        if isinstance(order, list):
            named = [names[name] for name in order if isinstance(name, str) and name in names]
            named = list(dict.fromkeys(named))
            rest = [column for column in DEFAULT_ORDER if column not in named]
            for visual, column in enumerate(named + rest):
                header.moveSection(header.visualIndex(column), visual)
        hidden = layout.get("hidden")
        if isinstance(hidden, list):
            gone = {names[name] for name in hidden if isinstance(name, str) and name in names}
            if len(gone) < len(Column):  # at least one column stays
                for column in Column:
                    header.setSectionHidden(column, column in gone)
        widths = layout.get("widths")
        if isinstance(widths, Mapping):
            for name, width in widths.items():
                good = type(width) is int and _MIN_WIDTH <= width <= _MAX_WIDTH
                if name in names and good:
                    header.resizeSection(names[name], width)
        sort, descending = layout.get("sort"), layout.get("descending")
        if sort in names and names[sort] in SORT_KEYS and isinstance(descending, bool):
            direction = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
            self._table.sortByColumn(names[sort], direction)

    def reset_columns(self) -> None:
        """Every column shown, in the default order and widths (the sort is kept)."""
        for column in Column:
            self._table.horizontalHeader().setSectionHidden(column, False)
        self._default_columns()

    def columns_menu(self) -> QMenu:
        """A menu of the columns, ticked when shown, with "Reset columns" (not yet shown)."""
        header = self._table.horizontalHeader()
        menu = QMenu(self)
        menu.setObjectName("historyColumnsMenu")
        shown = [c for c in Column if not header.isSectionHidden(c)]
        for visual in range(header.count()):
            column = Column(header.logicalIndex(visual))
            action = menu.addAction(HEADERS[column])
            action.setObjectName(f"columnAction_{column.name}")
            action.setCheckable(True)
            action.setChecked(column in shown)
            action.setEnabled(shown != [column])  # the last column shown stays
            action.toggled.connect(
                lambda checked, c=column: header.setSectionHidden(c, not checked)
            )
        menu.addSeparator()
        reset = menu.addAction("Reset columns")
        reset.setObjectName("resetColumnsAction")
        reset.triggered.connect(self.reset_columns)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        return menu

    def _header_menu(self, position: QPoint) -> None:
        header = self._table.horizontalHeader()
        self.columns_menu().popup(header.mapToGlobal(position))

    def _default_columns(self) -> None:
        header = self._table.horizontalHeader()
        # Quiet while moving: the table re-lays out on each move (asking the model for every
        # heading), eleven times over; once, below, is enough.
        header.blockSignals(True)
        try:
            for visual, column in enumerate(DEFAULT_ORDER):
                header.moveSection(header.visualIndex(column), visual)
        finally:
            header.blockSignals(False)
        self._table.updateGeometries()
        self._table.viewport().update()
        cells, titles = self._table.fontMetrics(), header.fontMetrics()
        longest = max((state.label for state in State), key=cells.horizontalAdvance)
        samples = {**_WIDTH_SAMPLES, Column.STATE: longest}
        for column, sample in samples.items():
            title = titles.horizontalAdvance(HEADERS[column]) + 20  # room for the sort arrow
            header.resizeSection(column, max(cells.horizontalAdvance(sample), title) + 12)

    # -- table ----------------------------------------------------------------------------

    def _keep_sortable_indicator(self, column: int, order: Qt.SortOrder) -> None:
        if column != self._model.sort_column or order != self._model.sort_order:
            header = self._table.horizontalHeader()
            header.blockSignals(True)
            header.setSortIndicator(self._model.sort_column, self._model.sort_order)
            header.blockSignals(False)

    def _remember_selection(self) -> None:
        index = self._table.currentIndex()
        self._selected_id = self._model.loaded_record_id(index.row()) if index.isValid() else None
        self._scroll = self._table.verticalScrollBar().value()

    def _after_reset(self) -> None:
        self._update_count()
        row = self._model.row_of(self._selected_id) if self._selected_id is not None else None
        if row is None:
            self._clear_details()
            return
        self._select_row(row)
        self._table.verticalScrollBar().setValue(self._scroll)

    def _select_row(self, row: int) -> None:
        index = self._model.index(row, 0)
        self._table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self._table.scrollTo(index)
        self._show_current(index)

    def _selected_record_id(self) -> int | None:
        index = self._table.currentIndex()
        return self._model.loaded_record_id(index.row()) if index.isValid() else None

    def _clear_details(self) -> None:
        self._runner.invalidate(DETAILS_CHANNEL)
        self._details.clear()
        self._timeline.show_record(None)
        self._resend_button.setVisible(False)
        self.repeat_button.setVisible(False)
        self.shown_details = None
        for button in (self.receipt_button, self.print_button):
            button.setVisible(False)

    def _show_current(self, index: QModelIndex, _previous: QModelIndex | None = None) -> None:
        record_id = self._model.loaded_record_id(index.row()) if index.isValid() else None
        if record_id is None:
            self._clear_details()
            return
        if record_id in (self._timeline.record_id, self._timeline.loading_id()):
            return  # shown already, or on its way (a reset kept the selection)
        self._load_details(record_id)

    def _load_details(self, record_id: int) -> None:
        """Read the payout and its timeline on a worker; "Loading…" until they arrive."""
        self._resend_button.setVisible(False)
        self._details.setPlainText(LOADING_DETAILS)
        self._timeline.show_loading(record_id)
        store = self._store
        self._runner.run(
            lambda: store.details(record_id),
            lambda details: self._details_read(record_id, details),
            lambda error: self._details_failed(record_id, error),
            channel=DETAILS_CHANNEL,
        )

    def _details_read(self, record_id: int, details: PayoutDetails) -> None:  # GUI thread
        if self._timeline.loading_id() != record_id:
            return  # another payout was selected meanwhile, or the selection cleared
        record = details.record
        self._details.setPlainText(details_text(record, self._decimals.get(record.profile_id)))
        self._resend_button.setVisible(record.state.in_doubt)
        self.repeat_button.setVisible(True)
        self.shown_details = details
        for button in (self.receipt_button, self.print_button):
            button.setVisible(True)
        self._timeline.show_record(record, details.events)

    def _details_failed(self, record_id: int, error: BaseException) -> None:  # GUI thread
        if self._timeline.loading_id() != record_id:
            return
        self._timeline.show_record(None)
        if isinstance(error, RecordNotFoundError):
            self._details.setPlainText("This payout is no longer in the history.")
        else:
            log.error("a payout's details could not be read", exc_info=error)
            self._details.setPlainText(f"The details could not be read: {error}")

    def _read_record(self, record_id: int) -> PayoutRecord | None:
        """``record_id`` read on a worker, waited for with the event loop running."""
        store = self._store
        answer: list[PayoutRecord | BaseException] = []
        self._runner.run(
            lambda: store.get(record_id), answer.append, lambda error: answer.append(error)
        )
        wait_for(lambda: bool(answer))
        if not answer or isinstance(answer[0], RecordNotFoundError):
            return None
        if isinstance(answer[0], BaseException):
            raise answer[0]
        return answer[0]

    def _update_count(self) -> None:
        total, capped = self._model.total(), self._model.is_capped()
        text = count_text(total, capped=capped)
        self._count_label.setText(f"{text} (searching…)" if self._model.is_loading() else text)
        self._count_label.setToolTip(
            f"More than {total:,} payouts match: the first {total:,} are "
            "listed. Add to the search or use the filters to narrow it."
            if capped
            else ""
        )

    def _check_for_changes(self, *, force: bool = False) -> None:
        """Look at the history's change marker on a worker; update the rows if it moved."""
        if self._watch_busy:
            # The look on its way may have read the marker before the write asked about.
            self._look_again = self._look_again or force
            return
        store, shown = self._store, self._timeline.record_id

        def read() -> tuple[int, int]:  # worker thread
            newest_event = store.newest_event_id(shown) if shown is not None else 0
            return store.data_version(), newest_event

        self._watch_busy = True
        self._runner.run(
            read,
            lambda found: self._watched(shown, force, *found),
            self._watch_failed,
            channel=WATCH_CHANNEL,
        )

    def _watch_failed(self, error: BaseException) -> None:  # GUI thread
        self._watch_busy = False
        self._look_again = False
        # The store was closed while the window shuts down, or it is being replaced.
        log.debug("the history's change marker could not be read: %s", error)

    def _watched(self, shown: int | None, force: bool, version: int, newest_event: int) -> None:
        self._watch_busy = False
        again, self._look_again = self._look_again, False
        try:
            self._show_changes(shown, force, version, newest_event)
        finally:
            if again:
                self._check_for_changes(force=True)

    def _show_changes(self, shown: int | None, force: bool, version: int, newest: int) -> None:
        moved = newest != self._timeline.newest_event_id()
        if shown is not None and shown == self._timeline.record_id and moved:
            self._load_details(shown)  # a callback or manual change for the payout shown
        if (version == self._seen_version and not force) or self._model.is_loading():
            return  # nothing new, or a query is on its way (look again on the next tick)
        # Another process (the receiver) or this window wrote: update rows in place.
        self._seen_version = version
        self._total_before = self._model.total()
        self._model.apply_changes()

    def _changes_applied(self, changed: set[int] | None) -> None:  # GUI thread
        if changed is None:
            self._seen_version = None  # dropped: look again on the next tick
            return
        if getattr(self, "_want_look", False):  # asked for while these were being applied
            self._want_look = False
            self._check_for_changes(force=True)
        selected = self._selected_record_id()
        if selected is not None and selected in changed:
            self._load_details(selected)
        if self._model.total() != self._total_before:
            self._fill_choices()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Open the row menu from the keyboard for the selected row, not under the mouse."""
        if watched is self._table:
            kind = event.type()
            if kind == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
                pressed = (Qt.Key(event.key()), event.modifiers())
                if pressed in _MENU_KEYS:
                    self._keyboard_menu()
                    return True
            elif (
                kind == QEvent.Type.ContextMenu
                and isinstance(event, QContextMenuEvent)
                and event.reason() != QContextMenuEvent.Reason.Mouse
            ):
                # Where the platform turns the Menu key into this event, its position is not
                # a row's (often the widget's corner): the selected row is meant.
                self._keyboard_menu()
                return True
        return super().eventFilter(watched, event)

    def _keyboard_menu(self) -> None:
        if any(menu.isVisible() for menu in self.findChildren(QMenu, "historyContextMenu")):
            return  # the key press and the platform's menu event for the same key press
        index = self._table.currentIndex()
        if not index.isValid():
            return
        self._table.scrollTo(index)
        rect = self._table.visualRect(index.siblingAtColumn(self._first_visible_column()))
        self._menu_for(index.row(), rect.bottomLeft() + QPoint(8, 0))

    def _first_visible_column(self) -> int:
        header = self._table.horizontalHeader()
        for visual in range(header.count()):
            logical = header.logicalIndex(visual)
            if not header.isSectionHidden(logical):
                return logical
        return 0

    def _context_menu(self, position: QPoint) -> None:
        index = self._table.indexAt(position)
        if index.isValid():
            self._menu_for(index.row(), position)

    def _menu_for(self, table_row: int, position: QPoint) -> None:
        """The row menu for ``table_row``, at ``position`` in the table's viewport."""
        record_id = self._model.record_id(table_row)
        row = self._model.history_row(table_row)
        if record_id is None or row is None:
            return
        menu = QMenu(self)
        menu.setObjectName("historyContextMenu")
        action = menu.addAction("Set final state…")
        action.setObjectName("reconcileAction")
        action.setEnabled(can_reconcile(row))
        action.triggered.connect(lambda: self.open_reconcile(record_id))
        resend = menu.addAction("Send again with the same request ID…")
        resend.setObjectName("resendAction")
        resend.setEnabled(row.state.in_doubt)
        resend.triggered.connect(lambda: self.resendRequested.emit(record_id))
        repeat = menu.addAction("Repeat this payout…")
        repeat.setObjectName("repeatAction")
        repeat.triggered.connect(lambda: self.repeatRequested.emit(record_id))
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self._table.viewport().mapToGlobal(position))

    def _resend_clicked(self) -> None:
        record_id = self._model.record_id(self._table.currentIndex().row())
        if record_id is not None:
            self.resendRequested.emit(record_id)

    def _receipt_clicked(self) -> None:
        details = self.shown_details
        if details is not None:
            self.receipts.choose_path(details, self._decimals.get(details.record.profile_id))

    def _print_clicked(self) -> None:
        details = self.shown_details
        if details is not None:
            self.receipts.print_(details, self._decimals.get(details.record.profile_id))

    def _repeat_clicked(self) -> None:
        record_id = self._selected_record_id()
        if record_id is not None:
            self.repeatRequested.emit(record_id)

    def _reconciled(self, record_id: int, _event_id: int) -> None:
        self._set_status(f"Payout #{record_id}: final state set by hand.")
        self._check_for_changes(force=True)
        if self._selected_record_id() == record_id:
            self._load_details(record_id)

    # -- export ---------------------------------------------------------------------------

    def _choose_export_path(self) -> None:
        dialog = QFileDialog(self, "Export payouts as CSV")
        dialog.setObjectName("historyExportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("CSV files (*.csv)")
        dialog.setDefaultSuffix("csv")
        dialog.setDirectory(self._export_folder or documents_folder())
        dialog.selectFile("cactus-payouts.csv")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self._export_chosen)
        dialog.open()

    def _export_chosen(self, path: str) -> None:
        self._export_folder = str(Path(path).parent)
        self.export_csv(path)

    def _export_done(self, path: str, count: int) -> None:
        self._export_button.setEnabled(True)
        self._set_status(f"Exported {count_text(count)} to {Path(path).name}")
        self.exportFinished.emit(path, count)

    def _export_error(self, target: Path, error: BaseException) -> None:
        self._export_button.setEnabled(True)
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            message = f"Could not export to {target}: {reason}"
        else:
            message = f"Could not export to {target}: {error}"
        self._set_status(message, error=True)
        self.exportFailed.emit(message)

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self._status_label.setText(text)
        colour = style.ERROR_FG if error else style.MUTED_FG
        self._status_label.setStyleSheet(f"QLabel {{ color: {colour}; }}")
