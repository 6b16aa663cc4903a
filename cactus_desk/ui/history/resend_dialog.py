"""The confirmed "Send again with the same request ID" of a payout in doubt (UNKNOWN, or
refused but unverified).

The dialog explains the risk, shows exactly what will be sent, asks again for a card number
(only first 6 / last 4 were stored, and the entry must match them) and wants the request ID
typed before its button works. The resend then goes through the window's ``SendController``
(the one send path), on a worker.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.catalog import UnknownMethodError, load_catalog
from cactus_desk.history.types import PayoutRecord
from cactus_desk.money import UnknownCurrencyError, format_major
from cactus_desk.payouts.draft import mask_card
from cactus_desk.payouts.recovery import masked_fields
from cactus_desk.payouts.send import SendCode, SendResult
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile
from cactus_desk.ui import style
from cactus_desk.ui.payout.send_controller import SendController, SendJob

# Results after which nothing happened to the record: the dialog stays open to say why.
_STAYS_OPEN = frozenset(
    {SendCode.RESEND_REFUSED, SendCode.HISTORY_UNAVAILABLE, SendCode.BUSY, SendCode.FAILED}
)


def _field_label(record: PayoutRecord, wire: str) -> str:
    try:
        return load_catalog().method(record.method).field(wire).label
    except (UnknownMethodError, KeyError):
        return wire.replace("_", " ").capitalize()


def _method_label(wire: str) -> str:
    try:
        return f"{load_catalog().method(wire).label} ({wire})"
    except UnknownMethodError:
        return wire


def _plain(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ResendDialog(QDialog):
    """Confirms one resend and starts it through ``controller``. Emits ``resent(record_id,
    SendResult)`` when it ended (the dialog then closes); a refusal is shown in the dialog
    and nothing is sent."""

    resent = Signal(int, object)  # record id, SendResult

    def __init__(
        self,
        controller: SendController,
        record: PayoutRecord,
        profile: Profile,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("resendDialog")
        self.setWindowTitle("Send again with the same request ID")
        self.setModal(True)
        self.record = record
        self._controller = controller
        self._profile = profile
        self._busy = False
        controller.finished.connect(self._finished)
        live = record.environment == "live"

        banner = style.environment_banner(record.environment)
        if live:
            banner.setText("LIVE: this sends real money")
        doubt = (
            "its refusal could not be verified"
            if record.state is State.REFUSED_UNVERIFIED
            else "its outcome is unknown"
        )
        risk = _plain(
            f"This payout is in doubt ({doubt}): the gateway may already have created it. "
            f"Sending it again uses the same request ID, {record.request_id}. Cactus does not "
            "document how its gateway treats a request ID it has already seen: it may refuse "
            "the resend, or it may pay a second time. Only an accepted, verified answer settles "
            "the payout; any refusal leaves it Unknown. Check with Cactus first (merchant "
            "cabinet or support) that the payout does not exist."
        )
        risk.setObjectName("resendRisk")
        risk.setStyleSheet(f"QLabel {{ color: {style.UNKNOWN_FG}; }}")

        form = QFormLayout()
        form.setLabelAlignment(style.FORM_LABEL_ALIGNMENT)
        try:
            cur = profile.currency(record.currency)  # with the profile's decimals
            amount = f"{format_major(record.amount_minor, cur)} {record.currency}"
        except UnknownCurrencyError:
            amount = f"{record.amount_minor} minor units of {record.currency}"
        amount_label = _plain(amount)
        amount_label.setStyleSheet("font-weight: bold; font-size: 12pt;")
        form.addRow("Amount:", amount_label)
        form.addRow("Method:", _plain(_method_label(record.method)))
        form.addRow("Site login:", _plain(record.site_login))
        stored = record.request.get("additional_fields") or {}
        for wire, value in sorted(stored.items()):
            form.addRow(f"{_field_label(record, wire)}:", _plain(str(value)))
        env = "LIVE" if live else "SANDBOX"
        form.addRow("Profile:", _plain(f"{profile.name} ({env}) · {profile.base_url}"))
        form.addRow("Request ID:", _plain(record.request_id))
        form.addRow("Last answer:", _plain(record.message or "none recorded"))
        form.addRow("Sent so far:", _plain(f"{record.send_attempts} time(s)"))

        # Only first 6 / last 4 of a card number were kept: the person types it again.
        self._reentry: dict[str, QLineEdit] = {}
        self._masks = {wire: str(stored[wire]) for wire in masked_fields(record)}
        for wire, masked in self._masks.items():
            edit = QLineEdit()
            edit.setObjectName(f"resendField_{wire}")
            edit.setPlaceholderText(f"the full number, {masked}")
            edit.setAccessibleName(f"{_field_label(record, wire)} again")
            edit.textChanged.connect(self._refresh)
            self._reentry[wire] = edit
            form.addRow(f"{_field_label(record, wire)} again:", edit)

        self.confirm_edit = QLineEdit()
        self.confirm_edit.setObjectName("resendConfirmEdit")
        self.confirm_edit.setPlaceholderText(record.request_id)
        self.confirm_edit.setAccessibleName("Type the request ID to confirm")
        self.confirm_edit.textChanged.connect(self._refresh)
        form.addRow("Type the request ID to confirm:", self.confirm_edit)

        self.problem = _plain("")
        self.problem.setObjectName("resendProblem")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.send_button().setText("Send again")
        self.send_button().setObjectName("resendSendButton")
        self.send_button().setAutoDefault(False)
        self.send_button().setDefault(False)
        self.buttons.accepted.connect(self.send)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(banner)
        layout.addWidget(risk)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)
        self._refresh()

    def send_button(self) -> QPushButton:
        """The "Send again" button."""
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def field_edit(self, wire: str) -> QLineEdit:
        """The box where the masked field ``wire`` is typed again."""
        return self._reentry[wire]

    def problems(self) -> list[str]:
        """What still stops the resend, in plain words (empty when it may go)."""
        found = []
        for wire, edit in self._reentry.items():
            label = _field_label(self.record, wire).lower()
            if not edit.text().strip():
                found.append(f"Enter the full {label} again: only {self._masks[wire]} was kept.")
        found += self._mismatches()
        if self.confirm_edit.text().strip() != self.record.request_id:
            found.append(f"Type the request ID {self.record.request_id} to confirm.")
        return found

    def _mismatches(self) -> list[str]:
        found = []
        for wire, edit in self._reentry.items():
            value = "".join(edit.text().split()).replace("-", "")
            if value and mask_card(value) != self._masks[wire]:
                label = _field_label(self.record, wire).lower()
                found.append(f"The {label} does not match the one sent ({self._masks[wire]}).")
        return found

    def is_busy(self) -> bool:
        """True while the resend is in flight."""
        return self._busy

    def send(self) -> None:
        """Start the resend on a worker once every check passes."""
        if self._busy or self.problems():
            self._refresh()
            return
        reentered = {
            wire: "".join(edit.text().split()).replace("-", "")
            for wire, edit in self._reentry.items()
        }
        self._busy = True
        for edit in (*self._reentry.values(), self.confirm_edit):
            edit.setEnabled(False)
        self._show_problem(f"Sending {self.record.request_id} again…", error=False)
        self._refresh()
        refused = self._controller.resend(self.record, self._profile, reentered)
        if refused is not None:
            self._ended(refused)

    def reject(self) -> None:
        if not self._busy:  # a resend in flight gets its outcome recorded first
            super().reject()

    def _finished(self, job: SendJob, result: SendResult) -> None:
        if self._busy and job.resend_of == self.record.id:
            self._ended(result)

    def _ended(self, result: SendResult) -> None:
        self._busy = False
        if result.code in _STAYS_OPEN:
            for edit in (*self._reentry.values(), self.confirm_edit):
                edit.setEnabled(True)
            self._show_problem(result.message, error=True)
            self._refresh()
            return
        for edit in self._reentry.values():
            edit.clear()  # the full card number lives no longer than the send
        self.resent.emit(self.record.id, result)
        self.accept()

    def _show_problem(self, text: str, *, error: bool) -> None:
        self.problem.setText(text)
        colour = style.ERROR_FG if error else style.MUTED_FG
        self.problem.setStyleSheet(f"QLabel {{ color: {colour}; }}")

    def _refresh(self) -> None:
        if self._busy:
            self.send_button().setEnabled(False)
            return
        problems = self.problems()
        self.send_button().setEnabled(not problems)
        self.send_button().setToolTip("\n".join(problems))
        mismatches = self._mismatches()
        if mismatches or self.problem.property("mismatch"):
            self._show_problem(" ".join(mismatches), error=True)
        self.problem.setProperty("mismatch", bool(mismatches))
