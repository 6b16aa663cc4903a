"""The history table: a ``QTableView`` whose visible cells are painted in one pass.

Qt's default painting asks the model for seven roles of every visible cell through the
Python binding and lays each text out in a box, eliding it, on every paint: fifteen rows of
eleven columns held the GUI thread for 10 to 20 ms per repaint, longer than a frame. Here
one Python call paints the whole screen from the model's ready cells (``cell_look``): each
text is measured, and cut to its column, once per text, width and font, then drawn with a
plain ``drawText``. Rows still being read show "…" (asking the model for them requests
their page); selection, grid, focus and hidden or moved columns look as before.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QStyle,
    QStyleOptionFocusRect,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from cactus_desk.ui import style
from cactus_desk.ui.history.model import LOADING_TEXT, Column, HistoryModel

#: Measured texts kept; the cache starts again beyond this (a few screens of cells).
MAX_CACHED_TEXTS = 4_000
_AMOUNT = int(Column.AMOUNT)
_PLACEHOLDER = QColor(style.MUTED_FG)


class HistoryTableView(QTableView):
    """The payout table (see the module's docstring for why it paints its own cells)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._texts: dict[tuple[str, int, int], tuple[str, int]] = {}
        self._metrics: dict[int, tuple[QFont, QFontMetrics]] = {}
        self._margin = 3

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the visible cells of a ``HistoryModel`` on one line each; anything else
        (another model, wrapped or right-to-left text) as Qt does."""
        model = self.model()
        if not isinstance(model, HistoryModel) or self.isRightToLeft() or self.wordWrap():
            super().paintEvent(event)
            return
        rows = self.verticalHeader()
        area = event.rect()
        first = rows.visualIndexAt(area.top())
        if first < 0:
            return  # no rows: the viewport's own background is all there is
        last = rows.visualIndexAt(area.bottom())
        if last < 0:
            last = model.rowCount() - 1
        columns = self._columns(area)
        painter = QPainter(self.viewport())
        try:
            self._paint_cells(painter, model, first, last, columns)
        finally:
            painter.end()

    def _columns(self, area: QRect) -> list[tuple[int, int, int]]:
        """(logical column, x, width) of each shown column crossing ``area``, left to right."""
        header = self.horizontalHeader()
        start = max(0, header.visualIndexAt(area.left()))
        end = header.visualIndexAt(area.right())
        if end < 0:
            end = header.count() - 1
        columns = []
        for visual in range(start, end + 1):
            logical = header.logicalIndex(visual)
            if not header.isSectionHidden(logical):
                width = header.sectionSize(logical)
                columns.append((logical, header.sectionViewportPosition(logical), width))
        return columns

    def _paint_cells(
        self,
        painter: QPainter,
        model: HistoryModel,
        first: int,
        last: int,
        columns: list[tuple[int, int, int]],
    ) -> None:
        palette = self.palette()
        if not self.isEnabled():
            group = QPalette.ColorGroup.Disabled
        elif self.isActiveWindow():
            group = QPalette.ColorGroup.Active
        else:
            group = QPalette.ColorGroup.Inactive
        highlight = palette.brush(group, QPalette.ColorRole.Highlight)
        highlighted_text = palette.color(group, QPalette.ColorRole.HighlightedText)
        text_colour = palette.color(group, QPalette.ColorRole.Text)
        base_font = self.font()
        # The text margin Qt's item painting uses, each side.
        self._margin = self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1
        selection = self.selectionModel()
        root = self.rootIndex()
        rows = self.verticalHeader()
        grid = self.showGrid()
        bottom = 0
        right = columns[-1][1] + columns[-1][2] if columns else 0
        for row in range(first, last + 1):
            top = rows.sectionViewportPosition(row)
            height = rows.sectionSize(row)
            bottom = top + height
            cell_height = height - 1 if grid else height  # the grid line is the cell's last
            selected = selection is not None and selection.isRowSelected(row, root)
            if selected:
                painter.fillRect(columns[0][1], top, right - columns[0][1], cell_height, highlight)
            for logical, x, width in columns:
                cell_width = width - 1 if grid else width
                look = model.cell_look(row, logical)
                if look is None:
                    if logical == 0 and model.data(model.index(row, 0)) == LOADING_TEXT:
                        self._draw(
                            painter,
                            LOADING_TEXT,
                            base_font,
                            0,
                            _PLACEHOLDER,
                            x,
                            top,
                            cell_width,
                            cell_height,
                            right_aligned=False,
                        )
                    continue
                text, font, foreground, background = look
                if selected:
                    colour = highlighted_text
                else:
                    if background is not None:
                        painter.fillRect(x, top, cell_width, cell_height, background)
                    colour = foreground.color() if foreground is not None else text_colour
                if font is None:
                    font, font_key = base_font, 0
                else:
                    font_key = id(font)
                self._draw(
                    painter,
                    text,
                    font,
                    font_key,
                    colour,
                    x,
                    top,
                    cell_width,
                    cell_height,
                    right_aligned=logical == _AMOUNT,
                )
        if grid and columns:
            self._paint_grid(painter, columns, rows.sectionViewportPosition(first), bottom)
        self._paint_focus(painter, first, last, columns)

    def _draw(
        self,
        painter: QPainter,
        text: str,
        font: QFont,
        font_key: int,
        colour: QColor,
        x: int,
        top: int,
        width: int,
        height: int,
        *,
        right_aligned: bool,
    ) -> None:
        metrics = self._metrics_for(font, font_key)
        margin = self._margin
        shown, advance = self._fitted(text, width - 2 * margin, metrics, font_key)
        left = x + width - margin - advance if right_aligned else x + margin
        painter.setFont(font)
        painter.setPen(colour)
        painter.drawText(left, top + (height - metrics.height()) // 2 + metrics.ascent(), shown)

    def _metrics_for(self, font: QFont, font_key: int) -> QFontMetrics:
        known = self._metrics.get(font_key)
        # The view's own font (key 0) may change; a look's font is a constant of the model.
        if known is None or (font_key == 0 and known[0] != font):
            if font_key == 0:
                self._texts = {key: value for key, value in self._texts.items() if key[2]}
            known = self._metrics[font_key] = (QFont(font), QFontMetrics(font))
        return known[1]

    def _fitted(
        self, text: str, width: int, metrics: QFontMetrics, font_key: int
    ) -> tuple[str, int]:
        """``text`` cut to ``width`` (ending "…") and its advance: measured once per key."""
        key = (text, width, font_key)
        fitted = self._texts.get(key)
        if fitted is None:
            if len(self._texts) >= MAX_CACHED_TEXTS:
                self._texts.clear()
            advance = metrics.horizontalAdvance(text)
            if advance > width:
                text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, max(0, width))
                advance = metrics.horizontalAdvance(text)
            fitted = self._texts[key] = (text, advance)
        return fitted

    def _paint_grid(
        self, painter: QPainter, columns: list[tuple[int, int, int]], top: int, bottom: int
    ) -> None:
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        colour = self.style().styleHint(QStyle.StyleHint.SH_Table_GridLineColor, option, self)
        painter.setPen(QPen(QColor.fromRgba(colour & 0xFFFFFFFF), 0, self.gridStyle()))
        left = columns[0][1]
        right = columns[-1][1] + columns[-1][2] - 1
        for _logical, x, width in columns:
            painter.drawLine(x + width - 1, top, x + width - 1, bottom - 1)
        rows = self.verticalHeader()
        row = rows.visualIndexAt(top)
        while 0 <= row < rows.count():
            y = rows.sectionViewportPosition(row) + rows.sectionSize(row) - 1
            if y >= bottom:
                break
            painter.drawLine(left, y, right, y)
            row += 1

    def _paint_focus(
        self, painter: QPainter, first: int, last: int, columns: list[tuple[int, int, int]]
    ) -> None:
        """The dotted frame around the current cell, as Qt draws it, when the table has focus."""
        current: QModelIndex = self.currentIndex()
        if not self.hasFocus() or not current.isValid() or not first <= current.row() <= last:
            return
        rect = self.visualRect(current)
        if rect.isEmpty():
            return
        option = QStyleOptionFocusRect()
        option.initFrom(self)
        option.rect = rect
        option.backgroundColor = self.palette().color(QPalette.ColorRole.Highlight)
        self.style().drawPrimitive(
            QStyle.PrimitiveElement.PE_FrameFocusRect, option, painter, self.viewport()
        )
