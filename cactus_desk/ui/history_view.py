"""The history tab: search and filters, the payout table, one payout's details, CSV export."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
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

from cactus_desk.money import UnknownCurrencyError, format_major
from cactus_desk.payouts.export import write_csv
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import status_label
from cactus_desk.payouts.store import (
    HistoryFilter,
    HistoryStore,
    PayoutRecord,
    RecordNotFoundError,
    SortKey,
    iso_utc,
)
from cactus_desk.profiles import ProfileStore, ProfileStoreError
from cactus_desk.ui import style
from cactus_desk.ui.history_model import Column, HistoryModel, local_time
from cactus_desk.ui.timeline import TimelinePanel, can_reconcile
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.ui.reconcile_dialog import ReconcileDialog

FILTER_DELAY_MS = 200
# A cheap PRAGMA: notices payouts and callbacks recorded by the form or another process.
WATCH_INTERVAL_MS = 2000
EXPORT_CHANNEL = "export"

_STATE_CHOICES: list[tuple[str, frozenset[str]]] = [
    ("All states", frozenset()),
    ("Needs attention", frozenset({State.UNKNOWN, State.REFUSED_UNVERIFIED, State.SUBMITTING})),
    *[(state.label, frozenset({state})) for state in State],
]

# Starting widths in characters; the Message column takes the rest.
_COLUMN_WIDTHS = {
    Column.TIME: 17,
    Column.PROFILE: 18,
    Column.REQUEST_ID: 16,
    Column.INVOICE_ID: 9,
    Column.SITE_LOGIN: 11,
    Column.METHOD: 8,
    Column.CURRENCY: 6,
    Column.AMOUNT: 14,
    Column.STATE: 9,
    Column.GATEWAY_STATUS: 13,
}


def count_text(count: int, *, capped: bool = False) -> str:
    """``"1,234 payouts"`` / ``"1 payout"``; ``"10,000+ payouts"`` for a count cut short."""
    if capped:
        return f"{count:,}+ payouts"
    return f"{count:,} payout" + ("" if count == 1 else "s")


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def details_text(record: PayoutRecord) -> str:
    """What the details pane shows for one payout: a summary, the request and the response.

    The stored request is the body as sent without its signature; the salt was never in it,
    and recipient card numbers were masked before the attempt was written.
    """
    environment = "LIVE (real money)" if record.environment == "live" else "SANDBOX (test)"
    try:
        amount = f"{format_major(record.amount_minor, record.currency)} {record.currency}"
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
        f"State     {record.state.label}",
    ]
    if record.gateway_status is not None:
        lines.append(f"Status    {status_label(record.gateway_status)}")
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
) -> int:
    """Write the matching payouts to ``path`` as CSV; return how many. Worker thread.

    The file is written beside the target and renamed into place, so a failed export never
    leaves half a file behind; it is private to the user because it holds payout details.
    """
    partial = path.with_name(f".{path.name}.part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            count = write_csv(store.iter_records(history_filter, sort, descending), stream)
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

    def __init__(
        self, store: HistoryStore, profiles: ProfileStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._profiles = profiles
        self._runner = Runner(self)
        self._seen_version: int | None = None

        self._filter_edit = QLineEdit(self)
        self._filter_edit.setObjectName("historyFilterEdit")
        self._filter_edit.setPlaceholderText("Search request id, invoice id, site login, message")
        self._filter_edit.setClearButtonEnabled(True)
        self._filter_edit.setAccessibleName("Search the history")
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
        self._currency_combo = QComboBox(self)
        self._currency_combo.setObjectName("historyCurrencyCombo")
        self._currency_combo.setAccessibleName("Currency filter")
        self._profile_combo = QComboBox(self)
        self._profile_combo.setObjectName("historyProfileCombo")
        self._profile_combo.setAccessibleName("Profile filter")
        self._fill_choices()
        for combo in (self._state_combo, self._currency_combo, self._profile_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._apply_filter)

        self._export_button = QPushButton("Export CSV…", self)
        self._export_button.setObjectName("historyExportButton")
        self._export_button.setToolTip("Save the payouts that match the filters as a CSV file")
        self._export_button.clicked.connect(self._choose_export_path)
        self._count_label = QLabel(self)
        self._count_label.setObjectName("historyCountLabel")
        self._status_label = style.muted_label("", self)
        self._status_label.setObjectName("historyStatusLabel")

        self._model = HistoryModel(store, self, self._runner)
        self._table = QTableView(self)
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
        char = self._table.fontMetrics().horizontalAdvance("0")
        for column, chars in _COLUMN_WIDTHS.items():
            title = header.fontMetrics().horizontalAdvance(
                self._model.headerData(column, Qt.Orientation.Horizontal)
            )
            header.resizeSection(column, max(chars * char, title + 20) + 12)
        header.setSortIndicator(Column.TIME, Qt.SortOrder.DescendingOrder)
        self._table.setSortingEnabled(True)
        header.sortIndicatorChanged.connect(self._keep_sortable_indicator)
        self._selected_id: int | None = None
        self._scroll = 0
        self._table.selectionModel().currentRowChanged.connect(self._show_current)
        self._model.modelAboutToBeReset.connect(self._remember_selection)
        self._model.modelReset.connect(self._after_reset)
        self._model.loaded.connect(self._update_count)
        self._model.rowsInserted.connect(self._update_count)

        self._details = QPlainTextEdit(self)
        self._details.setObjectName("historyDetails")
        self._details.setReadOnly(True)
        self._details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._details.setPlaceholderText("Select a payout to see what was sent and the answer.")
        self._details.setAccessibleName("Payout details")
        # A scroll bar that came and went with each payout would re-lay out the whole panel.
        self._details.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self._timeline = TimelinePanel(store, self)
        self._timeline.reconcileRequested.connect(self.open_reconcile)
        self._table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._table.customContextMenuRequested.connect(self._context_menu)

        filters = QHBoxLayout()
        filters.setSpacing(8)
        filters.addWidget(self._filter_edit, 1)
        filters.addWidget(self._state_combo)
        filters.addWidget(self._currency_combo)
        filters.addWidget(self._profile_combo)
        filters.addWidget(self._export_button)
        footer = QHBoxLayout()
        footer.addWidget(self._count_label)
        footer.addStretch(1)
        footer.addWidget(self._status_label)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._table)
        splitter.addWidget(self._timeline)
        self._resend_button = QPushButton("Send again with the same request ID…", self)
        self._resend_button.setObjectName("resendButton")
        self._resend_button.setToolTip(
            "Only for a payout in doubt (unknown, or refused unverified): asks you to confirm first"
        )
        self._resend_button.setVisible(False)
        self._resend_button.clicked.connect(self._resend_clicked)
        details_box = QWidget(self)
        details_layout = QVBoxLayout(details_box)
        details_layout.setContentsMargins(0, 0, 0, 0)
        details_layout.addWidget(self._resend_button, 0, Qt.AlignmentFlag.AlignLeft)
        details_layout.addWidget(self._details, 1)
        splitter.addWidget(details_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addLayout(footer)

        self._update_count()
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_INTERVAL_MS)
        self._watch.timeout.connect(self._check_for_changes)
        self._watch.start()
        self._seen_version = self._data_version()

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
    def timeline(self) -> TimelinePanel:
        """The selected payout's timeline, review flag and "Set final state…" button."""
        return self._timeline

    def open_reconcile(self, record_id: int | None = None) -> ReconcileDialog | None:
        """Open "Set final state" (non-blocking) for ``record_id`` or the selected payout.

        Returns None, with a message in the footer, when that payout cannot be set by hand.
        """
        from cactus_desk.ui.reconcile_dialog import ReconcileDialog

        if record_id is None:
            record_id = self._model.record_id(self._table.currentIndex().row())
        if record_id is None:
            return None
        try:
            record = self._store.get(record_id)
        except RecordNotFoundError:
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
        """Bring the table up to date; keeps the selected payout.

        Rows change in place and new payouts are inserted (no reset), except that a text
        search, or new payouts in an order where their place is not on top, run the query again.
        """
        self._seen_version = self._data_version()
        self._fill_choices()
        if self._model.is_loading() or self._model.history_filter.text.strip():
            self._model.refresh()
        else:
            self._apply_changes()

    def select_request(self, request_id: str) -> bool:
        """Select the payout with ``request_id``, searching for it if it is not on screen."""
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
        return True

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
        return HistoryFilter(
            text=self._filter_edit.text().strip(),
            states=frozenset(self._state_combo.currentData() or ()),
            currency=self._currency_combo.currentData() or None,
            profile_id=self._profile_combo.currentData() or None,
        )

    def _apply_filter(self) -> None:
        self._filter_timer.stop()
        self._model.set_filter(self.current_filter())
        self._update_count()  # "searching…" while a text search runs on a worker

    def _fill_choices(self) -> None:
        currencies = self._store.distinct_currencies()
        self._refill(
            self._currency_combo,
            [("All currencies", None)] + [(code, code) for code in currencies],
        )
        try:
            known = {profile.id: profile for profile in self._profiles.list()}
        except ProfileStoreError:
            known = {}
        names = dict(self._store.distinct_profiles())
        for profile in known.values():
            names.setdefault(profile.id, profile.name)
        choices: list[tuple[str, str | None]] = [("All profiles", None)]
        for profile_id, name in sorted(names.items(), key=lambda item: item[1].casefold()):
            profile = known.get(profile_id)
            if profile is None:
                label = f"{name} (deleted profile)"
            else:
                label = f"{'LIVE' if profile.is_live else 'SANDBOX'} · {profile.name}"
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

    # -- table ----------------------------------------------------------------------------

    def _keep_sortable_indicator(self, column: int, order: Qt.SortOrder) -> None:
        if column != self._model.sort_column or order != self._model.sort_order:
            header = self._table.horizontalHeader()
            header.blockSignals(True)
            header.setSortIndicator(self._model.sort_column, self._model.sort_order)
            header.blockSignals(False)

    def _remember_selection(self) -> None:
        index = self._table.currentIndex()
        self._selected_id = self._model.record_id(index.row()) if index.isValid() else None
        self._scroll = self._table.verticalScrollBar().value()

    def _after_reset(self) -> None:
        self._update_count()
        row = self._model.row_of(self._selected_id) if self._selected_id is not None else None
        if row is None:
            self._details.clear()
            self._timeline.show_record(None)
            self._resend_button.setVisible(False)
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

    def _show_current(self, index: QModelIndex, _previous: QModelIndex | None = None) -> None:
        self._resend_button.setVisible(False)
        record_id = self._model.record_id(index.row()) if index.isValid() else None
        if record_id is None:
            self._details.clear()
            self._timeline.show_record(None)
            return
        try:
            record = self._store.get(record_id)
        except RecordNotFoundError:
            self._details.setPlainText("This payout is no longer in the history.")
            self._timeline.show_record(None)
            return
        self._details.setPlainText(details_text(record))
        self._resend_button.setVisible(record.state.in_doubt)
        self._timeline.show_record(record)

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

    def _data_version(self) -> int | None:
        try:
            return self._store.data_version()
        except RuntimeError:  # the store was closed while the window shuts down
            return None

    def _check_for_changes(self) -> None:
        version = self._data_version()
        if version is None or version == self._seen_version or self._model.is_loading():
            return  # while a search runs, look again on the next tick
        # Another process (the receiver) or this window wrote: update rows in place.
        self._seen_version = version
        total = self._model.total()
        self._apply_changes()
        if self._model.total() != total:
            self._fill_choices()

    def _apply_changes(self) -> None:
        changed = self._model.apply_changes()
        index = self._table.currentIndex()
        record_id = self._model.record_id(index.row()) if index.isValid() else None
        if record_id is not None and (record_id in changed or self._timeline.is_stale()):
            self._show_current(index)

    def _context_menu(self, position: QPoint) -> None:
        index = self._table.indexAt(position)
        record_id = self._model.record_id(index.row()) if index.isValid() else None
        row = self._model.history_row(index.row()) if index.isValid() else None
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
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self._table.viewport().mapToGlobal(position))

    def _resend_clicked(self) -> None:
        record_id = self._model.record_id(self._table.currentIndex().row())
        if record_id is not None:
            self.resendRequested.emit(record_id)

    def _reconciled(self, record_id: int, _event_id: int) -> None:
        self._set_status(f"Payout #{record_id}: final state set by hand.")
        self._check_for_changes()
        index = self._table.currentIndex()
        if index.isValid() and self._model.record_id(index.row()) == record_id:
            self._show_current(index)

    # -- export ---------------------------------------------------------------------------

    def _choose_export_path(self) -> None:
        dialog = QFileDialog(self, "Export payouts as CSV")
        dialog.setObjectName("historyExportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("CSV files (*.csv)")
        dialog.setDefaultSuffix("csv")
        dialog.selectFile("cactus-payouts.csv")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.export_csv)
        dialog.open()

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
