"""The History tab's second filter row: recipient, amount range, dates, gateway status, aging,
and filters saved by name.

``FiltersBar.apply(base, currency)`` adds its settings to the panel's filter; a setting that
cannot be read (an amount that is not one) is shown at the bar and leaves that part out.
Saved filters are read and written on a worker.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.history.clerk import DEFAULT_AGING_MS, PRESETS, preset_range
from cactus_desk.history.types import HistoryFilter
from cactus_desk.money import AmountError, currencies, parse_amount
from cactus_desk.payouts.statuses import GatewayStatus
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from collections.abc import Callable

    from cactus_desk.saved_filters import SavedFilterStore

log = logging.getLogger(__name__)
CUSTOM = "custom"


class FiltersBar(QWidget):
    """Recipient, amount, dates, status and aging; ``changed`` when any of them changes."""

    changed = Signal()

    def __init__(
        self, clock: Callable[[], datetime] = datetime.now, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("historyFiltersBar")
        self._clock = clock
        self._runner = Runner(self)
        self._saved_store: SavedFilterStore | None = None
        self._saved: dict[str, dict[str, Any]] = {}
        self._main_row: tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]]
        self._main_row = (dict, lambda _settings: None)
        self.aging_ms = DEFAULT_AGING_MS

        self.recipient_edit = QLineEdit(self)
        self.recipient_edit.setObjectName("recipientFilterEdit")
        self.recipient_edit.setPlaceholderText("Recipient: name, phone, account, card last 4")
        self.recipient_edit.setClearButtonEnabled(True)
        self.recipient_edit.setAccessibleName("Recipient filter")
        self.amount_from = QLineEdit(self)
        self.amount_from.setObjectName("amountFromEdit")
        self.amount_from.setPlaceholderText("Amount from")
        self.amount_from.setAccessibleName("Amount from")
        self.amount_to = QLineEdit(self)
        self.amount_to.setObjectName("amountToEdit")
        self.amount_to.setPlaceholderText("to")
        self.amount_to.setAccessibleName("Amount to")
        for edit in (self.amount_from, self.amount_to):
            edit.setMaximumWidth(110)
            edit.setToolTip("In the chosen currency's major units, e.g. 1500.50")
        self.dates_combo = QComboBox(self)
        self.dates_combo.setObjectName("datesCombo")
        self.dates_combo.setAccessibleName("Created")
        self.dates_combo.addItem("Any time", None)
        for preset in PRESETS:
            self.dates_combo.addItem(preset.capitalize(), preset)
        self.dates_combo.addItem("Custom range…", CUSTOM)
        self.date_from = QDateEdit(self)
        self.date_from.setObjectName("dateFromEdit")
        self.date_to = QDateEdit(self)
        self.date_to.setObjectName("dateToEdit")
        for date_edit in (self.date_from, self.date_to):
            date_edit.setCalendarPopup(True)
            date_edit.setDisplayFormat("yyyy-MM-dd")
            date_edit.setDate(QDate.currentDate())
            date_edit.setVisible(False)
        self.status_combo = QComboBox(self)
        self.status_combo.setObjectName("gatewayStatusCombo")
        self.status_combo.setAccessibleName("Gateway status filter")
        self.status_combo.addItem("Any gateway status", None)
        for status in GatewayStatus:
            self.status_combo.addItem(status.label, int(status))
        self.aging_check = QCheckBox("Not final after 24 h", self)
        self.aging_check.setObjectName("agingCheck")
        self.aging_check.setToolTip(
            "Payouts still submitting, in doubt or without a final gateway status 24 hours on"
        )
        self.saved_combo = QComboBox(self)
        self.saved_combo.setObjectName("savedFiltersCombo")
        self.saved_combo.setAccessibleName("Saved filters")
        self.saved_combo.addItem("Saved filters…", None)
        self.save_button = QPushButton("Save filter…", self)
        self.save_button.setObjectName("saveFilterButton")
        self.error_label = style.error_label()
        self.error_label.setObjectName("filtersError")
        self.error_label.setVisible(False)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.recipient_edit, 2)
        row.addWidget(QLabel("Amount:", self))
        row.addWidget(self.amount_from)
        row.addWidget(self.amount_to)
        row.addWidget(self.dates_combo)
        row.addWidget(self.date_from)
        row.addWidget(self.date_to)
        row.addWidget(self.status_combo)
        row.addWidget(self.aging_check)
        row.addWidget(self.saved_combo)
        row.addWidget(self.save_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addLayout(row)
        box.addWidget(self.error_label)

        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(250)
        self._typing.timeout.connect(self.changed)
        for edit in (self.recipient_edit, self.amount_from, self.amount_to):
            edit.textChanged.connect(self._typing.start)
        self.dates_combo.currentIndexChanged.connect(self._dates_changed)
        self.date_from.dateChanged.connect(self.changed)
        self.date_to.dateChanged.connect(self.changed)
        self.status_combo.currentIndexChanged.connect(self.changed)
        self.aging_check.toggled.connect(self.changed)
        self.saved_combo.activated.connect(self._saved_chosen)
        self.save_button.clicked.connect(self._ask_name)

    # -- the filter --------------------------------------------------------------------------

    def _dates_changed(self) -> None:
        custom = self.dates_combo.currentData() == CUSTOM
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)
        self.changed.emit()

    def _amount(self, edit: QLineEdit, currency: str | None, problems: list[str]) -> int | None:
        text = edit.text().strip()
        if not text:
            return None
        if not currency:
            problems.append("Choose a currency to filter by amount.")
            return None
        try:
            return parse_amount(text, currencies()[currency])
        except AmountError as exc:
            problems.append(f"{edit.placeholderText().capitalize()}: {exc}")
            return None

    def date_range(self) -> tuple[int, int] | None:
        """The created range chosen, ``[from, to)`` in ms, or None for any time."""
        choice = self.dates_combo.currentData()
        if choice is None:
            return None
        if choice == CUSTOM:
            first: date = self.date_from.date().toPython()  # type: ignore[assignment]
            last: date = self.date_to.date().toPython()  # type: ignore[assignment]
            start = datetime.combine(min(first, last), time()).astimezone()
            end = datetime.combine(max(first, last), time()).astimezone()
            return int(start.timestamp() * 1000), int(end.timestamp() * 1000) + 86_400_000
        return preset_range(str(choice), self._clock().astimezone())

    def apply(self, base: HistoryFilter, currency: str | None) -> HistoryFilter:
        """``base`` with this bar's settings; unreadable ones are shown and left out."""
        problems: list[str] = []
        low = self._amount(self.amount_from, currency, problems)
        high = self._amount(self.amount_to, currency, problems)
        dates = self.date_range()
        status = self.status_combo.currentData()
        now_ms = int(self._clock().timestamp() * 1000)
        self.error_label.setText(" ".join(problems))
        self.error_label.setVisible(bool(problems))
        return replace(
            base,
            recipient=self.recipient_edit.text().strip(),
            amount_min=low,
            amount_max=high,
            created_from=dates[0] if dates else None,
            created_to=dates[1] if dates else None,
            gateway_statuses=frozenset() if status is None else frozenset({int(status)}),
            aged_before=now_ms - self.aging_ms if self.aging_check.isChecked() else None,
        )

    # -- saved filters -----------------------------------------------------------------------

    def use_main_row(
        self,
        settings: Callable[[], dict[str, Any]],
        restore: Callable[[dict[str, Any]], None],
    ) -> None:
        """Save and restore the panel's first filter row (search text, state, currency,
        profile) with this bar's: ``settings`` reads it, ``restore`` puts it back quietly."""
        self._main_row = (settings, restore)

    def settings(self) -> dict[str, Any]:
        """Every filter setting as plain values (what a saved filter keeps): the panel's first
        row and this bar's."""
        dates = (self.date_from.date(), self.date_to.date())
        return {
            **self._main_row[0](),
            "recipient": self.recipient_edit.text(),
            "amount_from": self.amount_from.text(),
            "amount_to": self.amount_to.text(),
            "dates": self.dates_combo.currentData(),
            "date_from": dates[0].toString(Qt.DateFormat.ISODate),
            "date_to": dates[1].toString(Qt.DateFormat.ISODate),
            "status": self.status_combo.currentData(),
            "aging": self.aging_check.isChecked(),
        }

    def restore(self, settings: dict[str, Any]) -> None:
        """Put saved ``settings`` back, the first row's with them (a setting a saved filter
        does not name goes back to its default)."""
        widgets = (self.recipient_edit, self.amount_from, self.amount_to)
        quiet = (self.date_from, self.date_to, self.dates_combo, self.status_combo)
        for widget in (*widgets, *quiet, self.aging_check):
            widget.blockSignals(True)
        try:
            for key, edit in zip(("recipient", "amount_from", "amount_to"), widgets, strict=True):
                value = settings.get(key)
                edit.setText(value if isinstance(value, str) else "")
            for key, date_edit in (("date_from", self.date_from), ("date_to", self.date_to)):
                value = settings.get(key)
                chosen = (
                    QDate.fromString(value, Qt.DateFormat.ISODate)
                    if isinstance(value, str)
                    else QDate()
                )
                if chosen.isValid():
                    date_edit.setDate(chosen)
            index = self.dates_combo.findData(settings.get("dates"))
            self.dates_combo.setCurrentIndex(max(index, 0))
            custom = self.dates_combo.currentData() == CUSTOM
            self.date_from.setVisible(custom)
            self.date_to.setVisible(custom)
            index = self.status_combo.findData(settings.get("status"))
            self.status_combo.setCurrentIndex(max(index, 0))
            self.aging_check.setChecked(settings.get("aging") is True)
            self._main_row[1](settings)
        finally:
            for widget in (*widgets, *quiet, self.aging_check):
                widget.blockSignals(False)
        self.changed.emit()

    def use_saved_filters(self, store: SavedFilterStore) -> None:
        """Offer the filters saved in ``store`` (read on a worker)."""
        self._saved_store = store
        self._runner.run(store.all, self._saved_read, self._saved_failed, channel="saved")

    def saved_names(self) -> list[str]:
        """The names of the saved filters offered."""
        return list(self._saved)

    def busy(self) -> bool:
        """True while saved filters are being read or written."""
        return self._runner.busy()

    def save_as(self, name: str) -> None:
        """Save the bar's settings under ``name`` (on a worker)."""
        store = self._saved_store
        if store is None:
            return
        settings = self.settings()
        self._runner.run(lambda: store.save(name, settings), self._saved_read, self._saved_failed)

    def choose_saved(self, name: str) -> bool:
        """Apply the saved filter ``name``; False when there is none."""
        settings = self._saved.get(name)
        if settings is None:
            return False
        self.restore(settings)
        return True

    def _saved_read(self, saved: dict[str, dict[str, Any]]) -> None:
        self._saved = dict(saved)
        self.saved_combo.blockSignals(True)
        self.saved_combo.clear()
        self.saved_combo.addItem("Saved filters…", None)
        for name in sorted(saved):
            self.saved_combo.addItem(name, name)
        self.saved_combo.blockSignals(False)

    def _saved_failed(self, error: BaseException) -> None:
        log.warning("saved filters: %s", error)
        self.error_label.setText(str(error))
        self.error_label.setVisible(True)

    def _saved_chosen(self, index: int) -> None:
        name = self.saved_combo.itemData(index)
        if isinstance(name, str):
            self.choose_saved(name)

    def _ask_name(self) -> None:
        dialog = QInputDialog(self)
        dialog.setObjectName("saveFilterDialog")
        dialog.setWindowTitle("Save filter")
        dialog.setLabelText("Name for these filters:")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(self.save_as)
        dialog.open()
