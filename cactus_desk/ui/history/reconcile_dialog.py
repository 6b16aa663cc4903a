""" "Set final state…": an operator records a payout's result that no callback will bring.

The change is written off the GUI thread by ``set_final_state``, which audits it as a manual
event under the OS user's name; a refusal is shown at the field it concerns.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.callbacks.reconcile import NOTE_LIMIT, ReconcileError, set_final_state
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import PayoutRecord
from cactus_desk.money import UnknownCurrencyError, format_major
from cactus_desk.payouts.states import state_text
from cactus_desk.payouts.statuses import GatewayStatus, status_label
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

FIELDS = ("status", "note", "invoice_id", "record")


def record_summary(record: PayoutRecord) -> str:
    """One line naming the payout: number, request id, amount, state."""
    try:
        amount = f"{format_major(record.amount_minor, record.currency)} {record.currency}"
    except UnknownCurrencyError:
        amount = f"{record.amount_minor} {record.currency} (minor units)"
    status = f", {status_label(record.gateway_status)}" if record.gateway_status else ""
    return (
        f"Payout #{record.id} · request {record.request_id} · {amount} · "
        f"{state_text(record.state, record.gateway_status)}{status}"
    )


class ReconcileDialog(QDialog):
    """Choose Success (4) or Declined (5), write a note, optionally the invoice id.

    Emits ``reconciled(record_id, event_id)`` once the state is stored, then closes.
    """

    reconciled = Signal(int, int)

    def __init__(
        self, store: HistoryStore, record: PayoutRecord, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("reconcileDialog")
        self.setWindowTitle("Set final state")
        self.setModal(True)
        self._store = store
        self._record = record
        self._runner = Runner(self)

        intro = QLabel(
            "Record the result Cactus support or the merchant cabinet confirmed. It is saved "
            "as a manual state with your user name and note, and shown apart from statuses "
            "the gateway confirmed."
        )
        intro.setWordWrap(True)
        summary = QLabel(record_summary(record))
        summary.setObjectName("reconcileRecord")
        summary.setWordWrap(True)
        summary.setTextFormat(Qt.TextFormat.PlainText)
        summary.setStyleSheet("QLabel { font-weight: bold; }")

        self._status = QComboBox(self)
        self._status.setObjectName("reconcileStatus")
        self._status.setAccessibleName("Final status")
        self._status.addItem("Choose…", None)
        for status in (GatewayStatus.SUCCESS, GatewayStatus.DECLINE):
            self._status.addItem(status_label(status), int(status))
        self._note = QPlainTextEdit(self)
        self._note.setObjectName("reconcileNote")
        self._note.setAccessibleName("Note")
        self._note.setPlaceholderText(
            "How the result was established, e.g. “Cabinet shows it paid, ticket 881”"
        )
        self._note.setTabChangesFocus(True)
        self._note.setFixedHeight(self._note.fontMetrics().lineSpacing() * 4 + 12)
        self._invoice = QLineEdit(record.invoice_id or "", self)
        self._invoice.setObjectName("reconcileInvoice")
        self._invoice.setAccessibleName("Invoice ID")
        self._invoice.setPlaceholderText("Optional: the invoice id Cactus gave it")
        if record.invoice_id:
            self._invoice.setReadOnly(True)
            self._invoice.setToolTip("The gateway already named this payout's invoice")

        self._errors = {name: style.error_label(self) for name in FIELDS}
        self._errors["record"].setObjectName("reconcileError")
        form = QFormLayout()
        form.setLabelAlignment(style.FORM_LABEL_ALIGNMENT)
        form.addRow("Final status", self._column(self._status, self._errors["status"]))
        form.addRow("Note", self._column(self._note, self._errors["note"]))
        form.addRow("Invoice ID", self._column(self._invoice, self._errors["invoice_id"]))

        self._buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self._save = QPushButton("Set final state", self)
        self._save.setObjectName("reconcileSaveButton")
        self._save.setDefault(True)
        self._buttons.addButton(self._save, QDialogButtonBox.ButtonRole.AcceptRole)
        self._buttons.accepted.connect(self.submit)
        self._buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(summary)
        layout.addLayout(form)
        layout.addWidget(self._errors["record"])
        layout.addWidget(self._buttons)
        self.resize(520, self.sizeHint().height())
        style.flat_scroll_bars(self)

    @staticmethod
    def _column(widget: QWidget, error: QLabel) -> QWidget:
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(widget)
        box.addWidget(error)
        return holder

    # -- public ---------------------------------------------------------------------------

    @property
    def record_id(self) -> int:
        """The payout being reconciled."""
        return self._record.id

    def set_values(self, status: int | None, note: str, invoice_id: str | None = None) -> None:
        """Fill the fields the way a person would (status 4 or 5, or None for none chosen)."""
        self._status.setCurrentIndex(max(self._status.findData(status), 0))
        self._note.setPlainText(note)
        if invoice_id is not None and not self._invoice.isReadOnly():
            self._invoice.setText(invoice_id)

    def errors(self) -> dict[str, str]:
        """The messages on show, by field (``status``, ``note``, ``invoice_id``, ``record``)."""
        return {name: label.text() for name, label in self._errors.items() if label.text()}

    def is_saving(self) -> bool:
        """True while the change is being written."""
        return self._runner.busy()

    def submit(self) -> None:
        """Check the fields and write the final state on a worker thread."""
        self._show_errors({})
        status = self._status.currentData()
        note = self._note.toPlainText()
        errors: dict[str, str] = {}
        if status is None:
            errors["status"] = "Choose Success (4) or Declined (5)."
        if not note.strip():
            errors["note"] = "Write a note saying how the final state was established."
        elif len(" ".join(note.split())) > NOTE_LIMIT:
            errors["note"] = f"The note is longer than {NOTE_LIMIT} characters."
        if errors:
            self._show_errors(errors)
            return
        store, record_id = self._store, self._record.id
        invoice_id = self._invoice.text().strip() or None
        self._save.setEnabled(False)
        self._runner.run(
            lambda: set_final_state(store, record_id, int(status), note, invoice_id=invoice_id),
            self._saved,
            self._failed,
        )

    def reject(self) -> None:
        """Cancel, except while the change is being written (its result is on its way)."""
        if not self.is_saving():
            super().reject()

    # -- results (GUI thread) -------------------------------------------------------------

    def _saved(self, event_id: int) -> None:
        self.reconciled.emit(self._record.id, event_id)
        self.accept()

    def _failed(self, error: BaseException) -> None:
        self._save.setEnabled(True)
        if isinstance(error, ReconcileError):
            field = error.field if error.field in self._errors else "record"
            self._show_errors({field: str(error)})
        else:
            self._show_errors({"record": f"The final state could not be saved: {error}"})

    def _show_errors(self, errors: dict[str, str]) -> None:
        edits: dict[str, QWidget] = {
            "status": self._status,
            "note": self._note,
            "invoice_id": self._invoice,
        }
        for name, label in self._errors.items():
            message = errors.get(name)
            if name in edits:
                style.show_field_error(edits[name], label, message)
            else:
                label.setText(message or "")
                label.setVisible(bool(message))
        for name in FIELDS:
            if name in errors and name in edits:
                edits[name].setFocus()
                break
