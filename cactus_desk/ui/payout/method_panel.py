"""One panel per payout method, built from the catalog, in a stack that sizes to the current page.

A panel holds every field its method has in any currency and shows the ones that apply to
the chosen currency (``Catalog.fields_for``). Text fields are line edits, flags check boxes;
each has its example as placeholder, help and example as tooltip, and an error label under it.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.catalog import Catalog, FieldSpec, MethodSpec
from cactus_desk.ui import style


def field_tooltip(spec: FieldSpec) -> str:
    """The tooltip of a field: its help, its example, and whether it is required."""
    need = "Required" if spec.required else "Optional"
    parts = [spec.help] if spec.help else []
    if spec.kind == "bool":
        parts.append(f"{need}. Sent as “true” or “false”.")
    else:
        parts.append(f"{need}. Example: {spec.example}")
    return "\n".join(parts)


class _FieldRow:
    """The widgets of one field: label, input, error label and the container holding them."""

    def __init__(self, spec: FieldSpec, parent: QWidget) -> None:
        self.spec = spec
        self.label = QLabel(parent)
        self.editor: QLineEdit | QCheckBox
        if spec.kind == "bool":
            self.editor = QCheckBox(spec.label, parent)
        else:
            edit = QLineEdit(parent)
            edit.setPlaceholderText(spec.example)
            edit.setClearButtonEnabled(True)
            self.editor = edit
        self.editor.setObjectName(spec.object_name)
        self.editor.setAccessibleName(spec.label)
        self.editor.setToolTip(field_tooltip(spec))
        self.error = style.error_label(parent)
        self.error.setObjectName(f"{spec.object_name}_error")
        style.reserve_lines(self.error)
        self.holder = QWidget(parent)
        box = QVBoxLayout(self.holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(self.editor)
        box.addWidget(self.error)
        self.label.setBuddy(self.editor)
        self.set_spec(spec)

    def set_spec(self, spec: FieldSpec) -> None:
        self.spec = spec
        if spec.kind == "bool":
            self.label.setText("")
        else:
            self.label.setText(f"{spec.label}{' *' if spec.required else ''}:")
        self.editor.setToolTip(field_tooltip(spec))
        self.editor.setAccessibleDescription("")

    def value(self) -> str | bool:
        if isinstance(self.editor, QCheckBox):
            return self.editor.isChecked()
        return self.editor.text()

    def clear(self) -> None:
        if isinstance(self.editor, QCheckBox):
            self.editor.setChecked(False)
        else:
            self.editor.clear()


class MethodPanel(QWidget):
    """The additional fields of one method.

    ``changed`` fires on every value change; ``edited(wire)`` only when the person edits it.
    """

    changed = Signal()
    edited = Signal(str)

    def __init__(self, method: MethodSpec, catalog: Catalog, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"panel_{method.wire}")
        self.method = method
        self._catalog = catalog
        self._currency: str | None = None
        self._rows: dict[str, _FieldRow] = {}
        self._form = QFormLayout(self)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._form.setLabelAlignment(style.FORM_LABEL_ALIGNMENT)
        self._empty = style.muted_label("This method needs no recipient details.", self)
        self._form.addRow(self._empty)
        for spec in method.fields:
            row = _FieldRow(spec, self)
            self._rows[spec.wire] = row
            self._form.addRow(row.label, row.holder)
            if isinstance(row.editor, QCheckBox):
                row.editor.toggled.connect(self.changed)
                row.editor.clicked.connect(lambda _=False, w=spec.wire: self.edited.emit(w))
            else:
                row.editor.textChanged.connect(self.changed)
                row.editor.textEdited.connect(lambda _, w=spec.wire: self.edited.emit(w))
        self._form.setRowVisible(self._empty, not method.fields)

    def set_currency(self, currency: str) -> None:
        """Show the fields that apply to ``currency`` (labels follow its required flags)."""
        self._currency = currency
        shown = {spec.wire: spec for spec in self._catalog.fields_for(self.method, currency)}
        for wire, row in self._rows.items():
            visible = wire in shown
            if visible:
                row.set_spec(shown[wire])
            self._form.setRowVisible(row.holder, visible)
        self._form.setRowVisible(self._empty, not shown)
        self.updateGeometry()

    def visible_fields(self) -> list[FieldSpec]:
        """The fields shown for the current currency, in order."""
        if self._currency is None:
            return list(self.method.fields)
        return list(self._catalog.fields_for(self.method, self._currency))

    def values(self) -> dict[str, str | bool]:
        """The shown fields' values by wire name (strings, or booleans for flags)."""
        return {spec.wire: self._rows[spec.wire].value() for spec in self.visible_fields()}

    def field_input(self, wire: str) -> QLineEdit | QCheckBox:
        """The input widget of the field ``wire``."""
        return self._rows[wire].editor

    def inputs(self) -> list[QWidget]:
        """The shown inputs in tab order."""
        return [self._rows[spec.wire].editor for spec in self.visible_fields()]

    def error_text(self, wire: str) -> str:
        """The message shown under the field ``wire`` (empty when none)."""
        return self._rows[wire].error.text()

    def set_errors(self, errors: Mapping[str, str], touched: set[str] | None = None) -> None:
        """Show ``errors`` at their fields; with ``touched``, only at the fields in it."""
        for wire, row in self._rows.items():
            message = errors.get(wire)
            if touched is not None and wire not in touched:
                message = None
            style.show_field_error(row.editor, row.error, message)

    def clear(self) -> None:
        """Empty every field."""
        for row in self._rows.values():
            row.clear()


class ResizableStackedWidget(QStackedWidget):
    """A stack whose size hint is its current page's, so a short panel leaves no gap."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.currentChanged.connect(self._fit)

    def addWidget(self, widget: QWidget) -> int:
        index = super().addWidget(widget)
        self._fit(self.currentIndex())
        return index

    def _fit(self, index: int) -> None:
        for i in range(self.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            page = self.widget(i)
            assert page is not None  # i < count()
            page.setSizePolicy(policy, policy)
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        current = self.currentWidget()
        return current.sizeHint() if current is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:
        current = self.currentWidget()
        return current.minimumSizeHint() if current is not None else super().minimumSizeHint()
