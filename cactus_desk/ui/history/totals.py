"""Totals for the History tab's filtered payouts: per currency and state, a small daily chart
(sent, paid, declined) painted with QPainter, and export as CSV or XLSX.

Totals are read on a worker whenever the filter changes; a newer filter drops an older
answer. The chart shows one currency at a time (the one with the most payouts unless chosen).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.history.clerk import local_zone
from cactus_desk.history.port import HistoryReader
from cactus_desk.history.types import DayTotal, HistoryFilter, TotalRow
from cactus_desk.reports.totals import day_text, totals_rows, write_totals_csv, write_totals_xlsx
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)
CHANNEL = "totals"
SERIES = (
    ("Sent", QColor(90, 120, 200)),
    ("Paid", QColor(60, 160, 90)),
    ("Declined", QColor(210, 80, 70)),
)


def _utc_offset_ms() -> int:
    offset = datetime.now().astimezone().utcoffset()
    return int(offset.total_seconds() * 1000) if offset else 0


class DailyChart(QWidget):
    """Grouped bars per day: sent, paid and declined of one currency."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dailyChart")
        self.setMinimumHeight(120)
        self._days: list[DayTotal] = []
        self.setToolTip("Daily totals of the filtered payouts: sent, paid, declined")

    def sizeHint(self) -> QSize:
        return QSize(420, 140)

    def set_days(self, days: Sequence[DayTotal]) -> None:
        """The days to draw (one currency, oldest first)."""
        self._days = list(days)
        self.update()

    def days(self) -> list[DayTotal]:
        """The days drawn."""
        return list(self._days)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(8, 8, -8, -22)
        painter.setPen(self.palette().mid().color())
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        if not self._days:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "No payouts to chart")
            return
        peak = max(max(d.sent_minor, d.paid_minor, d.declined_minor) for d in self._days) or 1
        slot = rect.width() / len(self._days)
        bar = max(1.0, min(14.0, slot / 4))
        painter.setPen(Qt.PenStyle.NoPen)
        for index, day in enumerate(self._days):
            left = rect.left() + index * slot + (slot - 3 * bar) / 2
            for offset, value in enumerate((day.sent_minor, day.paid_minor, day.declined_minor)):
                height = rect.height() * value / peak
                painter.setBrush(SERIES[offset][1])
                painter.drawRect(QRectF(left + offset * bar, rect.bottom() - height, bar, height))
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


class TotalsPanel(QWidget):
    """Totals per currency and state, the daily chart and the exports."""

    updated = Signal()

    def __init__(self, store: HistoryReader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("totalsPanel")
        self._store = store
        self._runner = Runner(self)
        self._filter: HistoryFilter | None = None
        self._totals: list[TotalRow] = []
        self._days: list[DayTotal] = []
        self.table_label = QLabel(self)
        self.table_label.setObjectName("totalsLabel")
        self.table_label.setTextFormat(Qt.TextFormat.RichText)
        self.table_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
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
        side = QVBoxLayout()
        side.addWidget(self.table_label, 1)
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

        def read() -> tuple[list[TotalRow], list[DayTotal]]:  # worker thread
            # The desk's own days, daylight-saving changes included (offset_ms for old callers).
            days = store.daily_totals(history_filter, offset, zone=local_zone())
            return store.totals(history_filter), days

        self._runner.run(read, self._read, self._failed, channel=CHANNEL)

    def busy(self) -> bool:
        """True while totals are being read or written."""
        return self._runner.busy()

    def totals(self) -> list[TotalRow]:
        """The totals shown."""
        return list(self._totals)

    def _read(self, result: tuple[list[TotalRow], list[DayTotal]]) -> None:
        self._totals, self._days = result
        lines = ["<table cellspacing='0' cellpadding='2'>"]
        for currency, state, count, _minor, major in totals_rows(self._totals):
            weight = "b" if state == "All" else "span"
            lines.append(
                f"<tr><td><{weight}>{currency}</{weight}></td><td>{state}</td>"
                f"<td align='right'>{count}</td><td align='right'><{weight}>{major}"
                f"</{weight}></td></tr>"
            )
        lines.append("</table>")
        self.table_label.setText("".join(lines) if self._totals else "No payouts selected.")
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
        self._show_chart()
        self.updated.emit()

    def _failed(self, error: BaseException) -> None:
        log.warning("totals could not be read: %s", error)
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
        )
