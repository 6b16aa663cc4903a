"""An amount field in major units that keeps exactly what was typed and reads it exactly.

Nothing typed or pasted is dropped, filtered or cut short: dropping characters is how "1O00"
once became 100 and "1.2e3" became 1.23. The text is read by
``cactus_desk.money.parse_amount``, the one parser the whole product uses, so a letter, an
exponent, a fraction the currency cannot hold or an ambiguous ``1,500`` gets a message at the
field instead of being silently clamped or reinterpreted.
"""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLineEdit, QWidget

from cactus_desk.money import AmountError, Currency, currency, parse_amount, to_major

MINOR_UNIT_NAMES = {
    "RUB": "kopecks",
    "UAH": "kopiykas",
    "USD": "cents",
    "EUR": "cents",
    "AZN": "qapiks",
    "IDR": "sen",
    "KZT": "tiyn",
}


def minor_unit_name(code: str, decimals: int | None = None) -> str:
    """What one minor unit of ``code`` is called, or an empty string when it has no common name.

    With ``decimals`` other than the currency's usual number (a profile's override) the minor
    unit is not the coin the name stands for, so there is no name.
    """
    if decimals is not None:
        try:
            if decimals != currency(code).exponent:
                return ""
        except ValueError:
            return ""
    return MINOR_UNIT_NAMES.get(code.upper(), "")


class AmountEdit(QLineEdit):
    """A line edit for an amount in major units of one currency."""

    amountChanged = Signal(object)  # Decimal | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._currency: Currency = currency("USD")
        # No validator, mask or length limit: each of them would change a paste silently.
        self.textChanged.connect(self._text_changed)
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

    def _text_changed(self, _text: str) -> None:
        self.amountChanged.emit(self.amount())
