"""Totals for the History tab's filtered payouts: per currency and state, a small daily chart
(sent, paid, declined) painted with QPainter, and export as CSV or XLSX.

Totals are read on a worker whenever the filter changes; a newer filter drops an older
answer. The chart shows one currency at a time (the one with the most payouts unless chosen).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.history.clerk import local_zone
from cactus_desk.history.port import HistoryReader
from cactus_desk.history.types import DayTotal, HistoryFilter, TotalRow, TotalsTooBroadError
from cactus_desk.reports.totals import day_text, totals_rows, write_totals_csv, write_totals_xlsx
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)
CHANNEL = "totals"
EXPORT_CHANNEL = "totals-export"
PANE_LINES = 12  # the pane's height in text lines: the chart, and the figures (scrolled)
# A pane shown just now starts its read once it has painted, or after this long at the latest.
FIRST_PAINT_WAIT_MS = 250
SERIES = (
    ("Sent", QColor(90, 120, 200)),
    ("Paid", QColor(60, 160, 90)),
    ("Declined", QColor(210, 80, 70)),
)


def _utc_offset_ms() -> int:
    offset = datetime.now().astimezone().utcoffset()
    return int(offset.total_seconds() * 1000) if offset else 0


def _table_text(totals: Sequence[TotalRow]) -> str:
    """The totals per currency and state as aligned plain-text columns."""
    rows = [
        (str(currency), str(state), str(count), str(major))
        for currency, state, count, _minor, major in totals_rows(totals)
    ]
    if not rows:
        return ""
    rows.insert(0, ("Currency", "State", "Payouts", "Amount"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        f"{c:<{widths[0]}}  {s:<{widths[1]}}  {n:>{widths[2]}}  {m:>{widths[3]}}"
        for c, s, n, m in rows
    )


class DailyChart(QWidget):
    """Grouped bars per day: sent, paid and declined of one currency."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dailyChart")
        self.setMinimumHeight(120)
        self._days: list[DayTotal] = []
        self._bars: list[list[QRectF]] | None = None
        self._empty_text = "No payouts to chart"
        self.setToolTip("Daily totals of the filtered payouts: sent, paid, declined")

    def sizeHint(self) -> QSize:
        return QSize(420, 140)

    def set_days(self, days: Sequence[DayTotal]) -> None:
        """The days to draw (one currency, oldest first)."""
        self._days = list(days)
        self._bars = None
        self.update()

    def days(self) -> list[DayTotal]:
        """The days drawn."""
        return list(self._days)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._bars = None
        super().resizeEvent(event)

    def _plot_rect(self) -> QRectF:
        return QRectF(self.rect()).adjusted(8, 8, -8, -22)

    def _bars_of(self, rect: QRectF) -> list[list[QRectF]]:
        """The bars of each series, worked out once per set of days and size: a paint then
        costs one drawRects call per series however many days a long range holds."""
        if self._bars is None:
            days = self._days
            series = (
                [day.sent_minor for day in days],
                [day.paid_minor for day in days],
                [day.declined_minor for day in days],
            )
            peak = max(max(values) for values in series) or 1
            slot = rect.width() / len(days)
            bar = max(1.0, min(14.0, slot / 4))
            scale = rect.height() / peak
            bottom = rect.bottom()
            first = rect.left() + (slot - 3 * bar) / 2
            # One comprehension per series: a year of days is three short loops of QRectF.
            self._bars = [
                [
                    QRectF(
                        first + index * slot + offset * bar,
                        bottom - value * scale,
                        bar,
                        value * scale,
                    )
                    for index, value in enumerate(values)
                    if value
                ]
                for offset, values in enumerate(series)
            ]
        return self._bars

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self._plot_rect()
        painter.setPen(self.palette().mid().color())
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        if not self._days:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._empty_text)
            return
        # Axis-aligned bars need no antialiasing; without it a year of days paints in a few ms.
        painter.setPen(Qt.PenStyle.NoPen)
        for (_name, color), bars in zip(SERIES, self._bars_of(rect), strict=True):
            if bars:
                painter.setBrush(color)
                painter.drawRects(bars)
        painter.setPen(self.palette().text().color())
        first, last = self._days[0].day, self._days[-1].day
        label_rect = QRectF(rect.left(), rect.bottom() + 4, rect.width(), 16)
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignLeft, day_text(first))
        if last != first:
            painter.drawText(label_rect, Qt.AlignmentFlag.AlignRight, day_text(last))
        x = rect.left() + rect.width() / 2 - 90
        for name, color in SERIES:
            painter.fillRect(QRectF(x, label_rect.top() + 4, 8, 8), color)
            painter.drawText(QRectF(x + 11, label_rect.top(), 60, 16), name)
            x += 62

    def set_empty_text(self, text: str) -> None:
        """What the chart says when it has no days (e.g. while the totals are read)."""
        self._empty_text = text
        if not self._days:
            self.update()


