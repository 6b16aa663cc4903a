"""The last look before a payout leaves: exactly what will be sent, and where."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.ui import style
from cactus_desk.ui.widgets.amount_edit import minor_unit_name


@dataclass(frozen=True)
class EarlierPayout:
    """A recent payout the one being confirmed would repeat, as the warning lists it."""

    when: str  # local time, e.g. "2025-01-31 14:05"
    request_id: str
    state: str  # e.g. "Accepted"


@dataclass(frozen=True)
class ConfirmDetails:
    """What the confirm dialog shows; recipient values must already be masked."""

    profile_name: str
    environment: str  # "live" | "sandbox"
    amount_major: str  # e.g. "1 500.50"
    amount_minor: int
    currency: str
    method_label: str
    method_wire: str
    site_login: str
    request_id: str
    recipient: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[EarlierPayout] = field(default_factory=list)
    decimals: int | None = None  # the profile's decimals for the currency; None: the default
    # A first LIVE payout in a currency whose minor units Cactus does not document.
    confirm_units: bool = False
    balance_warning: str = ""  # e.g. "Above the available balance (10.00 RUB); …"

    def minor_text(self) -> str:
        """``"150050 minor units (kopecks)"``."""
        unit = minor_unit_name(self.currency, self.decimals)
        return f"{self.amount_minor} minor units" + (f" ({unit})" if unit else "")

    def units_text(self) -> str:
        """The sentence the person ticks before the first LIVE payout in such a currency."""
        places = "no decimals" if self.decimals == 0 else f"{self.decimals} decimals"
        return (
            f"I confirm {self.amount_minor} minor units go on the wire "
            f"({self.amount_major} {self.currency}, {self.currency} with {places})"
        )


def _value(text: str, *, bold: bool = False) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    # Only long values wrap: a wrapping label asks for a narrow column and breaks short ones.
    label.setWordWrap(len(text) > 60)
    if bold:
        label.setStyleSheet("font-weight: bold; font-size: 12pt;")
    return label


class ConfirmDialog(QDialog):
    """Asks the person to confirm one payout; accepted only by the "Send payout" button."""

    def __init__(self, details: ConfirmDetails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confirmDialog")
        self.setWindowTitle("Confirm payout")
        self.setModal(True)
        self.details = details
        live = details.environment == "live"

        banner = style.environment_banner(details.environment)
        banner.setStyleSheet(
            style.environment_style(details.environment, size_pt=12 if live else 10)
        )
        if live:
            banner.setText("LIVE: this sends real money")

        heading = QLabel("Check every detail. Nothing is sent until you press “Send payout”.")
        self._heading = heading
        heading.setWordWrap(True)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setHorizontalSpacing(14)
        form.addRow("Amount:", _value(f"{details.amount_major} {details.currency}", bold=True))
        form.addRow("", _value(f"= {details.minor_text()} on the wire"))
        form.addRow("Currency:", _value(details.currency))
        form.addRow("Method:", _value(f"{details.method_label} ({details.method_wire})"))
        form.addRow("Site login:", _value(details.site_login))
        for label, value in details.recipient:
            form.addRow(f"{label}:", _value(value))
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        form.addRow(line)
        form.addRow("Profile:", _value(details.profile_name))
        environment = _value("LIVE" if live else "SANDBOX", bold=live)
        if live:
            environment.setStyleSheet(f"color: {style.LIVE_BG}; font-weight: bold;")
        form.addRow("Environment:", environment)
        form.addRow("Request id:", _value(details.request_id))

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Send payout")
        ok.setObjectName("confirmSendButton")
        ok.setAccessibleName("Send payout")
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("confirmCancelButton")
        if live:
            # With real money Enter must not send by reflex: the person clicks "Send payout".
            ok.setAutoDefault(False)
            ok.setDefault(False)
            cancel.setDefault(True)
            ok.setStyleSheet(
                f"QPushButton {{ background: {style.LIVE_BG}; color: white; font-weight: bold; "
                "padding: 4px 12px; }"
                f"QPushButton:disabled {{ background: {style.DISABLED_BG}; "
                f"color: {style.DISABLED_FG}; font-weight: normal; }}"
            )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.override_check: QCheckBox | None = None
        self.units_check: QCheckBox | None = None
        self._required: list[QCheckBox] = []
        warning = self._duplicate_warning(details.duplicates) if details.duplicates else None
        balance = self._balance_warning(details.balance_warning)
        units = self._units_box(details) if details.confirm_units else None

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(banner)
        layout.addWidget(heading)
        if warning is not None:
            layout.addWidget(warning)
        if details.balance_warning:
            layout.addWidget(balance)
        layout.addLayout(form)
        if units is not None:
            layout.addWidget(units)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

    def showEvent(self, event: QShowEvent) -> None:
        # Wrapped warnings need more height at the dialog's width than its first guess.
        super().showEvent(event)
        layout = self.layout()
        assert layout is not None  # set in __init__
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def submit_for_approval(self) -> None:
        """The team's policy holds this payout: confirming submits it, nothing is sent yet."""
        button = self.send_button()
        button.setText("Submit for approval")
        button.setAccessibleName("Submit for approval")
        self._heading.setText(
            "Check every detail. This payout needs a team approver's approval: pressing "
            "“Submit for approval” records it as awaiting approval and sends nothing yet."
        )

    def send_button(self) -> QPushButton:
        """The "Send payout" button."""
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def accept(self) -> None:
        # A repeat, or unconfirmed minor units, go only with their box ticked, whatever
        # pressed "Send payout".
        if all(check.isChecked() for check in self._required):
            super().accept()

    def _require(self, check: QCheckBox) -> None:
        self._required.append(check)
        check.toggled.connect(self._update_send)
        self._update_send()

    def _update_send(self) -> None:
        self.send_button().setEnabled(all(check.isChecked() for check in self._required))

    @staticmethod
    def _balance_warning(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("confirmBalanceWarning")
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setWordWrap(True)
        label.setStyleSheet(
            f"QLabel {{ background: {style.UNKNOWN_BG}; color: {style.UNKNOWN_FG}; "
            f"border: 1px solid {style.UNKNOWN_FG}; border-radius: 4px; padding: 6px; }}"
        )
        return label

    def _units_box(self, details: ConfirmDetails) -> QFrame:
        box = QFrame()
        box.setObjectName("unitsConfirmation")
        box.setStyleSheet(
            f"#unitsConfirmation {{ background: {style.UNKNOWN_BG}; border: 1px solid "
            f"{style.UNKNOWN_FG}; border-radius: 4px; }} #unitsConfirmation QLabel, "
            f"#unitsConfirmation QCheckBox {{ color: {style.UNKNOWN_FG}; }}"
        )
        text = QLabel(
            f"Cactus does not document how many decimals {details.currency} has on the wire. "
            f"This is the first LIVE payout in {details.currency} from this profile: check the "
            "integer below with Cactus (the profile's decimals can be changed in File › "
            "Profiles…). You are asked once per profile."
        )
        text.setWordWrap(True)
        self.units_check = QCheckBox(details.units_text())
        self.units_check.setObjectName("unitsConfirmCheck")
        inner = QVBoxLayout(box)
        inner.addWidget(text)
        inner.addWidget(self.units_check)
        self._require(self.units_check)
        return box

    def _duplicate_warning(self, earlier: list[EarlierPayout]) -> QFrame:
        box = QFrame()
        box.setObjectName("duplicateWarning")
        box.setStyleSheet(
            f"#duplicateWarning {{ background: {style.UNKNOWN_BG}; border: 1px solid "
            f"{style.UNKNOWN_FG}; border-radius: 4px; }} #duplicateWarning QLabel, "
            f"#duplicateWarning QCheckBox {{ color: {style.UNKNOWN_FG}; }}"
        )
        count = "a payout" if len(earlier) == 1 else f"{len(earlier)} payouts"
        title = QLabel(f"Possible duplicate: this repeats {count} of the last 24 hours")
        title.setStyleSheet("font-weight: bold;")
        text = QLabel(
            "Same site login, recipient, amount and currency. If the earlier one was meant, "
            "do not send this one: cancel and check it in the history."
        )
        text.setWordWrap(True)
        rows = [f"{p.when} · {p.request_id} · {p.state}" for p in earlier[:5]]
        if len(earlier) > 5:
            rows.append(f"… and {len(earlier) - 5} more")
        listing = _value("\n".join(rows))
        listing.setObjectName("duplicateList")
        self.override_check = QCheckBox("Send anyway: this is not a duplicate")
        self.override_check.setObjectName("duplicateOverrideCheck")
        inner = QVBoxLayout(box)
        for widget in (title, text, listing, self.override_check):
            inner.addWidget(widget)
        self._require(self.override_check)
        return box
