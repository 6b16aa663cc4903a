"""An amount field in major units that filters keystrokes and clamps precision to the currency.

The idea is Electrum's ``AmountEdit``: whatever is typed or pasted is reduced to digits and one
decimal point (a comma counts as one), the fraction is cut to the currency's exponent, and the
value comes back as a ``Decimal``, never a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLineEdit, QWidget

# int64 minor units is what the store and the gateway can hold; 18 digits stays inside it.
MAX_MINOR_DIGITS = 18

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


def normalise_amount_text(text: str, exponent: int) -> str:
    """Keep digits and one decimal point, cut the fraction to ``exponent`` digits.

    With ``exponent`` 0 there is no point: a typed one is dropped, a pasted fraction too.
    """
    whole: list[str] = []
    fraction: list[str] = []
    seen_point = False
    for ch in text:
        if ch in ".,":
            seen_point = True
            continue
        if not ch.isdigit() or not ch.isascii():
            continue
        if seen_point:
            if len(fraction) < exponent:
                fraction.append(ch)
        elif len(whole) < MAX_MINOR_DIGITS - exponent:
            whole.append(ch)
    return "".join(whole) + ("." + "".join(fraction) if seen_point and exponent > 0 else "")


class AmountEdit(QLineEdit):
    """A line edit for an amount in major units of one currency."""

    amountChanged = Signal(object)  # Decimal | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._exponent = 2
        self.textChanged.connect(self._filter)

    def exponent(self) -> int:
        """Number of digits after the decimal point the currency allows."""
        return self._exponent

    def set_exponent(self, exponent: int) -> None:
        """Switch to a currency with ``exponent`` fraction digits, trimming what no longer fits."""
        self._exponent = exponent
        self.setPlaceholderText("1500" if exponent == 0 else "1500." + "5" + "0" * (exponent - 1))
        self._filter(self.text())

    def amount(self) -> Decimal | None:
        """The amount in major units, or None while the field holds no number."""
        text = self.text()
        if not text or text == ".":
            return None
        try:
            return Decimal(text)
        except InvalidOperation:  # unreachable after filtering; kept so bad text never raises
            return None

    def minor_units(self) -> int | None:
        """The amount as the integer of minor units that will be sent."""
        value = self.amount()
        if value is None:
            return None
        return int(value.scaleb(self._exponent))

    def set_amount(self, value: Decimal | None) -> None:
        """Show ``value`` (major units); None clears the field."""
        self.setText("" if value is None else format(value, "f"))

    def _filter(self, text: str) -> None:
        clean = normalise_amount_text(text, self._exponent)
        if clean != text:
            cursor = self.cursorPosition()
            removed = len(text) - len(clean)
            self.blockSignals(True)
            self.setText(clean)
            self.blockSignals(False)
            self.setCursorPosition(max(0, min(len(clean), cursor - removed)))
        self.amountChanged.emit(self.amount())
