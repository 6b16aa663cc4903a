"""Choosing which column holds what, for files whose headers are not wire names."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.batch.columns import known_columns, missing_columns

_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    widget.setObjectName(name)
    return widget


class MappingDialog(QDialog):
    """One choice per header: a wire name, or "(not used)"."""

    def __init__(
        self, headers: tuple[str, ...], mapping: dict[int, str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("batchMapping")
        self.setWindowTitle("Match the columns")
        self._boxes: list[QComboBox] = []
        form = QFormLayout()
        for index, header in enumerate(headers):
            box = _named(QComboBox(), f"mapping_{index}")
            box.addItem("(not used)", "")
            for name in known_columns():
                box.addItem(name, name)
            chosen = mapping.get(index)
            if chosen:
                box.setCurrentIndex(box.findData(chosen))
            self._boxes.append(box)
            form.addRow(header or f"(column {index + 1})", box)
        self.note = QLabel()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Which column holds what? The choice is remembered."))
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)

    def choose(self, index: int, wire: str) -> None:
        """Map column ``index`` to ``wire`` (tests)."""
        box = self._boxes[index]
        box.setCurrentIndex(box.findData(wire))

    def mapping(self) -> dict[int, str]:
        """Column index -> wire name, as chosen."""
        return {i: box.currentData() for i, box in enumerate(self._boxes) if box.currentData()}

    def _accept(self) -> None:
        chosen = self.mapping()
        missing = missing_columns(chosen)
        if missing:
            self.note.setText("Choose a column for: " + ", ".join(missing))
            return
        if len(set(chosen.values())) != len(chosen):
            self.note.setText("Each name may be chosen for one column only.")
            return
        self.accept()
