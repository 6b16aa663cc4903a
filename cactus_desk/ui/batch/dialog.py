"""The batch dialog: a file's rows in a grid with each error at its cell (fixable in place),
the totals and warnings, a confirmation with the LIVE/SANDBOX marker, then the progress
(counts, ETA, pause, resume, cancel) and the report.

Reading, validating, sending and writing the report all run on workers; the GUI thread only
shows their results. Sending goes through the window's one ``SendService``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.batch.columns import MappingMemory, mapping_for, missing_columns
from cactus_desk.batch.ids import batch_prefix
from cactus_desk.batch.reading import Table, read_table
from cactus_desk.batch.report import report_rows, write_report
from cactus_desk.batch.sending import (
    BatchOutcome,
    Control,
    Progress,
    RowResult,
    existing_records,
    failed_again_batch,
    send_batch,
)
from cactus_desk.batch.validate import Batch, check_rows, validate_batch
from cactus_desk.history.port import HistoryStore
from cactus_desk.payouts.send import SendService
from cactus_desk.profiles import Profile
from cactus_desk.ui import style
from cactus_desk.ui.batch.grid_model import BatchGridModel, GridRows, ResultsModel, grid_rows
from cactus_desk.ui.workers import Runner, shared_pool

if TYPE_CHECKING:
    from cactus_desk.batch_approval import BatchSubmitted

GRID, PROGRESS = 0, 1
ROWS_SHOWN_EVERY_MS = 100
#: How much lower the sending threads' CPU priority is than the GUI thread's. Their stalls of
#: the GUI are mostly not the interpreter lock: in GUI gaps over 16 ms during a send the GUI
#: thread waited for a CPU about half the time (a 2-core machine, SQLite and HTTP work on the
#: senders), ran itself a third, waited on the lock a fifth; at 10 the 99th percentile stall
#: of a 2,000-row send into a 1M history fell from 28-40 to 19-20 ms on the same load (the
#: send rate 16-21 before, 17 a second after).
SENDING_NICENESS = 10


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    widget.setObjectName(name)
    return widget


class _Relay(QObject):
    """Carries finished rows from the sending threads to the GUI thread, coalesced: rows
    wait in a list, and ``rows`` is emitted only when the list was empty, so the GUI
    thread gets one queued call per burst however fast the rows come."""

    rows = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._waiting: list[RowResult] = []
        self._progress: Progress | None = None

    def put(self, result: RowResult, progress: Progress) -> None:
        """Queue one finished row (called on a sending thread, under the batch's lock)."""
        with self._lock:
            wake = not self._waiting
            self._waiting.append(result)
            self._progress = replace(progress)  # the counts as of this row
        if wake:
            self.rows.emit()

    def take(self) -> tuple[list[RowResult], Progress | None]:
        """The rows waiting and the latest counts; the list starts empty again."""
        with self._lock:
            rows, self._waiting = self._waiting, []
            progress, self._progress = self._progress, None
            return rows, progress


def _fit_to_visible_rows(table: QTableView) -> None:
    """Let ``resizeColumnsToContents`` measure the rows on show, not Qt's default of 1,000:
    at the end of a 10,000-row batch that measuring held the GUI thread for 135 ms."""
    table.horizontalHeader().setResizeContentsPrecision(0)


class BatchDialog(QDialog):
    """Import, check, fix, confirm and send one batch file."""

    finished_sending = Signal(object)  # BatchOutcome
    show_in_history = Signal(str)  # the History search that shows this batch's rows

    def __init__(
        self,
        history: HistoryStore,
        profiles: Sequence[Profile],
        service: SendService,
        data_dir: Path,
        parent: QWidget | None = None,
        *,
        balances: Callable[[Profile], Any] | None = None,
        store: str | None = None,
    ) -> None:
        """``store``: the team history's URL, whose approval policy may hold the batch."""
        super().__init__(parent)
        self.setObjectName("batchDialog")
        self.setWindowTitle("Batch payouts")
        self.resize(1100, 620)
        self._history = history
        self._profiles = list(profiles)
        self._service = service
        self._memory = MappingMemory(data_dir)
        self._balances = balances
        self._store = store
        #: The batch submitted for approval instead of sent (a team's policy held it).
        self.submitted: BatchSubmitted | None = None
        self._runner = Runner(self)
        self._send_runner = Runner(self, shared_pool("batch-send", 1))
        self._table: Table | None = None
        self._mapping: dict[int, str] = {}
        self.batch: Batch | None = None
        self.outcome: BatchOutcome | None = None
        self.control = Control()
        self.mapping_dialog: QDialog | None = None
        self._relay = _Relay()
        # Rows are shown at most every ROWS_SHOWN_EVERY_MS: a fast batch never floods the GUI.
        self._rows_timer = QTimer(self)
        self._rows_timer.setSingleShot(True)
        self._rows_timer.setInterval(ROWS_SHOWN_EVERY_MS)
        self._rows_timer.timeout.connect(self._show_rows)
        self._relay.rows.connect(self._rows_timer_start)
        self._started = 0.0

        self.profile_box = _named(QComboBox(), "batchProfile")
        for profile in self._profiles:
            marker = "LIVE" if profile.environment == "live" else "SANDBOX"
            self.profile_box.addItem(f"{profile.name} ({marker})", profile.id)
        self.profile_box.currentIndexChanged.connect(lambda _: self.revalidate())
        self.marker = _named(QLabel(), "batchMarker")
        self.file_label = _named(QLabel(), "batchFile")
        top = QHBoxLayout()
        top.addWidget(QLabel("Profile:"))
        top.addWidget(self.profile_box)
        top.addWidget(self.marker)
        top.addStretch(1)
        top.addWidget(self.file_label)

        self.grid_model = BatchGridModel(self)
        self.grid_model.edited.connect(self._cell_edited)
        self.grid = _named(QTableView(), "batchGrid")
        self.grid.setModel(self.grid_model)
        self.grid.horizontalHeader().setStretchLastSection(True)
        _fit_to_visible_rows(self.grid)
        self.summary = _named(QLabel(), "batchSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.send_button = _named(QPushButton("Send batch…"), "batchSend")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.request_send)
        grid_page = QWidget()
        grid_layout = QVBoxLayout(grid_page)
        grid_layout.addWidget(self.grid, 1)
        grid_layout.addWidget(self.summary)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.send_button)
        grid_layout.addLayout(buttons)

        self.progress_bar = _named(QProgressBar(), "batchProgress")
        self.counts = _named(QLabel(), "batchCounts")
        self.pause_button = _named(QPushButton("Pause"), "batchPause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = _named(QPushButton("Cancel"), "batchCancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.report_button = _named(QPushButton("Save report…"), "batchReport")
        self.report_button.clicked.connect(self._ask_report)
        self.again_button = _named(QPushButton("Pay the failed rows again"), "batchAgain")
        self.again_button.clicked.connect(self.pay_failed_again)
        self.history_button = _named(QPushButton("Show in History"), "batchShowHistory")
        self.history_button.clicked.connect(self._show_in_history)
        self.results_model = ResultsModel(self)
        self.results = _named(QTableView(), "batchResults")
        self.results.setModel(self.results_model)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.horizontalHeader().setStretchLastSection(True)
        _fit_to_visible_rows(self.results)
        progress_page = QWidget()
        progress_layout = QVBoxLayout(progress_page)
        progress_layout.addWidget(self.progress_bar)
        progress_layout.addWidget(self.counts)
        progress_layout.addWidget(self.results, 1)
        controls = QHBoxLayout()
        for button in (self.pause_button, self.cancel_button):
            controls.addWidget(button)
        controls.addStretch(1)
        for button in (self.history_button, self.again_button, self.report_button):
            controls.addWidget(button)
            button.setEnabled(False)
        progress_layout.addLayout(controls)

        self.pages = QStackedWidget()
        self.pages.addWidget(grid_page)
        self.pages.addWidget(progress_page)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)
        style.flat_scroll_bars(self)

    # -- loading and checking ----------------------------------------------------------------

    @property
    def profile(self) -> Profile | None:
        """The profile chosen to send with."""
        chosen = self.profile_box.currentData()
        return next((p for p in self._profiles if p.id == chosen), None)

    def load(self, path: Path) -> None:
        """Read ``path`` and find its columns on a worker; the grid fills when checked."""
        self.file_label.setText(path.name)
        self.summary.setText("Reading the file…")
        memory = self._memory

        def read() -> tuple[Table, dict[int, str]]:
            table = read_table(path)
            return table, mapping_for(table.headers, memory)

        self._runner.run(read, self._loaded, self._failed, channel="load")

    def _loaded(self, loaded: tuple[Table, dict[int, str]]) -> None:
        table, mapping = loaded
        self._table = table
        self._mapping = mapping
        if not missing_columns(mapping):
            self.revalidate()
            return
        from cactus_desk.ui.batch.mapping import MappingDialog

        dialog = MappingDialog(table.headers, mapping, self)
        self.mapping_dialog = dialog
        self.summary.setText("Match the file's columns to continue.")
        dialog.accepted.connect(lambda: self._mapped(table, dialog.mapping()))
        dialog.open()

    def _mapped(self, table: Table, mapping: dict[int, str]) -> None:
        self._mapping = mapping
        memory = self._memory
        self._runner.run(lambda: memory.remember(table.headers, mapping), lambda _: None)
        self.revalidate()

    def revalidate(self) -> None:
        """Check the whole batch again (history and balance included) on a worker."""
        table, profile = self._table, self.profile
        if table is None or profile is None:
            return
        mark = "LIVE: real money" if profile.environment == "live" else "SANDBOX: no real money"
        self.marker.setText(mark)
        self.marker.setStyleSheet(
            "color: white; background: #b00020; padding: 2px 6px;"
            if profile.environment == "live"
            else "color: white; background: #2e7d32; padding: 2px 6px;"
        )
        rows = self.batch.rows if self.batch is not None and self.batch.profile == profile else None
        history, mapping = self._history, dict(self._mapping)
        file_name = self.file_label.text()
        balances = None
        if self._balances is not None:
            reader = self._balances
            balances = lambda: reader(profile)  # noqa: E731
        self.send_button.setEnabled(False)

        def check() -> GridRows:
            return grid_rows(
                validate_batch(
                    table,
                    mapping,
                    profile,
                    history=history,
                    balances=balances,
                    rows=rows,
                    file_name=file_name,
                )
            )

        self._runner.run(check, self._checked, self._failed, channel="check")

    def _checked(self, shown: GridRows) -> None:
        fresh = shown.batch is not self.batch
        self.batch = shown.batch
        self.grid_model.show(shown)
        if fresh:  # a check after an edit keeps the widths the person may have set
            self.grid.resizeColumnsToContents()
        self._show_summary(shown.batch)
        self.send_button.setEnabled(shown.batch.ok)

    def _failed(self, error: BaseException) -> None:
        self.summary.setText(str(error) or type(error).__name__)

    def _show_summary(self, batch: Batch) -> None:
        lines = []
        lines.extend(batch.problems)
        bad = len(batch.bad_rows)
        lines.append(
            f"{len(batch.rows)} rows, {bad} with errors (red cells: hover for the message, "
            "edit to fix)."
            if bad
            else f"{len(batch.rows)} rows, all valid."
        )
        counts = batch.counts()
        for code in sorted(batch.totals):
            lines.append(f"{code}: {counts.get(code, 0)} payouts, {batch.total_text(code)}")
        lines.extend(f"Warning: {warning}" for warning in batch.warnings)
        warned = sum(1 for row in batch.rows if row.warnings)
        if warned:
            lines.append(f"Warning: {warned} rows repeat another payout (yellow rows).")
        self.summary.setText("\n".join(lines))

    def cell_error(self, row: int, column: str) -> str | None:
        """The error shown at a cell (tests and screenshots)."""
        return None if self.batch is None else self.grid_model.cell_error(row, column)

    def edit_cell(self, row: int, column: str, text: str) -> None:
        """Type ``text`` into a cell, as a person fixing it would."""
        assert self.batch is not None
        model = self.grid_model
        model.setData(model.index(row, list(self.batch.columns).index(column)), text)

    def checking(self) -> bool:
        """True while the file is read or rows are checked."""
        return self._runner.busy()

    def _cell_edited(self, row: int, wire: str, text: str) -> None:
        if self.batch is None:
            return
        self.batch.rows[row].values[wire] = text
        batch = self.batch
        self.send_button.setEnabled(False)

        def check() -> GridRows:
            check_rows(batch)
            return grid_rows(batch)

        self._runner.run(check, self._checked, self._failed, channel="check")

    # -- confirming and sending -------------------------------------------------------------

    def confirm_text(self) -> str:
        """What the confirmation shows: marker, counts and totals per currency, warnings."""
        batch = self.batch
        assert batch is not None
        profile = batch.profile
        marker = (
            "LIVE: this sends real money"
            if profile.environment == "live"
            else "SANDBOX: no real money"
        )
        counts = batch.counts()
        lines = [marker, f"Profile: {profile.name}", f"{len(batch.rows)} payouts:"]
        lines += [
            f"  {code}: {counts.get(code, 0)} payouts, {batch.total_text(code)}"
            for code in sorted(batch.totals)
        ]
        lines += [f"Warning: {warning}" for warning in batch.warnings]
        warned = sum(1 for row in batch.rows if row.warnings)
        if warned:
            lines.append(f"Warning: {warned} rows repeat another payout.")
        if self._store:
            lines.append(
                "Team: when a currency's total (or any row) reaches the team's approval "
                "threshold, the whole batch is submitted for approval as one request instead, "
                "and nothing is sent until it is approved."
            )
        return "\n".join(lines)

    def request_send(self) -> QMessageBox | None:
        """Ask the person to confirm (non-blocking); returns the question shown."""
        if self.batch is None or not self.batch.ok:
            return None
        box = QMessageBox(self)
        box.setObjectName("batchConfirm")
        box.setWindowTitle("Send this batch?")
        box.setText(self.confirm_text())
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(self.start_sending)
        box.open()
        return box

    def start_sending(self) -> None:
        """Send the checked batch on a worker; the progress page shows how it goes."""
        batch = self.batch
        if batch is None or not batch.ok or self._send_runner.busy():
            return
        self.pages.setCurrentIndex(PROGRESS)
        self.profile_box.setEnabled(False)
        self.progress_bar.setRange(0, len(batch.rows))
        self.progress_bar.setValue(0)
        self.results_model.start([row.line for row in batch.rows])
        for column, width in enumerate((200, 120, 150)):
            self.results.setColumnWidth(column, width)
        self._positions = {row.line: index for index, row in enumerate(batch.rows)}
        self.control = Control()
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.again_button.setEnabled(False)
        self.report_button.setEnabled(False)
        self._started = time.monotonic()
        service, control, relay, store = self._service, self.control, self._relay, self._store
        relay.take()  # nothing of an earlier run is shown for this one

        def send() -> BatchOutcome | BatchSubmitted:
            if store:  # a batch the team's policy holds is submitted as one unit, not sent
                from cactus_desk.batch_approval import submit_if_held

                submitted = submit_if_held(store, batch)
                if submitted is not None:
                    return submitted
            return send_batch(
                batch, service, control=control, on_row=relay.put, niceness=SENDING_NICENESS
            )

        self._send_runner.run(send, self._sent, self._send_failed)

    def _rows_timer_start(self) -> None:
        if not self._rows_timer.isActive():
            self._rows_timer.start()

    def _show_rows(self) -> None:
        """Show every row finished since the last time, and the latest counts, at once."""
        rows, progress = self._relay.take()
        if progress is None:
            return
        positions = self._positions
        done = [(positions[r.line], _cells(r)) for r in rows if r.line in positions]
        self.results_model.put(done)
        self._show_progress(progress)

    def _show_progress(self, progress: Progress) -> None:
        # QProgressBar.setValue repaints at once (synchronously); with updates off it only
        # schedules a paint, which Qt merges with the table's into the next frame.
        self.progress_bar.setUpdatesEnabled(False)
        self.progress_bar.setValue(progress.done)
        self.progress_bar.setUpdatesEnabled(True)
        eta = progress.eta_seconds()
        left = (
            f", about {eta:.0f} s left"
            if eta is not None and progress.done < progress.total
            else ""
        )
        self.counts.setText(
            f"{progress.done} of {progress.total}: {progress.accepted} accepted, "
            f"{progress.refused} refused, {progress.in_doubt} in doubt, "
            f"{progress.skipped} already sent{left}" + (" (paused)" if self.control.paused else "")
        )

    def _sent(self, outcome: BatchOutcome | BatchSubmitted) -> None:
        self._rows_timer.stop()
        if not isinstance(outcome, BatchOutcome):
            self._submitted(outcome)
            return
        self._show_rows()  # the last rows, before the batch is said to be done
        self.outcome = outcome
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)
        self.report_button.setEnabled(True)
        self.again_button.setEnabled(True)
        self.history_button.setEnabled(True)
        self.counts.setText(self.counts.text().removesuffix(" (paused)") + " — done.")
        self.results.resizeColumnsToContents()
        self.finished_sending.emit(outcome)

    def _submitted(self, submitted: BatchSubmitted) -> None:
        self.submitted = submitted
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.results_model.set_outcome_of_all("Awaiting approval")
        self.counts.setText(submitted.message)

    def _send_failed(self, error: BaseException) -> None:
        self._rows_timer.stop()
        self._show_rows()
        self.counts.setText(f"The batch stopped: {error}")
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)
        self.report_button.setEnabled(True)

    def toggle_pause(self) -> None:
        """Pause sending further rows, or go on."""
        if self.control.paused:
            self.control.resume()
            self.pause_button.setText("Pause")
            self.counts.setText(self.counts.text().removesuffix(" (paused)"))
        else:
            self.control.pause()
            self.pause_button.setText("Resume")
            self.counts.setText(self.counts.text() + " (paused)")

    def cancel(self) -> None:
        """Send no further row; rows already leaving finish and are recorded."""
        self.control.cancel()
        self.pause_button.setText("Pause")
        self.cancel_button.setEnabled(False)

    def _show_in_history(self) -> None:
        if self.batch is not None:
            self.show_in_history.emit(batch_prefix(self.batch.batch_id))

    def closeEvent(self, event: QCloseEvent) -> None:
        """While sending, stay open: rows in flight must be seen through (or cancelled)."""
        if self.sending():
            self.counts.setText(
                self.counts.text().removesuffix(" — cancel or wait before closing.")
                + " — cancel or wait before closing."
            )
            event.ignore()
            return
        super().closeEvent(event)

    def sending(self) -> bool:
        """True while the batch is being sent."""
        return self._send_runner.busy()

    # -- report and paying again ------------------------------------------------------------

    def save_report(self, path: Path, on_done: Callable[[Path], None] | None = None) -> None:
        """Write the report (XLSX or CSV by suffix) from the history, on a worker."""
        batch, history = self.batch, self._history
        assert batch is not None

        def write() -> Path:
            write_report(path, report_rows(batch, existing_records(history, batch)))
            return path

        self._runner.run(write, on_done or (lambda p: None), self._failed)

    def _ask_report(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Save report", "batch-report.xlsx", "Excel (*.xlsx);;CSV (*.csv)"
        )
        if name:
            self.save_report(Path(name))

    def pay_failed_again(self) -> None:
        """Check a new batch of the refused rows (on a worker); the grid shows it to send."""
        batch, history = self.batch, self._history
        if batch is None:
            return

        def build() -> GridRows:
            return grid_rows(failed_again_batch(batch, existing_records(history, batch)))

        def shown(again: GridRows) -> None:
            self.pages.setCurrentIndex(GRID)
            self._checked(again)

        self._runner.run(build, shown, self._failed)

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Wait for the workers (shutdown and tests)."""
        return self._runner.wait_idle(msecs) and self._send_runner.wait_idle(msecs)


def _cells(result: RowResult) -> tuple[str, str, str, str]:
    """A row's outcome as the results table shows it."""
    state = result.state.label if result.state is not None else result.code
    return (result.request_id, state, result.invoice_id or "", result.message)
