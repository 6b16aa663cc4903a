"""Masking card numbers in anything the console stores, logs or shows.

A card number is kept as first 6 / last 4; identifiers and amounts are never masked (they are
what reconciliation needs). Stdlib only, so every layer can use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# Keys whose values are identifiers or amounts the gateway needs for reconciliation; a long
# digit run in them is an id, not a card, and masking it would lose the payout's trail.
_IDENTIFIER_KEYS = frozenset(
    {"request_id", "invoice_id", "merchant_id", "site_id", "amount", "received_amount"}
)
# What people and systems put between a card's digits: spaces (also no-break and thin ones),
# dashes of every kind, dots, underscores, slashes; up to three in a row (" - ").
CARD_SEPARATORS = "[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000._/\\-\u2010-\u2015\u2212]"
_DIGIT_RUN = re.compile(rf"(?<!\d)\d(?:{CARD_SEPARATORS}{{0,3}}\d)*")
_DIGITS = re.compile(r"\d+")
_CARD_KEYS = frozenset({"card_number", "card", "pan"})


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _masked(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _mask_run(text: str, *, luhn: bool) -> str:
    """Mask the card numbers in one run of digit groups; a card may be only part of the run
    (``4111 1111 1111 1111 / 12.50``), so every span of whole groups is tried, longest first."""
    groups = [(m.start(), m.end()) for m in _DIGITS.finditer(text)]
    if sum(end - start for start, end in groups) < 12:
        return text
    pieces: list[str] = []
    done = 0
    index = 0
    while index < len(groups):
        best = None
        count = 0
        for last in range(index, len(groups)):
            count += groups[last][1] - groups[last][0]
            if count > 19:
                break
            if count >= 12:
                digits = "".join(text[a:b] for a, b in groups[index : last + 1])
                if not luhn or _luhn_valid(digits):
                    best = (last, digits)
        if best is None:
            index += 1
            continue
        last, digits = best
        pieces.append(text[done : groups[index][0]])
        pieces.append(_masked(digits))
        done = groups[last][1]
        index = last + 1
    pieces.append(text[done:])
    return "".join(pieces)


def scrub_card_numbers(text: str, *, luhn: bool = True) -> str:
    """Mask every 12–19 digit Luhn-valid number as first 6 / last 4, whatever separates its
    digits (spaces, dashes, dots, slashes, underscores); without ``luhn``, every such number."""
    if sum(map(str.isdecimal, text)) < 12:  # \d is str.isdecimal: too few digits for a card
        return text
    return _DIGIT_RUN.sub(lambda match: _mask_run(match.group(0), luhn=luhn), text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_card_numbers(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        text = str(value)
        masked = scrub_card_numbers(text)
        return value if masked == text else masked
    if isinstance(value, Mapping):
        return _scrub_mapping(value)
    if isinstance(value, list | tuple):
        return [_scrub_value(item) for item in value]
    return value


def _scrub_item(key: Any, value: Any) -> Any:
    if key in _IDENTIFIER_KEYS:
        return value
    if key in _CARD_KEYS and isinstance(value, str):
        return scrub_card_numbers(value, luhn=False)  # a card field: masked even if mistyped
    return _scrub_value(value)


def _scrub_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): _scrub_item(key, value) for key, value in data.items()}


def masked_json(data: Mapping[str, Any]) -> str:
    """``data`` as JSON text with every card number in it masked (keys sorted)."""
    return json.dumps(_scrub_mapping(data), ensure_ascii=False, sort_keys=True, default=str)


def scrub_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with card numbers masked in every value, nested ones included."""
    return _scrub_mapping(data)
