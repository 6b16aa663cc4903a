"""Field checks for additional fields: each returns a message for the person, or None when valid.

Every check takes any string (unicode, control characters, megabytes) and answers with a
message; none raises. ``normalize`` gives the form a value takes on the wire.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime

#: Input longer than this is refused by every check before any other work.
MAX_FIELD_LENGTH = 255

# Bidirectional overrides and isolates can make a name read differently than it is stored.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
    re.ASCII,
)
_WISE_TAG = re.compile(r"@[A-Za-z0-9][A-Za-z0-9._-]{1,63}", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)
_EXPIRY = re.compile(r"([0-9]{2})/([0-9]{2})", re.ASCII)
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}", re.ASCII)
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", re.ASCII)

PHONE_MESSAGE = "Digits only, 10 to 15 of them, e.g. 79999999999."


def _unsafe_character(value: str) -> str | None:
    for ch in value:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            return "Remove the control or invisible characters (line breaks, tabs and the like)."
    return None


def _guard(value: str, max_length: int = MAX_FIELD_LENGTH) -> str | None:
    """The checks every field shares: a string, not too long, no control characters."""
    if not isinstance(value, str):
        return "Enter text."
    if len(value) > max_length:
        return f"Too long: at most {max_length} characters."
    return _unsafe_character(value)


def check_text(value: str) -> str | None:
    """Free text such as a bank name or an address: not blank, no control characters."""
    problem = _guard(value)
    if problem:
        return problem
    if not value.strip():
        return "Must not be blank."
    return None


def check_holder_name(value: str) -> str | None:
    """A person's full name as the bank knows it."""
    problem = _guard(value, 128)
    if problem:
        return problem
    if not value.strip():
        return "Enter the holder's full name."
    if not any(ch.isalpha() for ch in value):
        return "Enter the holder's full name in letters, e.g. John Wick."
    return None


def luhn_ok(digits: str) -> bool:
    """True when the ASCII digit string passes the Luhn check that card numbers carry."""
    total = 0
    for index, ch in enumerate(reversed(digits)):
        number = ord(ch) - 48
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def check_card_number(value: str) -> str | None:
    """12 to 19 digits that pass the Luhn check; spaces between groups are fine."""
    problem = _guard(value, 64)
    if problem:
        return problem
    digits = normalize("card_number", value)
    if not digits:
        return "Enter the card number."
    if not _DIGITS.fullmatch(digits):
        return "Digits only (spaces between groups are fine), e.g. 4242 4242 4242 4242."
    if not 12 <= len(digits) <= 19:
        return f"A card number has 12 to 19 digits; this one has {len(digits)}."
    if not luhn_ok(digits):
        return "This card number has a typo: its check digit does not match."
    return None


def check_expiry(value: str, *, today: date | None = None) -> str | None:
    """``MM/YY`` with a real month, not in the past."""
    problem = _guard(value, 32)
    if problem:
        return problem
    match = _EXPIRY.fullmatch(value.strip())
    if not match:
        return "Write the expiry as MM/YY, e.g. 07/27."
    month, year = int(match.group(1)), 2000 + int(match.group(2))
    if not 1 <= month <= 12:
        return "The month must be 01 to 12."
    now = today or date.today()
    if (year, month) < (now.year, now.month):
        return f"This card expired in {match.group(0)}."
    return None


def check_phone(value: str) -> str | None:
    """10 to 15 digits with the country code and no ``+``, spaces or dashes."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _DIGITS.fullmatch(text) or not 10 <= len(text) <= 15:
        return PHONE_MESSAGE
    return None


def check_email(value: str) -> str | None:
    """An email address of the usual shape (``name@example.com``)."""
    problem = _guard(value, 254)
    if problem:
        return problem
    if not _EMAIL.fullmatch(value.strip()):
        return "Enter an email address, e.g. test@mail.com."
    return None


def check_skrill_account(value: str) -> str | None:
    """A Skrill account: the email or the phone number (digits only) it is registered to."""
    problem = _guard(value, 254)
    if problem:
        return problem
    text = value.strip()
    if "@" in text:
        return check_email(text)
    if check_phone(text) is None:
        return None
    return "Enter the Skrill email or phone number (digits only), e.g. test@mail.com."


def check_wise_tag(value: str) -> str | None:
    """A Wise tag: ``@`` then letters, digits, ``.``, ``_`` or ``-``."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _WISE_TAG.fullmatch(text):
        if _WISE_TAG.fullmatch("@" + text):
            return f"A Wise tag starts with @, e.g. @{text}."
        return "Enter the Wise tag: @ then letters or digits, e.g. @examplovich23."
    return None


