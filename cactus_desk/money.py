"""Currencies and money: integer minor units on the wire, ``Decimal`` at the edges, never float."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache

from cactus_desk.resources import load_json

#: The largest amount accepted, in minor units: beyond it JSON numbers stop being exact.
MAX_MINOR = 2**53

#: The most decimals a profile may give a currency (the data file keeps to 0-4).
MAX_DECIMALS = 8

#: Longer input than this is refused before any parsing (no valid amount comes close).
MAX_AMOUNT_TEXT = 64

# Characters a person may use to group thousands: space, no-break, figure, thin, narrow no-break.
_GROUP_SPACES = {" ", "\u00a0", "\u2007", "\u2009", "\u202f"}
_MINUS_SIGNS = {"-", "\u2212", "\u2013"}
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_AMOUNT_CHARS = frozenset("0123456789 .,")
# Letters that are typed for a digit by mistake: named in the message rather than dropped.
_LOOKALIKES = {"O": "0", "o": "0", "l": "1", "I": "1", "S": "5", "B": "8"}
_PLAIN_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_EXPONENT = re.compile(r"[0-9.,]*[0-9]e[+-]?[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Currency:
    """A currency the gateway accepts and how many decimals its minor unit has."""

    code: str
    exponent: int
    name: str
    # False where Cactus does not document how many minor units the currency has on the wire.
    documented: bool = True


class UnknownCurrencyError(ValueError):
    """A currency code that is not in ``resources/currencies.json``."""


class AmountError(ValueError):
    """An amount a person typed that cannot be used; ``message`` says why, plainly."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@cache
def _load() -> dict[str, Currency]:
    data = load_json("currencies.json")
    result: dict[str, Currency] = {}
    for index, entry in enumerate(data["currencies"]):
        try:
            code, exponent, name = entry["code"], entry["exponent"], entry["name"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"currencies.json: currencies[{index}] is malformed: {exc}") from exc
        if not isinstance(exponent, int) or isinstance(exponent, bool) or not 0 <= exponent <= 4:
            raise ValueError(f"currencies.json: {code}: exponent must be an integer 0-4")
        if code in result:
            raise ValueError(f"currencies.json: {code} is listed twice")
        documented = entry.get("documented", True)
        if not isinstance(documented, bool):
            raise ValueError(f"currencies.json: {code}: documented must be true or false")
        result[code] = Currency(
            code=str(code), exponent=exponent, name=str(name), documented=documented
        )
    return result


def currencies() -> dict[str, Currency]:
    """Return every known currency by code, in the order of the data file."""
    return dict(_load())


def find_currency(code: str) -> Currency | None:
    """The currency with this code, or None: ``currencies().get(code)`` without the copy."""
    return _load().get(code)


def currency(code: str) -> Currency:
    """Return the currency with this code; raise ``UnknownCurrencyError`` if there is none."""
    try:
        return _load()[code]
    except (KeyError, TypeError):
        raise UnknownCurrencyError(f"Unknown currency: {code!r}") from None


def with_decimals(value: Currency | str, decimals: Mapping[str, int] | None) -> Currency:
    """The currency with a profile's number of decimals when ``decimals`` overrides it."""
    cur = _resolve(value)
    places = (decimals or {}).get(cur.code)
    if places is None or places == cur.exponent:
        return cur
    if isinstance(places, bool) or not 0 <= places <= MAX_DECIMALS:
        raise ValueError(f"{cur.code}: decimals must be a whole number 0-{MAX_DECIMALS}")
    return replace(cur, exponent=places)


def _resolve(value: Currency | str) -> Currency:
    return value if isinstance(value, Currency) else currency(value)


def _example(cur: Currency) -> str:
    return "1500" if cur.exponent == 0 else "1500." + "5".ljust(cur.exponent, "0")


def _not_a_number(cur: Currency) -> AmountError:
    return AmountError(f"Enter a number, e.g. {_example(cur)}.")


def _without_code(text: str, cur: Currency) -> str:
    """``text`` without a leading or trailing code of ``cur`` ("1 500.50 RUB" as pasted)."""
    words = text.split(" ")
    for index in (-1, 0):
        word = words[index]
        if len(words) > 1 and word.isascii() and word.isalpha():
            if word.upper() == cur.code:
                del words[index]
                return " ".join(words).strip()
            if word.upper() in _load():
                other = word.upper()
                raise AmountError(f"That amount is in {other}; this payout is in {cur.code}.")
    return text


def _stray_character(ch: str, cur: Currency) -> AmountError:
    """Name the character that is not part of an amount (a letter O is not a zero)."""
    shown = repr(ch) if not ch.isprintable() or ch.isspace() else f"“{ch}”"
    lookalike = _LOOKALIKES.get(ch)
    if lookalike:
        return AmountError(f"Enter a number: {shown} is a letter, not the digit {lookalike}.")
    return AmountError(
        f"Enter a number: {shown} cannot be part of an amount (e.g. {_example(cur)})."
    )


def _check_grouping(int_part: str, group_char: str | None, cur: Currency) -> str:
    """Return the digits of ``int_part`` after checking its thousands grouping."""
    seps = {ch for ch in int_part if not ch.isascii() or not ch.isdigit()}
    if not seps:
        return int_part
    if len(seps) > 1 or (group_char is not None and seps != {group_char} and seps != {" "}):
        raise AmountError(f"Check the digit grouping, or write the amount as {_example(cur)}.")
    groups = int_part.split(seps.pop())
    first, rest = groups[0], groups[1:]
    if not (1 <= len(first) <= 3 and _DIGITS.fullmatch(first)) or any(
        len(group) != 3 or not _DIGITS.fullmatch(group) for group in rest
    ):
        raise AmountError(
            f"Check the digit grouping (groups of three), or write the amount as {_example(cur)}."
        )
    return "".join(groups)


