"""The saved-recipient picker above the recipient details, and what picking one does.

``RecipientPicker`` is the line with type-ahead (a ``QCompleter`` over the labels) and the
"Save recipient…" button. ``RecipientsController`` reads and saves recipients on a worker,
fills the form from one (never a full card number: the person types it again, and it must
end in the saved last four) and prefills a repeat of a payout from the history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.money import to_major
from cactus_desk.recipients.model import (
    RecipientError,
    SavedRecipient,
    card_mismatch,
    card_wires,
    new_recipient,
)
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.history.types import PayoutRecord
    from cactus_desk.recipients.store import RecipientRepository
    from cactus_desk.ui.payout.form import PayoutForm

log = logging.getLogger(__name__)
LOAD_CHANNEL = "recipients-load"


class RecipientPicker(QWidget):
    """ "Saved recipient: [type-ahead] [Save recipient…]" with a line for notes."""

    picked = Signal(str)  # the label chosen
    saveRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recipientPicker")
        self.edit = QLineEdit(self)
        self.edit.setObjectName("recipientPickEdit")
        self.edit.setAccessibleName("Saved recipient")
        self.edit.setPlaceholderText("Type to pick a saved recipient")
        self.edit.setClearButtonEnabled(True)
        self.edit.setToolTip("Start typing a saved recipient's label, then pick it")
        self._labels = QStringListModel(self)
        self.completer = QCompleter(self._labels, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.edit.setCompleter(self.completer)
        self.save_button = QPushButton("Save recipient…", self)
        self.save_button.setObjectName("saveRecipientButton")
        self.save_button.setToolTip(
            "Keep this recipient under a label to pay again (a card keeps only its last four)"
        )
        self.note = style.muted_label("", self)
        self.note.setObjectName("recipientNote")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Saved recipient:", self))
        row.addWidget(self.edit, 1)
        row.addWidget(self.save_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 4)
        box.setSpacing(2)
        box.addLayout(row)
        box.addWidget(self.note)
        self.completer.activated.connect(self.picked)
        self.edit.returnPressed.connect(lambda: self.picked.emit(self.edit.text()))
        self.save_button.clicked.connect(self.saveRequested)

    def set_labels(self, labels: list[str]) -> None:
        """The labels offered by the type-ahead."""
        self._labels.setStringList(labels)

    def labels(self) -> list[str]:
        """The labels offered."""
        return list(self._labels.stringList())

    def show_note(self, text: str) -> None:
        """A line under the picker ('' hides it)."""
        self.note.setText(text)
        self.note.setVisible(bool(text))


class RecipientsController(QObject):
    """Saved recipients for one payout form: read, saved and applied off the GUI thread."""

    changed = Signal()  # the list was read again
    failed = Signal(str)  # a plain message

    def __init__(
        self,
        form: PayoutForm,
        store_factory: Callable[[], RecipientRepository],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._form = form
        self._factory = store_factory
        self._store: RecipientRepository | None = None
        self._runner = Runner(self)
        self._recipients: dict[str, SavedRecipient] = {}
        # (method, card field, last four) the card number typed now must match.
        self._expect: tuple[str, str, str] | None = None
        self._placeholder: tuple[QLineEdit, str] | None = None
        self.picker = RecipientPicker(form)
        layout = form.recipient_box.layout()
        assert isinstance(layout, QVBoxLayout)  # the form stacks the recipient box vertically
        layout.insertWidget(0, self.picker)
        self.picker.picked.connect(self.pick)
        self.picker.saveRequested.connect(self._ask_label)
        self.picker.edit.textChanged.connect(self._pick_text_changed)
        form.add_check(self._card_check)

    # -- reading and saving (worker) ---------------------------------------------------------

    def _repository(self) -> RecipientRepository:  # worker thread
        if self._store is None:
            self._store = self._factory()
        return self._store

    def load(self) -> None:
        """Read the saved recipients on a worker."""
        self._runner.run(
            lambda: self._repository().all(), self._loaded, self._failed, channel=LOAD_CHANNEL
        )

    def busy(self) -> bool:
        """True while a read or save is on its way."""
        return self._runner.busy()

    def recipients(self) -> list[SavedRecipient]:
        """The recipients read last, by label."""
        return list(self._recipients.values())

    def _loaded(self, recipients: list[SavedRecipient]) -> None:
        self._recipients = {r.label: r for r in recipients}
        self.picker.set_labels([r.label for r in recipients])
        self.changed.emit()

    def _failed(self, error: BaseException) -> None:
        log.warning("saved recipients: %s", error)
        message = str(error)
        self.picker.show_note(message)
        self.failed.emit(message)

    def current_recipient(self, label: str) -> SavedRecipient:
        """The form's recipient as it would be saved under ``label`` (card masked)."""
        form = self._form
        return new_recipient(
            label,
            form.method(),
            form.currency(),
            form.site_login_edit.text(),
            form.panel().values(),
        )

    def save_current(self, label: str) -> bool:
        """Save the form's recipient under ``label`` on a worker; False (and a note) when the
        label or recipient cannot be saved."""
        try:
            recipient = self.current_recipient(label)
        except RecipientError as exc:
            self.picker.show_note(str(exc))
            return False

        def save() -> list[SavedRecipient]:  # worker thread
            store = self._repository()
            store.save(recipient)
            return store.all()

        def saved(recipients: list[SavedRecipient]) -> None:
            self._loaded(recipients)
            self.picker.show_note(f"Saved as “{recipient.label}”.")

        self._runner.run(save, saved, self._failed, channel=LOAD_CHANNEL)
        return True

    def _ask_label(self) -> None:
        dialog = QInputDialog(self._form)
        dialog.setObjectName("saveRecipientDialog")
        dialog.setWindowTitle("Save recipient")
        dialog.setLabelText("Label for this recipient (e.g. Alice — Sber card):")
        dialog.setTextValue(self.picker.edit.text() or self._form.site_login_edit.text())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(self.save_current)
        dialog.open()

    # -- applying ----------------------------------------------------------------------------

    def pick(self, label: str) -> bool:
        """Fill the form from the recipient labelled ``label``; False when there is none or
        it cannot be used with the current profile."""
        recipient = self._recipients.get(label)
        if recipient is None:
            match = [r for r in self._recipients.values() if r.key == label.strip().casefold()]
            recipient = match[0] if match else None
        if recipient is None:
            self.picker.show_note(f"No saved recipient is labelled “{label}”.")
            return False
        if self.picker.edit.text() != recipient.label:
            self.picker.edit.setText(recipient.label)
        return self.apply(recipient)

    def apply(self, recipient: SavedRecipient, amount_text: str | None = None) -> bool:
        """Put ``recipient`` (and ``amount_text`` if given) in the form; card numbers stay
        empty, to be typed in full again."""
        form = self._form
        try:
            form.set_currency(recipient.currency)
        except ValueError:
            self.picker.show_note(f"{recipient.currency} is not a currency this desk knows.")
            return False
        if not form.set_method(recipient.method):
            self.picker.show_note(
                f"The method {recipient.method} cannot be used for {recipient.currency} with "
                "this profile."
            )
            return False
        self._restore_placeholder()
        self._expect = None
        form.site_login_edit.setText(recipient.site_login)
        if amount_text is not None:
            form.amount_edit.setText(amount_text)
        cards = card_wires(recipient.method)
        panel = form.panel()
        panel.clear()
        for spec in panel.visible_fields():
            widget = panel.field_input(spec.wire)
            value = recipient.fields.get(spec.wire)
            if isinstance(widget, QCheckBox):
                widget.setChecked(value is True or value == "true")
            elif spec.wire in cards:
                widget.clear()
                if recipient.card_last4:
                    self._expect = (recipient.method, spec.wire, recipient.card_last4)
                    self._placeholder = (widget, widget.placeholderText())
                    widget.setPlaceholderText(
                        f"Type the full card number ending {recipient.card_last4}"
                    )
            else:
                widget.setText(value if isinstance(value, str) else "")
        note = ""
        if self._expect is not None:
            masked = recipient.fields.get(self._expect[1], "")
            note = f"Card {masked}: type the full number again; it must end in {self._expect[2]}."
        self.picker.show_note(note)
        form.revalidate()
        return True

    def repeat(self, record: PayoutRecord) -> bool:
        """Prefill a new payout like ``record``: same profile, recipient and amount, a new
        request id, the card number left to type in full."""
        form = self._form
        if not any(p.id == record.profile_id for p in form.profiles()):
            self.picker.show_note(
                f"The profile {record.profile_name} of payout {record.request_id} is not on "
                "this desk."
            )
            return False
        form.select_profile(record.profile_id)
        profile = form.current_profile()
        fields = record.request.get("additional_fields") if record.request else None
        values: Mapping[str, object] = fields if isinstance(fields, dict) else {}
        kept = {k: v for k, v in values.items() if isinstance(k, str) and isinstance(v, str | bool)}
        try:
            recipient = new_recipient(
                f"Payout {record.request_id}"[:80],
                record.method,
                record.currency,
                record.site_login,
                kept,
            )
        except RecipientError:
            return False
        cur = profile.currency(record.currency) if profile else None
        amount = str(to_major(record.amount_minor, cur)) if cur is not None else ""
        self.picker.edit.blockSignals(True)
        self.picker.edit.clear()
        self.picker.edit.blockSignals(False)
        if not self.apply(recipient, amount):
            return False
        form.new_request_id()
        self.picker.show_note(
            f"Repeating {record.request_id} with a new request id."
            + (f" {self.picker.note.text()}" if self._expect else "")
        )
        return True

    def _pick_text_changed(self, text: str) -> None:
        if not text.strip() and self._expect is not None:  # the pick was cleared
            self._expect = None
            self._restore_placeholder()
            self.picker.show_note("")
            self._form.revalidate()

    def _restore_placeholder(self) -> None:
        if self._placeholder is not None:
            widget, text = self._placeholder
            widget.setPlaceholderText(text)
            self._placeholder = None

    def expected_last4(self) -> str | None:
        """The last four digits the card number must end in now, if a card was picked."""
        return self._expect[2] if self._expect else None

    def _card_check(self, method: str, values: Mapping[str, str | bool]) -> dict[str, str]:
        if self._expect is None or self._expect[0] != method:
            return {}
        _method, wire, last4 = self._expect
        value = values.get(wire)
        message = card_mismatch(last4, value) if isinstance(value, str) else None
        return {wire: message} if message else {}
