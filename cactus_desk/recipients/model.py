"""One saved recipient, and the card rules that keep a full card number out of it.

A card recipient keeps only the masked number (first 6 / last 4) and its last four digits; at
payout time the person types the full number again and it must end in those four digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cactus_desk.catalog import UnknownMethodError, load_catalog
from cactus_desk.payouts.draft import mask_card

LABEL_MAX = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RecipientError(ValueError):
    """A recipient that cannot be saved as given (a plain message for the person)."""


def card_wires(method: str) -> frozenset[str]:
    """The fields of ``method`` that hold a card number (never stored in full)."""
    try:
        spec = load_catalog().method(method)
    except UnknownMethodError:
        return frozenset({"card_number"})
    return frozenset(f.wire for f in spec.fields if f.check == "card_number")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch in "0123456789")


def check_label(label: str) -> str:
    """The label trimmed; raises ``RecipientError`` for an empty, long or odd one."""
    text = label.strip()
    if not text:
        raise RecipientError("Give the recipient a label, e.g. “Alice — Sber card”.")
    if len(text) > LABEL_MAX:
        raise RecipientError(f"A label is at most {LABEL_MAX} characters.")
    if _CONTROL.search(text):
        raise RecipientError("A label cannot hold control characters.")
    return text


@dataclass(frozen=True)
class SavedRecipient:
    """A recipient as kept: method, currency, site login and the method's fields, with any
    card number masked; ``card_last4`` is what a full number typed later must end with."""

    label: str
    method: str
    currency: str
    site_login: str
    fields: dict[str, str | bool] = field(default_factory=dict)
    card_last4: str | None = None

    @property
    def key(self) -> str:
        """What makes two labels the same one (case does not count)."""
        return self.label.casefold()

    def to_json(self) -> dict[str, Any]:
        """The recipient as a JSON object."""
        return {
            "label": self.label,
            "method": self.method,
            "currency": self.currency,
            "site_login": self.site_login,
            "fields": dict(self.fields),
            "card_last4": self.card_last4,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SavedRecipient:
        """Read one back; raises ``RecipientError`` for a malformed entry or a full card."""
        try:
            fields = data["fields"]
            last4 = data.get("card_last4")
            if not isinstance(fields, dict) or not all(
                isinstance(k, str) and isinstance(v, str | bool) for k, v in fields.items()
            ):
                raise RecipientError("fields are not a set of texts and flags")
            for name in ("label", "method", "currency", "site_login"):
                if not isinstance(data[name], str):
                    raise RecipientError(f"{name} is not a text")
            if last4 is not None and not (isinstance(last4, str) and re.fullmatch(r"\d{4}", last4)):
                raise RecipientError("card_last4 is not four digits")
        except KeyError as exc:
            raise RecipientError(f"{exc.args[0]} is missing") from None
        # Whatever the file says, a card number is kept masked.
        return new_recipient(
            data["label"], data["method"], data["currency"], data["site_login"], fields
        )


def new_recipient(
    label: str,
    method: str,
    currency: str,
    site_login: str,
    fields: Mapping[str, str | bool],
) -> SavedRecipient:
    """The recipient of a payout as it may be kept: card numbers masked, their last four
    remembered. ``fields`` may hold the full number (the form) or a masked one (the history)."""
    cards = card_wires(method)
    kept: dict[str, str | bool] = {}
    last4: str | None = None
    for wire, value in fields.items():
        if wire in cards and isinstance(value, str):
            digits = _digits(value)
            if not value.strip():
                continue
            masked = mask_card(value) if "*" not in value else value
            if len(digits) >= 4:
                last4 = digits[-4:]
            kept[wire] = masked
        else:
            kept[wire] = value
    return SavedRecipient(
        label=check_label(label),
        method=method,
        currency=currency,
        site_login=site_login.strip(),
        fields=kept,
        card_last4=last4,
    )


def card_mismatch(expected_last4: str, entered: str) -> str | None:
    """The message for a card number typed at payout time that does not end in
    ``expected_last4``, or None when it does (or nothing was typed yet)."""
    digits = _digits(entered)
    if not digits:
        return None
    if digits[-4:] != expected_last4:
        return (
            f"This saved recipient's card ends in {expected_last4}; the number typed ends in "
            f"{digits[-4:]}. Check the card, or pick another recipient."
        )
    return None
