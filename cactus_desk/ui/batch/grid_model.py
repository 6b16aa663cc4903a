"""The batch dialog's two tables as models: the checked rows, and the rows' outcomes.

A cell is read from plain tuples when it is painted, with no ``QTableWidgetItem`` per cell.
At 10,000 rows the item-based grids kept 110,000 item wrappers alive. Python's full
collection walked every one of them, 120-180 ms with the interpreter lock held: the GUI
thread stalled while a batch was sent. Refilling them after each edit also blocked the GUI
thread. The rows shown are built on the worker that checked them (``grid_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from cactus_desk.batch.validate import Batch

ERROR_BRUSH = QBrush(QColor("#f8d7da"))
WARNING_BRUSH = QBrush(QColor("#fff3cd"))
PROBLEM_TEXT = QBrush(QColor("#b00020"))
PROBLEMS = "Problems"

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class GridRow:
    """One checked row as the grid shows it: strings only, so the collector skips it."""

    line: str
    values: tuple[str, ...]
    errors: tuple[str | None, ...]  # per column, the message its cell shows
    warning: str | None  # the row's warnings, shown on its cells without an error
    problems: str
    bad: bool


@dataclass(frozen=True)
class GridRows:
    """A checked batch's rows for the grid, made on the worker that checked them."""

    batch: Batch
    columns: tuple[str, ...]
    rows: tuple[GridRow, ...]


def grid_rows(batch: Batch) -> GridRows:
    """The rows of ``batch`` as the grid shows them. Worker thread, right after the check."""
    columns = tuple(batch.columns)
    rows = []
    for row in batch.rows:
        errors: list[str | None] = []
        for wire in columns:
            error = row.errors.get(wire)
            if error is None and wire == "method" and row.errors:
                # An error on no column of the file (e.g. a field the method needs).
                unplaced = {k: v for k, v in row.errors.items() if k not in columns}
                if unplaced:
                    error = "; ".join(f"{k}: {v}" for k, v in unplaced.items())
            errors.append(error)
        notes = [f"{key}: {message}" for key, message in row.errors.items()]
        rows.append(
            GridRow(
                line=str(row.line),
                values=tuple(row.values.get(wire, "") for wire in columns),
                errors=tuple(errors),
                warning="\n".join(row.warnings) or None,
                problems="; ".join(notes + row.warnings),
                bad=bool(row.errors),
            )
        )
    return GridRows(batch, columns, tuple(rows))


class BatchGridModel(QAbstractTableModel):
    """The checked rows: a column per mapped field (editable) and the row's problems."""

    #: A cell typed into by the person: (row, column's wire name, text).
    edited = Signal(int, str, str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._columns: tuple[str, ...] = ()
        self._rows: list[GridRow] = []
        self._batch: Batch | None = None

    def show(self, shown: GridRows) -> None:
        """Show freshly checked rows. The same batch checked again (after an edit) keeps the
        view's scroll position, current cell and selection."""
        same = shown.batch is self._batch and shown.columns == self._columns
        if same and len(shown.rows) == len(self._rows):
            self._rows = list(shown.rows)
            if self._rows:
                last = self.index(len(self._rows) - 1, len(self._columns))
                self.dataChanged.emit(self.index(0, 0), last)
            return
        self.beginResetModel()
        self._batch, self._columns, self._rows = shown.batch, shown.columns, list(shown.rows)
        self.endResetModel()

    def cell_error(self, row: int, column: str) -> str | None:
        """The error the cell at ``row`` and ``column`` (a wire name) shows."""
        return self._rows[row].errors[self._columns.index(column)]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's
        return 0 if parent.isValid() or self._batch is None else len(self._columns) + 1

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return (*self._columns, PROBLEMS)[section]
        return self._rows[section].line

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self._rows[index.row()], index.column()
        if column == len(self._columns):
            if role == Qt.ItemDataRole.DisplayRole:
                return row.problems
            if role == Qt.ItemDataRole.ForegroundRole and row.bad:
                return PROBLEM_TEXT
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return row.values[column]
        error = row.errors[column]
        if role == Qt.ItemDataRole.BackgroundRole:
            return ERROR_BRUSH if error else WARNING_BRUSH if row.warning else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return error or row.warning
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.isValid() and index.column() < len(self._columns):
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        column = index.column()
        if column >= len(self._columns):
            return False  # the problems column is not a value
        text = str(value).strip()
        row = self._rows[index.row()]
        values = list(row.values)
        values[column] = text
        self._rows[index.row()] = GridRow(
            row.line, tuple(values), row.errors, row.warning, row.problems, row.bad
        )
        self.dataChanged.emit(index, index)
        self.edited.emit(index.row(), self._columns[column], text)
        return True


RESULT_COLUMNS = ("request_id", "outcome", "invoice", "message")


class ResultsModel(QAbstractTableModel):
    """Each row's outcome as the batch is sent (blank until its row is done)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._lines: list[str] = []
        self._rows: list[tuple[str, str, str, str] | None] = []

    def start(self, lines: Sequence[int]) -> None:
        """A new run over rows with these file lines, none done yet."""
        self.beginResetModel()
        self._lines = [str(line) for line in lines]
        self._rows = [None] * len(lines)
        self.endResetModel()

    def put(self, done: Sequence[tuple[int, tuple[str, str, str, str]]]) -> None:
        """Show rows done since the last call: (row, its four cells) each."""
        if not done:
            return
        for row, cells in done:
            self._rows[row] = cells
        first = min(row for row, _ in done)
        last = max(row for row, _ in done)
        self.dataChanged.emit(self.index(first, 0), self.index(last, len(RESULT_COLUMNS) - 1))

    def set_outcome_of_all(self, outcome: str) -> None:
        """Show ``outcome`` for every row not done (a batch held for approval)."""
        self._rows = [cells or ("", outcome, "", "") for cells in self._rows]
        if self._rows:
            last = self.index(len(self._rows) - 1, len(RESULT_COLUMNS) - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's
        return 0 if parent.isValid() else len(RESULT_COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return RESULT_COLUMNS[section]
        return self._lines[section]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        cells = self._rows[index.row()]
        return cells[index.column()] if cells is not None else None
