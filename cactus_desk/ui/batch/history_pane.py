"""The History tab's Batches pane: one entry per batch (date, file, profile, rows, rows per
state) that expands to its rows; choosing a batch filters the history table to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.batch.ids import batch_prefix
from cactus_desk.batch.summary import BatchSummary, batch_summaries
from cactus_desk.history.port import HistoryStore
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.ui.history.panel import HistoryPanel
    from cactus_desk.ui.main_window import MainWindow

HEADERS = ("Batch / request id", "Date", "File", "Profile", "Rows", "States")
BATCH_ROLE = Qt.ItemDataRole.UserRole


class BatchesPane(QWidget):
    """A collapsible list of recent batches, read through the port on a worker."""

    batchChosen = Signal(str)  # the History search that shows the batch's rows

    def __init__(
        self,
        history: Callable[[], HistoryStore],
        profile_names: Callable[[], Mapping[str, str]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("batchesPane")
        self._history = history
        self._profile_names = profile_names
        self._runner = Runner(self)
        self.summaries: list[BatchSummary] = []
        self.toggle = QToolButton(self)
        self.toggle.setObjectName("batchesToggle")
        self.toggle.setText("Batches")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setToolTip("Show the batches sent from files, each expanding to its rows")
        self.toggle.toggled.connect(self._toggled)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setObjectName("batchesRefresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.refresh_button.setVisible(False)
        self.status = QLabel(self)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("batchesTree")
        self.tree.setColumnCount(len(HEADERS))
        self.tree.setHeaderLabels(list(HEADERS))
        self.tree.setVisible(False)
        self.tree.setMaximumHeight(220)
        self.tree.currentItemChanged.connect(self._chosen)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.toggle)
        top.addWidget(self.refresh_button)
        top.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tree)
        style.flat_scroll_bars(self)

    def loading(self) -> bool:
        """True while the batches are being read."""
        return self._runner.busy()

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Wait for the worker (shutdown and tests)."""
        return self._runner.wait_idle(msecs)

    def refresh(self) -> None:
        """Read the recent batches and their rows again (on a worker)."""
        if not self.toggle.isChecked():
            return
        history = self._history()
        self.status.setText("Reading batches…")
        self._runner.run(
            lambda: batch_summaries(history), self._show, self._failed, channel="batches"
        )

    def _toggled(self, shown: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.tree.setVisible(shown)
        self.refresh_button.setVisible(shown)
        if shown:
            self.refresh()
        else:
            self.status.clear()

    def _failed(self, error: BaseException) -> None:
        self.status.setText(f"The batches could not be read: {error}")

    def _show(self, summaries: list[BatchSummary]) -> None:
        self.summaries = summaries
        names = self._profile_names()
        self.tree.clear()
        for summary in summaries:
            entry = summary.entry
            when = datetime.fromtimestamp(entry.created_at / 1000).strftime("%Y-%m-%d %H:%M")
            item = QTreeWidgetItem(
                [
                    entry.batch_id,
                    when,
                    entry.file_name,
                    names.get(entry.profile_id, entry.profile_id),
                    str(entry.row_count),
                    summary.totals_text(),
                ]
            )
            item.setData(0, BATCH_ROLE, entry.batch_id)
            for record in summary.records:
                item.addChild(
                    QTreeWidgetItem(
                        [
                            record.request_id,
                            datetime.fromtimestamp(record.created_at / 1000).strftime(
                                "%Y-%m-%d %H:%M:%S"
                            ),
                            record.site_login,
                            "",
                            "",
                            record.state.label,
                        ]
                    )
                )
            self.tree.addTopLevelItem(item)
        for column in range(len(HEADERS)):
            self.tree.resizeColumnToContents(column)
        self.status.setText(
            f"{len(summaries)} recent batch" + ("" if len(summaries) == 1 else "es")
        )

    def batch_item(self, batch: str) -> QTreeWidgetItem | None:
        """The top-level entry of ``batch``, if shown."""
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            if item is not None and item.data(0, BATCH_ROLE) == batch:
                return item
        return None

    def _chosen(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        while item is not None and item.parent() is not None:
            item = item.parent()  # a row chosen: its batch
        batch = item.data(0, BATCH_ROLE) if item is not None else None
        if isinstance(batch, str):
            self.batchChosen.emit(batch_prefix(batch))


def install_batches_pane(window: MainWindow, panel: HistoryPanel) -> BatchesPane:
    """Put the Batches pane above the History tab's table; a batch chosen filters it."""
    pane = BatchesPane(
        lambda: window.history,
        lambda: {profile.id: profile.name for profile in window.all_profiles()},
    )
    pane.batchChosen.connect(panel.search_for)
    layout = window._history_layout  # the History tab's own layout
    layout.insertWidget(layout.indexOf(panel), pane)
    return pane