def _split(text: str, cur: Currency) -> tuple[str, str]:
    """Split cleaned text into its integer digits and fraction digits."""
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        decimal_sep = "." if text.rfind(".") > text.rfind(",") else ","
        group_char: str | None = "," if decimal_sep == "." else "."
        if text.count(decimal_sep) != 1:
            raise AmountError(f"Use one decimal separator, e.g. {_example(cur)}.")
    elif dots > 1 or commas > 1:
        decimal_sep, group_char = None, "." if dots else ","
    elif dots or commas:
        decimal_sep, group_char = ("." if dots else ","), None
    else:
        decimal_sep, group_char = None, None

    if decimal_sep is None:
        return _check_grouping(text, group_char, cur), ""

    int_part, frac = text.split(decimal_sep)
    if not int_part or not frac or not _DIGITS.fullmatch(frac):
        raise _not_a_number(cur)
    if group_char is None and " " not in int_part and len(frac) == 3:
        ambiguous = 1 <= len(int_part) <= 3 and _DIGITS.fullmatch(int_part) and int_part[0] != "0"
        if ambiguous and cur.exponent == 0:
            # A currency without decimals: "1.500" can only be thousands (how VND is written).
            return int_part + frac, ""
        if ambiguous:
            whole = int_part + frac
            value = Decimal(f"{int_part}.{frac}")
            step = Decimal(1).scaleb(-cur.exponent)
            if value == value.quantize(step):
                hint = f"write {whole} or {value.quantize(step)}"
            else:
                hint = (
                    f"write {whole} for the whole number ({cur.code} has {cur.exponent} decimals)"
                )
            raise AmountError(f'"{text}" is ambiguous: {hint}.')
    return _check_grouping(int_part, group_char, cur), frac


def parse_amount(text: str, currency: Currency | str) -> int:
    """Parse what a person typed, in major units, into integer minor units.

    Accepts ``1500.50``, ``1 500,50``, ``1,500.50`` and no-break or thin spaces between
    thousands. Raises ``AmountError`` for anything that is not a positive, exact amount.
    """
    cur = _resolve(currency)
    if not isinstance(text, str):
        raise AmountError("Enter an amount.")
    plain = _PLAIN_AMOUNT.fullmatch(text) if len(text) <= MAX_AMOUNT_TEXT else None
    if plain is not None and len(plain.group(2) or "") != 3:
        # Digits with at most one dot and no grouping: every check below would pass it as is
        # (three decimals may be a thousands group, so those take the long way).
        int_digits, frac = plain.group(1), plain.group(2) or ""
    else:
        int_digits, frac = _amount_digits(text, cur)
    if len(frac) > cur.exponent:
        if cur.exponent == 0:
            raise AmountError(f"{cur.code} has no minor units: enter a whole number.")
        raise AmountError(f"{cur.code} allows at most {cur.exponent} decimals.")
    minor = int(int_digits + frac.ljust(cur.exponent, "0"))
    if minor == 0:
        raise AmountError("The amount must be more than zero.")
    if minor > MAX_MINOR:
        raise AmountError(
            f"That amount is too large (at most {format_major(MAX_MINOR, cur)} {cur.code})."
        )
    return minor


def _amount_digits(text: str, cur: Currency) -> tuple[str, str]:
    """The integer and fraction digits of what a person typed, every form checked."""
    if len(text) > MAX_AMOUNT_TEXT:
        raise AmountError("That is far too long to be an amount.")
    cleaned = "".join(" " if ch in _GROUP_SPACES else ch for ch in text).strip()
    if not cleaned:
        raise AmountError("Enter an amount.")
    if cleaned[0] in _MINUS_SIGNS:
        raise AmountError("The amount must be more than zero.")
    if cleaned[0] == "+":
        raise AmountError("Write the amount without a + sign.")
    lowered = cleaned.lower()
    if any(word in lowered for word in ("nan", "inf")):
        raise AmountError(f"That is not a number. Enter an amount, e.g. {_example(cur)}.")
    if _EXPONENT.fullmatch(lowered):
        raise AmountError("Write the amount in full, without an exponent (e.g. 1500, not 1.5e3).")
    cleaned = _without_code(cleaned, cur)
    stray = next((ch for ch in cleaned if not (ch.isascii() and ch in _AMOUNT_CHARS)), None)
    if stray is not None:
        raise _stray_character(stray, cur)

    return _split(cleaned, cur)


def to_major(minor: int, currency: Currency | str) -> Decimal:
    """Return ``minor`` units as an exact ``Decimal`` in major units (``150050`` -> ``1500.50``)."""
    cur = _resolve(currency)
    return Decimal(int(minor)).scaleb(-cur.exponent)


def format_major(minor: int, currency: Currency | str, *, grouping: bool = True) -> str:
    """Format minor units for people: ``150050`` USD -> ``"1 500.50"`` (plain-space groups)."""
    cur = _resolve(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(int(minor)), 10**cur.exponent)
    digits = str(whole)
    if grouping:
        head = len(digits) % 3 or 3
        digits = " ".join(
            [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
        )
    if cur.exponent:
        return f"{sign}{digits}.{frac:0{cur.exponent}d}"
    return f"{sign}{digits}"