def check_pix_key(value: str) -> str | None:
    """A PIX key: CPF (11 digits), CNPJ (14), phone (digits), email or random key (UUID)."""
    problem = _guard(value, 254)
    if problem:
        return problem
    text = value.strip()
    if _DIGITS.fullmatch(text) and (len(text) in (11, 14) or check_phone(text) is None):
        return None
    if _UUID.fullmatch(text) or ("@" in text and check_email(text) is None):
        return None
    return (
        "Enter a PIX key: CPF (11 digits), CNPJ (14 digits), phone (digits), email "
        "or random key, e.g. 123e4567-e89b-12d3-a456-426655440000."
    )


def check_datetime(value: str) -> str | None:
    """A real date and time written ``YYYY-MM-DD HH:MM``."""
    problem = _guard(value, 32)
    if problem:
        return problem
    text = value.strip()
    if not _DATETIME.fullmatch(text):
        return "Write the time as YYYY-MM-DD HH:MM, e.g. 2023-05-01 10:22."
    try:
        datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        return f"{text} is not a real date and time."
    return None


def check_code(value: str) -> str | None:
    """A verification code: 4 to 12 digits."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _DIGITS.fullmatch(text) or not 4 <= len(text) <= 12:
        return "Digits only, 4 to 12 of them, e.g. 123456."
    return None


def _iban_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def check_account_number(value: str) -> str | None:
    """A bank account: 6 to 34 digits, or an IBAN (letters allowed) with a valid check."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = normalize("account_number", value)
    if _DIGITS.fullmatch(text):
        if 6 <= len(text) <= 34:
            return None
        return "An account number has 6 to 34 digits, e.g. 40702810800070000366."
    if _IBAN.fullmatch(text):
        return None if _iban_ok(text) else "This IBAN has a typo: its check digits do not match."
    return "Enter the account number (6 to 34 digits) or an IBAN, e.g. 40702810800070000366."


def check_papara_account(value: str) -> str | None:
    """A Papara account number: 10 digits."""
    problem = _guard(value, 64)
    if problem:
        return problem
    text = value.strip()
    if not _DIGITS.fullmatch(text) or len(text) != 10:
        return "A Papara account number is 10 digits, e.g. 9925125660."
    return None


def check_flag(value: str) -> str | None:
    """A yes/no flag written ``true`` or ``false``."""
    problem = _guard(value, 16)
    if problem:
        return problem
    if value.strip().lower() not in ("true", "false"):
        return "Choose yes or no."
    return None


CHECKS: dict[str, Callable[[str], str | None]] = {
    "text": check_text,
    "holder_name": check_holder_name,
    "card_number": check_card_number,
    "expiry": check_expiry,
    "phone": check_phone,
    "email": check_email,
    "skrill_account": check_skrill_account,
    "wise_tag": check_wise_tag,
    "pix_key": check_pix_key,
    "datetime": check_datetime,
    "code": check_code,
    "account_number": check_account_number,
    "papara_account": check_papara_account,
    "flag": check_flag,
}


def normalize(check: str, value: str) -> str:
    """Return the wire form of a value: card and account numbers lose their spaces, IBAN
    letters are upper-cased, flags are lower-cased, everything else loses surrounding
    whitespace."""
    if check in ("card_number", "account_number"):
        compact = "".join(value.split())
        return compact.upper() if check == "account_number" else compact
    if check == "flag":
        return value.strip().lower()
    return value.strip()
