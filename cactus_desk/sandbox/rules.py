"""What the sandbox gateway accepts, taken from the gateway's own payout page.

Sandbox-private on purpose: the console has its own catalog, checks and currency table, and
the sandbox must not share them, or a rule both got wrong would pass every test. The payout
page (the seed page) lists the currencies and methods and, per method, which
``additional_fields`` are required or optional, all as strings; nothing more is checked here
because nothing more is documented (no formats, no per-currency method lists).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The payout page's currency list (its examples use KZT, which the list does not have).
#: Decimal places: RUB is in kopecks per the page; the others follow ISO 4217. USDT is no ISO
#: currency and the docs give no convention: the sandbox counts it in cents, and a test or a
#: standalone run can choose otherwise (``SandboxGateway(exponents=...)``).
EXPONENTS: Mapping[str, int] = {
    "USD": 2,
    "EUR": 2,
    "RUB": 2,
    "UAH": 2,
    "USDT": 2,
    "IDR": 2,
    "AZN": 2,
    "VND": 0,
}

#: Invoice statuses the sandbox uses: 3 in the payout answer ("Payout initialized"), then 4 or
#: 5 in the callback (the 1-7 table of the gateway's sister products, cactus-api.md §4).
STATUS_PROCESSING = 3
STATUS_SUCCESS = 4
STATUS_DECLINE = 5


@dataclass(frozen=True)
class MethodRule:
    """One payout method's ``additional_fields``: which must be there, which may."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    @property
    def allowed(self) -> frozenset[str]:
        """Every field name the method takes."""
        return self.required | self.optional


def _rule(required: tuple[str, ...], optional: tuple[str, ...] = ()) -> MethodRule:
    return MethodRule(frozenset(required), frozenset(optional))


_NO_FIELDS = _rule(())
_PHONE_ONLY = _rule(("phone_number",))

#: The payout page's method list ("Available values") with the fields it gives for each, and
#: the four methods whose payout fields the same page documents although its list omits them
#: (skrill, wise, papara, PIX). "Other payment methods do not require additional fields."
#: The page writes the MTS fields under "mts"; the method value it lists is "MTS".
METHODS: Mapping[str, MethodRule] = {
    "card": _rule(("card_number",), ("bank_name", "card_holder", "bank_option", "expiry date")),
    "sbp": _rule(("phone_holder", "phone_number"), ("bank_name",)),
    "WalletM10": _PHONE_ONLY,
    "localbanks": _rule(("account_number",), ("bank_name", "account_holder")),
    "binance": _NO_FIELDS,
    "cash": _rule(("address", "username", "messenger", "verification_code"), ("asap", "time")),
    "MTS": _PHONE_ONLY,
    "sbp_qr": _NO_FIELDS,
    "Emanat": _PHONE_ONLY,
    "skrill": _rule(("skrill_account", "skrill_holder")),
    "wise": _rule(("wise_tag", "wise_holder")),
    "papara": _rule(("papara_account", "papara_holder", "phone_number")),
    "PIX": _rule(("phone_number", "account_holder", "pix_transfer_key")),
}

#: Fields whose value is a card number: the sandbox keeps only a masked copy.
CARD_NUMBER_FIELDS = frozenset({"card_number"})
