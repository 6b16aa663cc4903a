"""An amount field in major units that filters keystrokes and reads the value exactly.

Keystrokes and pastes are reduced to what an amount can contain (digits, a decimal point or
comma, spaces between thousands); nothing else is rewritten. The value is read by
``cactus_desk.money.parse_amount``, the one parser the whole product uses, so a fraction the
currency cannot hold or an ambiguous ``1,500`` gets a message at the field instead of being
silently clamped or reinterpreted: an amount is never changed behind the person's back.
"""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLineEdit, QWidget

from cactus_desk.money import AmountError, Currency, currency, parse_amount, to_major

#: Characters an amount may contain while it is typed: digits, separators, thousands spaces.
ALLOWED = frozenset("0123456789., \u00a0\u202f\u2009")
#: Longer than any amount the gateway accepts (2^53 minor units), short enough to stay readable.
MAX_LENGTH = 32

MINOR_UNIT_NAMES = {
    "RUB": "kopecks",
    "UAH": "kopiykas",
    "USD": "cents",
    "EUR": "cents",
    "AZN": "qapiks",
    "IDR": "sen",
    "KZT": "tiyn",
}


def minor_unit_name(code: str) -> str:
    """What one minor unit of ``code`` is called, or an empty string when it has no common name."""
    return MINOR_UNIT_NAMES.get(code.upper(), "")


def filter_amount_text(text: str) -> str:
    """Keep only the characters an amount can contain, at most ``MAX_LENGTH`` of them."""
    return "".join(ch for ch in text if ch in ALLOWED)[:MAX_LENGTH]


class AmountEdit(QLineEdit):
    """A line edit for an amount in major units of one currency."""

    amountChanged = Signal(object)  # Decimal | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._currency: Currency = currency("USD")
        self.setMaxLength(MAX_LENGTH)
        self.textChanged.connect(self._filter)
        self._update_placeholder()

    def currency(self) -> Currency:
        """The currency the amount is read in."""
        return self._currency

    def set_currency(self, value: Currency | str) -> None:
        """Read the amount in ``value`` from now on (its exponent decides the decimals)."""
        self._currency = currency(value) if isinstance(value, str) else value
        self._update_placeholder()
        self.amountChanged.emit(self.amount())

    def minor_units(self) -> int | None:
        """The integer of minor units that will be sent, or None while the text is not valid."""
        try:
            return parse_amount(self.text(), self._currency)
        except AmountError:
            return None

    def error(self) -> str | None:
        """Why the text is not a valid amount, or None when it is (or the field is empty)."""
        if not self.text().strip():
            return None
        try:
            parse_amount(self.text(), self._currency)
        except AmountError as exc:
            return exc.message
        return None

    def amount(self) -> Decimal | None:
        """The amount in major units, or None while the text is not a valid amount."""
        minor = self.minor_units()
        return None if minor is None else to_major(minor, self._currency)

    def set_amount(self, value: Decimal | None) -> None:
        """Show ``value`` (major units); None clears the field."""
        self.setText("" if value is None else format(value, "f"))

    def _update_placeholder(self) -> None:
        exponent = self._currency.exponent
        self.setPlaceholderText("1500" if exponent == 0 else "1500.5" + "0" * (exponent - 1))

    def _filter(self, text: str) -> None:
        clean = filter_amount_text(text)
        if clean != text:
            cursor = self.cursorPosition()
            removed = len(text) - len(clean)
            self.blockSignals(True)
            self.setText(clean)
            self.blockSignals(False)
            self.setCursorPosition(max(0, min(len(clean), cursor - removed)))
        self.amountChanged.emit(self.amount())