class TotalsPanel(QWidget):
    """Totals per currency and state, the daily chart and the exports."""

    updated = Signal()

    def __init__(self, store: HistoryReader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("totalsPanel")
        self._store = store
        self._runner = Runner(self)
        self._filter: HistoryFilter | None = None
        self._painted_since_shown = False
        self._pending_read: Callable[[], None] | None = None
        self._read_later = QTimer(self)
        self._read_later.setSingleShot(True)
        self._read_later.setInterval(FIRST_PAINT_WAIT_MS)
        self._read_later.timeout.connect(self._start_pending_read)
        self._totals: list[TotalRow] = []
        self._days: list[DayTotal] = []
        # Plain text in a fixed-pitch font, selectable, laid out only as far as it is shown:
        # a rich-text table took tens of milliseconds of the GUI thread each time figures
        # arrived, and a selectable label (a text document laid out whole) 6-8 ms.
        self.figures = QPlainTextEdit(self)
        self.figures.setObjectName("totalsFigures")
        self.figures.setAccessibleName("Totals per currency and state")
        self.figures.setReadOnly(True)
        self.figures.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.figures.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.figures.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.figures.setFrameShape(QFrame.Shape.NoFrame)
        palette = self.figures.palette()  # on the pane's own background, as a label would be
        palette.setColor(QPalette.ColorRole.Base, palette.color(QPalette.ColorRole.Window))
        self.figures.setPalette(palette)
        self.currency_combo = QComboBox(self)
        self.currency_combo.setObjectName("chartCurrencyCombo")
        self.currency_combo.setAccessibleName("Chart currency")
        self.chart = DailyChart(self)
        self.csv_button = QPushButton("Totals CSV…", self)
        self.csv_button.setObjectName("totalsCsvButton")
        self.xlsx_button = QPushButton("Totals XLSX…", self)
        self.xlsx_button.setObjectName("totalsXlsxButton")
        self.status = style.muted_label("", self)
        self.status.setObjectName("totalsStatus")
        self.status.setWordWrap(True)
        # The figures scroll inside a pane of constant height: new figures then never
        # re-lay out the window (and repaint the History table) when they arrive.
        self.setFixedHeight(PANE_LINES * self.fontMetrics().lineSpacing())
        side = QVBoxLayout()
        side.addWidget(self.figures, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.csv_button)
        buttons.addWidget(self.xlsx_button)
        side.addLayout(buttons)
        side.addWidget(self.status)
        chart_box = QVBoxLayout()
        chart_box.addWidget(self.currency_combo, 0, Qt.AlignmentFlag.AlignRight)
        chart_box.addWidget(self.chart, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(side, 1)
        layout.addLayout(chart_box, 2)
        self.currency_combo.currentIndexChanged.connect(self._show_chart)
        self.csv_button.clicked.connect(lambda: self._choose_export("csv"))
        self.xlsx_button.clicked.connect(lambda: self._choose_export("xlsx"))

    def refresh(self, history_filter: HistoryFilter) -> None:
        """Read the totals of ``history_filter`` on a worker."""
        self._filter = history_filter
        store, offset = self._store, _utc_offset_ms()
        self.status.setText("Adding up…")
        # The old figures belong to another filter: never show them as this one's. Clearing
        # also keeps the pane's first paint cheap (no chart of the old days while laid out).
        self._totals, self._days = [], []
        self._show_figures("Adding up…")
        self.chart.set_empty_text("Adding up…")
        self.chart.set_days([])

        def read() -> tuple[list[TotalRow], list[DayTotal]]:  # worker thread
            # The desk's own days, daylight-saving changes included (offset_ms for old callers).
            days = store.daily_totals(history_filter, offset, zone=local_zone())
            return store.totals(history_filter), days

        def start() -> None:
            self._runner.run(read, self._read, self._failed, channel=CHANNEL)

        if self.isVisible() and not self._painted_since_shown:
            # Shown just now: the window lays out and repaints around the pane first, without
            # a read on a worker taking turns with it for the interpreter lock.
            self._pending_read = start
            self._read_later.start()
            return
        self._pending_read = None
        start()

    def showEvent(self, event: QShowEvent) -> None:
        self._painted_since_shown = False
        super().showEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self._painted_since_shown:
            self._painted_since_shown = True
            if self._pending_read is not None:
                QTimer.singleShot(0, self, self._start_pending_read)  # once this pass is over
        super().paintEvent(event)

    def _start_pending_read(self) -> None:
        self._read_later.stop()
        start, self._pending_read = self._pending_read, None
        if start is not None:
            start()

    def figures_text(self) -> str:
        """The figures shown, as plain text (the header line first)."""
        return self.figures.toPlainText()

    def _show_figures(self, text: str) -> None:
        if self.figures.toPlainText() != text:
            self.figures.setPlainText(text)

    def busy(self) -> bool:
        """True while the totals on show are being read, or an export written (reads a newer
        filter superseded may still run: their results are dropped)."""
        return (
            self._pending_read is not None
            or self._runner.waiting(CHANNEL)
            or self._runner.waiting(EXPORT_CHANNEL)
        )

    def totals(self) -> list[TotalRow]:
        """The totals shown."""
        return list(self._totals)

    def _read(self, result: tuple[list[TotalRow], list[DayTotal]]) -> None:
        self._totals, self._days = result
        self._show_figures(_table_text(self._totals) or "No payouts selected.")
        counts: dict[str, int] = {}
        for t in self._totals:
            counts[t.currency] = counts.get(t.currency, 0) + t.count
        keep = self.currency_combo.currentData()
        self.currency_combo.blockSignals(True)
        self.currency_combo.clear()
        for code in sorted(counts, key=lambda c: (-counts[c], c)):
            self.currency_combo.addItem(code, code)
        index = self.currency_combo.findData(keep)
        self.currency_combo.setCurrentIndex(index if index >= 0 else 0)
        self.currency_combo.blockSignals(False)
        self.status.setText("")
        self.chart.set_empty_text("No payouts to chart")
        self._show_chart()
        self.updated.emit()

    def _failed(self, error: BaseException) -> None:
        self._totals, self._days = [], []
        self.chart.set_empty_text("No totals for this search")
        self.chart.set_days([])
        if isinstance(error, TotalsTooBroadError):
            # Said plainly, with how to narrow it; no figure stands in for the total.
            self._show_figures("Totals not available.")
            self.status.setText(str(error))
            self.updated.emit()
            return
        log.warning("totals could not be read: %s", error)
        self._show_figures("Totals not available.")
        self.status.setText(f"Totals could not be read: {error}")

    def _show_chart(self) -> None:
        code = self.currency_combo.currentData()
        self.chart.set_days([d for d in self._days if d.currency == code])

    # -- export ------------------------------------------------------------------------------

    def _choose_export(self, kind: str) -> None:
        dialog = QFileDialog(self, "Export totals")
        dialog.setObjectName("totalsExportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(kind)
        dialog.setNameFilter("CSV files (*.csv)" if kind == "csv" else "Excel workbooks (*.xlsx)")
        dialog.selectFile(f"cactus-totals.{kind}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.export)
        dialog.open()

    def export(self, path: str) -> None:
        """Write the totals shown to ``path`` (CSV or XLSX by its suffix) on a worker."""
        target = Path(path)
        totals, days = list(self._totals), list(self._days)

        def write() -> None:  # worker thread
            if target.suffix.lower() == ".xlsx":
                write_totals_xlsx(totals, days, target)
            else:
                with target.open("w", encoding="utf-8", newline="") as stream:
                    write_totals_csv(totals, days, stream)

        self.status.setText(f"Exporting to {target.name}…")
        self._runner.run(
            write,
            lambda _none: self.status.setText(f"Totals saved to {target.name}."),
            lambda error: self.status.setText(f"Totals could not be saved: {error}"),
            channel=EXPORT_CHANNEL,
        )
