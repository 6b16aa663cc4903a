"""The history at a million payouts: the panel's operations, each against its own SQL.

Every UI figure is timed from the action to the table (or details pane) painted with the
result: ``repaint()`` paints synchronously, calling the model for every visible cell. The
baseline of each is the SQL the store ran for that action (captured with a trace callback on
its connections), replayed on a bare ``sqlite3`` connection with every row fetched.

``python -m benchmarks.history`` runs the panel figures and the peak memory of that process;
``python -m benchmarks.history load-all`` measures loading every row into a model, the
approach the paged model replaces, in a process of its own so its memory does not count.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Result, emit, median, peak_rss_mb, time_ms
from benchmarks.generate import history_file
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore

GOAL_MS = "≤ 150 ms, ratio ≤ 2"
# The details pane takes a few milliseconds, where one scheduler hiccup moves a median of
# five by half: more runs of it (and of its baseline) for a steady figure.
DETAILS_RUNS = 25
TEXT_QUERY = "petrov"  # a surname: part of many site logins (about 1 % of the payouts)


class SqlTrace:
    """Collects the SQL a store runs, with its parameters filled in."""

    def __init__(self, store: HistoryStore) -> None:
        self.statements: list[str] = []
        # The store's pool is private; a benchmark may look inside to see its SQL.
        for conn in store._all:
            conn.set_trace_callback(self._add)

    def _add(self, sql: str) -> None:
        if not sql.startswith("PRAGMA data_version"):
            self.statements.append(sql)

    def capture(self, action: Callable[[], object]) -> list[str]:
        """The statements ``action`` ran."""
        self.statements = []
        action()
        captured, self.statements = self.statements, []
        return captured


class BareTable:
    """The baseline program: the SQL on a bare ``sqlite3`` connection, rows in a plain table.

    It shows the rows of the statement that returned the most columns (the page) as plain
    strings in a ``QTableView`` of the panel's size, and is timed the same way: from the first
    statement to the table painted.
    """

    def __init__(self, path: Path, size: tuple[int, int]) -> None:
        from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
        from PySide6.QtWidgets import QTableView

        class Rows(QAbstractTableModel):
            def __init__(self) -> None:
                super().__init__()
                self.rows: list[tuple] = []

            def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
                return len(self.rows)

            def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
                return len(self.rows[0]) if self.rows else 0

            def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
                if role == Qt.ItemDataRole.DisplayRole:
                    return str(self.rows[index.row()][index.column()])
                return None

        self.conn = sqlite3.connect(path, isolation_level=None)
        self.model = Rows()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.resize(*size)
        self.view.show()
        self.painted = PaintCounter(self.view.viewport())

    def show(self, statements: list[str]) -> None:
        """Run ``statements`` and paint the widest result."""
        since = self.painted.ready_count
        shown: list[tuple] = []
        for sql in statements:
            rows = self.conn.execute(sql).fetchall()
            if rows and len(rows[0]) > 1 and len(rows[0]) >= len(shown[0] if shown else ()):
                shown = rows
        self.model.beginResetModel()
        self.model.rows = shown
        self.model.endResetModel()
        self.view.viewport().update()
        self.painted.wait(since)

    def median_ms(self, statements: list[str]) -> float:
        """The median time over RUNS to query and paint (after one warming run)."""
        self.show(statements)
        return median(time_ms(lambda: self.show(statements), before=lambda: self.show([])))

    def close(self) -> None:
        self.view.close()
        self.view.deleteLater()
        self.conn.close()


class PaintCounter:
    """Counts the paint events a widget receives, to wait for one showing a ready state."""

    def __init__(self, widget: object) -> None:
        from PySide6.QtCore import QEvent, QObject

        class Filter(QObject):
            def eventFilter(self, watched: QObject, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint:
                    counter.count += 1
                    if counter.ready():
                        counter.ready_count += 1
                return False

        counter = self
        self.count = 0
        self.ready_count = 0
        self.ready: Callable[[], bool] = lambda: True
        self._filter = Filter()
        widget.installEventFilter(self._filter)  # type: ignore[attr-defined]

    def wait(self, since: int, ready: Callable[[], bool] = lambda: True) -> None:
        """Process events until a paint after ``since`` has been handled while ``ready()``.

        ``since`` is a ``ready_count`` read before the action.
        """
        from PySide6.QtWidgets import QApplication

        self.ready = ready
        deadline = time.monotonic() + 60
        while self.ready_count <= since:
            if time.monotonic() > deadline:
                raise TimeoutError("the table was not painted within a minute")
            QApplication.processEvents()
        self.ready = lambda: True


def _panel_results(path: Path) -> list[Result]:
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QApplication, QComboBox, QLineEdit, QPlainTextEdit

    from cactus_desk.profiles import ProfileStore
    from cactus_desk.ui.history_model import Column
    from cactus_desk.ui.history_view import HistoryPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    size = (1280, 800)
    store = SqliteHistoryStore(path)
    trace = SqlTrace(store)
    bare = BareTable(path, size)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as profiles_dir:
        profiles = ProfileStore(Path(profiles_dir))
        panels: list[tuple[HistoryPanel, PaintCounter]] = []

        def open_panel() -> None:
            panel = HistoryPanel(store, profiles)
            painted = PaintCounter(panel.view.viewport())
            panel.resize(*size)
            panel.show()
            painted.wait(0, lambda: panel.model.rowCount() > 0)
            panels.append((panel, painted))

        def close_panels() -> None:
            while panels:
                panel, _ = panels.pop()
                panel.close()
                panel.deleteLater()
            # processEvents() leaves deferred deletes to the event loop; run them now.
            app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            app.processEvents()

        open_panel()  # warm the caches once, as a second opening would find them
        close_panels()
        samples = time_ms(open_panel, before=close_panels)
        close_panels()
        sql = trace.capture(open_panel)
        results.append(
            Result("history_open_1m", median(samples), "ms", bare.median_ms(sql), GOAL_MS)
        )
        panel, painted = panels[-1]

        def settled(action: Callable[[], object], *, force: bool = False) -> None:
            since = painted.ready_count
            action()
            if force:  # a reset that may change nothing still ends with a paint
                panel.view.viewport().update()
            painted.wait(since, lambda: not panel.model.is_loading())

        def measured(name: str, action: Callable[[], object], reset: Callable[[], object]) -> None:
            settled(reset, force=True)
            samples = time_ms(lambda: settled(action), before=lambda: settled(reset, force=True))
            settled(reset, force=True)
            sql = trace.capture(lambda: settled(action))
            settled(reset, force=True)
            results.append(Result(name, median(samples), "ms", bare.median_ms(sql), GOAL_MS))

        edit = panel.findChild(QLineEdit, "historyFilterEdit")
        states = panel.findChild(QComboBox, "historyStateCombo")
        currencies = panel.findChild(QComboBox, "historyCurrencyCombo")

        def set_text(text: str) -> None:
            edit.setText(text)
            panel._apply_filter()  # what the typing delay's timer calls, without the delay

        measured("history_filter_text_1m", lambda: set_text(TEXT_QUERY), lambda: set_text(""))

        def state_currency() -> None:
            # One change of filter: the second combo applies both.
            states.blockSignals(True)
            states.setCurrentIndex(_index_of(states, "Rejected"))
            states.blockSignals(False)
            currencies.setCurrentIndex(currencies.findData("USD"))

        def clear_combos() -> None:
            states.blockSignals(True)
            states.setCurrentIndex(0)
            states.blockSignals(False)
            currencies.setCurrentIndex(0)

        measured("history_filter_state_currency_1m", state_currency, clear_combos)
        view = panel.view
        measured(
            "history_sort_amount_1m",
            lambda: view.sortByColumn(Column.AMOUNT, Qt.SortOrder.DescendingOrder),
            lambda: view.sortByColumn(Column.TIME, Qt.SortOrder.DescendingOrder),
        )

        def jump_last() -> None:
            view.scrollToBottom()

        def back_to_top() -> None:
            # The model keeps recently read pages; start each jump from a fresh query, as
            # after opening the panel, so the last page is really read (and is the baseline).
            panel.model.set_filter(panel.model.history_filter, wait=True)
            view.scrollToTop()

        measured("history_jump_last_1m", jump_last, back_to_top)
        shown = panel.model.rowCount()
        if shown != panel.model.total():
            # The time is of a scroll that stopped short: say so rather than pass.
            missed = f"NOT MET: the view reached row {shown:,} of {panel.model.total():,}"
            jumped = results.pop()
            results.append(Result(jumped.name, jumped.value, "ms", jumped.baseline, missed))
        details = panel.findChild(QPlainTextEdit, "historyDetails")
        details_painted = PaintCounter(details.viewport())
        since = [0]

        def show_details() -> None:
            since[0] = details_painted.ready_count
            view.selectRow(120)
            details_painted.wait(since[0])

        def no_details() -> None:
            view.clearSelection()
            view.setCurrentIndex(view.model().index(-1, -1))
            app.processEvents()

        no_details()
        sql = trace.capture(show_details)
        bare.show(sql)
        samples, baseline = [], []
        for _ in range(DETAILS_RUNS):  # interleaved, so a slow moment hits both alike
            samples += time_ms(show_details, 1, before=no_details)
            baseline += time_ms(lambda: bare.show(sql), 1, before=lambda: bare.show([]))
        results.append(
            Result("history_details_1m", median(samples), "ms", median(baseline), GOAL_MS)
        )
        close_panels()
    bare.close()
    store.close()
    results.append(Result("history_peak_rss_1m", peak_rss_mb(), "MB", None, "≤ 250 MB"))
    return results


def _index_of(combo: object, label: str) -> int:
    for index in range(combo.count()):  # type: ignore[attr-defined]
        if combo.itemText(index) == label:  # type: ignore[attr-defined]
            return index
    raise LookupError(f"no {label!r} choice in the state filter")


def _load_all_results(path: Path) -> list[Result]:
    """Every row fetched into one list and shown: what a model without paging would do."""
    from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
    from PySide6.QtWidgets import QApplication, QTableView

    from cactus_desk.ui.history_model import Column, HistoryModel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    store = SqliteHistoryStore(path)

    class AllRows(QAbstractTableModel):
        def __init__(self) -> None:
            super().__init__()
            self.rows = store.page(limit=store.count())

        def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
            return len(self.rows)

        def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
            return len(Column)

        def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
            if role == Qt.ItemDataRole.DisplayRole:
                return HistoryModel._display(self.rows[index.row()], Column(index.column()))
            return None

    def load() -> None:
        view = QTableView()
        view.resize(1280, 800)
        view.setModel(AllRows())
        view.show()
        app.processEvents()
        view.viewport().repaint()
        view.deleteLater()
        app.processEvents()

    samples = time_ms(load)
    store.close()
    return [Result("history_load_all_1m", median(samples), "ms", None, "for comparison")]


def main(argv: list[str]) -> None:
    path = history_file()
    if argv[:1] == ["load-all"]:
        emit(_load_all_results(path))
    else:
        emit(_panel_results(path))


if __name__ == "__main__":
    main(sys.argv[1:])
